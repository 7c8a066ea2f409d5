"""The pipeline's final summary (terminal table, summary.json) and its report (report.md/html + PNGs)."""
from __future__ import annotations

import json
from pathlib import Path

from toolchain.compiler.model_plan import PLAN_FILE, ModelPlan
from toolchain.firmware import IMAGE_FILE, FirmwareImage
from toolchain.fsutil import write_json
from toolchain.report import plots
from toolchain.report.document import Report
from toolchain.report.table import format_table


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _manifest(root: Path, stage: str) -> dict:
    return _load(root / stage / "manifest.json").get("metrics", {})


def summarize(root: Path) -> dict:
    """Every figure of the run, from the stages' manifests."""
    root = Path(root)
    train, export, compile_, build, run = (_manifest(root, s) for s in ("train", "export", "compile", "build", "run"))
    compress = _manifest(root, "compress")
    flt, i8 = export.get("accuracy_float", {}), export.get("accuracy_int8", {})
    exits = compile_.get("exits", [])
    return {
        "board": run.get("board"),
        "task": export.get("task", "classification"),
        "accuracy": {
            "float": flt, "int8_host": i8,
            "device": {"combined" if exits else "final": run.get("device_accuracy")},
            "device_samples": run.get("samples"),
            # LiteRT int8 on the same samples as the device (not the whole test set as int8_host)
            "int8_host_device_samples": run.get("host_int8_accuracy_device_samples"),
        },
        "device_equals_host_int8": run.get("bit_exact"),
        "test": train.get("test"),
        "exit_threshold": run.get("exit_threshold"),
        "exit_rate": {"host_int8": i8.get("exit_rate"), "device": run.get("device_exit_rate")},
        "macs": {"full": compile_.get("macs"), "exit": exits[0]["macs"] if exits else None},
        "instructions": {"mean": run.get("instructions_mean"), "full": run.get("instructions_full"),
                         "exit": run.get("instructions_exit"), "per_mac": run.get("instructions_per_mac")},
        "estimated_latency_ms": run.get("estimated_latency_ms"),
        "clock_hz": run.get("clock_hz"), "cpi": run.get("cpi"), "cpi_calibrated": run.get("cpi_calibrated"),
        "arena_bytes": compile_.get("arena_bytes"), "stack_bytes": run.get("stack_bytes"),
        "stack_bound_bytes": run.get("stack_bound_bytes"), "ram_parts": compile_.get("ram_parts"),
        "tflm_head_bytes": compile_.get("tflm_head_bytes"), "tflm_total_bytes": compile_.get("tflm_total_bytes"),
        "flash_bytes": build.get("flash_bytes"), "ram_bytes": build.get("ram_bytes"),
        "compression": compress.get("stages", []),
    }


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def summary_rows(s: dict) -> list[list]:
    acc = s["accuracy"]
    rows = []
    n = acc["device_samples"]
    for name in ("exit_1", "final", "combined"):
        if name in acc["float"] or name in acc["device"]:
            rows.append([f"accuracy {name} (float / int8 host / device on {n} test samples)",
                         f"{_pct(acc['float'].get(name))} / {_pct(acc['int8_host'].get(name))} / "
                         f"{_pct(acc['device'].get(name)) if name in acc['device'] else '-'}"])
    if acc.get("int8_host_device_samples") is not None:
        name = "combined" if "combined" in acc["device"] else "final"
        rows.append([f"accuracy {name} on the {n} device samples (int8 host / device)",
                     f"{_pct(acc['int8_host_device_samples'])} / {_pct(acc['device'].get(name))}"])
    rows.append(["device samples, identical to host int8", f"{acc['device_samples']}, "
                 f"{'yes' if s['device_equals_host_int8'] else 'NO'} (LiteRT BUILTIN_REF)"])
    if s["macs"]["exit"]:
        rows.append(["exit rate (host int8 test set / device)",
                     f"{_pct(s['exit_rate']['host_int8'])} / {_pct(s['exit_rate']['device'])} "
                     f"at int8 threshold {s['exit_threshold']}"])
        rows.append(["MACs (exit path / full)", f"{s['macs']['exit']:,} / {s['macs']['full']:,}"])
    else:
        rows.append(["MACs", f"{s['macs']['full']:,}"])
    ins = s["instructions"]
    full = f"{ins['full']:,}" if ins["full"] else "-"
    rows.append(["instructions / inference (full / mean with exits)", f"{full} / {ins['mean']:,}"])
    cpi = f"CPI {s['cpi']:g}" + ("" if s["cpi_calibrated"] else ", uncalibrated")
    rows.append([f"estimated latency @ {s['clock_hz'] / 1e6:g} MHz ({cpi})", f"{s['estimated_latency_ms']:.1f} ms"])
    bound = "-" if s.get("stack_bound_bytes") is None else f"{s['stack_bound_bytes']:,}"
    rows.append(["arena / stack (high-water / static bound) / flash (bytes)",
                 f"{s['arena_bytes']:,} / {s['stack_bytes']:,} / {bound} / {s['flash_bytes']:,}"])
    rows += ram_summary_rows(s)
    return rows


def ram_summary_rows(s: dict) -> list[list]:
    """Model RAM by part (the arena holds the inputs, outputs and scratch) next to TFLM's arena, when known."""
    parts = s.get("ram_parts")
    if not parts:
        return []
    bound = s.get("stack_bound_bytes")
    total = f"{s['arena_bytes'] + bound:,}" if bound is not None else "-"
    rows = [["model RAM = arena + stack bound (bytes)", f"{total} = {s['arena_bytes']:,} + {bound or '-'}"],
            ["  arena: inputs / outputs / largest scratch (bytes)",
             f"{parts['inputs']:,} / {parts['outputs']:,} / {parts['largest scratch']:,}"]]
    if s.get("tflm_head_bytes"):
        rows.append(["TFLM arena for the same model: head / total (bytes)",
                     f"{s['tflm_head_bytes']:,} / {s['tflm_total_bytes']:,} "
                     f"(ours {s['arena_bytes'] / s['tflm_head_bytes']:.2f}x"
                     " its head)"])
    return rows


def print_summary(s: dict, title: str) -> None:
    print(format_table(["figure", "value"], summary_rows(s), title=title))


def write_report(root: Path, title: str) -> tuple[Path, Path]:
    """summary.json, the plots and report.md/report.html in the run root."""
    root = Path(root)
    s = summarize(root)
    write_json(root / "summary.json", s)
    rep = Report(title)
    rep.heading("Summary")
    rep.table(["figure", "value"], summary_rows(s))
    rep.text("Emulator figures are instruction counts (QEMU -icount, deterministic), not cycles; latency is "
             + ("estimated cycles (instruction classes x the core's documented costs, no wait states: "
                "docs/CYCLES.md) / clock" if str(s.get("latency_from", "")).startswith("estimated cycles")
                else "instructions x CPI / clock") + ", an estimate.")
    sweep = _load(root / "export" / "sweep.json").get("int8")
    run = _load(root / "run" / "run.json")
    full, exit_ = s["instructions"]["full"], s["instructions"]["exit"]
    if sweep and s["macs"]["exit"] and run.get("layers"):
        # Per path, instructions are fixed: an exit-path estimate from the layers before the exit when
        # no embedded sample left early.
        layers_before = ModelPlan.load(root / "compile" / "c").exits[0].layers
        full = full or s["instructions"]["mean"]
        exit_ = exit_ or sum(x["instructions"] or 0 for x in run["layers"][:layers_before])
        rows = [{"threshold": r["threshold"], "accuracy": r["accuracy"],
                 "instructions": r["exit_rate"] * exit_ + (1 - r["exit_rate"]) * full} for r in sweep["rows"]]
        plots.accuracy_vs_cost(rows, root / "accuracy_vs_instructions.png", "instructions",
                               "expected instructions per inference", "int8 accuracy vs expected instructions")
        rep.heading("Exit threshold sweep (int8, host test set; instructions from the device)")
        rep.table(["threshold", "exit rate", "accuracy", "expected MACs", "expected instructions"],
                  [[r["threshold"], _pct(x["exit_rate"]), _pct(r["accuracy"]), round(x["expected_macs"]),
                    round(r["instructions"])] for r, x in zip(rows, sweep["rows"])])
        rep.image("accuracy_vs_instructions.png", "accuracy vs expected instructions over exit thresholds")
    if run.get("layers"):
        plots.layer_instructions(run["layers"], root / "layer_instructions.png", f"per layer on {s['board']}")
        rep.heading(f"Per-layer instructions (device, sample {run.get('layers_sample', 0)})")
        rep.image("layer_instructions.png", "instructions per layer (bars) and instructions per MAC (dots)")
    if (root / "compile" / "c" / PLAN_FILE).is_file():
        plots.arena_plan(ModelPlan.load(root / "compile" / "c"), root / "arena_plan.png")
        rep.heading("Static memory plan")
        rep.image("arena_plan.png", "tensor lifetimes (layers) against arena offsets")
    if s["compression"]:
        rep.heading("Compression stages")
        keys = list(s["compression"][0])
        rep.table(keys, [[row.get(k) for k in keys] for row in s["compression"]])
    if (root / "build" / IMAGE_FILE).is_file():
        sizes = FirmwareImage.load(root / "build").sizes
        rep.heading("Firmware size by part")
        rep.table(["memory", "part", "bytes"], [["flash", p, n] for p, n in sizes.flash.items()]
                  + [["ram", p, n] for p, n in sizes.ram.items()])
    return rep.write(root)
