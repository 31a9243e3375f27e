"""Measure inspector against its own baselines and write BENCHMARKS.md (`make bench`).

    python benchmarks/run.py                  # everything, about 10 minutes on 2 cores
    python benchmarks/run.py --quick          # fewer models and runs: a smoke test, not figures
    python benchmarks/run.py --only startup   # one section (startup, export, verify,
                                              # verify-modules, check-all, check-all-jobs, memory,
                                              # large-model, localize-memory, runtime,
                                              # diff, verify-data, precision)

Every figure is the median of several runs with its min and max, next to a baseline measured in the
same run. The hand-written section "Changes and their measured effect" comes from
benchmarks/changes.md and is appended as it is.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the sections, and this checkout's inspector

import _common  # noqa: E402
import startup  # noqa: E402

SECTIONS = (
    "startup",
    "export",
    "verify",
    "verify-modules",
    "check-all",
    "check-all-jobs",
    "memory",
    "large-model",
    "big-models",
    "localize-memory",
    "runtime",
    "diff",
    "verify-data",
    "precision",
)
QUICK_MODELS = ("relu", "conv_bn_relu")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    # A cache of our own: the figures must not depend on (or fill) the user's export cache.
    with tempfile.TemporaryDirectory(prefix="inspector-bench-cache-") as cache:
        os.environ.setdefault("INSPECTOR_CACHE_DIR", cache)
        return _run(args)


def _run(args) -> int:
    runs = args.runs or (2 if args.quick else 5)
    wanted = args.only or list(SECTIONS)
    started, texts, headlines, failed = time.perf_counter(), [], {}, []
    for name in wanted:
        print(f"benchmarks: {name} ...", file=sys.stderr, flush=True)
        section_start = time.perf_counter()
        try:
            text, headline = _run_section(name, args.quick, runs)
        except Exception as error:  # write what was measured, and say what was not
            traceback.print_exc()
            failed.append(name)
            text, headline = f"## {name}\n\n**Not measured**: {type(error).__name__}: {error}", {}
        print(
            f"benchmarks: {name} took {time.perf_counter() - section_start:.0f} s", file=sys.stderr
        )
        texts.append(text)
        headlines[name] = headline
    texts.insert(0, _summary(headlines))
    document = _document(texts, args.quick, runs, time.perf_counter() - started)
    args.output.write_text(document, encoding="utf-8")
    print(f"benchmarks: wrote {args.output}", file=sys.stderr)
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer models and runs (smoke test)")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section")
    parser.add_argument("--runs", type=int, help="repetitions per figure (default 5, quick 2)")
    parser.add_argument("--output", type=Path, default=HERE.parent / "BENCHMARKS.md")
    return parser


def _run_section(name: str, quick: bool, runs: int) -> tuple[str, dict]:
    import runtime

    if name == "startup":
        return startup.markdown(startup.measure(runs))
    if name == "export":
        import export_cost

        # mobilenet_v3_large is exported as whole processes in the memory section instead.
        models = runtime.registered_models()
        chosen = ["relu"] if quick else [m for m in models if m != "mobilenet_v3_large"]
        chosen.append(export_cost.BERT)
        reused = ("relu",) if quick else ("exercise_model", "mobilenet_v3_small")
        return export_cost.markdown(export_cost.measure(chosen, runs, reused))
    if name == "verify":
        import export_cost
        import verify_cost

        chosen = ["relu"] if quick else ["exercise_model", "mobilenet_v3_small"]
        chosen.append(export_cost.BERT)
        return verify_cost.markdown(verify_cost.measure(chosen, runs))
    if name == "verify-modules":
        import verify_modules_cost

        chosen = ["exercise_model"] if quick else ["exercise_model", "mobilenet_v3_small"]
        return verify_modules_cost.markdown(verify_modules_cost.measure(chosen, runs))
    if name == "check-all":
        import checkall_cost

        return checkall_cost.markdown(checkall_cost.measure(runs, "relu" if quick else None))
    if name == "check-all-jobs":
        import checkall_jobs

        return checkall_jobs.markdown(checkall_jobs.measure(runs, "[lr]*" if quick else None))
    if name == "large-model":
        import large_models

        return large_models.markdown(large_models.measure(1 if quick else runs))
    if name == "big-models":
        import big_models

        return big_models.markdown(big_models.measure(1 if quick else runs))
    if name == "localize-memory":
        import localize_memory

        return localize_memory.markdown(localize_memory.measure(1 if quick else min(runs, 3)))
    if name == "memory":
        import memory

        return memory.markdown(memory.measure(runs, "conv_bn_relu" if quick else memory.MODEL))
    if name == "runtime":
        chosen = list(QUICK_MODELS) if quick else runtime.registered_models()
        runs_, warmup = (3, 1) if quick else (20, 3)
        reports = runtime.measure(chosen, runs=runs_, warmup=warmup)
        single = runtime.measure(chosen, runs=runs_, warmup=warmup, batch_sizes=(1,), threads=1)
        text, headline = runtime.markdown(reports, single)
        overhead = runtime.call_overhead(runs=runs, calls=200 if quick else 2000)
        return text + "\n\n" + runtime.overhead_markdown(overhead), headline
    if name == "precision":
        import precision_cost

        chosen = ["relu"] if quick else ["exercise_model", "mobilenet_v3_small"]
        exports = precision_cost.measure_exports(chosen, runs)
        return precision_cost.markdown(exports, precision_cost.measure_figures(runs))
    if name == "diff":
        import diff_cost

        model = "mobilenet_v3_small" if quick else "mobilenet_v3_large"
        return diff_cost.markdown(diff_cost.measure(model, runs))
    if name == "verify-data":
        import verify_data_cost

        return verify_data_cost.markdown(verify_data_cost.measure(runs))
    raise ValueError(f"unknown section {name}")


def _summary(headlines: dict) -> str:
    """The targets and headline figures of every section, in one table at the top."""
    rows = []
    for headline in headlines.values():
        rows += [
            [name, measured, _common.verdict(ok)]
            for name, measured, ok in headline.get("targets", [])
        ]
        rows += [[name, figure, ""] for name, figure in headline.get("figures", [])]
    missing = [name for name, headline in headlines.items() if not headline]
    lines = [
        "## Summary",
        "",
        _common.markdown_table(["target or figure", "measured", "verdict"], rows),
    ]
    if missing:
        lines += ["", f"Not measured in this run: {', '.join(missing)} (see the section)."]
    return "\n".join(lines)


def _document(texts: list[str], quick: bool, runs: int, seconds: float) -> str:
    info, versions = _common.machine(), _common.versions()
    load = ", ".join(f"{x:.2f}" for x in info["load_average"])
    head = [
        "# Benchmarks",
        "",
        "<!-- Generated by `make bench` (benchmarks/run.py); edit benchmarks/changes.md for the "
        "last section. -->",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in {seconds / 60:.1f} min"
        + (" in **quick mode** (a smoke test: fewer models and runs)" if quick else "")
        + f"; each figure is the median of {runs} runs (min, max) unless a section says otherwise.",
        "",
        f"- Machine: {info['cpu']}, {info['cores']} cores ({info['cores_usable']} usable), "
        f"{info['memory_gib']} GiB memory, {info['os']}",
        f"- Load average when the report was written (1, 5, 15 min): {load}",
        "- Versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()),
    ]
    changes = HERE / "changes.md"
    tail = [changes.read_text(encoding="utf-8").strip()] if changes.exists() else []
    return "\n\n".join(["\n".join(head), *texts, *tail]) + "\n"


if __name__ == "__main__":
    sys.exit(main())
