"""`inspector diff A B`: compare two models, each a MODEL (exported first) or an .onnx file.

The comparison itself is inspector.onnx.diff (no torch); this module turns the two sides into
ONNX files: a file as given, a MODEL exported with its own --graph and --exporter (from the export
cache when it can), so `diff mobilenet_v3_small mobilenet_v3_small --graph authored --graph
optimized` shows where BatchNormalization went.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .defaults import ATOL, EXPORTER, GRAPH, RTOL, SEEDS
from .errors import InspectorError
from .onnx.diff import diff_models
from .onnx.diff.diff_report import ModelDiff
from .util.inductor import inductor_cache_removed

if TYPE_CHECKING:
    from .loading import LoadedModel


@dataclass(frozen=True)
class Side:
    """One side of a diff: what to export or read, and how to export it."""

    source: Any  # a LoadedModel, a MODEL spec, or the path of an .onnx file
    graph: str = GRAPH
    exporter: str = EXPORTER

    @property
    def is_file(self) -> bool:
        return isinstance(self.source, (str, Path)) and str(self.source).lower().endswith(".onnx")

    def label(self, other: Side | None = None) -> str:
        """The file as given, or `spec (graph[, exporter])`, naming what tells the sides apart."""
        if self.is_file:
            return str(self.source)
        spec = self.source if isinstance(self.source, str) else self.source.spec
        options = [self.graph]
        if self.exporter != EXPORTER or (other is not None and other.exporter != self.exporter):
            options.append(self.exporter)
        return f"{spec} ({', '.join(options)})"


@inductor_cache_removed()  # torch._dynamo, imported on the way, makes torch's cache folder
def diff(
    a: str | os.PathLike[str] | LoadedModel,
    b: str | os.PathLike[str] | LoadedModel,
    *,
    graph: str | tuple[str, str] = GRAPH,
    exporter: str | tuple[str, str] = EXPORTER,
    run: bool = True,
    atol: float = ATOL,
    rtol: float = RTOL,
    seeds: int = SEEDS,
    use_cache: bool = True,
) -> ModelDiff:
    """Compare `a` with `b` (each an .onnx path, a MODEL spec or a LoadedModel): truthy if equal.

    Args:
        a: an .onnx file, a MODEL spec or a LoadedModel (a model is exported first).
        b: the same kinds, compared with `a`.
        graph: the graph a model is exported as: one for both sides, or a pair (A's, B's).
        exporter: the torch.onnx exporter: one for both sides, or a pair (A's, B's).
        run: also run both in onnxruntime and compare their outputs.
        atol: the absolute tolerance for weights and outputs.
        rtol: the relative tolerance for weights and outputs.
        seeds: seeded random inputs per batch size.
        use_cache: export through the export cache.

    Returns:
        A ModelDiff, truthy when the two are equal within the tolerances.
    """
    graphs, exporters = _pair(graph), _pair(exporter)
    side_a = Side(a, graphs[0], exporters[0])
    side_b = Side(b, graphs[1], exporters[1])
    with onnx_files(side_a, side_b, use_cache=use_cache) as (path_a, path_b):
        labels = (side_a.label(side_b), side_b.label(side_a))
        return diff_models(
            path_a, path_b, run=run, atol=atol, rtol=rtol, seeds=seeds, labels=labels
        )


@contextlib.contextmanager
def onnx_files(*sides: Side, use_cache: bool = True) -> Iterator[list[Path]]:
    """An .onnx path per side: the file given, or its model exported (temporary files removed)."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(_onnx_file(side, use_cache)) for side in sides]


@contextlib.contextmanager
def _onnx_file(side: Side, use_cache: bool) -> Iterator[Path]:
    if side.is_file:
        yield Path(side.source)
        return
    from .export import exported_model
    from .export.exporter import make_export_options
    from .loading import as_loaded

    loaded = as_loaded(side.source, caller="diff")
    # The cache keys every exporter's files apart, so either exporter's file can come from it.
    options = make_export_options(graph=side.graph, exporter=side.exporter)
    with exported_model(loaded, options=options, use_cache=use_cache) as path:
        yield path


def _pair(value) -> tuple:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise InspectorError(f"give one value or two (A's, B's), not {len(value)}")
        return tuple(value)
    return value, value
