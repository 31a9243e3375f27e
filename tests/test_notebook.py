"""A real notebook run by a real Jupyter kernel (nbclient, ipykernel): results show as HTML tables,
drawings inline, and render works inside the kernel's asyncio loop.

The kernel is this venv's Python, from a kernelspec written into a temporary JUPYTER_PATH, so the
test needs no kernel installed on the machine (CI's fresh .venv has none)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from _netron_helpers import require_browser

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

KERNEL = "inspector-test-venv"


@pytest.fixture
def kernel(tmp_path, monkeypatch) -> str:
    """A kernelspec for this interpreter, found through JUPYTER_PATH only."""
    folder = tmp_path / "jupyter" / "kernels" / KERNEL
    folder.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "inspector tests",
        "language": "python",
    }
    (folder / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def _execute(cells: list[str], folder: Path, kernel: str) -> list[dict]:
    """Run the cells in order in a fresh kernel; each cell's display outputs' data (mime -> value)."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = nbclient.NotebookClient(
        notebook, kernel_name=kernel, timeout=600, resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    return [
        {
            mime: value
            for output in cell.outputs
            if output.output_type in ("execute_result", "display_data")
            for mime, value in output.data.items()
        }
        for cell in notebook.cells
    ]


@pytest.mark.subprocess
def test_results_show_as_html_tables_in_a_kernel(tmp_path, kernel):
    outputs = _execute(
        [
            "import inspector\nloaded = inspector.load_model('exercise_model')",
            "inspector.summarize(loaded)",
            "inspector.export_onnx(loaded, 'exercise_model.onnx')",
            "inspector.verify(loaded)",
        ],
        tmp_path,
        kernel,
    )
    summary, exported, verified = outputs[1:]
    assert "<table>" in summary["text/html"] and "Conv2d" in summary["text/html"]
    assert summary["text/plain"].startswith("<Summary exercise_model: ")
    assert "exercise_model.onnx" in exported["text/html"] and "Conv" in exported["text/html"]
    assert "PASSED" in verified["text/html"] and "<table>" in verified["text/html"]
    assert verified["text/plain"].startswith("<VerifyReport PASSED exercise_model: ")


@pytest.mark.subprocess
@pytest.mark.browser
def test_render_and_show_draw_inline_in_a_kernel(tmp_path, kernel):
    require_browser()
    outputs = _execute(
        [
            "import inspector\nloaded = inspector.load_model('exercise_model')",
            "inspector.export_onnx(loaded, 'exercise_model.onnx')",
            "inspector.render('exercise_model.onnx', 'exercise_model.png')",
            "inspector.show('exercise_model', depth=1)",
            "inspector.show('exercise_model.onnx', format='png')",
        ],
        tmp_path,
        kernel,
    )
    rendered, shown, shown_png = outputs[2:]
    assert rendered["image/png"] and (tmp_path / "exercise_model.png").is_file()
    assert shown["image/svg+xml"].startswith("<svg") and 'class="node' in shown["image/svg+xml"]
    assert shown["text/plain"].startswith("<Drawing exercise_model.depth1.onnx: ")
    assert shown_png["image/png"] and "image/svg+xml" not in shown_png
