"""verify --decode-steps N: prefill and greedy steps of a causal LM, its cache fed back, in
PyTorch and onnxruntime (tiny GPT-2 and Llama built from configs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.errors import InspectorError
from inspector.loading import load_model
from inspector.onnx import runtime
from inspector.verification.decode import verify_decode

LLM = Path(__file__).parent / "_llm_models.py"
IDS = "input_ids=2x5:int64:0..100"


@pytest.mark.parametrize("model", ["tiny_gpt2_lm", "tiny_llama"])
def test_decode_steps_pass_and_report_every_step(cli, model):
    result = cli(
        "verify", f"{LLM}:{model}", "--input", IDS, "--decode-steps", "3", "--format", "json"
    )
    assert result.code == 0, result.err
    report = result.json()
    assert report["passed"] is True and report["decode_steps"] == 3
    assert report["token_agreement"] == 1.0
    steps = report["steps"]
    assert [s["step"] for s in steps] == [0, 1, 2, 3]
    assert [s["past_length"] for s in steps] == [0, 5, 6, 7]  # the cache grows by one a step
    layers = 2
    for step in steps:
        names = [o["name"] for o in step["outputs"]]
        assert names == ["logits", *(f"present.{k}" for k in range(2 * layers))]
        assert step["tokens_agree"] and len(step["torch_tokens"]) == 2
        logits = step["outputs"][0]
        assert logits["shape"] == [2, 5 if step["step"] == 0 else 1, 100]
        assert logits["max_abs_diff"] < 1e-4
    # the cache returned has every length it was fed plus the new tokens
    assert steps[-1]["outputs"][1]["shape"][2] == 8
    # every step of the work says so on stderr (plain lines off a terminal)
    assert any("decode step" in line for line in result.steps)
    assert any("greedy step 3 of 3" in line for line in result.steps)


def test_a_wrong_cache_from_onnxruntime_fails_the_check(monkeypatch):
    """onnxruntime's cache fed back with an error in it: the steps after it see it."""
    real_run = runtime.run_session

    def perturbed(session, feeds, label, output_names=None):
        outputs = real_run(session, feeds, label, output_names)
        outputs[1] = outputs[1] + 0.5  # present.0: layer 0's keys
        return outputs

    monkeypatch.setattr(runtime, "run_session", perturbed)
    loaded = load_model(f"{LLM}:tiny_gpt2_lm", inputs=[IDS])
    report = verify_decode(loaded, 2)
    assert not report
    assert not report.steps[0].outputs[1]  # present.0 itself
    assert report.steps[0].outputs[0]  # the prompt's logits do not use it
    assert not report.steps[1].outputs[0]  # the next step's logits do
    assert "FAILED" in str(report)


def test_decode_steps_refuse_a_model_without_a_cache(cli):
    result = cli("verify", "exercise_model", "--decode-steps", "2")
    assert result.code == 2
    assert result.err.startswith("inspector: error: ") and "--decode-steps" in result.err
    assert "--decode-steps needs a causal LM's token ids: pass --input input_ids=" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_decode_steps_from_python_name_the_parameters():
    loaded = load_model("exercise_model")
    with pytest.raises(InspectorError, match="^steps=0: give 1 or more steps"):
        verify_decode(loaded, 0)
    with pytest.raises(InspectorError, match="verify_decode needs a causal LM's") as raised:
        verify_decode(loaded, 2)
    assert "inputs={'input_ids': '1x8:int64:0..VOCAB'}" in str(raised.value)
    assert "--" not in str(raised.value)


def test_decode_steps_do_not_go_with_localize(cli):
    result = cli("verify", f"{LLM}:tiny_llama", "--input", IDS, "--decode-steps", "1", "--localize")
    assert result.code == 2 and "--localize" in result.err


def test_decode_steps_check_tolerance_names(cli):
    result = cli(
        "verify", f"{LLM}:tiny_llama", "--input", IDS, "--decode-steps", "1", "--atol", "lgits=1"
    )
    assert result.code == 2 and "logits" in result.err
