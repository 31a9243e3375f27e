"""Models nobody here wrote: transformers' BERT, GPT-2 and ViT (tiny configs, random weights), and
forwards with keyword inputs, structured outputs and dynamic sequence lengths, through summary,
export, verify, golden data and the Python API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import inspector
from inspector.loading import load_model

pytest.importorskip("transformers")
pytestmark = pytest.mark.slow  # transformers' import and each export take seconds

HERE = Path(__file__).resolve().parent
ANY = HERE / "_any_models.py"
sys.path.insert(0, str(HERE))
from _any_models import (  # noqa: E402
    BERT_INPUTS,
    SEQUENCE_DIMS,
    VOCAB,
    tiny_bert,
    tiny_gpt2,
)

BERT = f"{ANY}:tiny_bert"
GPT2 = f"{ANY}:tiny_gpt2"
VIT = f"{ANY}:tiny_vit"


def _inputs(*specs: str) -> list[str]:
    return [arg for spec in specs for arg in ("--input", spec)]


def _dims(*dims: str) -> list[str]:
    return [arg for dim in dims for arg in ("--dynamic-dim", dim)]


@pytest.fixture(scope="module")
def bert_file(tmp_path_factory):
    """BERT exported once with a dynamic sequence: the file the tests below look at."""
    from inspector.export import export_onnx

    loaded = load_model(BERT, inputs=BERT_INPUTS)
    path = tmp_path_factory.mktemp("bert") / "bert.onnx"
    result = export_onnx(loaded, path, dynamic_dims=SEQUENCE_DIMS)
    return loaded, result


def test_bert_exports_with_its_names_dtypes_and_a_dynamic_sequence(bert_file):
    loaded, result = bert_file
    assert result.input_names == ["input_ids", "attention_mask"]
    assert result.output_names == ["last_hidden_state", "pooler_output"]
    assert result.dynamic_axes == ["batch", "sequence"]
    graph = onnx.load(str(result.path)).graph
    for value in graph.input:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.INT64
        dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        assert dims == ["batch", "sequence"]
    hidden = graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in hidden] == ["batch", "sequence", 32]


def test_bert_verifies_over_batches_and_sequence_lengths(bert_file):
    loaded, result = bert_file
    report = inspector.verify(loaded, onnx=result.path, seeds=1)
    assert report, report
    sizes = [(run.batch_size, run.sizes["sequence"]) for run in report.runs]
    assert sizes == [(1, 8), (3, 19)]  # neither is the traced 2x16
    names = {diff.name for run in report.runs for diff in run.outputs}
    assert names == {"last_hidden_state", "pooler_output"}


def test_a_wrong_weight_in_bert_fails_verify(bert_file, tmp_path):
    from onnx import numpy_helper

    loaded, result = bert_file
    model = onnx.load(str(result.path))
    [embedding] = [i for i in model.graph.initializer if "word_embeddings" in i.name]
    weights = numpy_helper.to_array(embedding).copy()
    weights[:, 0] += 0.5  # one feature of every token
    embedding.CopyFrom(numpy_helper.from_array(weights, embedding.name))
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    assert not inspector.verify(loaded, onnx=broken, seeds=1)


def test_bert_golden_data_keeps_int64_and_checks_without_torch(bert_file, tmp_path, cli):
    loaded, result = bert_file
    golden = tmp_path / "golden"
    assert inspector.verify(loaded, onnx=result.path, seeds=1, save_data=golden)
    ids = onnx.TensorProto()
    ids.ParseFromString((golden / "test_data_set_0" / "input_0.pb").read_bytes())
    assert ids.data_type == onnx.TensorProto.INT64 and ids.name == "input_ids"
    out = onnx.TensorProto()
    out.ParseFromString((golden / "test_data_set_0" / "output_1.pb").read_bytes())
    assert out.name == "pooler_output"
    checked = cli("verify", result.path, "--data", golden)
    assert checked.code == 0, checked.err
    assert "PASSED" in checked.out


def test_bert_through_the_cli_with_keyword_inputs_and_the_sequence_dynamic(cli, tmp_path):
    out = tmp_path / "b.onnx"
    done = cli("export", BERT, *_inputs(*BERT_INPUTS), *_dims(*SEQUENCE_DIMS), "-o", out)
    assert done.code == 0, done.err
    assert "inputs: input_ids, attention_mask" in done.out and "dynamic batch, sequence" in done.out
    checked = cli(
        "verify", BERT, *_inputs(*BERT_INPUTS), "--onnx", out, "--seeds", "1", "--format", "json"
    )
    assert checked.code == 0, checked.err
    runs = checked.json()["runs"]
    assert [run["sizes"] for run in runs] == [{"sequence": 8}, {"sequence": 19}]


def test_bert_summary_names_and_types_its_inputs(cli):
    result = cli("summary", BERT, *_inputs(*BERT_INPUTS), "--format", "json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["input_names"] == ["input_ids", "attention_mask"]
    assert data["input_dtypes"] == ["int64", "int64"]
    assert data["output_names"] == ["last_hidden_state", "pooler_output"]
    assert data["output_shapes"] == [[2, 16, 32], [2, 32]]
    model = tiny_bert()
    assert data["total_params"] == sum(p.numel() for p in model.parameters())


def test_float_ids_are_named_a_dtype_problem_not_a_batch_problem(cli, tmp_path):
    result = cli("export", BERT, "--input-shape", "2,16", "-o", tmp_path / "b.onnx")
    assert result.code == 2
    assert "'indices'" in result.err and "--input NAME=SHAPE:int64" in result.err
    assert "view(x.size(0), -1)" not in result.err
    assert not list(tmp_path.iterdir())


def test_the_python_api_keeps_dtypes_and_keyword_inputs():
    model = tiny_bert().eval()
    ids = torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(3))
    report = inspector.verify(model, input_ids=ids, attention_mask=torch.ones_like(ids), seeds=1)
    assert report, report
    assert report.runs[0].seed is None  # the given inputs are the first run


def test_gpt2_counts_its_tied_weight_once_in_text_and_json(cli):
    model = tiny_gpt2()
    unique = sum(p.numel() for p in model.parameters())
    text = cli("summary", GPT2, "--input", f"input_ids=2x16:int64:0..{VOCAB}", "--depth", "2")
    data = cli(
        "summary", GPT2, "--input", f"input_ids=2x16:int64:0..{VOCAB}", "--format", "json"
    ).json()
    assert data["total_params"] == unique
    assert f"Total params: {unique:,}" in text.out
    lm_head = next(layer for layer in data["layers"] if layer["name"] == "lm_head")
    assert lm_head["shared_with"] == "transformer.wte"
    assert "(shared)" in next(line for line in text.out.splitlines() if "(lm_head)" in line)
    markdown = cli(
        "summary", GPT2, "--input", f"input_ids=2x16:int64:0..{VOCAB}", "--format", "markdown"
    )
    assert f"- total params: {unique:,}" in markdown.out


def test_gpt2_verifies_with_a_dynamic_sequence(cli):
    result = cli(
        "verify",
        GPT2,
        "--input",
        f"input_ids=2x16:int64:0..{VOCAB}",
        "--dynamic-dim",
        "input_ids.1=sequence",
        "--seeds",
        "1",
        "--no-cache",
    )
    assert result.code == 0, result.err
    assert "logits" in result.out and "sequence 19" in result.out


def test_vit_mult_adds_include_attention_that_torchinfo_misses():
    from inspector.summary import summarize

    loaded = load_model(VIT, inputs=["2x3x32x32"])
    summary = summarize(loaded)
    torchinfo_count = _torchinfo_mult_adds(loaded)
    assert summary.mult_adds_counter == "torch.utils.flop_counter"
    # 17 tokens x 17 tokens x 32 features, twice (scores and weighted sum), per layer and image
    attention = 2 * 2 * 2 * 17 * 17 * 32
    assert summary.mult_adds >= torchinfo_count + attention


def _torchinfo_mult_adds(loaded) -> int:
    import torchinfo

    stats = torchinfo.summary(
        loaded.module, input_data=list(loaded.first_inputs().args), verbose=0, device="cpu"
    )
    return int(stats.total_mult_adds)


def test_vit_exports_and_verifies():
    report = inspector.verify(load_model(VIT, inputs=["2x3x32x32"]), seeds=1)
    assert report, report
    assert [d.name for d in report.runs[0].outputs] == ["last_hidden_state", "pooler_output"]


def test_cnn_mult_adds_agree_with_torchinfo_within_one_percent():
    from inspector.summary import summarize

    loaded = load_model("mobilenet_v3_small")
    assert summarize(loaded, depth=1).mult_adds == pytest.approx(56_527_424, rel=0.01)


# --- structured outputs and keyword inputs without transformers -------------------------------


def test_structured_outputs_are_flattened_and_named(tmp_path):
    from inspector.export import export_onnx

    loaded = load_model(f"{ANY}:Structured", inputs_factory=f"{ANY}:structured_inputs")
    result = export_onnx(loaded, tmp_path / "s.onnx")
    assert result.input_names == ["input", "mask"]  # the constant scale is no graph input
    assert result.output_names == [
        "logits",
        "parts.0",
        "parts.1.low",
        "parts.1.high",
        "extra.key",
    ]
    report = inspector.verify(loaded, onnx=result.path, seeds=1)
    assert report, report


def test_plain_tuples_keep_numbered_names(tmp_path):
    from inspector.export import export_onnx

    class Two(torch.nn.Module):
        def forward(self, x):
            return x * 2, (x + 1, x - 1)

    result = export_onnx(_loaded(Two()), tmp_path / "t.onnx")
    assert result.output_names == ["output_0", "output_1.0", "output_1.1"]


def _loaded(module):
    from inspector.loading import LoadedModel

    return LoadedModel("two", module.eval(), [(2, 3)])


def test_a_file_that_declares_a_batch_it_cannot_run_is_refused(cli, tmp_path):
    out = tmp_path / "frozen.onnx"
    result = cli(
        "export", f"{ANY}:FrozenSplit", "--input", "4x3", "--exporter", "torchscript", "-o", out
    )
    assert result.code == 2
    assert (
        "declares batch dynamic, but onnxruntime fails at batch 1 while PyTorch runs" in result.err
    )
    # The user is on torchscript because dynamo failed: the way out is a fixed batch
    assert "--static-batch" in result.err and "--exporter dynamo" not in result.err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_a_data_dependent_branch_suggests_the_torchscript_exporter(cli, tmp_path):
    result = cli("export", f"{ANY}:Branchy", "--input", "2x3", "-o", tmp_path / "b.onnx")
    assert result.code == 2
    assert "--exporter torchscript" in result.err
    assert len(result.err.rstrip("\n")) < 400
    assert len(result.err.strip().splitlines()) == 1


def test_t5_dynamo_failure_suggests_the_torchscript_exporter(cli, tmp_path):
    ids = f"input_ids=2x8:int64:0..{VOCAB}"
    spec = f"{ANY}:tiny_t5_encoder"
    result = cli("export", spec, "--input", ids, "-o", tmp_path / "t5.onnx")
    assert result.code == 2
    line = result.err.strip()
    assert len(line.splitlines()) == 1 and len(line) < 400
    assert "--exporter torchscript" in line


def test_exporter_reasons_are_cut_short():
    from inspector.export.exporter import MAX_REASON, _shortened

    long = "guard failed: " + " ".join(f"Eq(s{i}, {i})" for i in range(800))
    short = _shortened(long)
    assert len(short) <= MAX_REASON and short.endswith("(--verbose shows all of it)")
    assert _shortened("short reason") == "short reason"


def test_a_huge_guard_expression_with_its_hint_stays_under_400_characters():
    from types import SimpleNamespace

    from inspector.export.exporter import ExportOptions, _exporter_error

    guard = "data-dependent guard: " + " and ".join(f"Eq(u{i}, s{i} * 7)" for i in range(600))
    loaded = SimpleNamespace(spec="detector.py:make_ssdlite")
    error = _exporter_error(loaded, ExportOptions(), RuntimeError(guard))
    line = f"inspector: error: {error}"
    assert len(line) < 400 and "(--verbose shows all of it)" in line
    assert line.endswith("(tracing freezes the branch the example inputs take)")


def test_unknown_dynamic_dim_names_the_inputs(cli, tmp_path):
    result = cli(
        "export",
        BERT,
        *_inputs(*BERT_INPUTS),
        "--dynamic-dim",
        "ids.1=seq",
        "-o",
        tmp_path / "x.onnx",
    )
    assert result.code == 2
    assert "has no input 'ids'" in result.err and "input_ids, attention_mask" in result.err
    result = cli(
        "export",
        BERT,
        *_inputs(*BERT_INPUTS),
        "--dynamic-dim",
        "input_ids.5=seq",
        "-o",
        tmp_path / "x.onnx",
    )
    assert result.code == 2 and "has 2 axes" in result.err


def test_a_factory_spec_is_named_after_the_model_it_builds(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("export", f"{ANY}:create_model", "-k", "model_name=resnet18", "--input", "2x4")
    assert result.code == 0, result.err
    assert (tmp_path / "resnet18.onnx").is_file()


# --- a user's repository with its own `models` package ----------------------------------------


def test_a_users_own_models_package_is_imported_not_the_lectures(tmp_path):
    repo = tmp_path / "yolo_like"
    (repo / "models").mkdir(parents=True)
    (repo / "models" / "__init__.py").write_text("")
    (repo / "models" / "common.py").write_text(
        "import torch\n\nclass Backbone(torch.nn.Linear):\n"
        "    def __init__(self):\n        super().__init__(4, 6)\n"
    )
    (repo / "net.py").write_text(
        "import torch\nfrom models.common import Backbone\n\n"
        "class Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.backbone = Backbone()\n\n    def forward(self, x):\n"
        "        return self.backbone(x)\n"
    )
    # As a user runs it: from the repository root of this checkout, where models/ is the lecture's.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "inspector",
            "summary",
            f"{repo / 'net.py'}:Net",
            "--input",
            "2x4",
            "--format",
            "json",
        ],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total_params"] == 4 * 6 + 6


def test_the_lecture_models_are_not_installed_as_a_top_level_models_package(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib.util, inspector.models as m;"
            "print(importlib.util.find_spec('models') is None, len(m.list_models()) > 5)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.split() == ["True", "True"], done.stderr


def test_a_broken_dependency_is_named(tmp_path, monkeypatch):
    """A package that fails inside its own import (a CUDA torchvision beside the CPU torch says
    "operator torchvision::nms does not exist") is named, with what to check."""
    import sysconfig

    from inspector.errors import InspectorError

    site = tmp_path / "site"
    (site / "visionlib").mkdir(parents=True)
    (site / "visionlib" / "__init__.py").write_text(
        "raise RuntimeError('operator visionlib::nms does not exist')\n"
    )
    user = tmp_path / "user.py"
    user.write_text("import visionlib\n\nNet = None\n")
    paths = {**sysconfig.get_paths(), "purelib": str(site), "platlib": str(site)}
    monkeypatch.setattr(sysconfig, "get_paths", lambda: paths)
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(InspectorError) as caught:
        load_model(f"{user}:Net")
    message = str(caught.value)
    assert "inside the installed package visionlib" in message
    assert "operator visionlib::nms does not exist" in message and "pip show visionlib" in message


def test_strings_and_bools_compare_by_equality():
    from inspector.onnx.compare import compare_arrays

    words = np.array(["a", "b", "c"], dtype=object)
    assert compare_arrays("w", words, words.copy()).mismatched == 0
    assert compare_arrays("w", words, np.array(["a", "x", "c"], dtype=object)).mismatched == 1
    flags = np.array([True, False])
    assert not compare_arrays("f", flags, ~flags)


def test_gpt2_with_its_cache_exports_and_verifies_every_cache_tensor(tmp_path):
    """transformers' Cache objects open into tensors (transformers' own pytree registration), so
    the keys and values of both layers are outputs of the file, named and compared."""
    from inspector.export import export_onnx

    loaded = load_model(f"{ANY}:tiny_gpt2_with_cache", inputs=[f"input_ids=2x16:int64:0..{VOCAB}"])
    result = export_onnx(loaded, tmp_path / "g.onnx", dynamic_dims=["input_ids.1=sequence"])
    assert result.output_names == ["logits", "cache.0", "cache.1", "cache.2", "cache.3"]
    report = inspector.verify(loaded, onnx=result.path, seeds=1)
    assert report, report
    compared = {row["name"] for run in report.to_dict()["runs"] for row in run["outputs"]}
    assert compared == set(result.output_names)


def test_an_output_type_the_exporter_cannot_open_is_named(cli, tmp_path):
    out = tmp_path / "box.onnx"
    result = cli("export", f"{ANY}:ReturnsABox", "--input", "2x3", "-o", out)
    assert result.code == 2
    assert "returns a value of type Box," in result.err, result.err
    assert "register_pytree_node" in result.err and len(result.err.strip().splitlines()) == 1
    assert not out.exists()
