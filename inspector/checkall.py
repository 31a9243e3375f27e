"""check-all: export and verify every registered model (or one CI shard of them) with one verdict.

Registry models are untrained, so each one's BatchNorms get seeded statistics first (see
give_batchnorm_statistics): the check then exercises every layer instead of near-identities.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

from .errors import InspectorError, was_interrupted
from .progress import progress_bar
from .text import one_line, plain_table

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class ModelCheck:
    """One model's line in the table: exported and verified, or the reason it could not be."""

    model: str
    params: int | None
    export_seconds: float | None
    max_abs_diff: float | None
    passed: bool
    error: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        return "PASSED" if self.passed else "FAILED"

    def to_dict(self) -> dict:
        diff = self.max_abs_diff
        return {
            "model": self.model,
            "params": self.params,
            "export_seconds": self.export_seconds,
            "max_abs_diff": diff if diff is None or math.isfinite(diff) else None,
            "passed": self.passed,
            "verdict": self.verdict,
            "error": self.error,
            "warnings": list(self.warnings),
        }


@dataclass
class CheckAllReport:
    """Every checked model; truthy when all of them passed."""

    checks: list[ModelCheck] = field(default_factory=list)
    shard: tuple[int, int] | None = None

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict:
        shard = f"{self.shard[0]}/{self.shard[1]}" if self.shard else None
        return {
            "passed": self.passed,
            "shard": shard,
            "models": [check.to_dict() for check in self.checks],
        }

    def __str__(self) -> str:
        where = f" (shard {self.shard[0]}/{self.shard[1]})" if self.shard else ""
        if not self.checks:
            return f"PASSED | no models to check{where}"
        failed = [check.model for check in self.checks if not check.passed]
        total = len(self.checks)
        headline = (
            f"PASSED | all {total} model(s) export and verify{where}"
            if not failed
            else f"FAILED | {len(failed)} of {total} model(s) fail{where}: {', '.join(failed)}"
        )
        notes = [f"  {check.model}: {check.error}" for check in self.checks if check.error]
        notes += [f"  {check.model}: warning: {w}" for check in self.checks for w in check.warnings]
        return "\n".join([_table(self.checks), headline, *notes])


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'2/4' -> (2, 4): the 2nd of 4 shards, 1-based as CI matrices count."""
    if text is None:
        return None
    match = _SHARD.match(text)
    if not match:
        raise InspectorError(f"--shard {text!r}: write it as I/N, e.g. 1/4")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise InspectorError(f"--shard {text!r}: I must be between 1 and N (N >= 1)")
    return index, count


def select_models(pattern: str | None = None, shard: tuple[int, int] | None = None) -> list[str]:
    """Registered names (matching `pattern`), dealt round-robin so each shard gets big and small."""
    from . import models

    names = models.list_models(pattern)
    if pattern and not names:
        raise InspectorError(
            f"--pattern {pattern!r} matches no registered model; see 'inspector list'"
        )
    if shard:
        index, count = shard
        names = names[index - 1 :: count]
    return names


def check_all(
    names: list[str],
    *,
    shard=None,
    progress: bool = False,
    use_cache: bool = True,
    **verify_options,
):
    """Export (or take from the export cache) and verify each model; a failure never stops the rest.

    With the cache, a repeated check-all (in CI, say) re-exports only the models that changed.
    """
    report = CheckAllReport(shard=shard)
    with progress_bar(progress, len(names), "check-all") as bar:
        for name in names:
            bar.describe(f"exporting and verifying {name}")
            report.checks.append(check_model(name, use_cache=use_cache, **verify_options))
            bar.advance()
            if was_interrupted():  # a library swallowed the KeyboardInterrupt; stop all the same
                raise KeyboardInterrupt
    return report


def check_model(name: str, *, use_cache: bool = True, **verify_options) -> ModelCheck:
    from .export.cache import exported_model
    from .loading import load_model
    from .verification import verify_onnx

    params = export_seconds = None
    try:
        loaded = load_model(name)
        give_batchnorm_statistics(loaded.module)
        params = sum(p.numel() for p in {id(p): p for p in loaded.module.parameters()}.values())
        start = time.perf_counter()
        with exported_model(loaded, use_cache=use_cache) as path:
            export_seconds = round(time.perf_counter() - start, 2)  # near 0 on a cache hit
            report = verify_onnx(loaded, path, **verify_options)
    except Exception as error:  # KeyboardInterrupt still stops the sweep
        reason = one_line(error)
        if not isinstance(error, InspectorError):
            reason = f"{type(error).__name__}: {reason}"
        return ModelCheck(name, params, export_seconds, None, False, reason)
    worst = max((d.max_abs_diff for run in report.runs for d in run.outputs), default=0.0)
    return ModelCheck(
        name, params, export_seconds, worst, report.passed, warnings=tuple(report.warnings)
    )


def give_batchnorm_statistics(module, seed: int = 0):
    """Seeded running statistics and affine parameters for every BatchNorm of an untrained model.

    With the defaults (mean 0, variance 1, weight 1, bias 0) a BatchNorm is nearly the identity, so
    an export that dropped or mangled it would still verify; and MobileNetV3's outputs shrink to
    about 1e-9, below atol, where no difference can fail the check.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if (
                isinstance(layer, torch.nn.modules.batchnorm._BatchNorm)
                and layer.track_running_stats
            ):
                layer.running_mean.normal_(0.0, 0.5, generator=generator)
                layer.running_var.uniform_(0.5, 2.0, generator=generator)
                if layer.affine:
                    layer.weight.uniform_(0.5, 1.5, generator=generator)
                    layer.bias.normal_(0.0, 0.5, generator=generator)
    return module


def _table(checks: list[ModelCheck]) -> str:
    rows = [
        [
            check.model,
            "-" if check.params is None else f"{check.params:,}",
            "-" if check.export_seconds is None else f"{check.export_seconds:.1f}",
            "-" if check.max_abs_diff is None else f"{check.max_abs_diff:.3g}",
            check.verdict,
        ]
        for check in checks
    ]
    columns = ["model", "params", "export s", "max abs diff", "verdict"]
    return plain_table(columns, rows, right={"params", "export s", "max abs diff"})
