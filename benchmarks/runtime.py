"""`inspector bench` for every registered model: PyTorch eager against onnxruntime.

Each model runs in its own `inspector bench MODEL --format json` child, so one model's threads and
memory never touch the next one's figures.
"""

from __future__ import annotations

from _common import INSPECTOR, markdown_table, run_json, verdict


def registered_models() -> list[str]:
    return [entry["name"] for entry in _listing()]


def _listing() -> list[dict]:
    data = run_json([*INSPECTOR, "list", "--format", "json"])
    return data["models"] if isinstance(data, dict) else data


def measure(
    models: list[str], runs: int, warmup: int, batch_sizes=(1, 8), threads: int | None = None
) -> dict[str, dict]:
    sizes = ",".join(map(str, batch_sizes))
    extra = ["--threads", str(threads)] if threads else []
    return {
        model: run_json(
            [
                *INSPECTOR,
                "bench",
                model,
                "--batch-sizes",
                sizes,
                "--runs",
                str(runs),
                "--warmup",
                str(warmup),
                "--format",
                "json",
                *extra,
            ]
        )
        for model in models
    }


def markdown(reports: dict[str, dict], single_thread: dict[str, dict] | None = None):
    rows, slower = _rows(reports)
    any_report = next(iter(reports.values()), {})
    threads = {res["threads"] for r in reports.values() for res in r["results"]}
    lines = [
        "## PyTorch eager against onnxruntime (`inspector bench`)",
        "",
        f"Median (p90) latency of {any_report.get('runs', '?')} timed runs after "
        f"{any_report.get('warmup', '?')} warm-up runs, {'/'.join(map(str, sorted(threads)))} "
        "threads for both runtimes (intra-op; inter-op 1), the same seeded random inputs. "
        "onnxruntime: CPUExecutionProvider, ORT_ENABLE_ALL, inputs bound once (IO binding). "
        "A run shorter than 1 ms repeats the call back to back until it lasts 1 ms and counts "
        "as the mean of those calls (as timeit does), so a call of a few microseconds is not "
        "timed by a single clock reading. "
        "Speedup = torch ms / onnxruntime ms (> 1: onnxruntime is faster). GFLOP/s counts 2 "
        "FLOPs per torchinfo mult-add (torchinfo counts Conv/Linear/BatchNorm parameters times "
        "outputs; ReLU and identity count 0).",
        "",
        markdown_table(COLUMNS, rows),
        "",
        "Target onnxruntime (authored graph, the default export) at least as fast as PyTorch "
        "eager at batch 1 for every model: "
        + verdict(not slower)
        + (f"; slower: {', '.join(slower)}." if slower else "."),
    ]
    if single_thread:
        rows_1, slower_1 = _rows(single_thread)
        lines += [
            "",
            "### One thread, batch 1",
            "",
            "The same at `--threads 1 --batch-sizes 1`. With one thread neither runtime waits for "
            "a second one, so these figures are the ones other processes on the machine disturb "
            "least (see change 5 below: with 2 threads and a busy second core, a torch call can "
            "wait a whole scheduler tick for its other thread).",
            "",
            markdown_table(COLUMNS, rows_1),
            "",
            "At one thread onnxruntime is at least as fast at batch 1 for: "
            + (f"every model except {', '.join(slower_1)}." if slower_1 else "every model."),
        ]
    measured = "slower: " + ", ".join(slower) if slower else "every model"
    target = ("onnxruntime at least as fast as PyTorch eager at batch 1", measured, not slower)
    return "\n".join(lines), {"targets": [target], "slower_at_batch_1": slower}


COLUMNS = [
    "model",
    "batch",
    "torch eager ms (p90)",
    "ort authored ms (p90)",
    "ort optimized ms (p90)",
    "speedup authored",
    "speedup optimized",
    "GFLOP/s torch / ort",
]


def _rows(reports: dict[str, dict]):
    rows, slower = [], []
    for model, report in reports.items():
        for res in report["results"]:
            gflops = res.get("gflops", {})
            rows.append(
                [
                    f"`{model}`",
                    str(res["batch_size"]),
                    _ms(res, "torch"),
                    _ms(res, "onnxruntime"),
                    _ms(res, "onnxruntime_optimized"),
                    f"{res['speedup']:.2f}x",
                    f"{res.get('speedup_optimized', float('nan')):.2f}x",
                    " / ".join(f"{gflops.get(r, 0):.1f}" for r in ("torch", "onnxruntime")),
                ]
            )
            if res["batch_size"] == 1 and res["speedup"] < 1:
                slower.append(f"`{model}` ({res['speedup']:.2f}x)")
    return rows, slower


def _ms(result: dict, runtime: str) -> str:
    median = result.get(f"{runtime}_ms")
    if median is None:
        return "-"
    from inspector.bench import _ms as digits  # the same digits as inspector bench prints

    return f"{digits(median)} ({digits(result['p90_ms'][runtime])})"


# Why inspector bench binds onnxruntime's inputs once ----------------------------------------------

OVERHEAD_MODELS = ("relu", "my_model", "linear")


def call_overhead(models=OVERHEAD_MODELS, runs: int = 5, calls: int = 2000) -> dict[str, dict]:
    """Microseconds per call at batch 1: torch eager, `session.run` (numpy in and out) and the IO
    binding inspector bench uses; the mean of `calls` calls, repeated `runs` times."""
    import torch

    from inspector import bench
    from inspector.export import exported_model
    from inspector.loading import load_model
    from inspector.onnx.runtime import open_session

    results = {}
    for name in models:
        loaded = load_model(name)
        inputs = loaded.example_inputs(batch_size=1)
        with exported_model(loaded) as path, torch.inference_mode():
            session = open_session(path, path.name, threads=bench.default_threads())
            feeds = bench._feeds(session, inputs, 1, path)
            candidates = {
                "torch": lambda m=loaded.module, x=inputs: x.call(m),
                "session.run": lambda s=session, f=feeds: s.run(None, f),
                "io binding": bench._bound_run(session, feeds),
            }
            results[name] = {k: _per_call_us(call, runs, calls) for k, call in candidates.items()}
    return results


def _per_call_us(call, runs: int, calls: int):
    from _common import Stats, time_calls

    def many():
        for _ in range(calls):
            call()

    many()  # warm-up
    seconds = time_calls({"x": many}, runs)["x"].wall
    return Stats(tuple(s / calls * 1e6 for s in seconds.samples))


def overhead_markdown(results: dict[str, dict]) -> str:
    rows = [
        [
            f"`{model}`",
            *(f"{stats.median:.1f} ({stats.min:.1f}-{stats.max:.1f})" for stats in row.values()),
        ]
        for model, row in results.items()
    ]
    return "\n".join(
        [
            "### onnxruntime's per-call overhead on the smallest models",
            "",
            "Microseconds per call at batch 1 (median of the per-run means, min-max); why "
            "`inspector bench` binds the inputs once instead of calling `session.run`.",
            "",
            markdown_table(["model", "torch eager", "`session.run`", "IO binding"], rows),
        ]
    )
