"""The export cache: a hit skips the exporter, any change to weights, shapes or code misses."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from _export_helpers import assert_matches_torch

from inspector.export import cache as cache_module
from inspector.export import exported_model, make_export_options
from inspector.loading import load_model

TINY = {"in_features": 6, "out_features": 4}


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def exports(monkeypatch):
    """Count real exporter runs by wrapping export_onnx."""
    calls = []
    real = cache_module.export_onnx

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(cache_module, "export_onnx", counting)
    return calls


def tiny(shape=(2, 6)):
    return load_model("linear", kwargs=TINY, input_shapes=[shape])


def test_a_hit_returns_the_same_file_without_exporting_again(cache_dir, exports):
    loaded = tiny()
    with exported_model(loaded) as first:
        content = first.read_bytes()
    with exported_model(tiny()) as second:
        assert second == first and second.read_bytes() == content
    assert len(exports) == 1
    assert first.parent == cache_dir and first.is_file()  # kept for the next command
    assert_matches_torch(first, loaded, batch_size=3, seed=4)


def test_a_hit_in_a_new_process_is_checked_once_not_once_per_step(cache_dir, monkeypatch):
    """The cache's own check of an entry counts for the command that asked for it."""
    from inspector.onnx import files as onnx_file

    with exported_model(tiny()):
        pass
    monkeypatch.setattr(onnx_file, "_VOUCHED", set())  # what a new process starts from
    children = []
    real = onnx_file._check_in_child
    monkeypatch.setattr(onnx_file, "_check_in_child", lambda *a: children.append(a[0]) or real(*a))
    with exported_model(tiny()) as path:
        onnx_file.check_onnx_file(path)  # what verify, view and bench do next
    assert children == [path]


def test_changing_one_weight_misses(cache_dir, exports):
    loaded = tiny()
    with exported_model(loaded) as before:
        pass
    with torch.no_grad():
        loaded.module.weight[1, 2] += 0.5
    with exported_model(loaded) as after:
        assert after != before
        assert_matches_torch(after, loaded, batch_size=2, seed=8)  # the new weight is in the file
    assert len(exports) == 2


def test_changing_a_buffer_misses(cache_dir):
    loaded = load_model("batchnorm", kwargs={"num_features": 3}, input_shapes=[(2, 3, 4, 4)])
    key = cache_module.cache_key(loaded)
    loaded.module.running_mean[0] = 0.25
    assert cache_module.cache_key(loaded) != key


def test_changing_the_input_shape_misses(cache_dir, exports):
    with exported_model(tiny((2, 6))) as first:
        pass
    with exported_model(tiny((3, 6))) as second:
        assert second != first
    assert len(exports) == 2


def test_graph_and_options_are_part_of_the_key(cache_dir):
    loaded = tiny()
    variants = [
        {},
        {"graph": "optimized"},
        {"opset": 17},
        {"exporter": "torchscript"},
        {"dynamic_batch": False},
        {"dynamic_dims": ["input.1=features"]},
        {"precision": "fp16"},
    ]
    keys = {cache_module.cache_key(loaded, make_export_options(**v)) for v in variants}
    assert len(keys) == len(variants)


def test_layer_settings_without_weights_are_part_of_the_key(cache_dir):
    # Same spec, kwargs and weights; only the layer's padding differs (as when a builder's default
    # changes in the source): the key must still change.
    loaded = load_model("conv")
    key = cache_module.cache_key(loaded)
    loaded.module.padding = (1, 1)
    assert cache_module.cache_key(loaded) != key


def test_changing_the_model_code_misses(tmp_path, cache_dir):
    source = tmp_path / "net.py"
    code = textwrap.dedent(
        """\
        from torch import nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                return self.fc(x){}
        """
    )
    source.write_text(code.format(""))
    before = cache_module.cache_key(load_model(f"{source}:Net", input_shapes=[(2, 4)]))
    source.write_text(code.format(" * 2"))
    after = cache_module.cache_key(load_model(f"{source}:Net", input_shapes=[(2, 4)]))
    assert before and after and before != after


def test_a_corrupt_entry_is_made_again_not_used(cache_dir, exports):
    loaded = tiny()
    with exported_model(loaded) as path:
        pass
    path.write_bytes(path.read_bytes()[:100])  # truncated, as by a full disk
    with exported_model(loaded) as again:
        assert again == path
        assert_matches_torch(again, loaded, batch_size=2, seed=9)
    assert len(exports) == 2


def test_an_edited_entry_that_is_still_valid_onnx_is_made_again(cache_dir, exports):
    import onnx
    from onnx import numpy_helper

    loaded = tiny()
    with exported_model(loaded) as path:
        pass
    model = onnx.load(str(path))
    weight = model.graph.initializer[0]
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) + 1.0, weight.name))
    onnx.save(model, str(path))  # still passes the checker, no longer the model's export
    with exported_model(loaded) as again:
        assert_matches_torch(again, loaded, batch_size=2, seed=6)
    assert len(exports) == 2


def test_use_cache_false_exports_to_a_temporary_file_removed_on_exit(cache_dir, exports):
    loaded = tiny()
    with exported_model(loaded, use_cache=False) as path:
        assert path.is_file() and cache_dir not in path.parents
        assert_matches_torch(path, loaded, batch_size=2, seed=10)
    assert not path.exists() and not path.parent.exists()
    assert not cache_dir.exists()
    assert len(exports) == 1


def test_default_location_is_under_the_home_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("INSPECTOR_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_module.cache_dir() == tmp_path / ".cache" / "inspector"
    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert cache_module.cache_dir() == tmp_path / "elsewhere"


def test_a_model_without_source_is_not_cached(cache_dir, exports):
    namespace = {}
    exec(
        "from torch import nn\nclass Net(nn.Module):\n    def forward(self, x):\n        return x * 3\n",
        namespace,
    )
    loaded = load_model("relu")
    loaded.module = namespace["Net"]().eval()
    assert cache_module.cache_key(loaded) is None
    with exported_model(loaded) as path:
        assert cache_dir not in path.parents
    assert len(exports) == 1


def test_an_unusable_cache_folder_falls_back_to_a_temporary_export(tmp_path, monkeypatch, exports):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(blocker / "cache"))
    with exported_model(tiny()) as path:
        assert path.is_file() and blocker not in path.parents
    assert not path.exists() and len(exports) == 1


def test_changing_the_export_code_misses(cache_dir, monkeypatch, tmp_path):
    loaded = tiny()
    before = cache_module.cache_key(loaded)
    edited = tmp_path / "export"
    edited.mkdir()
    for source in Path(cache_module.__file__).parent.glob("*.py"):
        text = source.read_text() + ("\n# edited\n" if source.name == "passes.py" else "")
        (edited / source.name).write_text(text)
    monkeypatch.setattr(cache_module, "__file__", str(edited / "cache.py"))
    assert cache_module.cache_key(loaded) != before


@pytest.mark.parametrize("module", cache_module.NAMING_MODULES, ids=lambda m: m.__name__)
def test_changing_the_code_that_names_inputs_and_outputs_misses(
    cache_dir, monkeypatch, tmp_path, module
):
    """Input and output names are written into the file by code outside inspector/export/."""
    loaded = tiny()
    before = cache_module.cache_key(loaded)
    source = Path(module.__file__)
    edited = tmp_path / source.parent.name / source.name
    edited.parent.mkdir()
    edited.write_text(source.read_text() + "\n# edited\n")
    monkeypatch.setattr(module, "__file__", str(edited))
    assert cache_module.cache_key(loaded) != before


def test_another_entry_copied_under_this_key_is_made_again(cache_dir, exports):
    """Both are sound exports with matching digests, but the sidecar names the other key."""
    import shutil

    import onnx

    mine, other = tiny((2, 6)), tiny((3, 6))
    with exported_model(mine) as path:
        pass
    with exported_model(other) as other_path:
        pass
    for suffix in ("", ".sha256"):
        shutil.copyfile(f"{other_path}{suffix}", f"{path}{suffix}")
    with exported_model(mine) as again:
        assert again == path
        shapes = dict((p.key, p.value) for p in onnx.load(str(again)).metadata_props)
        assert shapes["inspector.input_shapes"] == "2,6"  # its own export, not the copy
    assert len(exports) == 3


_RACER = """\
import sys, time
from pathlib import Path
from inspector.export import cache
from inspector.loading import load_model

ready, go, log = map(Path, sys.argv[1:4])
real = cache.export_onnx


def logged(*args, **kwargs):
    with log.open("a") as handle:
        handle.write("export\\n")
    return real(*args, **kwargs)


cache.export_onnx = logged
loaded = load_model("linear", kwargs={"in_features": 6, "out_features": 4}, input_shapes=[(2, 6)])
ready.touch()
while not go.exists():
    time.sleep(0.01)
path = cache.cached_export(loaded)
print(path, cache.file_digest(path))
"""


@pytest.mark.slow
def test_processes_sharing_the_cache_make_an_entry_once_and_all_use_it(cache_dir, tmp_path):
    """pytest-xdist workers or check-all --jobs asking for the same model at the same moment."""
    import subprocess
    import sys
    import time

    log, go = tmp_path / "exports.log", tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, tmp_path / f"ready-{i}", go, log],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    while not all((tmp_path / f"ready-{i}").exists() for i in range(3)):  # torch imported
        assert all(racer.poll() is None for racer in racers), racers[0].communicate()
        time.sleep(0.01)
    go.touch()  # all three ask for the missing entry at once
    answers = []
    for racer in racers:
        out, err = racer.communicate(timeout=300)
        assert racer.returncode == 0, err
        answers.append(tuple(out.split()))
    assert log.read_text().splitlines() == ["export"]  # one made it, the others waited for it
    (path, digest), *others = answers
    assert all(answer == (path, digest) for answer in others)
    assert cache_module.file_digest(Path(path)) == digest  # nobody replaced it afterwards
    sidecar = json.loads((Path(path).parent / f"{Path(path).name}.sha256").read_text())
    assert sidecar["sha256"] == digest


def test_a_model_from_a_file_has_the_same_key_in_every_process(tmp_path):
    """A new process (the next CI run, an xdist worker) must find the entry the last one made."""
    import os
    import subprocess
    import sys

    source = tmp_path / "net.py"
    source.write_text(
        "from torch import nn\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(4, 2)\n\n"
        "    def forward(self, x):\n        return self.fc(x)\n"
    )
    code = (
        "import sys; from inspector.loading import load_model; "
        "from inspector.export.cache import cache_key; "
        "print(cache_key(load_model(sys.argv[1] + ':Net', input_shapes=[(2, 4)])))"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", code, str(source)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert len(keys) == 1 and None not in keys and "None" not in keys
