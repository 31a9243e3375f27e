"""Start-up: what a user waits for before inspector does anything, against bare Python and torch.

Every figure is a child process timed from spawn to exit (wall clock), run from the repository root
with `python -m inspector`, exactly as the `inspector` script runs.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import INSPECTOR, markdown_table, run_child, time_children, timed, verdict

HELP_TARGET_S = 0.150
# The least a file summary can do: parse the proto (without weights) and count its operators.
BARE_SUMMARY = (
    "import collections, sys, onnx; "
    "m = onnx.load(sys.argv[1], load_external_data=False); "
    "print(collections.Counter(n.op_type for n in m.graph.node))"
)
PEER = "polygraphy inspect model FILE.onnx"


def make_onnx_file(folder: Path) -> Path:
    """A small ONNX file to summarize: the lecture's exercise model, exported once."""
    path = folder / "exercise_model.onnx"
    try:
        run_child([*INSPECTOR, "export", "exercise_model", "-o", str(path)])
    except RuntimeError:  # an export that is not there (yet) must not stop the start-up figures
        script = (
            "import warnings, torch; from inspector.loading import load_model;"
            "warnings.simplefilter('ignore'); m = load_model('exercise_model');"
            f"torch.onnx.export(m.module, m.example_inputs().args, {str(path)!r}, dynamo=False)"
        )
        run_child([sys.executable, "-c", script])
    return path


def commands(onnx_file: Path) -> dict[str, list[str]]:
    found = {
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        "inspector --help": [*INSPECTOR, "--help"],
        "inspector summary FILE.onnx": [*INSPECTOR, "summary", str(onnx_file)],
        "onnx.load + op count (bare)": [sys.executable, "-c", BARE_SUMMARY, str(onnx_file)],
        "inspector summary exercise_model": [*INSPECTOR, "summary", "exercise_model"],
    }
    peer = Path(sys.executable).with_name("polygraphy")  # its console script, where installed
    if peer.is_file():
        found[PEER] = [str(peer), "inspect", "model", str(onnx_file)]
    return found


def measure(runs: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        results = time_children(commands(make_onnx_file(Path(folder))), runs)
    return {name: timed(samples) for name, samples in results.items()}


def markdown(stats: dict) -> tuple[str, dict]:
    python, torch = stats["python -c pass"].wall, stats['python -c "import torch"'].wall
    rows = [
        [
            f"`{name}`",
            t.wall.ms(),
            f"{t.wall.ratio(python):.1f}x",
            f"{t.wall.ratio(torch):.2f}x",
            t.cpu.ms(),
        ]
        for name, t in stats.items()
    ]
    help_s = stats["inspector --help"].wall.median
    text = "\n".join(
        [
            "## Start-up",
            "",
            "Each command is a child process timed from spawn to exit (run from the repository "
            "root as `python -m inspector ...`, the same code path as the `inspector` script); "
            "ratios are of wall-clock medians. `inspector summary FILE.onnx` reads the exported "
            "exercise model; `inspector summary exercise_model` builds the model, so it has to "
            "import torch.",
            "",
            markdown_table(
                ["command", "wall time", "vs `python -c pass`", "vs `import torch`", "CPU time"],
                rows,
            ),
            "",
            f"Target `inspector --help` under {HELP_TARGET_S * 1e3:.0f} ms: "
            f"{verdict(help_s < HELP_TARGET_S)} ({help_s * 1e3:.0f} ms).",
        ]
    )
    target = (
        f"`inspector --help` under {HELP_TARGET_S * 1e3:.0f} ms",
        f"{help_s * 1e3:.0f} ms",
        help_s < HELP_TARGET_S,
    )
    text += "\n\n" + _summary_verdict(stats)
    summary = stats["inspector summary FILE.onnx"].wall.median
    figure = ("`inspector summary FILE.onnx` (no torch import)", f"{summary * 1e3:.0f} ms")
    return text, {"targets": [target, _summary_target(stats)], "figures": [figure]}


def _summary_target(stats: dict) -> tuple[str, str, bool]:
    """A file summary at most the peer's time (polygraphy; the bare parse where it is absent)."""
    ours = stats["inspector summary FILE.onnx"].wall
    peer_name = PEER if PEER in stats else "onnx.load + op count (bare)"
    peer = stats[peer_name].wall
    return (
        f"`inspector summary FILE.onnx` at most `{peer_name}`'s time",
        f"{ours.ms()} vs {peer.ms()} ({ours.ratio(peer):.2f}x)",
        ours.median <= peer.median * 1.02,  # within the clock's noise
    )


def _summary_verdict(stats: dict) -> str:
    name, measured, ok = _summary_target(stats)
    return (
        f"Target {name}: {verdict(ok)}, {measured}. A summary parses the file and counts its "
        "operators; it runs no checker (nothing in the file runs), so it costs what the bare "
        "parse costs plus inspector's start-up."
    )
