"""Latency of PyTorch eager against onnxruntime on the CPU, on the same seeded inputs.

Both runtimes get the same number of intra-op threads (and one inter-op thread), a few untimed
warm-up runs, then `runs` timed runs each; a report gives the median and p90 latency, throughput and
the achieved GFLOP/s (2 FLOPs per torchinfo mult-add) for the authored and the optimized ONNX graph.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import defaults
from .errors import InspectorError, option
from .onnx.files import check_onnx_file
from .onnx.runtime import feeds as paired_feeds
from .onnx.runtime import open_session
from .usermodel.devices import on_cpu
from .usermodel.usercode import user_code
from .util import html
from .util.html import short_repr
from .util.inductor import inductor_cache_removed
from .util.modes import eval_mode
from .util.progress import progress_bar, step

if TYPE_CHECKING:
    from .loading import LoadedModel


RUNTIMES = ("torch", "onnxruntime", "onnxruntime_optimized")
TITLES = {
    "torch": "torch eager",
    "onnxruntime": "ort authored",
    "onnxruntime_optimized": "ort optimized",
}
GRAPHS = {"onnxruntime": "authored", "onnxruntime_optimized": "optimized"}


# A sample shorter than this repeats the call (as timeit does): one reading of the clock around a
# call of a few microseconds times the clock and the loop as much as the call.
MIN_SAMPLE_S = 0.001
MAX_CALLS_PER_SAMPLE = 10_000


@dataclass(frozen=True)
class Timing:
    """The timed runs of one runtime at one batch size: milliseconds per call, one per sample."""

    samples_ms: tuple[float, ...]
    calls_per_sample: int = 1

    @property
    def median_ms(self) -> float:
        return _percentile(self.samples_ms, 50)

    @property
    def p90_ms(self) -> float:
        return _percentile(self.samples_ms, 90)


@dataclass(frozen=True)
class BenchResult:
    """One batch size: a Timing per runtime (keys of RUNTIMES that were run)."""

    batch_size: int
    threads: int
    timings: dict[str, Timing]
    flops_per_item: int  # 2 * torchinfo mult-adds for one item of the batch

    def speedup(self, runtime: str = "onnxruntime") -> float:
        """How many times faster than PyTorch eager (> 1: onnxruntime wins)."""
        return self.timings["torch"].median_ms / self.timings[runtime].median_ms

    def items_per_s(self, runtime: str) -> float:
        return self.batch_size * 1000.0 / self.timings[runtime].median_ms

    def gflops(self, runtime: str) -> float:
        return self.flops_per_item * self.items_per_s(runtime) / 1e9

    def to_dict(self) -> dict:
        runtimes = list(self.timings)
        data: dict[str, object] = {"batch_size": self.batch_size, "threads": self.threads}
        data.update({f"{r}_ms": round(self.timings[r].median_ms, 4) for r in runtimes})
        data["speedup"] = round(self.speedup(), 4)
        if "onnxruntime_optimized" in self.timings:
            data["speedup_optimized"] = round(self.speedup("onnxruntime_optimized"), 4)
        data["p90_ms"] = {r: round(self.timings[r].p90_ms, 4) for r in runtimes}
        data["items_per_s"] = {r: round(self.items_per_s(r), 2) for r in runtimes}
        data["gflops"] = {r: round(self.gflops(r), 3) for r in runtimes}
        data["calls_per_sample"] = {r: self.timings[r].calls_per_sample for r in runtimes}
        return data


@dataclass
class BenchReport:
    """PyTorch eager vs onnxruntime for one model; prints as two tables (latency, throughput)."""

    model: str
    runs: int
    warmup: int
    mult_adds_per_item: int
    results: list[BenchResult] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)  # as the onnxruntime session reports them
    graph_optimization_level: str = ""

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "results": [result.to_dict() for result in self.results],
            "runs": self.runs,
            "warmup": self.warmup,
            "mult_adds_per_item": self.mult_adds_per_item,
            "flops_per_mult_add": 2,
            "providers": list(self.providers),
            "graph_optimization_level": self.graph_optimization_level,
        }

    def header(self) -> str:
        threads = sorted({r.threads for r in self.results})
        return (
            f"{self.model}: PyTorch eager (inference_mode) vs onnxruntime "
            f"({', '.join(self.providers)}, {self.graph_optimization_level}), {'/'.join(map(str, threads))} threads, median of {self.runs} "
            f"runs after {self.warmup} warm-up (a run under {MIN_SAMPLE_S * 1000:g} ms repeats "
            f"the call to last that long); GFLOP/s = 2 x {self.mult_adds_per_item:,} "
            f"torchinfo mult-adds per item"
        )

    def tables(self) -> list[tuple[str, list[str], list[list[str]]]]:
        """(title, columns, rows) for each table, shared by the plain and the rich rendering."""
        runtimes = [r for r in RUNTIMES if self.results and r in self.results[0].timings]
        latency_cols = ["batch"] + [f"{TITLES[r]} ms (p90)" for r in runtimes]
        latency_cols += [f"speedup {GRAPHS[r]}" for r in runtimes[1:]]
        speed_cols = ["batch"] + [f"{TITLES[r]} items/s" for r in runtimes]
        speed_cols += [f"{TITLES[r]} GFLOP/s" for r in runtimes]
        latency, speed = [], []
        for res in self.results:
            latency.append(
                [str(res.batch_size)]
                + [
                    f"{_ms(res.timings[r].median_ms)} ({_ms(res.timings[r].p90_ms)})"
                    for r in runtimes
                ]
                + [f"{res.speedup(r):.2f}x" for r in runtimes[1:]]
            )
            speed.append(
                [str(res.batch_size)]
                + [f"{res.items_per_s(r):,.0f}" for r in runtimes]
                + [f"{res.gflops(r):.2f}" for r in runtimes]
            )
        return [("latency", latency_cols, latency), ("throughput", speed_cols, speed)]

    def __str__(self) -> str:
        lines = [self.header()]
        for title, columns, rows in self.tables():
            widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
            lines += ["", title]
            lines.append("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
            lines += [
                "  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in rows
            ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        speedups = ", ".join(
            f"batch {r.batch_size} {r.speedup():.2f}x"
            for r in self.results
            if "onnxruntime" in r.timings
        )
        return short_repr("BenchReport", f"{self.model}: onnxruntime vs PyTorch eager {speedups}")

    def _repr_html_(self) -> str:
        tables = [
            html.table(columns, rows, title=title, right=columns)
            for title, columns, rows in self.tables()
        ]
        return html.block(self.header(), *tables)

    def __rich__(self):
        from rich.console import Group
        from rich.table import Table

        parts: list = [self.header()]
        for title, columns, rows in self.tables():
            table = Table(title=title, title_justify="left")
            for column in columns:
                table.add_column(column, justify="right")
            for row in rows:
                table.add_row(*row)
            parts.append(table)
        return Group(*parts)


def _ms(value: float) -> str:
    """Three decimals, four under a millisecond: a call of a few microseconds keeps two digits."""
    return f"{value:.4f}" if value < 1 else f"{value:.3f}"


def default_threads() -> int:
    """The cores this process may run on (not the host's, inside a container or taskset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@inductor_cache_removed()  # torch._dynamo, imported on the way, makes torch's cache folder
def benchmark(
    model: str | LoadedModel,
    *,
    batch_sizes: Sequence[int] = defaults.BENCH_BATCH_SIZES,
    threads: int | None = None,
    runs: int = defaults.BENCH_RUNS,
    warmup: int = defaults.BENCH_WARMUP,
    onnx_files: dict[str, Path] | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> BenchReport:
    """Time a model in PyTorch eager and in onnxruntime at each batch size.

    Args:
        model: a MODEL spec string (`"exercise_model"`) or a LoadedModel (from `load_model`).
        batch_sizes: the batch sizes to time.
        threads: intra-op threads for both runtimes (default: the physical cores).
        runs: timed runs per runtime and batch size.
        warmup: untimed runs before them.
        onnx_files: "authored"/"optimized" -> an already exported file; by default both graphs
            are exported (through the export cache unless `use_cache` is False).
        use_cache: export through the export cache.
        progress: show a progress display on stderr.

    Returns:
        A BenchReport: median and p90 latency, throughput and GFLOP/s per runtime and batch size.
    """
    from .loading import as_loaded

    # Both runtimes on the CPU, on the same threads: a CUDA model is timed as a CPU copy.
    loaded = on_cpu(as_loaded(model, caller="benchmark"))
    threads = threads or default_threads()
    _check_arguments(batch_sizes, threads, runs, warmup)
    for batch_size in batch_sizes:  # refuse before anything big is allocated or exported
        _check_fits_memory(loaded, batch_size)
    with step(f"counting the mult-adds of {loaded.spec}"):
        mult_adds = _mult_adds_per_item(loaded)
    report = BenchReport(loaded.spec, runs, warmup, mult_adds)
    with ExitStack() as stack:
        files = onnx_files or {
            g: stack.enter_context(_exported(loaded, g, use_cache)) for g in GRAPHS.values()
        }
        # A file the caller gave is named by its path; our own export (a cache entry, whose
        # name is a hash) by what it is.
        sessions = {
            r: (files[g], str(files[g]) if onnx_files else f"{loaded.spec} ({g} export)")
            for r, g in GRAPHS.items()
            if g in files
        }
        total = len(batch_sizes) * (1 + len(sessions))
        bar = stack.enter_context(progress_bar(progress, total, "benchmarking"))
        for batch_size in batch_sizes:
            timings = _time_batch(loaded, sessions, batch_size, threads, runs, warmup, bar, report)
            report.results.append(BenchResult(batch_size, threads, timings, 2 * mult_adds))
    return report


def _check_arguments(batch_sizes, threads, runs, warmup) -> None:
    if not batch_sizes or any(int(b) < 1 for b in batch_sizes):
        raise InspectorError(f"batch sizes must be positive integers, not {list(batch_sizes)}")
    if threads < 1 or runs < 1 or warmup < 0:
        raise InspectorError("threads and runs must be >= 1 and warm-up runs >= 0")


def _time_batch(
    loaded: LoadedModel, sessions, batch_size, threads, runs, warmup, bar, report
) -> dict:
    inputs = loaded.example_inputs(batch_size=batch_size)
    with user_code(loaded.spec, "its forward"), _out_of_memory_is_user_error(loaded, batch_size):
        bar.describe(f"batch {batch_size}: timing PyTorch eager")
        timings = {"torch": _time_torch(loaded.module, inputs, threads, runs, warmup)}
        bar.advance()
        for runtime, (path, label) in sessions.items():
            bar.describe(f"batch {batch_size}: timing {TITLES[runtime]}")
            session = open_session(check_onnx_file(path), label, threads=threads)
            _describe_session(report, session)
            run = _bound_run(session, _feeds(session, inputs, batch_size, label))
            timings[runtime] = _time_calls(run, runs, warmup)
            del session, run  # its spinning thread pool must not compete with the next runtime
            bar.advance()
    return timings


def _describe_session(report: BenchReport, session) -> None:
    """What onnxruntime really ran with, read back from the session rather than assumed."""
    report.providers = list(session.get_providers())
    level = session.get_session_options().graph_optimization_level
    report.graph_optimization_level = getattr(level, "name", str(level))


def _time_calls(call, runs: int, warmup: int, clock=time.perf_counter) -> Timing:
    for _ in range(warmup):
        call()
    calls = _calls_per_sample(call, clock)
    samples = []
    for _ in range(runs):
        start = clock()
        for _ in range(calls):
            call()
        samples.append((clock() - start) * 1000.0 / calls)
    return Timing(tuple(samples), calls)


def _calls_per_sample(call, clock=time.perf_counter) -> int:
    """1 for a call that lasts MIN_SAMPLE_S or more; else enough back-to-back calls to last that."""
    start = clock()
    call()
    seconds = clock() - start
    if seconds >= MIN_SAMPLE_S:
        return 1
    return min(MAX_CALLS_PER_SAMPLE, math.ceil(MIN_SAMPLE_S / max(seconds, 1e-7)))


def _time_torch(module, inputs, threads: int, runs: int, warmup: int) -> Timing:
    import torch

    saved_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        with eval_mode(module), torch.inference_mode():
            return _time_calls(lambda: inputs.call(module), runs, warmup)
    finally:
        torch.set_num_threads(saved_threads)


def _feeds(session, inputs, batch_size: int, label: str) -> dict:
    declared = session.get_inputs()
    for arg in declared:
        fixed = arg.shape[0] if arg.shape else None
        if isinstance(fixed, int) and fixed != batch_size:
            raise InspectorError(
                f"{label}: input {arg.name!r} has a fixed batch size of {fixed}, "
                f"so batch {batch_size} cannot run; use "
                + option(f"--batch-sizes {fixed}", f"batch_sizes=[{fixed}]")
            )
    return paired_feeds(session, inputs.arrays(), label)


def _bound_run(session, feeds: dict):
    """A call that runs the session on inputs bound once, as `module(*inputs)` does in torch.

    `session.run` converts every input and output to numpy on each call, a few microseconds that
    outweigh a small model; IO binding leaves the output in onnxruntime's memory, as torch leaves
    its output in a tensor.
    """
    binding = session.io_binding()
    for name, array in feeds.items():
        binding.bind_cpu_input(name, array)
    for output in session.get_outputs():
        binding.bind_output(output.name)
    return lambda: session.run_with_iobinding(binding)


@contextmanager
def _exported(loaded: LoadedModel, graph: str, use_cache: bool):
    from .export.cache import exported_model
    from .export.exporter import make_export_options

    options = make_export_options(graph=graph)
    with exported_model(loaded, options=options, use_cache=use_cache) as path:
        yield Path(path)


def _mult_adds_per_item(loaded: LoadedModel) -> int:
    """torchinfo's mult-adds for a batch of one (its counts grow linearly with the batch)."""
    from .summary import summarize

    one = replace(loaded, inputs=loaded.resized_inputs(batch_size=1), given=None)
    return summarize(one, depth=1).mult_adds or 0  # None only without inputs, never here


# Memory ----------------------------------------------------------------------------------------


def _check_fits_memory(loaded: LoadedModel, batch_size: int) -> None:
    from .loading import check_inputs_fit_in_memory

    specs = loaded.resized_inputs(batch_size=batch_size)
    fix = "use smaller " + option("--batch-sizes", "batch_sizes")
    check_inputs_fit_in_memory(specs, loaded.spec, fix=fix)


@contextmanager
def _out_of_memory_is_user_error(loaded: LoadedModel, batch_size: int):
    try:
        yield
    except MemoryError as error:
        raise _no_memory(loaded, batch_size) from error
    except Exception as error:
        # torch: "DefaultCPUAllocator: not enough memory"; onnxruntime: "Failed to allocate memory"
        text = str(error).lower()
        if "not enough memory" in text or "allocate memory" in text or "bad_alloc" in text:
            raise _no_memory(loaded, batch_size) from error
        raise


def _no_memory(loaded: LoadedModel, batch_size: int) -> InspectorError:
    return InspectorError(
        f"{loaded.spec}: batch size {batch_size} does not fit in memory; use smaller "
        + option("--batch-sizes", "batch_sizes")
    )


def _percentile(samples, q: float) -> float:
    import numpy as np

    return float(np.percentile(samples, q))
