"""check-all: every registered model exported and verified, total and per model.

Run in one process (`inspector.checkall.check_all`, what `inspector check-all` calls after parsing
its arguments), with a timer around each model's check; the command's process start-up (mostly
`import torch`, see Start-up) comes on top, and so does the exporter's one-time set-up in a fresh
process (a few seconds; this process is already warm from the sections above).

Two passes over the registry: "first run" exports every model (`use_cache=False`, as a first CI
run, or `--no-cache`); "cached" runs the default way after one untimed run has filled a fresh
export cache, as a repeated CI run where no model changed: verify reuses every export (after the
cache has checked each entry once, in a child process, as a new process would).
"""

from __future__ import annotations

import time

from _common import Stats, cpu_seconds, markdown_table


def measure(runs: int, pattern: str | None = None) -> dict:
    from inspector import checkall
    from inspector.onnx import files as onnx_file

    names = checkall.select_models(pattern)
    real_check = checkall.check_model
    keys = ("wall", "cpu", "export", "cached")
    per_model = {name: {k: [] for k in keys} | {"verdict": set()} for name in names}
    totals = {"wall": [], "cpu": [], "cached": [], "cached_cpu": []}
    cached = False

    def timed_check(name, **options):
        start, start_cpu = time.perf_counter(), cpu_seconds()
        check = real_check(name, **options)
        wall, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
        if cached:
            per_model[name]["cached"].append(wall)
        else:
            per_model[name]["cpu"].append(cpu)
            per_model[name]["wall"].append(wall)
            per_model[name]["export"].append(check.export_seconds or 0.0)
        per_model[name]["verdict"].add(check.verdict)
        return check

    def timed_run(use_cache, wall_key, cpu_key):
        # A repeated CI run is a new process: it has checked none of the cached files yet.
        onnx_file._VOUCHED.clear()
        start, start_cpu = time.perf_counter(), cpu_seconds()
        checkall.check_all(names, use_cache=use_cache)
        totals[cpu_key].append(cpu_seconds() - start_cpu)
        totals[wall_key].append(time.perf_counter() - start)

    checkall.check_model = timed_check
    try:
        for _ in range(runs):
            timed_run(False, "wall", "cpu")  # every run exports, as a first CI run
        checkall.check_all(names)  # fills the (fresh, benchmark-only) export cache, untimed
        cached = True
        for _ in range(runs):
            timed_run(True, "cached", "cached_cpu")
    finally:
        checkall.check_model = real_check
    stats = {
        name: {k: Stats(tuple(d[k])) for k in keys} | {"verdict": "/".join(sorted(d["verdict"]))}
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
            s["cached"].seconds(),
            s["verdict"],
        ]
        for name, s in result["models"].items()
    ]
    total = result["total"]
    rows.append(
        [
            "**total**",
            total["wall"].seconds(),
            f"{total['cpu'].median:.2f} s",
            "",
            total["cached"].seconds(),
            "",
        ]
    )
    text = "\n".join(
        [
            "## check-all",
            "",
            (__doc__ or "").split("\n\n", 1)[1].strip(),
            "",
            markdown_table(
                [
                    "model",
                    "first run: wall (export + verify)",
                    "CPU",
                    "of which export",
                    "cached: wall (verify)",
                    "verdict",
                ],
                rows,
            ),
        ]
    )
    first = f"{total['wall'].median:.1f} s wall, {total['cpu'].median:.1f} s CPU"
    again = (
        f"{total['cached'].median:.1f} s wall, {total['cached_cpu'].median:.1f} s CPU "
        f"({total['cached'].median / total['wall'].median:.2f}x of the first run)"
    )
    return text, {
        "figures": [
            ("`inspector check-all` (whole registry, in-process), first run", first),
            ("`inspector check-all` again, nothing changed (export cache)", again),
        ]
    }
