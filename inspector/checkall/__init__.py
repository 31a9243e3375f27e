"""check-all: export and verify every registered model (or one CI shard of them) with one verdict.

The models are the built-in registry's, or exactly those a user's zoo (a FILE.py or
package.module) registers with `inspector.register_model`. With jobs > 1 they are checked in
worker processes (inspector.checkall.workers), the cores split between them.

Registry models are untrained, so each one's BatchNorms get seeded statistics first (see
give_batchnorm_statistics): the check then exercises every layer instead of near-identities.
"""

from __future__ import annotations

import functools
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import InspectorError, option, was_interrupted
from ..util import html
from ..util.html import short_repr
from ..util.inductor import inductor_cache_removed
from ..util.progress import progress_bar
from ..util.text import one_line, plain_table, printable

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
    seconds: float | None = None  # the whole check: load, export (or cache), verify
    details: str | None = None  # a failed verification's report: its per-output diff table

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
            "seconds": self.seconds,
            "details": self.details,
        }


@dataclass
class CheckAllReport:
    """Every checked model; truthy when all of them passed."""

    checks: list[ModelCheck] = field(default_factory=list)
    shard: tuple[int, int] | None = None
    seconds: float | None = None

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
        if not self.checks:
            return self.headline()
        notes = [f"  {note}" for note in self._notes()]
        return "\n".join([_table(self.checks), self.headline(), *notes])

    def __repr__(self) -> str:
        failed = sum(not check.passed for check in self.checks)
        verdict = "PASSED" if self.passed else "FAILED"
        return short_repr(
            "CheckAllReport",
            f"{verdict} {html.counted(len(self.checks), 'model')}, {failed} failed",
        )

    def _repr_html_(self) -> str:
        columns, rows = _rows(self.checks)
        return html.block(
            self.headline(), html.table(columns, rows, right=columns[1:4]), notes=self._notes()
        )

    def headline(self) -> str:
        where = f" (shard {self.shard[0]}/{self.shard[1]})" if self.shard else ""
        if not self.checks:
            return f"PASSED | no models to check{where}"
        # Names and messages come from a user's zoo and its models: escaped, so none can forge a
        # line (or hold a lone surrogate that no terminal encoding can print).
        failed = [printable(check.model) for check in self.checks if not check.passed]
        total = len(self.checks)
        if not failed:
            return f"PASSED | all {total} model(s) export and verify{where}"
        return f"FAILED | {len(failed)} of {total} model(s) fail{where}: {', '.join(failed)}"

    def _notes(self) -> list[str]:
        notes = [f"{check.model}: {check.error}" for check in self.checks if check.error]
        notes += [f"{check.model}: warning: {w}" for check in self.checks for w in check.warnings]
        return [printable(note) for note in notes]  # the zoo's names, the models' messages


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'2/4' -> (2, 4): the 2nd of 4 shards, 1-based as CI matrices count."""
    if text is None:
        return None
    match = _SHARD.match(text)
    if not match:
        raise InspectorError(f"{_shard(text)}: write it as I/N, e.g. 1/4")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise InspectorError(f"{_shard(text)}: I must be between 1 and N (N >= 1)")
    return index, count


def _shard(text: str) -> str:
    return option(f"--shard {text!r}", f"shard {text!r}")


def import_zoo(source: str) -> list[str]:
    """Import a user's zoo (FILE.py or package.module): the names of the models it registers.

    Those registered while it is imported, and, if it had been imported before, those whose
    builder it defines.
    """
    from .. import models
    from ..usermodel.importing import import_code

    with models.recording_registrations() as recorded:
        module = import_code(source)
    names = set(recorded) | {
        name
        for name in models.list_models()
        if models.get_entry(name).builder.__module__ == module.__name__
    }
    if not names:
        raise InspectorError(
            f"{option(f'--models {source}', f'zoo={source!r}')} registers no model: decorate its builders with "
            "@inspector.register_model(description=..., input_shape=...)"
        )
    return sorted(names)


def select_models(
    pattern: str | None = None, shard: tuple[int, int] | None = None, among=None
) -> list[str]:
    """Registered names (only those `among`, if given; matching `pattern`), dealt round-robin so
    each shard gets big and small."""
    from .. import models

    names = models.list_models(pattern)
    if among is not None:
        names = [name for name in names if name in set(among)]
    if pattern and not names:
        given = option(f"--pattern {pattern!r}", f"pattern={pattern!r}")
        raise InspectorError(f"{given} matches no registered model; see 'inspector list'")
    if shard:
        index, count = shard
        if index > len(names):  # a CI matrix wider than the zoo: say so rather than pass vacuously
            given = option(f"--shard {index}/{count}", f"shard={shard!r}")
            raise InspectorError(
                f"{given} is empty: there are only {len(names)} model(s) to check; use at most "
                f"{len(names)} shard(s)"
            )
        names = names[index - 1 :: count]
    return names


@inductor_cache_removed()  # torch._dynamo, imported on the way, makes torch's cache folder
def check_all(
    names: list[str],
    *,
    shard=None,
    progress: bool = False,
    use_cache: bool = True,
    jobs: int = 1,
    zoo: str | None = None,
    timeout: float | None = None,
    **verify_options,
):
    """Export (or take from the export cache) and verify each model; a failure never stops the rest.

    With the cache, a repeated check-all (in CI, say) re-exports only the models that changed.
    With jobs > 1, models are checked in that many worker processes, which import `zoo` (the
    --models the names come from) first; the report keeps the order of `names`. With `timeout`
    (seconds per model), every model is checked in a worker, with jobs 1 too: a model that hangs,
    even in native code, or a worker the OS kills, is that model's failure and the rest go on.
    """
    report = CheckAllReport(shard=shard)
    start = time.perf_counter()
    check: Callable[[str], ModelCheck] = functools.partial(
        check_model, use_cache=use_cache, **verify_options
    )
    with progress_bar(progress, len(names), "check-all") as bar:
        if timeout or (jobs > 1 and len(names) > 1):
            report.checks = _check_in_workers(check, names, jobs, zoo, bar, timeout)
        else:
            for name in names:
                bar.describe(printable(f"exporting and verifying {name}"))
                report.checks.append(check(name))
                bar.advance()
                if was_interrupted():  # a library swallowed the KeyboardInterrupt; stop anyway
                    raise KeyboardInterrupt
    report.seconds = round(time.perf_counter() - start, 2)
    return report


def _check_in_workers(
    check, names: list[str], jobs: int, zoo: str | None, bar, timeout: float | None = None
) -> list:
    from .workers import run_in_workers

    running: list[str] = []

    def started(name: str) -> None:
        running.append(name)
        bar.describe(printable(f"exporting and verifying {', '.join(running)}"))

    def finished(name: str, _check) -> None:
        running.remove(name)
        bar.advance()
        if running:  # the last one done: no step left to name
            bar.describe(printable(f"exporting and verifying {', '.join(running)}"))

    threads = max(1, _usable_cores() // jobs)
    return run_in_workers(
        check,
        names,
        jobs=jobs,
        setup=prepare_worker,
        setup_args=(zoo, threads, _shippable_entries(names)),
        crashed=_crashed,
        started=started,
        finished=finished,
        timeout=timeout,
    )


def _shippable_entries(names: list[str]) -> dict:
    """The registry entries a worker may not find by importing the zoo (registered by code that
    ran in this process only, such as a test), where pickle can carry them."""
    import pickle

    from .. import models

    entries = {}
    for name in names:
        try:
            entries[name] = pickle.dumps(models.get_entry(name))
        except Exception:  # a lambda or a local class: the worker must find it by itself
            continue
    return entries


def prepare_worker(zoo: str | None, threads: int, entries: dict | None = None) -> None:
    """In a check-all worker: its share of the cores, for torch and onnxruntime; the user's zoo,
    and the entries this process registered that the zoo does not (pickled)."""
    import pickle

    import torch

    from .. import models
    from ..models._registry import _REGISTRY
    from ..onnx.runtime import set_default_threads

    torch.set_num_threads(threads)
    set_default_threads(threads)
    if zoo:
        import_zoo(zoo)
    known = set(models.list_models())
    for name, pickled in (entries or {}).items():
        if name in known:
            continue
        try:  # its builder's module may be one only the zoo's import could make
            _REGISTRY[name] = pickle.loads(pickled)
        except Exception:
            continue


def _crashed(name: str, reason: str) -> ModelCheck:
    if "stopped after" in reason:  # the worker ran past --timeout
        reason = f"timed out: {reason} (--timeout)"
    return ModelCheck(name, None, None, None, False, f"{reason} while checking it")


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_model(name: str, *, use_cache: bool = True, **verify_options) -> ModelCheck:
    from ..export.cache import exported_model
    from ..loading import load_model
    from ..usermodel.devices import on_cpu
    from ..verification import verify_onnx

    params = export_seconds = None
    start = time.perf_counter()
    try:
        loaded = on_cpu(load_model(name))  # a zoo's model on CUDA: one copy, one note
        give_batchnorm_statistics(loaded.module)
        params = sum(p.numel() for p in {id(p): p for p in loaded.module.parameters()}.values())
        export_start = time.perf_counter()
        with exported_model(loaded, use_cache=use_cache) as path:
            export_seconds = round(time.perf_counter() - export_start, 2)  # ~0 on a cache hit
            report = verify_onnx(loaded, path, **verify_options)
    except Exception as error:  # KeyboardInterrupt still stops the sweep
        reason = one_line(error)
        if not isinstance(error, InspectorError):
            reason = f"{type(error).__name__}: {reason}"
        seconds = round(time.perf_counter() - start, 2)
        return ModelCheck(name, params, export_seconds, None, False, reason, seconds=seconds)
    worst = max((d.max_abs_diff for run in report.runs for d in run.outputs), default=0.0)
    return ModelCheck(
        name,
        params,
        export_seconds,
        worst,
        report.passed,
        warnings=tuple(report.warnings),
        seconds=round(time.perf_counter() - start, 2),
        details=None if report.passed else str(report),
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
                and layer.running_mean is not None
                and layer.running_var is not None
            ):
                layer.running_mean.normal_(0.0, 0.5, generator=generator)
                layer.running_var.uniform_(0.5, 2.0, generator=generator)
                if layer.affine:
                    layer.weight.uniform_(0.5, 1.5, generator=generator)
                    layer.bias.normal_(0.0, 0.5, generator=generator)
    return module


def _table(checks: list[ModelCheck]) -> str:
    columns, rows = _rows(checks)
    return plain_table(columns, rows, right=set(columns[1:4]))


def _rows(checks: list[ModelCheck]) -> tuple[list[str], list[list[str]]]:
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
    return columns, rows
