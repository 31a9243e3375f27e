"""Summaries of models too large to allocate, built on PyTorch's meta device."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import pytest

from inspector import loading
from inspector.loading import load_model
from inspector.summary import summarize
from inspector.usermodel import meta
from inspector.usermodel.meta import weight_bytes

LLM = Path(__file__).parent / "_llm_models.py"
IDS = "input_ids=2x16:int64:0..100"


def _summary(spec: str, meta, inputs=IDS):
    return summarize(load_model(spec, inputs=[inputs], meta=meta), depth=3)


def test_a_meta_summary_equals_the_real_one():
    real = _summary(f"{LLM}:tiny_llama", meta=False)
    meta = _summary(f"{LLM}:tiny_llama", meta=True)
    assert not real.meta and meta.meta
    assert real.total_params > 0 and real.mult_adds
    for key in ("total_params", "trainable_params", "mult_adds", "output_shapes", "layers"):
        assert getattr(meta, key) == getattr(real, key), key
    assert "meta device" in meta.table and "meta device" not in real.table


def test_a_model_too_large_to_allocate_is_summarized_without_its_weights():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    summary = _summary(f"{LLM}:llama_1b", meta=True, inputs="input_ids=1x8:int64:0..32000")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    weights = summary.total_params * 4
    assert summary.meta and summary.total_params > 5 * 10**8
    assert summary.output_shapes[0] == [1, 8, 32000]
    assert summary.mult_adds and summary.mult_adds > summary.total_params * 8 * 0.9
    assert grown < weights / 10  # the weights were never allocated


def test_meta_is_chosen_when_the_weights_would_not_fit(monkeypatch):
    size = weight_bytes(load_model(f"{LLM}:tiny_llama", inputs=[IDS], meta=True).module)
    monkeypatch.setattr(loading, "available_memory", lambda: size * 100)
    monkeypatch.setattr(meta, "WEIGHT_MEMORY_SHARE", 1 / 200)  # half of what they need
    assert _device(load_model(f"{LLM}:tiny_llama", inputs=[IDS], meta=None).module).type == "meta"
    assert _device(load_model(f"{LLM}:tiny_llama", inputs=[IDS]).module).type == "cpu"  # not asked
    monkeypatch.setattr(meta, "WEIGHT_MEMORY_SHARE", 1 / 50)  # twice what they need
    assert _device(load_model(f"{LLM}:tiny_llama", inputs=[IDS], meta=None).module).type == "cpu"


def _device(module):
    return next(module.parameters()).device


def test_cli_meta_flag_json(cli):
    result = cli("summary", f"{LLM}:tiny_llama", "--input", IDS, "--meta", "--format", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["meta"] is True and data["output_shapes"][0] == [2, 16, 100]


def test_cli_meta_of_a_model_that_cannot_be_built_there(cli):
    result = cli("summary", f"{LLM}:reads_its_weights", "--input", "2x4", "--meta")
    assert result.code == 2
    assert result.err.startswith("inspector: error: ") and "meta device" in result.err
    assert len(result.err.strip().splitlines()) == 1
    # without --meta it is built for real
    assert cli("summary", f"{LLM}:reads_its_weights", "--input", "2x4").code == 0


def test_a_checkpoint_is_checked_against_a_meta_model(tmp_path, cli):
    import torch
    from _llm_models import tiny_llama

    good = tmp_path / "good.pt"
    torch.save(tiny_llama().state_dict(), good)
    state = tiny_llama().state_dict()
    state["lm_head.weight"] = torch.randn(3, 3)
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    args = ("summary", f"{LLM}:tiny_llama", "--input", IDS, "--meta")
    assert cli(*args, "--checkpoint", good).code == 0
    result = cli(*args, "--checkpoint", bad)
    assert result.code == 2 and "lm_head.weight" in result.err


@pytest.mark.slow
def test_llama_7b_summary_on_meta():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    summary = _summary(f"{LLM}:llama_7b", meta=True, inputs="input_ids=1x16:int64:0..32000")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert summary.meta and 6.5e9 < summary.total_params < 7e9
    assert grown < summary.total_params * 4 / 20
