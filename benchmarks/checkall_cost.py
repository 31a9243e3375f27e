"""check-all: every registered model exported and verified, total and per model.

Run in one process (`inspector.checkall.check_all`, what `inspector check-all` calls after parsing
its arguments), with a timer around each model's check; the command's process start-up (mostly
`import torch`, see Start-up) comes on top, and so does the exporter's one-time set-up in a fresh
process (a few seconds; this process is already warm from the sections above).
"""

from __future__ import annotations

import time

from _common import Stats, markdown_table


def measure(runs: int, pattern: str | None = None) -> dict:
    from inspector import checkall

    names = checkall.select_models(pattern)
    real_check = checkall.check_model
    per_model = {name: {"wall": [], "cpu": [], "export": [], "verdict": set()} for name in names}
    totals = {"wall": [], "cpu": []}

    def timed_check(name, **options):
        start, start_cpu = time.perf_counter(), time.process_time()
        check = real_check(name, **options)
        per_model[name]["cpu"].append(time.process_time() - start_cpu)
        per_model[name]["wall"].append(time.perf_counter() - start)
        per_model[name]["export"].append(check.export_seconds or 0.0)
        per_model[name]["verdict"].add(check.verdict)
        return check

    checkall.check_model = timed_check
    try:
        for _ in range(runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            checkall.check_all(names, use_cache=False)  # every run exports, as a first CI run
            totals["cpu"].append(time.process_time() - start_cpu)
            totals["wall"].append(time.perf_counter() - start)
    finally:
        checkall.check_model = real_check
    stats = {
        name: {k: Stats(tuple(v)) for k, v in d.items() if k != "verdict"}
        | {"verdict": "/".join(sorted(d["verdict"]))}
        for name, d in per_model.items()
    }
    return {"models": stats, "total": {k: Stats(tuple(v)) for k, v in totals.items()}}


def markdown(result: dict) -> tuple[str, dict]:
    rows = [
        [
            f"`{name}`",
            s["wall"].seconds(),
            f"{s['cpu'].median:.2f} s",
            f"{s['export'].median:.2f} s",
            s["verdict"],
        ]
        for name, s in result["models"].items()
    ]
    total = result["total"]
    rows.append(["**total**", total["wall"].seconds(), f"{total['cpu'].median:.2f} s", "", ""])
    text = "\n".join(
        [
            "## check-all",
            "",
            (__doc__ or "").split("\n\n", 1)[1].strip(),
            "",
            markdown_table(
                ["model", "wall (export + verify)", "CPU", "of which export", "verdict"], rows
            ),
        ]
    )
    figure = f"{total['wall'].median:.1f} s wall, {total['cpu'].median:.1f} s CPU"
    return text, {"figures": [("`inspector check-all` (whole registry, in-process)", figure)]}
