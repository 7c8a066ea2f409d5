"""Before a trial trains: will its model fit the board? Its int8 footprint from the compiler itself.

The untrained model (its sizes do not depend on its weights) is converted to int8 on a few training samples and
compiled for the board's kernel path; the planner's arena, the weights and the stack estimate are checked against
the board's memories exactly as `tinyml build` checks them (`firmware.check_fits`). A configuration that cannot fit
is recorded as infeasible with the reason and never trains.
"""
from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from toolchain.boards import Board
from toolchain.errors import ToolchainError
from toolchain.recipe import Recipe

CALIBRATION_SAMPLES = 8  # the footprint needs shapes, not accurate scales


@dataclass(frozen=True)
class Footprint:
    params: int  # after BatchNorm folding
    macs: int  # of the full path
    weights_bytes: int  # flash: int8 weights and int32 biases, as compiled
    arena_bytes: int  # RAM: the planner's arena (every tensor, inputs and outputs included)
    model_ram_bytes: int  # arena + the stack estimate
    feasible: bool
    reason: str = ""  # why not, when not

    def to_dict(self) -> dict:
        return asdict(self)


def footprint(recipe: Recipe, dataset, board: Board | None) -> Footprint:
    """The recipe's model (untrained) as the board would run it; feasible when `board` is None or it fits."""
    from toolchain import zoo
    from toolchain.compiler import compile_model
    from toolchain.export.tflite import convert_int8
    from toolchain.firmware import STACK_ESTIMATE, check_fits
    from toolchain.tf import import_tf
    from toolchain.train.loop import build_model
    from toolchain.zoo import exits

    _, keras = import_tf()
    keras.utils.set_random_seed(recipe.train.seed)
    model = build_model(recipe, dataset)
    early_exit = exits.EXIT_OUTPUT in model.output_names
    with tempfile.TemporaryDirectory(prefix="tinyml-footprint-") as tmp:
        tflite = Path(tmp) / "model.tflite"
        convert_int8(model, dataset.x_train[:CALIBRATION_SAMPLES], tflite)
        plan = compile_model(tflite, Path(tmp) / "c", target=board.kernels if board else "ref",
                             early_exit=early_exit).plan
    reason = ""
    if board is not None:
        try:
            check_fits(plan, board)
        except ToolchainError as exc:
            reason = exc.message
    return Footprint(zoo.folded_param_count(model), zoo.count_macs(model), plan.weights_bytes, plan.arena_bytes,
                     plan.arena_bytes + STACK_ESTIMATE, not reason, reason)
