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


def measure(models: list[str], runs: int, warmup: int, batch_sizes=(1, 8)) -> dict[str, dict]:
    sizes = ",".join(map(str, batch_sizes))
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
            ]
        )
        for model in models
    }


def markdown(reports: dict[str, dict]) -> tuple[str, dict]:
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
    any_report = next(iter(reports.values()), {})
    columns = [
        "model",
        "batch",
        "torch eager ms (p90)",
        "ort authored ms (p90)",
        "ort optimized ms (p90)",
        "speedup authored",
        "speedup optimized",
        "GFLOP/s torch / ort",
    ]
    threads = {res["threads"] for r in reports.values() for res in r["results"]}
    text = "\n".join(
        [
            "## PyTorch eager against onnxruntime (`inspector bench`)",
            "",
            f"Median (p90) latency of {any_report.get('runs', '?')} timed runs after "
            f"{any_report.get('warmup', '?')} warm-up runs, {'/'.join(map(str, sorted(threads)))} "
            "threads for both runtimes (intra-op; inter-op 1), the same seeded random inputs. "
            "onnxruntime: CPUExecutionProvider, ORT_ENABLE_ALL, inputs bound once (IO binding). "
            "Speedup = torch ms / onnxruntime ms (> 1: onnxruntime is faster). GFLOP/s counts 2 "
            "FLOPs per torchinfo mult-add (torchinfo counts Conv/Linear/BatchNorm parameters times "
            "outputs; ReLU and identity count 0).",
            "",
            markdown_table(columns, rows),
            "",
            "Target onnxruntime at least as fast as PyTorch eager at batch 1 for every model: "
            + verdict(not slower)
            + (f"; slower: {', '.join(slower)}." if slower else "."),
        ]
    )
    return text, {"slower_at_batch_1": slower}


def _ms(result: dict, runtime: str) -> str:
    median = result.get(f"{runtime}_ms")
    if median is None:
        return "-"
    return f"{median:.3f} ({result['p90_ms'][runtime]:.3f})"
