"""inspector bench: report keys and sane values, threads restored, memory refusal (never timings)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from inspector import bench
from inspector.bench import BenchReport, benchmark
from inspector.loading import load_model
from tests._bench_helpers import fake_exported, torchscript_export


@pytest.fixture
def quick_exports(monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "_exported", fake_exported(tmp_path))


def _check_result(result: dict, batch_size: int, threads: int) -> None:
    assert result["batch_size"] == batch_size
    assert result["threads"] == threads
    for key in ("torch_ms", "onnxruntime_ms", "onnxruntime_optimized_ms"):
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert result["speedup"] == pytest.approx(
        result["torch_ms"] / result["onnxruntime_ms"], rel=1e-3
    )
    assert result["speedup_optimized"] == pytest.approx(
        result["torch_ms"] / result["onnxruntime_optimized_ms"], rel=1e-3
    )
    for runtime in ("torch", "onnxruntime", "onnxruntime_optimized"):
        assert result["p90_ms"][runtime] >= result[f"{runtime}_ms"] * (1 - 1e-6)
        assert result["items_per_s"][runtime] == pytest.approx(
            batch_size * 1000 / result[f"{runtime}_ms"], rel=1e-3
        )


def test_cli_json_has_the_design_keys_and_sane_values(cli, quick_exports):
    result = cli(
        "bench",
        "conv_bn_relu",
        "--batch-sizes",
        "1,3",
        "--threads",
        "1",
        "--runs",
        "3",
        "--warmup",
        "1",
        "--format",
        "json",
    )
    assert result.code == 0, result.err
    data = result.json()
    assert data["model"] == "conv_bn_relu"
    assert [r["batch_size"] for r in data["results"]] == [1, 3]
    for res, batch in zip(data["results"], (1, 3), strict=True):
        _check_result(res, batch, threads=1)
    # Conv2d(3, 64, 3) on 128x128: 64*3*3*3 mult-adds per output pixel, as PyTorch's FLOP
    # counter counts them (a bias add and a BatchNorm are no mult-adds).
    assert data["mult_adds_per_item"] == 64 * 27 * 128 * 128
    flops = 2 * data["mult_adds_per_item"] * data["results"][1]["items_per_s"]["torch"] / 1e9
    assert data["results"][1]["gflops"]["torch"] == pytest.approx(flops, rel=1e-3)


def test_text_output_names_every_runtime(cli, quick_exports):
    result = cli("bench", "relu", "--batch-sizes", "2", "--runs", "2", "--warmup", "1")
    assert result.code == 0, result.err
    for word in ("relu", "torch eager", "ort authored", "ort optimized", "speedup", "GFLOP/s"):
        assert word in result.out
    assert "\x1b[" not in result.out  # not a terminal: plain text


def test_threads_are_restored_and_the_model_stays_in_its_mode(tmp_path):
    loaded = load_model("conv_bn_relu")
    files = {"authored": torchscript_export(loaded, tmp_path / "a.onnx")}
    loaded.module.train()  # a module given in training mode is timed in eval and given back as is
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    report = benchmark(loaded, batch_sizes=[2], threads=wanted, runs=2, warmup=1, onnx_files=files)
    assert torch.get_num_threads() == before
    assert all(m.training for m in loaded.module.modules())
    assert report.results[0].threads == wanted
    assert set(report.results[0].timings) == {"torch", "onnxruntime"}


def test_same_inputs_for_both_runtimes(tmp_path, monkeypatch):
    """Both runtimes see the model's seeded example inputs, not ones or zeros."""
    loaded = load_model("linear")
    files = {"authored": torchscript_export(loaded, tmp_path / "lin.onnx")}
    seen = {}
    real_feeds = bench._feeds

    def spy(session, inputs, batch_size, path):
        seen["torch"] = inputs.args[0].clone()
        feeds = real_feeds(session, inputs, batch_size, path)
        seen["ort"] = next(iter(feeds.values())).copy()
        return feeds

    monkeypatch.setattr(bench, "_feeds", spy)
    benchmark(loaded, batch_sizes=[4], threads=1, runs=1, warmup=1, onnx_files=files)
    expected = loaded.example_inputs(batch_size=4).args[0]
    assert torch.equal(seen["torch"], expected)
    assert (seen["ort"] == expected.numpy()).all()
    assert expected.std() > 0.5


def test_a_batch_that_cannot_fit_memory_is_a_user_error(cli, monkeypatch):
    def no_export(*args, **kwargs):
        raise AssertionError("the refusal must come before any export")

    monkeypatch.setattr(bench, "_exported", no_export)
    result = cli("bench", "linear", "--batch-sizes", "1,1000000000000")
    assert result.code == 2
    assert result.err.startswith("inspector: error: linear: input shape 1000000000000x1280 needs")
    assert len(result.err.strip().splitlines()) == 1


def test_running_out_of_memory_mid_run_is_a_user_error(cli, quick_exports, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough "
            "memory: you tried to allocate 1099511627776 bytes."
        )

    monkeypatch.setattr(bench, "_time_torch", out_of_memory)
    result = cli("bench", "relu", "--batch-sizes", "2", "--runs", "1")
    assert result.code == 2
    assert "batch size 2 does not fit in memory; use smaller --batch-sizes" in result.err
    with pytest.raises(bench.InspectorError, match="fit in memory; use smaller batch_sizes$"):
        benchmark("relu", batch_sizes=[2], runs=1, warmup=1)


def test_a_fixed_batch_export_names_the_batch_it_can_run(tmp_path):
    import warnings

    loaded = load_model("relu")
    path = tmp_path / "fixed.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(loaded.module, loaded.example_inputs().args, str(path), dynamo=False)
    with pytest.raises(bench.InspectorError, match=r"fixed batch size of 1.*batch_sizes=\[1\]$"):
        benchmark(loaded, batch_sizes=[3], runs=1, warmup=1, onnx_files={"authored": path})


def test_its_own_export_is_named_by_what_it_is_not_its_cache_file(tmp_path, monkeypatch):
    """An export bench made itself (a cache entry, named by a hash) is named `MODEL (GRAPH export)`
    in a message; a file the caller gave is named by its path, as above."""
    import warnings
    from contextlib import contextmanager

    loaded = load_model("relu")
    hashed = tmp_path / f"{'3f' * 32}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(loaded.module, loaded.example_inputs().args, str(hashed), dynamo=False)

    @contextmanager
    def cached(loaded, graph, use_cache):
        yield hashed

    monkeypatch.setattr(bench, "_exported", cached)
    with pytest.raises(bench.InspectorError) as refused:
        benchmark(loaded, batch_sizes=[3], runs=1, warmup=1)
    assert str(refused.value).startswith("relu (authored export): input")
    assert hashed.name not in str(refused.value)


def test_python_api_takes_a_spec_and_a_module_needs_its_inputs(tmp_path, monkeypatch):
    import inspector

    monkeypatch.setattr(bench, "_exported", fake_exported(tmp_path))
    report = inspector.benchmark("relu", batch_sizes=[2], runs=1, warmup=1)
    assert isinstance(report, inspector.BenchReport) and report.model == "relu"
    with pytest.raises(inspector.InspectorError, match="no example input is known"):
        inspector.benchmark(torch.nn.ReLU())  # read as load_model reads it: inputs needed


def test_report_prints_and_serializes_without_running_anything():
    timing = bench.Timing((2.0, 4.0, 3.0))
    result = bench.BenchResult(8, 2, {"torch": bench.Timing((6.0,)), "onnxruntime": timing}, 10)
    report = BenchReport("m", runs=3, warmup=1, mult_adds_per_item=5, results=[result])
    assert timing.median_ms == 3.0 and 3.0 < timing.p90_ms <= 4.0
    data = json.loads(json.dumps(report.to_dict()))
    assert data["results"][0]["speedup"] == 2.0
    assert data["results"][0]["items_per_s"]["onnxruntime"] == pytest.approx(8000 / 3, rel=1e-4)
    text = str(report)
    assert "2.00x" in text and "3.000" in text and "m:" in text
    assert data["results"][0]["calls_per_sample"] == {"torch": 1, "onnxruntime": 1}


@pytest.mark.slow
def test_real_exports_of_both_graphs_through_the_cache(cli, tmp_path, monkeypatch):
    """The one test that pays for the dynamo exporter: bench uses inspector's own exports."""
    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(tmp_path / "cache"))
    result = cli(
        "bench",
        "conv_bn_relu",
        "--batch-sizes",
        "2",
        "--runs",
        "2",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--format",
        "json",
    )
    assert result.code == 0, result.err
    _check_result(result.json()["results"][0], batch_size=2, threads=1)
    assert len(list((tmp_path / "cache").glob("*.onnx"))) == 2  # authored and optimized


class FakeClock:
    """A clock that moves only when the timed call runs: timing that a busy machine cannot
    disturb (a real microsecond call can take milliseconds when the process is descheduled)."""

    def __init__(self):
        self.now, self.calls = 0.0, 0

    def __call__(self) -> float:
        return self.now

    def call_taking(self, seconds: float):
        def call():
            self.calls += 1
            self.now += seconds

        return call


def test_a_call_of_microseconds_is_repeated_within_each_sample():
    clock = FakeClock()
    fast = bench._time_calls(clock.call_taking(10e-6), runs=4, warmup=2, clock=clock)
    assert fast.calls_per_sample == 100  # 1 ms / 10 us
    assert clock.calls == 2 + 1 + 4 * 100  # warm-up, calibration, samples
    assert fast.samples_ms == pytest.approx((0.01,) * 4)  # the mean of a call, in ms


def test_a_call_of_milliseconds_is_timed_alone_and_the_repeats_are_capped():
    clock = FakeClock()
    slow = bench._time_calls(clock.call_taking(2e-3), runs=2, warmup=0, clock=clock)
    assert slow.calls_per_sample == 1 and slow.samples_ms == pytest.approx((2.0, 2.0))
    instant = bench._time_calls(clock.call_taking(0.0), runs=1, warmup=0, clock=clock)
    assert instant.calls_per_sample == bench.MAX_CALLS_PER_SAMPLE


def test_the_real_clock_times_a_real_call():
    import time

    timing = bench._time_calls(lambda: time.sleep(0.002), runs=2, warmup=0)
    assert timing.calls_per_sample == 1 and min(timing.samples_ms) >= 2.0  # sleep never less


def test_warmup_takes_zero_as_python_does_and_refuses_a_negative(cli, quick_exports):
    result = cli("bench", "relu", "--batch-sizes", "2", "--runs", "1", "--warmup", "0")
    assert result.code == 0, result.err
    assert "1 runs after 0 warm-up" in result.out
    refused = cli("bench", "relu", "--warmup", "-1")
    assert refused.code == 2 and "'-1' must be 0 or more" in refused.err
    with pytest.raises(bench.InspectorError, match="warm-up runs >= 0"):
        benchmark("relu", batch_sizes=[2], runs=1, warmup=-1)
