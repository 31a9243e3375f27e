"""inspector's pytest plugin, loaded by every pytest run once inspector is installed (`pytest11`).

    def test_export_matches(onnx_parity):
        onnx_parity(MyNet(), torch.randn(2, 3, 32, 32))  # a mismatch fails with the diff table

    def test_architecture(model_snapshot):
        model_snapshot(MyNet(), torch.randn(2, 3, 32, 32))  # vs __snapshots__/<file>/<test>.json

`pytest --inspector-update` writes (or rewrites) the snapshots instead of comparing with them.
Both fixtures export through the export cache ($INSPECTOR_CACHE_DIR, default
~/.cache/inspector), which pytest-xdist workers share safely. Nothing heavy is imported until a
fixture is used.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from pathlib import Path

import pytest

UPDATE_OPTION = "--inspector-update"
SNAPSHOT_FOLDER = "__snapshots__"
_UNSAFE = re.compile(r"[^\w.\[\]-]")  # what may not appear in a snapshot's file name
_MAX_NAME = 200


def pytest_addoption(parser) -> None:
    group = parser.getgroup("inspector", "ONNX export checks (inspector)")
    group.addoption(
        UPDATE_OPTION,
        action="store_true",
        dest="inspector_update",
        help="write or rewrite model_snapshot files instead of comparing with them",
    )


@pytest.fixture
def onnx_parity():
    """onnx_parity(module, *inputs, **options) -> VerifyReport: export `module` (through the export
    cache) and verify onnxruntime against PyTorch on `inputs` and seeded random inputs.

    The options are inspector.verify's (atol, rtol, seeds, batch_sizes, graph, localize, ...). A
    mismatch fails the test with the report: per run and output, max abs/rel diff, mismatches.
    """

    def check(module, *inputs, **options):
        import inspector

        options.setdefault("use_cache", True)
        refusal: str | None
        try:
            report = inspector.verify(module, *inputs, **options)
        except inspector.InspectorError as error:  # it does not export, or onnxruntime refuses it
            refusal = f"inspector: {error}"
        else:
            refusal = None
        if refusal:  # failed outside the except block: no "during handling" chain in the report
            pytest.fail(refusal, pytrace=False)
        if not report:
            pytest.fail(str(report), pytrace=False)
        return report

    return check


@pytest.fixture
def model_snapshot(request):
    """model_snapshot(module, *inputs) -> record: compare the model's architecture (layers with
    output shapes and parameter counts, totals, ONNX op counts, input/output signature) with
    `__snapshots__/<test file>/<test name>.json` beside the test.

    A missing snapshot fails and says to run `pytest --inspector-update`, which writes it; a
    changed architecture fails with what changed. A second call in one test compares with
    `<test name>.2.json`, and so on.
    """
    calls = itertools.count(1)

    def check(module, *inputs):
        from ..errors import InspectorError
        from .snapshot import architecture_record, record_differences

        path = snapshot_path(request.node, next(calls))
        refusal: str | None
        try:
            record = architecture_record(module, *inputs)
        except InspectorError as error:
            refusal = f"inspector: {error}"
        else:
            refusal = None
        if refusal:  # failed outside the except block: no "during handling" chain in the report
            pytest.fail(refusal, pytrace=False)
        if request.config.getoption("inspector_update"):
            _write(path, record)
            return record
        shown = _shown(path, request.config.rootpath)
        if not path.exists():
            pytest.fail(
                f"no snapshot {shown} yet: run `pytest {UPDATE_OPTION}` to write it",
                pytrace=False,
            )
        changes = record_differences(_read(path, shown), record)
        if changes:
            lines = "\n".join(f"  {line}" for line in changes)
            pytest.fail(
                f"{record['model']} differs from {shown} (`pytest {UPDATE_OPTION}` accepts "
                f"the change):\n{lines}",
                pytrace=False,
            )
        return record

    return check


def snapshot_path(node, call: int = 1) -> Path:
    """__snapshots__/<test file stem>/<test name>[.<call>].json beside the test file."""
    test_file = Path(node.path)
    name = _UNSAFE.sub("_", node.name)
    if len(name) > _MAX_NAME:  # long parametrize ids: keep a readable start and a digest
        name = f"{name[:_MAX_NAME]}-{hashlib.sha256(node.name.encode()).hexdigest()[:12]}"
    suffix = "" if call == 1 else f".{call}"
    return test_file.parent / SNAPSHOT_FOLDER / test_file.stem / f"{name}{suffix}.json"


def _write(path: Path, record: dict) -> None:
    from ..util.files import write_atomically
    from .snapshot import dump_record

    path.parent.mkdir(parents=True, exist_ok=True)  # xdist workers may race here: exist_ok
    write_atomically(path, dump_record(record))


def _read(path: Path, shown: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        pytest.fail(
            f"snapshot {shown} cannot be read ({error}): run `pytest {UPDATE_OPTION}` to "
            "write it again",
            pytrace=False,
        )


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
