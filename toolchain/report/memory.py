"""Model RAM by part, next to TFLM's figures: one table for `compile`, `build` and `run`."""
from __future__ import annotations


def ram_rows(plan, stack_bound: int | None = None, tflm=None) -> list[list]:
    """[figure, bytes] rows: the arena and what lies in it, the stack bound, their sum ("model RAM": every byte of
    RAM one inference needs), and TFLM's head (its planner's figure: tensors, inputs, outputs, scratch) and total
    (what a TFLM user allocates: head + persistent data) when known (`tflm`: an object with head and total)."""
    parts = plan.ram_parts()
    rows = [
        ["arena (static, exact): every tensor, inputs and outputs included", plan.arena_bytes],
        ["  of which inputs (their bytes reused once read)", parts["inputs"]],
        ["  of which outputs", parts["outputs"]],
        ["  of which the largest layer scratch", parts["largest scratch"]],
        ["  lower bound: most bytes that must be alive at once", plan.live_peak_bytes],
    ]
    if stack_bound is not None:
        rows += [["stack (static bound of the call graph)", stack_bound],
                 ["model RAM (arena + stack bound)", plan.arena_bytes + stack_bound]]
    else:
        rows.append(["model RAM without the stack (its bound comes with `tinyml build`)", plan.arena_bytes])
    if tflm is not None:
        rows += [[f"TFLM head (its arena for the same tensors): ours is {plan.arena_bytes / tflm.head:.2f}x",
                  tflm.head],
                 ["TFLM total (head + persistent data we keep in flash or need not)", tflm.total]]
    return rows
