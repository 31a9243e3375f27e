"""ONNX files nobody here wrote: a slice of onnx's own backend-test corpus through `summary` and
`verify --data` (issue 29), written by benchmarks/onnx_corpus.py from the installed onnx package."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from inspector.cli import main
from inspector.errors import InspectorError
from inspector.onnx.runtime import open_session, ort_reason, run_session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import onnx_corpus  # noqa: E402

REFUSED = set(onnx_corpus.SLICE["onnxruntime refuses"])
SLICE = [name for group in onnx_corpus.SLICE.values() for name in group]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return onnx_corpus.materialize(tmp_path_factory.mktemp("corpus"))


def _verify(folder: Path, capsys, *extra) -> tuple[int, str, str]:
    code = main(["verify", str(folder / "model.onnx"), "--data", str(folder), *extra])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", SLICE)
def test_the_corpus_slice_gets_the_verdict_a_bare_onnxruntime_run_gives(corpus, capsys, name):
    if name not in corpus:
        pytest.skip(f"onnx {onnx.__version__} has no node test {name}")
    code, out, err = _verify(corpus[name], capsys, "--format", "json")
    if name in REFUSED or _bare_onnxruntime_refuses(corpus[name] / "model.onnx"):
        # an operator (or a file version) onnxruntime does not run: one line, no C++ source path
        assert code == 2 and out == ""
        assert err.startswith("inspector: error: onnxruntime") and err.count("\n") == 1
        assert "onnxruntime_src" not in err and ".h:" not in err
        return
    report = json.loads(out)
    assert code == 0 and report["passed"], err
    assert report["runs"][0]["outputs"], "nothing was compared"


def _case(corpus, name: str) -> Path:
    """The node test's folder, or a skip where this stack cannot have it: an older onnx lacks the
    test, or an older onnxruntime cannot load the file the installed onnx writes."""
    if name not in corpus:
        pytest.skip(f"onnx {onnx.__version__} has no node test {name}")
    if _bare_onnxruntime_refuses(corpus[name] / "model.onnx"):
        pytest.skip(f"onnxruntime cannot load onnx {onnx.__version__}'s {name}")
    return corpus[name]


def _bare_onnxruntime_refuses(path: Path) -> bool:
    """Whether onnxruntime alone cannot load the file (an older onnxruntime than the onnx that
    wrote it, say): then inspector must refuse it too."""
    import onnxruntime

    try:
        onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:
        return True
    return False


def _tampered(folder: Path, tmp_path: Path) -> Path:
    """A copy of the test folder whose first output has one element changed (a sequence: its
    last tensor's), so that a right onnxruntime no longer matches it."""
    copy = tmp_path / folder.name
    (copy / "test_data_set_0").mkdir(parents=True)
    (copy / "model.onnx").write_bytes((folder / "model.onnx").read_bytes())
    for pb in (folder / "test_data_set_0").iterdir():
        (copy / "test_data_set_0" / pb.name).write_bytes(pb.read_bytes())
    output = copy / "test_data_set_0" / "output_0.pb"
    sequence = onnx.SequenceProto()
    sequence.ParseFromString(output.read_bytes())
    if sequence.tensor_values:
        tensor = sequence.tensor_values[-1]
    else:
        tensor = onnx.TensorProto()
        tensor.ParseFromString(output.read_bytes())
    array = numpy_helper.to_array(tensor).copy()
    flat = array.reshape(-1)
    finite = np.flatnonzero(np.isfinite(flat.astype(np.float64)) & (flat.astype(np.float64) != 0))
    flat[finite[0]] = flat[finite[0]] * 2 if array.dtype.kind != "i" else flat[finite[0]] + 1
    tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
    output.write_bytes((sequence if sequence.tensor_values else tensor).SerializeToString())
    return copy


@pytest.mark.parametrize(
    ("name", "failing"),
    [
        ("test_cast_FLOAT_to_FLOAT8E4M3FN", "output"),
        ("test_cast_FLOAT_to_BFLOAT16", "output"),
        ("test_sequence_insert_at_back", "output_sequence[3]"),
        ("test_split_to_sequence_1", "seq[2]"),
    ],
)
def test_a_changed_element_fails_low_precision_and_sequence_outputs(
    corpus, capsys, tmp_path, name, failing
):
    code, out, _ = _verify(_tampered(_case(corpus, name), tmp_path), capsys, "--format", "json")
    report = json.loads(out)
    assert code == 1 and not report["passed"]
    bad = [o["name"] for r in report["runs"] for o in r["outputs"] if o["mismatched"]]
    assert bad == [failing]


def test_a_model_without_inputs_needs_no_input_file(corpus, capsys):
    folder = _case(corpus, "test_constant")
    assert not list(folder.glob("test_data_set_0/input_*.pb"))
    code, out, _ = _verify(folder, capsys)
    assert code == 0 and out.startswith("PASSED")


def test_a_shape_inference_disagreement_is_a_warning_not_a_refusal(corpus, capsys):
    code, out, _ = _verify(_case(corpus, "test_mvn"), capsys, "--format", "json")
    assert code == 0
    assert any("shape inference" in warning for warning in json.loads(out)["warnings"])


def test_an_external_tensor_inside_a_sequence_is_never_read(corpus, tmp_path, capsys):
    folder = _case(corpus, "test_sequence_insert_at_back")
    copy = tmp_path / "hostile"
    (copy / "test_data_set_0").mkdir(parents=True)
    (copy / "model.onnx").write_bytes((folder / "model.onnx").read_bytes())
    for pb in (folder / "test_data_set_0").iterdir():
        (copy / "test_data_set_0" / pb.name).write_bytes(pb.read_bytes())
    sequence = onnx.SequenceProto()
    path = copy / "test_data_set_0" / "input_0.pb"
    sequence.ParseFromString(path.read_bytes())
    tensor = sequence.tensor_values[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("int64_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="../../../etc/passwd")
    path.write_bytes(sequence.SerializeToString())
    code, out, err = _verify(copy, capsys)
    assert code == 2 and out == ""
    assert "keeps its values in an external file (../../../etc/passwd)" in err


def test_summary_names_sequence_and_optional_types_with_element_shapes(corpus, capsys):
    assert (
        main(
            ["summary", str(_case(corpus, "test_identity_opt") / "model.onnx"), "--format", "json"]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["inputs"] == [
        {"name": "opt_in", "shape": [5], "dtype": "optional(seq(tensor(float)))"}
    ]
    assert main(["summary", str(_case(corpus, "test_sequence_insert_at_back") / "model.onnx")]) == 0
    text = capsys.readouterr().out
    assert "seq(tensor(int64))" in text and "?  scalar" not in text


# The first opset whose Transpose takes each type: older onnxruntime releases read these.
_TRANSPOSE_OPSET = {
    TensorProto.BFLOAT16: 13,
    TensorProto.FLOAT8E4M3FN: 21,
    TensorProto.FLOAT8E5M2: 21,
    TensorProto.INT4: 21,
    TensorProto.UINT4: 21,
}


def _transpose(element_type: int, shape) -> bytes:
    """y = x transposed: onnxruntime implements Transpose for every type, packed ones too."""
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["y"])],
        "transpose",
        [helper.make_tensor_value_info("x", element_type, shape)],
        [helper.make_tensor_value_info("y", element_type, shape[::-1])],
    )
    opsets = [helper.make_opsetid("", _TRANSPOSE_OPSET.get(element_type, 25))]
    ir_version = helper.find_min_ir_version_for(opsets, ignore_unknown=True)
    return helper.make_model(graph, opset_imports=opsets, ir_version=ir_version).SerializeToString()


def _session_or_skip(model: bytes):
    """The session, or a skip where the installed onnxruntime predates the type's opset."""
    import onnxruntime

    try:
        return open_session(model, "transpose")
    except InspectorError as error:
        pytest.skip(f"onnxruntime {onnxruntime.__version__} cannot run it: {error}")


@pytest.mark.parametrize(
    "dtype",
    [
        ml_dtypes.bfloat16,
        ml_dtypes.float8_e4m3fn,
        ml_dtypes.float8_e5m2,
        ml_dtypes.int4,
        ml_dtypes.uint4,
        ml_dtypes.int2,
        ml_dtypes.uint2,
    ],
)
def test_run_session_feeds_and_fetches_types_numpy_cannot_hold(dtype):
    """Odd element counts too: 4- and 2-bit values are packed, and the last byte half full."""
    info = ml_dtypes.finfo(dtype) if np.dtype(dtype).kind == "f" or "float" in str(dtype) else None
    rng = np.random.default_rng(29)
    if info is None:
        low, high = int(ml_dtypes.iinfo(dtype).min), int(ml_dtypes.iinfo(dtype).max)
        values = rng.integers(low, high + 1, size=(3, 7)).astype(dtype)
    else:
        values = (rng.standard_normal((3, 7)) * 4).astype(dtype)
    element_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    session = _session_or_skip(_transpose(element_type, [3, 7]))
    (result,) = run_session(session, {"x": values}, "transpose")
    assert result.dtype == values.dtype and result.shape == (7, 3)
    assert np.array_equal(result.astype(np.float64), values.T.astype(np.float64))


def test_a_type_onnxruntime_cannot_hold_is_one_line_naming_the_input(monkeypatch):
    import onnxruntime

    session = _session_or_skip(_transpose(TensorProto.INT4, [5]))

    def refuse(*_):
        raise RuntimeError("unsupported element type")

    monkeypatch.setattr(onnxruntime.OrtValue, "ortvalue_from_numpy_with_onnx_type", refuse)
    values = np.arange(-2, 3).astype(ml_dtypes.int4)
    with pytest.raises(
        InspectorError,
        match=r"input 'x' of identity is int4: onnxruntime .* cannot hold it \(unsupported element type\)",
    ):
        run_session(session, {"x": values}, "identity")


def test_onnxruntime_messages_lose_their_cpp_source_location():
    message = (
        "[ONNXRuntimeError] : 1 : FAIL : Exception during initialization: "
        "/onnxruntime_src/onnxruntime/core/providers/cpu/rnn/rnn.h:48 "
        "onnxruntime::RNN<T>::RNN(const onnxruntime::OpKernelInfo&) [with T = float] "
        "layout_ == 0 was false. Batchwise recurrent operations (layout == 1) are not supported."
    )
    assert ort_reason(RuntimeError(message)) == (
        "FAIL : Exception during initialization: "
        "Batchwise recurrent operations (layout == 1) are not supported."
    )
    plain = "[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find an implementation for Foo(1)"
    assert (
        ort_reason(RuntimeError(plain))
        == "NOT_IMPLEMENTED : Could not find an implementation for Foo(1)"
    )
