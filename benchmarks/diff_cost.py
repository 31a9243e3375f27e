"""Diff and drawing: `inspector diff` of two exports against loading both with onnx, and Netron's
drawing of the full graph against the collapsed `--depth 1` view.

The two files are MobileNetV3-Large exported by inspector as the authored and the optimized graph
(BatchNormalization kept and folded), so the diff has real work: every node paired, 15 MB of
weights compared. In one process: `onnx.load` of both files (the baseline) against the same loads
plus `diff_models(..., run=False)`, the structural comparison (interface, ops, node pairing, every
weight); each sample is 10 calls, figures are per call, and the 2x target is judged on CPU time. A command given two files also checks each with the
ONNX checker in a child process before reading it (a hostile file must not crash it): that cost
is shown on its own row, then whole processes, `inspector diff --structure-only` and with the
outputs compared (6 runs of each model in onnxruntime), against a bare `python -c` that loads both.

Drawing: `inspector render FILE.onnx -o OUT.svg` of the authored file, whole and at `--depth 1`,
each a whole process (Chromium's start, Netron's layout, the SVG export).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import (
    INSPECTOR,
    Stats,
    Timed,
    markdown_table,
    time_calls,
    time_children,
    timed,
    verdict,
)

DIFF_TARGET = 2.0
REPEAT = 10  # calls per in-process sample


def exports(model: str, folder: Path) -> tuple[Path, Path]:
    from inspector.export import export_onnx
    from inspector.loading import load_model

    loaded = load_model(model)
    paths = folder / f"{model}.authored.onnx", folder / f"{model}.optimized.onnx"
    export_onnx(loaded, paths[0], graph="authored")
    export_onnx(loaded, paths[1], graph="optimized")
    return paths


def measure(model: str, runs: int, draw: bool = True) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        a, b = exports(model, Path(folder))
        results = {"model": model, "in_process": _in_process(a, b, runs)}
        results["processes"] = _processes(a, b, runs)
        if draw:
            results["drawing"] = _drawing(a, Path(folder), runs)
    return results


def _in_process(a: Path, b: Path, runs: int) -> dict:
    import onnx

    from inspector.onnx.diff import diff_models
    from inspector.onnx.files import check_onnx_file

    def load_both():
        return onnx.load(str(a)), onnx.load(str(b))

    def diff():
        result = diff_models(*load_both(), run=False)
        if result.structure_equal:
            raise RuntimeError("authored and optimized came out equal: a benchmark of no work")

    def check_both():
        check_onnx_file(a, runtime=False)
        check_onnx_file(b, runtime=False)

    load_both(), diff()  # warm-up: imports and onnx's first parse
    # A load takes some 10-40 ms and CPU time ticks in 10 ms: each sample repeats the call.
    calls = {"load": load_both, "diff": diff, "checks": check_both}
    repeated = {name: _repeated(call, REPEAT) for name, call in calls.items()}
    return {name: _per_call(t, REPEAT) for name, t in time_calls(repeated, runs).items()}


def _repeated(call, times: int):
    def run():
        for _ in range(times):
            call()

    return run


def _per_call(t: Timed, times: int) -> Timed:
    return Timed(*(Stats(tuple(s / times for s in stats.samples)) for stats in (t.wall, t.cpu)))


def _processes(a: Path, b: Path, runs: int) -> dict:
    load = f"import onnx; onnx.load({str(a)!r}); onnx.load({str(b)!r})"
    commands = {
        "python: onnx.load both": [sys.executable, "-c", load],
        "inspector diff --structure-only": [*INSPECTOR, "diff", str(a), str(b), "--structure-only"],
        "inspector diff": [*INSPECTOR, "diff", str(a), str(b)],
    }
    return {name: timed(samples) for name, samples in _children(commands, runs).items()}


def _drawing(path: Path, folder: Path, runs: int) -> dict:
    render = [*INSPECTOR, "render", str(path)]
    commands = {
        "render (full graph)": [*render, "-o", str(folder / "full.svg")],
        "render --depth 1": [*render, "--depth", "1", "-o", str(folder / "depth1.svg")],
    }
    try:
        return {name: timed(samples) for name, samples in _children(commands, runs).items()}
    except RuntimeError as error:  # no Chromium here: say so instead of a figure
        return {"error": str(error)}


def _children(commands: dict, runs: int) -> dict:
    return time_children(
        {name: _different_is_success(argv) for name, argv in commands.items()}, runs
    )


def _different_is_success(argv: list[str]) -> list[str]:
    """`inspector diff` exits 1 when the models differ, as these do; run_child takes any exit but
    0 for a failure, so a diff runs as `python -c` calling the same main() and mapping 1 to 0."""
    if argv[: len(INSPECTOR) + 1] != [*INSPECTOR, "diff"]:
        return argv
    code = (
        "import sys; from inspector.cli import main; "
        f"code = main({argv[len(INSPECTOR) :]!r}); sys.exit(0 if code in (0, 1) else code)"
    )
    return [sys.executable, "-c", code]


def markdown(results: dict) -> tuple[str, dict]:
    t = results["in_process"]
    ratio = t["diff"].cpu.ratio(t["load"].cpu)
    rows = [
        ["`onnx.load` of both files (baseline)", t["load"].wall.ms(), t["load"].cpu.ms(), "1.00x"],
        [
            "the same loads + `diff_models(run=False)`",
            t["diff"].wall.ms(),
            t["diff"].cpu.ms(),
            f"**{ratio:.2f}x**",
        ],
        [
            "the ONNX checker on both files, in child processes",
            t["checks"].wall.ms(),
            t["checks"].cpu.ms(),
            f"{t['checks'].cpu.ratio(t['load'].cpu):.2f}x",
        ],
    ]
    lines = [
        "## Diff and drawing",
        "",
        (__doc__ or "").split("\n\n", 1)[1].strip(),
        "",
        f"Model: `{results['model']}`.",
        "",
        markdown_table(["in one process", "wall", "CPU", "CPU vs loading"], rows),
        "",
        f"Target: the diff within {DIFF_TARGET:.0f}x of loading both files (CPU): "
        f"{verdict(ratio <= DIFF_TARGET)} ({ratio:.2f}x).",
        "",
        _process_table(results["processes"], "python: onnx.load both"),
    ]
    drawing = results.get("drawing", {})
    if "error" in drawing:
        lines += ["", f"Drawing not measured: {drawing['error']}"]
    elif drawing:
        lines += ["", _process_table(drawing, "render (full graph)")]
    target = (
        f"diff within {DIFF_TARGET:.0f}x of loading both files",
        f"{ratio:.2f}x CPU",
        ratio <= DIFF_TARGET,
    )
    figures = []
    if drawing and "error" not in drawing:
        full, depth = drawing["render (full graph)"].wall, drawing["render --depth 1"].wall
        figures.append(
            (
                f"render {results['model']}: full graph / --depth 1",
                f"{full.median:.1f} s / {depth.median:.1f} s",
            )
        )
    return "\n".join(lines), {"targets": [target], "figures": figures}


def _process_table(stats: dict, baseline: str) -> str:
    base = stats[baseline].wall
    rows = [
        [f"`{name}`", t.wall.seconds(), f"{t.wall.ratio(base):.2f}x", t.cpu.seconds()]
        for name, t in stats.items()
    ]
    return markdown_table(["whole process", "wall", f"vs {baseline.split(':')[0]}", "CPU"], rows)
