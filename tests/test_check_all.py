"""inspector check-all: shards, the summary table and JSON, and failing models failing the run."""

from __future__ import annotations

import io
import sys

import pytest
import torch
from inspector.models._registry import _REGISTRY, ModelEntry
from torch import nn

from inspector import models
from inspector.checkall import parse_shard, select_models
from inspector.errors import InspectorError


@pytest.mark.parametrize("text, shard", [("1/1", (1, 1)), ("2/4", (2, 4)), (" 3 / 3 ", (3, 3))])
def test_parse_shard(text, shard):
    assert parse_shard(text) == shard


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "a/b", "1", "1/2/3", "-1/2", ""])
def test_a_bad_shard_is_a_one_line_user_error(cli, text):
    with pytest.raises(InspectorError, match=f"^shard {text!r}: "):  # from Python: the parameter
        parse_shard(text)
    result = cli("check-all", f"--shard={text}")
    assert result.code == 2
    assert result.err.startswith("inspector: error: --shard")
    assert len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize("count", [1, 2, 3, 4, len(models.list_models())])
def test_shards_split_the_registry_without_overlap(count):
    shards = [select_models(shard=(i, count)) for i in range(1, count + 1)]
    flat = [name for shard in shards for name in shard]
    assert sorted(flat) == models.list_models()
    assert len(flat) == len(set(flat))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_an_empty_shard_is_a_user_error_not_a_vacuous_pass(cli):
    total = len(models.list_models())
    result = cli("check-all", "--shard", f"{total + 1}/40")
    assert result.code == 2 and result.out == ""
    assert result.err == (
        f"inspector: error: --shard {total + 1}/40 is empty: there are only {total} model(s) "
        f"to check; use at most {total} shard(s)\n"
    )
    assert cli("check-all", "--pattern", "relu", "--shard", "2/2").code == 2  # one model, 2 shards


def test_a_pattern_that_matches_nothing_is_a_user_error(cli):
    result = cli("check-all", "--pattern", "no_such_*")
    assert result.code == 2
    assert "matches no registered model" in result.err


def test_check_all_exports_and_verifies_with_a_table(cli):
    result = cli("check-all", "--pattern", "[celr]*", "--shard", "2/2")  # a shard of a selection
    names = select_models("[celr]*", (2, 2))
    assert names, "the registry changed: pick another pattern"
    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["model", "params", "export", "s", "max", "abs", "diff", "verdict"]
    for name in names:
        row = next(line for line in lines if line.split()[0] == name)
        assert row.split()[-1] == "PASSED"
    assert lines[-1] == f"PASSED | all {len(names)} model(s) export and verify (shard 2/2)"
    assert result.err == ""  # no progress bar when stderr is not a terminal


def test_check_all_json(cli):
    result = cli("check-all", "--pattern", "relu", "--format", "json", "--timeout", "0")
    assert result.code == 0, result.err
    data = result.json()
    assert data["passed"] is True and data["shard"] is None
    (entry,) = data["models"]
    assert entry["model"] == "relu" and entry["verdict"] == "PASSED"
    assert entry["params"] == 0 and entry["export_seconds"] > 0
    assert 0 <= entry["max_abs_diff"] < 1e-4


class NoisyModel(nn.Module):
    """Draws random numbers in forward: onnxruntime's draws never equal PyTorch's."""

    def forward(self, x):
        return x + torch.rand_like(x)


class BakedBatchModel(nn.Module):
    """The lecture's `view(32, ...)` habit: the batch size is baked into the graph."""

    def forward(self, x):
        return x.view(32, -1)


@pytest.fixture
def failing_models(monkeypatch):
    monkeypatch.setitem(
        _REGISTRY, "zz_noisy", ModelEntry("zz_noisy", NoisyModel, "noise", ((2, 8),))
    )
    monkeypatch.setitem(
        _REGISTRY, "zz_baked", ModelEntry("zz_baked", BakedBatchModel, "baked", ((32, 4, 2),))
    )


def test_any_failing_model_fails_the_run_and_the_rest_still_run(cli, failing_models):
    result = cli("check-all", "--pattern", "zz_*", "--format", "json")
    assert result.code == 1, result.err
    verdicts = {entry["model"]: entry for entry in result.json()["models"]}
    assert verdicts["zz_noisy"]["verdict"] == "FAILED"
    assert verdicts["zz_noisy"]["max_abs_diff"] > 1e-3
    assert verdicts["zz_baked"]["verdict"] == "ERROR"
    assert "batch" in verdicts["zz_baked"]["error"]

    text = cli("check-all", "--pattern", "zz_noisy", "--timeout", "0")
    assert text.code == 1
    assert text.out.splitlines()[-1] == "FAILED | 1 of 1 model(s) fail: zz_noisy"


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, so rich draws its progress bar into it."""

    def isatty(self) -> bool:
        return True


def test_the_progress_bar_draws_on_a_terminal_only(cli, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    result = cli("check-all", "--pattern", "relu", "--timeout", "0")
    assert result.code == 0, result.err
    assert "exporting and verifying relu" in terminal.getvalue()
    assert "exporting" not in result.out  # the table on stdout stays clean
    assert result.out.splitlines()[-1].startswith("PASSED | all 1 model(s)")


def test_check_all_gives_batchnorm_seeded_statistics():
    from inspector.checkall import give_batchnorm_statistics

    first, second = models.create_model("conv_bn_relu"), models.create_model("conv_bn_relu")
    give_batchnorm_statistics(first)
    give_batchnorm_statistics(second)
    bn = first.bn
    assert bn.running_mean.abs().max() > 0.1 and (bn.running_var - 1).abs().max() > 0.1
    assert (bn.weight - 1).abs().max() > 0.1 and bn.bias.abs().max() > 0.1
    assert torch.equal(first.bn.running_var, second.bn.running_var)  # seeded: the same each run
    assert bool((bn.running_var > 0).all())


def test_an_untrained_mobilenet_is_no_longer_a_vacuous_check():
    """Registry MobileNetV3 outputs are ~1e-9 with default BatchNorms: below atol, nothing fails."""
    from inspector.checkall import give_batchnorm_statistics
    from inspector.loading import load_model

    loaded = load_model("mobilenet_v3_small")
    (image,) = loaded.example_inputs().args
    with torch.inference_mode():
        before = loaded.module(image).abs().max().item()
        give_batchnorm_statistics(loaded.module)
        after = loaded.module(image).abs().max().item()
    assert after > 1e-2, f"outputs {before:.2g} -> {after:.2g}: still far below a useful scale"


def test_a_repeated_check_all_exports_only_what_changed(tmp_path, monkeypatch):
    import inspector.export.cache as export_module
    from inspector.checkall import check_all

    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    real = export_module.export_onnx

    def counting(loaded, *args, **kwargs):
        calls.append(loaded.spec)
        return real(loaded, *args, **kwargs)

    monkeypatch.setattr(export_module, "export_onnx", counting)
    assert check_all(["relu", "linear"]).passed
    assert sorted(calls) == ["linear", "relu"]
    assert check_all(["relu", "linear"]).passed
    assert sorted(calls) == ["linear", "relu"]  # both came from the cache
    assert check_all(["relu"], use_cache=False).passed
    assert sorted(calls) == ["linear", "relu", "relu"]


def test_an_interrupt_a_library_swallowed_still_stops_with_130(cli, monkeypatch):
    from inspector import checkall, errors

    calls = []

    def swallowing_check(name, **options):
        calls.append(name)
        try:  # what torch does to a Ctrl-C that lands mid-import: catch it, fail later
            errors.note_interrupt()
        except KeyboardInterrupt:
            return checkall.ModelCheck(name, None, None, None, False, "partially initialized")

    monkeypatch.setattr(checkall, "check_model", swallowing_check)
    # --timeout 0: no worker process, so the check this test replaces is the one that runs.
    result = cli("check-all", "--pattern", "[cl]*", "--timeout", "0")
    assert result.code == 130
    assert result.err.strip() == "inspector: interrupted"
    assert len(calls) == 1  # the sweep stopped at the interrupted model


def test_a_bad_shard_names_the_parameter_from_python_and_the_flag_from_the_cli(cli):
    with pytest.raises(InspectorError, match=r"^shard '0/2': I must be between") as raised:
        parse_shard("0/2")
    assert "--" not in str(raised.value)
    total = len(models.list_models())
    with pytest.raises(InspectorError, match=rf"^shard=\({total + 1}, 40\) is empty") as raised:
        select_models(shard=(total + 1, 40))
    assert "--" not in str(raised.value)
    result = cli("check-all", "--shard", "0/2")
    assert result.code == 2 and result.err.startswith("inspector: error: --shard '0/2': I must")
