"""verify --decode-steps N: a causal LM's prefill and N greedy steps, PyTorch against onnxruntime.

A plain export traces one forward without a cache, so the graph a generation loop runs (its past
keys and values in, the grown ones out) is never checked. Here the model is exported with its
cache as inputs and outputs (`past.K` in, `present.K` out: a layer's keys then its values, in
transformers' layer order), and both sides run the same loop: the prompt with an empty cache,
then N steps of one token each, every side fed its own cache back, so onnxruntime's error
accumulates as it would in a generation. Both sides take PyTorch's greedy token (teacher forcing),
so each step's diff compares the same inputs; each step reports whether the greedy tokens agree.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..defaults import ATOL, OPSET, RTOL
from ..errors import InspectorError, option
from ..onnx.compare import OutputDiff, compare_outputs
from ..onnx.tolerances import Tolerances
from ..usermodel.devices import on_cpu
from ..util.progress import step as progress_step
from ..util.text import first_line

if TYPE_CHECKING:
    from ..loading import LoadedModel

TOKENS = "input_ids"


@dataclass(frozen=True)
class DecodeStep:
    step: int  # 0: the prompt (prefill); 1..N: one token each
    past_length: int  # cache entries each side was fed
    outputs: tuple[OutputDiff, ...]
    torch_tokens: list[int]  # the greedy next token of every sequence in the batch
    onnxruntime_tokens: list[int]

    @property
    def tokens_agree(self) -> bool:
        return self.torch_tokens == self.onnxruntime_tokens

    def __bool__(self) -> bool:
        return self.tokens_agree and all(self.outputs)

    def to_dict(self) -> dict:
        return {
            "step": self.step,
            "past_length": self.past_length,
            "torch_tokens": self.torch_tokens,
            "onnxruntime_tokens": self.onnxruntime_tokens,
            "tokens_agree": self.tokens_agree,
            "outputs": [diff.to_dict() for diff in self.outputs],
        }


@dataclass
class DecodeReport:
    """Truthy when every step's outputs are within tolerance and every greedy token agrees."""

    model: str
    tolerances: Tolerances
    steps: list[DecodeStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(self.steps)

    @property
    def token_agreement(self) -> float:
        """The share of steps whose greedy tokens agree on every sequence."""
        return sum(s.tokens_agree for s in self.steps) / len(self.steps) if self.steps else 1.0

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "model": self.model,
            "atol": self.tolerances.atol,
            "rtol": self.tolerances.rtol,
            "tolerances": self.tolerances.to_dict(),
            "decode_steps": len(self.steps) - 1,
            "token_agreement": self.token_agreement,
            "steps": [step.to_dict() for step in self.steps],
            "notes": self.notes,
        }

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        agreed = sum(s.tokens_agree for s in self.steps)
        lines = [
            f"{verdict} | {self.model}: prefill + {len(self.steps) - 1} greedy steps, cache fed "
            f"back; greedy tokens agree on {agreed}/{len(self.steps)} steps "
            f"({self.tolerances.describe()})",
            f"{'step':>6}  {'past':>5}  {'worst output':<16} {'max abs diff':>12}  "
            f"{'mismatched':>10}  tokens",
        ]
        for step in self.steps:
            worst = max(step.outputs, key=lambda d: (d.mismatched, d.max_abs_diff))
            label = "prefill" if step.step == 0 else str(step.step)
            tokens = (
                "agree"
                if step.tokens_agree
                else (f"differ: {step.torch_tokens} vs {step.onnxruntime_tokens}")
            )
            mismatched = sum(d.mismatched for d in step.outputs)
            lines.append(
                f"{label:>6}  {step.past_length:>5}  {worst.name:<16} "
                f"{worst.max_abs_diff:>12.3g}  {mismatched:>10}  {tokens}"
            )
        return "\n".join(lines + self.notes)


def verify_decode(
    loaded: LoadedModel, steps: int, *, atol=ATOL, rtol=RTOL, opset: int = OPSET
) -> DecodeReport:
    """Export `loaded`'s decode step with its cache, then run the prompt and `steps` greedy steps
    in PyTorch and onnxruntime, each fed its own cache; every step's logits and cache compared.
    `atol` and `rtol` are what verify() takes (numbers, or per-output dicts: `logits`,
    `present.K`)."""
    import torch

    if steps < 1:
        raise InspectorError(f"{option('--decode-steps', 'steps', steps)}: give 1 or more steps")
    tolerances = Tolerances.of(atol, rtol)
    loaded = on_cpu(loaded)  # both loops on the CPU, where onnxruntime runs
    prompt, mask = _prompt(loaded)
    step = _CacheStep(loaded.module, loaded.spec)
    with torch.no_grad():
        empty = step.empty_cache(prompt, mask)
    tolerances.check_names(_output_names(len(empty)), "the decode step")
    report = DecodeReport(loaded.spec, tolerances)
    with tempfile.TemporaryDirectory(prefix="inspector-decode-") as folder:
        with progress_step(f"exporting {loaded.spec}'s decode step (its cache in and out)"):
            path = _export(step, prompt, mask, empty, Path(folder) / "decode_step.onnx", opset)
        with progress_step("checking the decode step and opening it in onnxruntime"):
            session = _session(path)
        _run_loop(step, session, prompt, mask, empty, steps, report)
        del session
    return report


def _decoding() -> str:
    """The feature as its caller asked for it: the flag, or the function."""
    return option("--decode-steps", "verify_decode")


def _prompt(loaded: LoadedModel):
    """The example's token ids (seeded, in the range given) and an all-ones attention mask."""
    import torch

    inputs = loaded.first_inputs()
    ids = inputs.kwargs.get(TOKENS)
    if ids is None and len(inputs.args) == 1:
        ids = inputs.args[0]
    if not isinstance(ids, torch.Tensor) or ids.dtype not in (torch.int64, torch.int32):
        raise InspectorError(
            f"{loaded.spec}: {_decoding()} needs a causal LM's token ids: pass "
            + option(
                "--input input_ids=1x8:int64:0..VOCAB", "inputs={'input_ids': '1x8:int64:0..VOCAB'}"
            )
        )
    ids = ids.to(torch.int64)
    if ids.ndim != 2:
        raise InspectorError(
            f"{loaded.spec}: {_decoding()} needs token ids of shape BATCHxLENGTH, got "
            f"{list(ids.shape)}"
        )
    return ids, torch.ones_like(ids)


class _CacheStep:
    """One forward of a transformers causal LM with its cache as flat tensors: (input_ids,
    attention_mask, *past) -> (logits, *present), past and present a layer's keys then values."""

    def __init__(self, model, spec: str):
        import torch

        self.model, self.spec = model, spec
        self.module = _StepModule(model)
        self.torch = torch

    def empty_cache(self, ids, mask) -> list:
        """A cache of length 0 shaped like the model's own: its prefill's cache, cut to nothing."""
        try:
            present = self.module(ids, mask)[1:]
        except Exception as error:  # not a transformers causal LM: forward takes none of these
            raise InspectorError(
                f"{self.spec}: {_decoding()} needs a transformers causal LM (forward(input_ids, "
                f"attention_mask, past_key_values, use_cache) returning logits and its cache): "
                f"{first_line(error)}"
            ) from error
        if not present:
            raise InspectorError(
                f"{_decoding()} needs a model that returns its cache (transformers' "
                "past_key_values, use_cache=True)"
            )
        return [tensor[..., :0, :].contiguous() for tensor in present]

    def __call__(self, ids, mask, past: list) -> list:
        with self.torch.no_grad():
            return list(self.module(ids, mask, *past))


def _step_module_class():
    import torch

    class StepModule(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, *past):
            cache = {_cache_argument(self.model): _cache_of(self.model, past)}
            output = self.model(
                input_ids=input_ids, attention_mask=attention_mask, use_cache=True, **cache
            )
            present = output.get("past_key_values", output.get("cache"))
            return (output.logits, *_flat_cache(present))

    return StepModule


def _cache_argument(model) -> str:
    """transformers renames past_key_values to cache (5.x warns on the old name)."""
    import inspect

    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in parameters else "past_key_values"


def _output_names(count: int) -> list[str]:
    return ["logits", *(f"present.{k}" for k in range(count))]


def _StepModule(model):
    return _step_module_class()(model).eval()


def _cache_of(model, past):
    """transformers' DynamicCache holding the flat tensors (None for the prompt's first run)."""
    if not past:
        return None
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    for layer in range(len(past) // 2):
        cache.update(past[2 * layer], past[2 * layer + 1], layer)
    return cache


def _flat_cache(cache) -> list:
    if cache is None:
        return []
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [tensor for layer in layers for tensor in (layer.keys, layer.values)]
    return [tensor for pair in cache for tensor in pair]  # a legacy tuple of (key, value)


def _export(step: _CacheStep, prompt, mask, empty: list, path: Path, opset: int) -> Path:
    """The step traced on a short cache (every length a dynamic axis), so one graph runs the
    prompt (an empty cache) and every later step."""
    import torch

    from ..export.noise import quiet

    dim = torch.export.Dim.DYNAMIC
    past = [_grown(tensor, 3) for tensor in empty]
    ids, extended = prompt[:, :2], torch.ones(prompt.shape[0], 5, dtype=torch.int64)
    shapes = ({0: dim, 1: dim}, {0: dim, 1: dim}, tuple({0: dim, 2: dim} for _ in past))
    names = range(len(past))
    try:
        with quiet():
            torch.onnx.export(
                step.module,
                (ids, extended, *past),
                str(path),
                dynamo=True,
                opset_version=opset,
                dynamic_shapes=shapes,
                input_names=["input_ids", "attention_mask", *(f"past.{k}" for k in names)],
                output_names=["logits", *(f"present.{k}" for k in names)],
            )
    except Exception as error:
        raise InspectorError(
            f"exporting the decode step (the model with its cache) failed: {first_line(error)}"
        ) from error
    return path


def _grown(tensor, length: int):
    """A cache tensor of `length` entries along its sequence axis, seeded."""
    import torch

    generator = torch.Generator().manual_seed(length)
    shape = (*tensor.shape[:-2], length, tensor.shape[-1])
    return torch.randn(shape, generator=generator, dtype=tensor.dtype)


def _session(path: Path):
    from ..onnx.files import check_onnx_file
    from ..onnx.runtime import open_session

    check_onnx_file(path)
    return open_session(path, "the decode step")


def _run_loop(step: _CacheStep, session, prompt, mask, empty, steps: int, report) -> None:
    import torch

    from ..onnx.runtime import run_session

    names = _output_names(len(empty))
    ids, torch_past = prompt, list(empty)
    ort_past = [tensor.numpy() for tensor in empty]
    for index in range(steps + 1):
        past_length = torch_past[0].shape[-2]
        mask = torch.ones(ids.shape[0], past_length + ids.shape[1], dtype=torch.int64)
        label = "the prompt" if index == 0 else f"greedy step {index} of {steps}"
        with progress_step(f"running {label} in PyTorch and onnxruntime"):
            expected = step(ids, mask, torch_past)
            feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
            feeds.update({f"past.{k}": array for k, array in enumerate(ort_past)})
            actual = run_session(session, feeds, "the decode step")
        diffs, notes = compare_outputs(
            names, [t.numpy() for t in expected], actual, tolerances=report.tolerances
        )
        report.notes.extend(f"step {index}: {note}" for note in notes)
        torch_tokens = expected[0][:, -1].argmax(-1)
        ort_tokens = actual[0][:, -1].argmax(-1).tolist()
        report.steps.append(
            DecodeStep(index, past_length, diffs, torch_tokens.tolist(), ort_tokens)
        )
        ids, torch_past, ort_past = torch_tokens[:, None], expected[1:], actual[1:]
