"""The pytest plugin, in real pytest sessions (pytester): onnx_parity, model_snapshot, xdist.

Each session runs in a subprocess: an in-process run would import torch inside pytester's
sys.modules snapshot, which then drops it, and the next garbage collection crashes in torch.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from inspector.pytest_plugin import snapshot_path
from inspector.pytest_plugin.snapshot import record_differences

pytest_plugins = ["pytester"]

EXAMPLES_CI = Path(__file__).resolve().parent.parent / "examples" / "ci"

NET = textwrap.dedent(
    """\
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self, hidden=16, extra=False):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.bn = nn.BatchNorm2d(8)
            self.fc = nn.Linear(8 * 8 * 8, hidden)
            self.extra = nn.Linear(hidden, hidden) if extra else nn.Identity()

        def forward(self, x):
            x = torch.relu(self.bn(self.conv(x)))
            return self.extra(self.fc(x.flatten(1)))


    def trained(**kwargs):
        torch.manual_seed(0)
        net = Net(**kwargs)
        with torch.no_grad():  # BatchNorm statistics far from the identity's
            net.bn.running_mean.normal_(0.0, 0.5)
            net.bn.running_var.uniform_(0.5, 2.0)
        return net.eval()


    def image(seed=1):
        return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
    """
)

PARITY_TESTS = textwrap.dedent(
    """\
    from net import image, trained


    def test_net_exports_faithfully(onnx_parity):
        report = onnx_parity(trained(), image())
        assert report.passed and len(report.runs) == 7  # the given input + 3 seeds x 2 batches


    def test_options_reach_verify(onnx_parity):
        report = onnx_parity(trained(), image(), atol=1e-5, rtol=1e-4, seeds=1)
        assert (report.atol, report.rtol, len(report.runs)) == (1e-5, 1e-4, 3)
    """
)

# The export is tampered with after it is written: one weight scaled by 1.5. The cache records the
# tampered file's digest, so only the comparison with PyTorch can catch it.
TAMPERING_CONFTEST = textwrap.dedent(
    """\
    import onnx
    import pytest
    from onnx import numpy_helper

    import inspector.export.cache as cache


    @pytest.fixture(autouse=True)
    def tampered_exports(monkeypatch):
        real = cache.export_onnx

        def export_and_tamper(loaded, path, **options):
            result = real(loaded, path, **options)
            model = onnx.load(str(path))
            weight = next(t for t in model.graph.initializer if t.name == "fc.weight")
            weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.5, weight.name))
            onnx.save(model, str(path))
            return result

        monkeypatch.setattr(cache, "export_onnx", export_and_tamper)
    """
)


@pytest.fixture
def project(pytester, tmp_path, monkeypatch):
    """A pytester folder with net.py, and an export cache of its own."""
    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(tmp_path / "export-cache"))
    pytester.makepyfile(net=NET)
    return pytester


def run_pytest(project, *args):
    return project.runpytest_subprocess("-p", "no:cacheprovider", *args)


def _entries(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "export-cache").glob("*.onnx"))


BAKED_TEST = textwrap.dedent(
    """\
    import torch
    from torch import nn


    class Baked(nn.Module):
        def forward(self, x):
            return x.view(4, -1)


    def test_baked(onnx_parity):
        onnx_parity(Baked(), torch.randn(4, 3))
    """
)


def test_onnx_parity_passes_and_exports_through_the_cache(project, tmp_path):
    project.makepyfile(test_parity=PARITY_TESTS)
    run_pytest(project).assert_outcomes(passed=2)
    assert len(_entries(tmp_path)) == 1  # both tests used one cached export


def test_a_tampered_export_fails_with_the_diff_table_and_an_export_error_in_one_line(project):
    project.makepyfile(test_parity=PARITY_TESTS, test_baked=BAKED_TEST)
    project.makeconftest(TAMPERING_CONFTEST)
    result = run_pytest(project)
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*FAILED | Net: 7 of 7 run(s) mismatch (atol 0.0001, rtol 0.001; *",
            "*run*output*shape*max abs*mean abs*median abs*p99 abs*max rel*mismatched*",
            "*given inputs*output*[[]2, 16[]]*/ 32",
            "*seed 2, batch 3*output*[[]3, 16[]]*/ 48",
        ]
    )
    result.stdout.fnmatch_lines(["*inspector: Baked*batch*"])
    output = result.stdout.str()
    assert "Traceback" not in output and "def check(" not in output  # the table, not our code


SNAPSHOT_TESTS = textwrap.dedent(
    """\
    import pytest

    from net import image, trained


    def test_net(model_snapshot):
        record = model_snapshot(trained({kwargs}), image())
        assert record["model"] == "Net"


    @pytest.mark.parametrize("hidden", [4, 8])
    def test_widths(model_snapshot, hidden):
        model_snapshot(trained(hidden=hidden), image())
    """
)


def _snapshot_tests(**kwargs) -> str:
    return SNAPSHOT_TESTS.replace("{kwargs}", ", ".join(f"{k}={v}" for k, v in kwargs.items()))


def test_snapshots_missing_written_kept_and_changed(project):
    project.makepyfile(test_arch=_snapshot_tests())
    missing = run_pytest(project)
    missing.assert_outcomes(failed=3)
    missing.stdout.fnmatch_lines(
        [
            "*no snapshot __snapshots__/test_arch/test_net.json yet: "
            "run `pytest --inspector-update` to write it*"
        ]
    )
    assert not (project.path / "__snapshots__").exists()

    run_pytest(project, "--inspector-update").assert_outcomes(passed=3)
    folder = project.path / "__snapshots__" / "test_arch"
    assert sorted(p.name for p in folder.iterdir()) == [
        "test_net.json",
        "test_widths[4].json",
        "test_widths[8].json",
    ]
    record = json.loads((folder / "test_net.json").read_text())
    assert record["inputs"] == [{"name": "input", "shape": ["batch", 3, 8, 8], "dtype": "float32"}]
    assert record["outputs"] == [{"name": "output", "shape": ["batch", 16], "dtype": "float32"}]
    assert record["ops"] == {"BatchNormalization": 1, "Conv": 1, "Gemm": 1, "Relu": 1, "Reshape": 1}
    assert record["total_params"] == 224 + 16 + 512 * 16 + 16 == 8448
    layers = {row["layer"]: row for row in record["layers"]}
    assert layers["fc"] == {
        "layer": "fc",
        "type": "Linear",
        "output_shape": [2, 16],
        "params": 8208,
    }
    assert layers["conv"]["output_shape"] == [2, 8, 8, 8] and layers["bn"]["params"] == 16
    run_pytest(project).assert_outcomes(passed=3)

    project.makepyfile(test_arch=_snapshot_tests(hidden=32, extra=True))
    changed = run_pytest(project)
    changed.assert_outcomes(passed=2, failed=1)
    changed.stdout.fnmatch_lines(
        [
            "*Net differs from __snapshots__/test_arch/test_net.json "
            "(`pytest --inspector-update` accepts the change):",
            "*output output: shape [[]batch, 16[]] -> [[]batch, 32[]]",
            "*total params 8,448 -> 17,712",
            "*ops: Gemm 1 -> 2",
            "*layer fc: output shape [[]2, 16[]] -> [[]2, 32[]], params 8,208 -> 16,416",
            "*layer extra: type Identity -> Linear, output shape [[]2, 16[]] -> [[]2, 32[]], "
            "params 0 -> 1,056",
        ]
    )
    run_pytest(project, "--inspector-update").assert_outcomes(passed=3)
    assert json.loads((folder / "test_net.json").read_text())["total_params"] == 17712


XDIST_TESTS = textwrap.dedent(
    """\
    import pytest

    from net import image, trained


    @pytest.mark.parametrize("copy", range(4))
    def test_parity(onnx_parity, copy):
        onnx_parity(trained(), image(copy))


    @pytest.mark.parametrize("hidden", [4, 16])
    def test_snapshot(model_snapshot, hidden):
        model_snapshot(trained(hidden=hidden), image())
    """
)


@pytest.mark.slow
def test_two_xdist_workers_share_the_export_cache(project, tmp_path):
    project.makepyfile(test_many=XDIST_TESTS)
    result = run_pytest(project, "-n", "2", "--inspector-update")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*2 workers*"])
    assert len(_entries(tmp_path)) == 2  # hidden 4 and 16: four parity tests shared one entry
    assert not list((tmp_path / "export-cache").glob(".inspector-export-*"))
    folder = project.path / "__snapshots__" / "test_many"
    assert sorted(p.name for p in folder.iterdir()) == [
        "test_snapshot[16].json",
        "test_snapshot[4].json",
    ]


def test_snapshot_files_are_named_after_the_test(tmp_path):
    node = SimpleNamespace(path=tmp_path / "tests" / "test_models.py", name="test_x[a/b c]")
    folder = tmp_path / "tests" / "__snapshots__" / "test_models"
    assert snapshot_path(node) == folder / "test_x[a_b_c].json"
    assert snapshot_path(node, 2) == folder / "test_x[a_b_c].2.json"
    long = SimpleNamespace(path=node.path, name="test_y[" + "z" * 300 + "]")
    assert len(snapshot_path(long).name) < 255


def _record(**changes) -> dict:
    record = {
        "format": 1,
        "model": "Net",
        "inputs": [{"name": "input", "shape": ["batch", 3], "dtype": "float32"}],
        "outputs": [{"name": "output", "shape": ["batch", 2], "dtype": "float32"}],
        "total_params": 8,
        "trainable_params": 8,
        "mult_adds": 6,
        "ops": {"Gemm": 1},
        "layers": [
            {"layer": "fc", "type": "Linear", "output_shape": [2, 2], "params": 8},
            {"layer": "act", "type": "ReLU", "output_shape": [2, 2], "params": 0},
        ],
    }
    return record | changes


def test_record_differences_name_layers_shapes_parameters_and_ops():
    assert record_differences(_record(), _record()) == []
    changed = _record(
        total_params=1_010,
        ops={"Gemm": 1, "Relu": 1},
        layers=[
            {"layer": "fc", "type": "Linear", "output_shape": [2, 100], "params": 1_000},
            {"layer": "head", "type": "Linear", "output_shape": [2, 2], "params": 10},
        ],
    )
    assert record_differences(_record(), changed) == [
        "total params 8 -> 1,010",
        "ops: Relu 0 -> 1",
        "layer fc: output shape [2, 2] -> [2, 100], params 8 -> 1,000",
        "layer head added (type Linear, output shape [2, 2], params 10)",
        "layer act removed (was type ReLU, output shape [2, 2], params 0)",
    ]
    many = _record(
        layers=[
            {"layer": f"l{i}", "type": "T", "output_shape": [1], "params": i} for i in range(30)
        ]
    )
    lines = record_differences(_record(), many)
    assert len(lines) == 21 and lines[-1] == "... and 12 more change(s)"  # 30 added, 2 removed
    assert record_differences(_record(), _record(format=2)) == [
        "record format 1 -> 2: write it again"
    ]


def test_the_ci_example_passes_against_its_kept_snapshots(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(tmp_path / "export-cache"))
    for name in ("zoo.py", "test_exports.py"):
        shutil.copy(EXAMPLES_CI / name, pytester.path)
    shutil.copytree(EXAMPLES_CI / "__snapshots__", pytester.path / "__snapshots__")
    run_pytest(pytester).assert_outcomes(passed=4)


def test_the_ci_workflow_caches_exports_and_uploads_junit_reports():
    text = (EXAMPLES_CI / "verify.yml").read_text()
    assert "uses: actions/cache@" in text and "path: ${{ env.INSPECTOR_CACHE_DIR }}" in text
    assert "shard: [1, 2]" in text and "--shard ${{ matrix.shard }}/2" in text
    assert "--junit-xml check-all-${{ matrix.shard }}.xml" in text
    assert "pytest -n 2 ci/test_exports.py --junit-xml=pytest-exports.xml" in text
    assert text.count("uses: actions/upload-artifact@") == 4
