"""inspector.show: a model's graph drawn by Netron, inline in a notebook, with no server left behind.

Netron draws in headless Chromium as `inspector render` does (inspector.netron.render); the image
stays in memory and shows as the cell's output through `_repr_svg_` or `_repr_png_`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .defaults import GRAPH, RENDER_TIMEOUT
from .errors import InspectorError
from .util.files import write_atomically
from .util.html import short_repr
from .util.inductor import inductor_cache_removed

if TYPE_CHECKING:
    from torch import nn

    from .loading import LoadedModel

FORMATS = ("svg", "png")


@dataclass(frozen=True)
class Drawing:
    """A drawn graph: its SVG (text, as bytes) or PNG, shown inline by Jupyter; `save(path)`."""

    name: str
    format: str
    data: bytes = field(repr=False)
    width: int
    height: int
    nodes: int
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        unit = "px" if self.format == "png" else "CSS px"
        return short_repr(
            "Drawing",
            f"{self.name}: {self.nodes} nodes, {self.width}x{self.height} {unit} {self.format}",
        )

    def _repr_svg_(self) -> str | None:
        return self.data.decode("utf-8") if self.format == "svg" else None

    def _repr_png_(self) -> bytes | None:
        return self.data if self.format == "png" else None

    def save(self, path) -> Path:
        """Write the image to `path` (atomically) and return it."""
        path = Path(path)
        write_atomically(path, self.data)
        return path


@inductor_cache_removed()  # torch._dynamo, imported on the way, makes torch's cache folder
def show(
    model_or_file: str | os.PathLike[str] | LoadedModel | nn.Module,
    depth: int | None = None,
    module: str | list[str] | tuple[str, ...] | None = None,
    *,
    format: str = "svg",
    full: bool = False,
    graph: str = GRAPH,
    timeout: float = RENDER_TIMEOUT,
    use_cache: bool = True,
) -> Drawing:
    """Draw `model_or_file` (an .onnx path, a MODEL spec, a LoadedModel or an nn.Module) with
    Netron; as a notebook cell's last expression the drawing shows inline.

    Args:
        model_or_file: an .onnx file, a MODEL spec, a LoadedModel or an nn.Module (exported
            first, through the export cache unless `use_cache` is False).
        depth: draw every module this many levels below the root as one node.
        module: a module path such as "features.4", or several: draw only their nodes.
        format: "svg" or "png".
        full: draw every node even past the size where the graph is drawn collapsed.
        graph: the graph a model is exported as ("authored" or "optimized").
        timeout: seconds to wait for Chromium and Netron to draw.
        use_cache: export through the export cache.

    Returns:
        A Drawing, shown inline as a notebook cell's last expression.
    """
    from .netron.drawable import drawable
    from .netron.render import find_chromium, render

    if format not in FORMATS:
        raise InspectorError(f"format {format!r}: choose svg or png")
    modules = [module] if isinstance(module, str) else list(module or ())
    find_chromium()
    with (
        _onnx_file(model_or_file, graph, use_cache) as (path, name),
        drawable(path, name=name, modules=modules, depth=depth, full=full) as drawing,
        tempfile.TemporaryDirectory(prefix="inspector-show-") as folder,
    ):
        for note in drawing.notes:
            print(f"inspector: note: {note}", file=sys.stderr, flush=True)
        image = Path(folder) / f"graph.{format}"
        result = render(drawing.path, image, timeout=timeout, name=drawing.name)
        data = image.read_bytes()
    return Drawing(
        drawing.name, format, data, result.width, result.height, result.nodes, drawing.notes
    )


@contextlib.contextmanager
def _onnx_file(source, graph: str, use_cache: bool) -> Iterator[tuple[Path, str]]:
    """(an .onnx path, the name Netron shows): the file given, or the model exported (cached)."""
    from .netron.drawable import model_file_name

    if isinstance(source, (str, Path)) and str(source).lower().endswith(".onnx"):
        yield Path(source), Path(source).name
        return
    from .export import exported_model
    from .export.exporter import make_export_options
    from .loading import as_loaded

    if isinstance(source, Path):
        source = str(source)
    loaded = as_loaded(source, caller="show")
    options = make_export_options(graph=graph)
    with exported_model(loaded, options=options, use_cache=use_cache) as path:
        yield path, model_file_name(loaded.spec)
