"""--localize a chunk of modules at a time (localize.CHUNK_BYTES) gives what one chunk gives: the
verdict, every module's error, the root cause and its repro; and the weightless model it runs
holds the file's graph with its weights left in the file."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from _verify_helpers import TINY_SHAPE, TINY_SPEC, export, nudge, tamper
from onnx.external_data_helper import load_external_data_for_model

import inspector
from inspector.loading import load_model
from inspector.onnx.weightless import INLINE_BYTES, load_weightless
from inspector.verification import localize


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """TinyNet exported, then its block.0 weight changed: the root cause is block.0."""
    loaded = load_model(TINY_SPEC, input_shapes=[tuple(map(int, TINY_SHAPE.split(",")))])
    folder = tmp_path_factory.mktemp("chunks")
    path = export(loaded, folder / "tiny.onnx")
    return loaded, path, tamper(path, folder / "tampered.onnx", "block.0.weight", nudge)


def _localized(loaded, path, repro, chunk_bytes: int, monkeypatch, **checks):
    """verify --localize with `chunk_bytes` per chunk, and the onnxruntime sessions it opened."""
    opened = []
    real = localize._session_with_outputs

    def counted(model, values, label, folder):
        opened.append(list(values))
        return real(model, values, label, folder)

    with monkeypatch.context() as patch:
        patch.setattr(localize, "_session_with_outputs", counted)
        patch.setattr(localize, "CHUNK_BYTES", chunk_bytes)
        report = inspector.verify(loaded, onnx=path, seeds=1, localize=True, repro=repro, **checks)
    return report, opened


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "checks", [{}, {"budget": {"cosine": 0.999999}}], ids=["by tolerance", "by a budget"]
)
def test_chunks_give_what_one_run_gives(tiny, tmp_path, monkeypatch, checks):
    loaded, _, bad = tiny
    args = (loaded, bad)
    whole, one = _localized(*args, tmp_path / "whole", localize.CHUNK_BYTES, monkeypatch, **checks)
    chunked, many = _localized(*args, tmp_path / "chunked", 1, monkeypatch, **checks)
    assert len(one) == 1
    # One module a chunk: as many runs as modules compared, none asking for all their values.
    assert len(many) >= whole.intermediates.compared > 5
    assert max(map(len, many)) < len(one[0])
    assert not whole.passed and not chunked.passed
    assert whole.first_divergence.layer == "block.0"
    assert _alike(chunked.intermediates.to_dict(), whole.intermediates.to_dict())
    assert _alike(chunked.intermediates.errors, whole.intermediates.errors)
    assert chunked.intermediates.node_modules == whole.intermediates.node_modules
    assert _files(tmp_path / "chunked") == _files(tmp_path / "whole")


def _alike(got, expected) -> bool:
    """Equal, floats to rounding: onnxruntime fuses nodes whose values are not asked for (a Conv
    and its ReLU), so a value comes out a few ulps apart from a run that asks for other values."""
    if isinstance(expected, dict):
        return got.keys() == expected.keys() and all(_alike(got[k], expected[k]) for k in got)
    if isinstance(expected, list):
        return len(got) == len(expected) and all(map(_alike, got, expected))
    if isinstance(expected, float):
        return got == pytest.approx(expected, rel=1e-4, abs=1e-6)
    return got == expected


def test_a_file_with_external_data_is_localized_alike(tiny, tmp_path, monkeypatch):
    loaded, _, bad = tiny
    external = tmp_path / "external.onnx"  # as torch.onnx saves a file past 2 GiB
    onnx.save(onnx.load(str(bad)), str(external), save_as_external_data=True)
    inline, _ = _localized(loaded, bad, None, 1, monkeypatch)
    report, _ = _localized(loaded, external, tmp_path / "repro", 1, monkeypatch)
    assert _alike(report.intermediates.to_dict(), inline.intermediates.to_dict())
    assert (tmp_path / "repro" / "model.onnx").is_file()


def _normalized(model):
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.DEFAULT:
            tensor.ClearField("data_location")
    return model


def test_the_weightless_model_points_into_the_file(tiny):
    _, path, _ = tiny
    model = load_weightless(path)
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert external and all(not t.raw_data for t in external)
    assert all({e.key: e.value for e in t.external_data}["location"] == path.name for t in external)
    inline = [t for t in model.graph.initializer if t not in external]
    assert all(len(t.raw_data) < INLINE_BYTES for t in inline)
    left_out = sum(int({e.key: e.value for e in t.external_data}["length"]) for t in external)
    assert model.ByteSize() < path.stat().st_size - left_out + 100 * len(external)
    load_external_data_for_model(model, str(path.parent))
    assert _normalized(model) == onnx.load(str(path))


def test_the_weightless_model_reads_an_external_data_file_alike(tiny, tmp_path):
    _, path, _ = tiny
    saved = tmp_path / "external.onnx"
    onnx.save(onnx.load(str(path)), str(saved), save_as_external_data=True, size_threshold=0)
    model = load_weightless(saved)
    small = [t for t in model.graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL]
    assert small  # read into the graph: onnxruntime's shape inference needs their values
    load_external_data_for_model(model, str(tmp_path))
    expected = onnx.load(str(path))
    assert [
        np.asarray(onnx.numpy_helper.to_array(t)).tolist() for t in model.graph.initializer
    ] == [np.asarray(onnx.numpy_helper.to_array(t)).tolist() for t in expected.graph.initializer]
