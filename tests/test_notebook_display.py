"""In a notebook: every result is a one-line repr and an HTML table with its names escaped; drawings
show inline; render works where an asyncio loop runs (a Jupyter kernel)."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from _netron_helpers import require_browser
from onnx import TensorProto, helper, numpy_helper

import inspector
from inspector.bench import BenchReport, BenchResult, Timing
from inspector.checkall import CheckAllReport, ModelCheck
from inspector.drawing import Drawing
from inspector.errors import InspectorError
from inspector.export import ExportResult
from inspector.netron import render as render_module
from inspector.onnx.compare import compare_outputs
from inspector.onnx.diff import diff_models
from inspector.onnx.report import Run, VerifyReport

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _assert_short_repr(result, kind: str, *words: str) -> None:
    text = repr(result)
    assert text.startswith(f"<{kind} ") and text.endswith(">"), text
    assert "\n" not in text and len(text) <= 200, text
    for word in words:
        assert word in text, (word, text)


def _assert_escaped_table(result) -> str:
    page = result._repr_html_()
    assert "<table>" in page and "<td" in page
    assert "<script>" not in page and ESCAPED in page
    return page


def _verify_report() -> VerifyReport:
    rng = np.random.default_rng(4)
    expected = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(2)]
    actual = [expected[0] + 1e-6, expected[1] + 1.0]  # the second output is wrong
    diffs, notes = compare_outputs(["logits", EVIL], expected, actual)
    return VerifyReport("exercise_model", "model.onnx", 1e-4, 1e-3, [Run(0, 2, diffs, notes=notes)])


def test_a_verify_report_is_one_line_and_a_table():
    report = _verify_report()
    _assert_short_repr(report, "VerifyReport", "FAILED exercise_model", "2 outputs", "1 run")
    page = _assert_escaped_table(report)
    assert "FAILED" in page and "logits" in page


def test_a_summary_is_one_line_and_a_table_of_its_layers():
    module = torch.nn.Sequential(
        OrderedDict([(EVIL, torch.nn.Linear(4, 3)), ("act", torch.nn.ReLU())])
    )
    loaded = inspector.load_model(
        module, inputs=[torch.randn(2, 4, generator=torch.Generator().manual_seed(1))]
    )
    summary = inspector.summarize(loaded)
    _assert_short_repr(summary, "Summary", "Sequential", "15 params")
    page = _assert_escaped_table(summary)
    assert "Linear" in page and "ReLU" in page


def test_an_export_result_is_one_line_and_a_table():
    result = ExportResult(
        Path("m.onnx"), "authored", "dynamo", 18, 0.25, [EVIL], ["y"], True, {"Relu": 2}
    )
    _assert_short_repr(result, "ExportResult", "m.onnx", "opset 18", "2 nodes")
    assert "Relu" in _assert_escaped_table(result)


def _model(weight: np.ndarray) -> onnx.ModelProto:
    node = helper.make_node("Add", ["x", EVIL], ["y"], name="add")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(weight, EVIL)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_a_model_diff_is_one_line_not_a_dataclass_dump():
    rng = np.random.default_rng(5)
    weight = rng.standard_normal((2, 3)).astype(np.float32)
    result = diff_models(_model(weight), _model(weight + 1.0), run=False)
    _assert_short_repr(result, "ModelDiff", "DIFFERENT")
    assert "initializers that differ" in _assert_escaped_table(result)


def test_an_onnx_summary_is_one_line_and_a_table(tmp_path):
    node = helper.make_node("Relu", [EVIL], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(EVIL, TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    summary = inspector.summarize_onnx(path)
    _assert_short_repr(summary, "OnnxSummary", "m.onnx", "opset 18", "1 node", "0 params")
    assert "Relu" in _assert_escaped_table(summary)


def test_a_bench_report_is_one_line_and_its_two_tables():
    timings = {"torch": Timing((2.0, 2.2, 2.4)), "onnxruntime": Timing((1.0, 1.1, 1.2))}
    report = BenchReport(EVIL, 3, 1, 10, [BenchResult(4, 2, timings, 20)], ["CPUExecutionProvider"])
    _assert_short_repr(report, "BenchReport", "batch 4 2.00x")
    page = _assert_escaped_table(report)
    assert "latency" in page and "throughput" in page


def test_a_check_all_report_is_one_line_and_a_table():
    report = CheckAllReport(
        [
            ModelCheck(EVIL, 10, 0.5, 1e-7, True),
            ModelCheck("broken", None, None, None, False, "boom"),
        ]
    )
    _assert_short_repr(report, "CheckAllReport", "FAILED 2 models, 1 failed")
    page = _assert_escaped_table(report)
    assert "broken: boom" in page and "ERROR" in page


def test_a_drawing_shows_as_svg_or_png_and_saves(tmp_path):
    svg = Drawing("m.onnx", "svg", b'<svg width="3" height="4"/>', 3, 4, 1)
    png = Drawing("m.onnx", "png", b"\x89PNG\r\n\x1a\nrest", 6, 8, 1)
    assert svg._repr_svg_() == '<svg width="3" height="4"/>' and svg._repr_png_() is None
    assert png._repr_png_() == b"\x89PNG\r\n\x1a\nrest" and png._repr_svg_() is None
    assert png.save(tmp_path / "m.png").read_bytes() == png.data
    _assert_short_repr(svg, "Drawing", "m.onnx", "1 nodes")


def test_show_refuses_an_unknown_format_before_anything_runs():
    with pytest.raises(InspectorError, match="choose svg or png"):
        inspector.show("relu", format="jpeg")


def test_the_api_keeps_its_functions_after_first_use():
    first = inspector.diff
    assert inspector.diff is first and callable(inspector.diff)  # not the inspector.diff module
    assert callable(inspector.show) and inspector.show is inspector.show


def test_render_draws_in_a_thread_of_its_own_inside_an_asyncio_loop(monkeypatch):
    threads = []

    def draw_here(*args):
        threads.append(threading.current_thread())
        return b"image", 1

    monkeypatch.setattr(render_module, "_draw_here", draw_here)
    render_module._draw("chromium", "http://127.0.0.1:1/", ".svg", 1.0, None)

    async def in_a_kernel():
        return render_module._draw("chromium", "http://127.0.0.1:1/", ".svg", 1.0, None)

    assert asyncio.run(in_a_kernel()) == (b"image", 1)
    assert threads[0] is threading.main_thread() and threads[1] is not threading.main_thread()


@pytest.mark.browser
def test_show_draws_inline_inside_an_asyncio_loop():
    require_browser()

    async def in_a_kernel():
        return inspector.show("exercise_model", depth=1, format="png")

    drawing = asyncio.run(in_a_kernel())
    assert drawing._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n" and drawing.nodes > 1
    assert drawing.name == "exercise_model.depth1.onnx"
