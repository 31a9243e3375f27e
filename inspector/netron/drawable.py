"""What Netron is given to draw: the model itself, an excerpt of some of its modules, or a view
collapsed to a depth of modules, saved under the model's own name (Netron shows the file name as
its title, and the export cache's file names are hashes).

A graph past LARGE_GRAPH_NODES nodes can take Netron's layout minutes (and its picture is a strip
nobody reads), so unless `full` is asked for it is drawn collapsed to the deepest depth that fits,
and the notes say so.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..defaults import LARGE_GRAPH_NODES
from ..onnx.files import check_onnx_file_once, load_onnx, vouch_for

SINGLE_FILE_LIMIT = 1_800_000_000  # past this the weights go to a .onnx.data file beside it


@dataclass(frozen=True)
class Drawable:
    """The file to draw, the name Netron shows for it, and what was done to it (in words)."""

    path: Path
    name: str
    notes: tuple[str, ...] = ()


def model_file_name(spec: str) -> str:
    """The file name Netron shows for a MODEL spec or an .onnx path: `name.onnx`."""
    if spec.lower().endswith(".onnx"):
        return Path(spec).name
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", spec.rsplit(":", 1)[-1]).strip(".")
    return f"{stem or 'model'}.onnx"


@contextlib.contextmanager
def drawable(
    model_path,
    *,
    name: str | None = None,
    modules: list[str] | tuple = (),
    depth: int | None = None,
    full: bool = False,
    limit: int | None = None,
) -> Iterator[Drawable]:
    """Yield what to draw for the ONNX file at `model_path`; remove any derived file.

    `modules` cuts those modules out, `depth` collapses to that depth; a graph past `limit` nodes
    (default LARGE_GRAPH_NODES) is collapsed unless `full`.

    The file is checked as render and view check it (the checker, then onnxruntime's load), once:
    they find it vouched for afterwards.
    """
    import onnx

    check_onnx_file_once(model_path)
    model = onnx.load(str(model_path), load_external_data=False)  # the graph: enough to decide
    name = name or Path(model_path).name
    limit = limit or LARGE_GRAPH_NODES
    depth, notes = _depth_to_draw(model.graph, name, modules, depth, full, limit)
    if not modules and depth is None:
        yield Drawable(Path(model_path), name, notes)
        return
    derived, derived_name = _derived(model_path, name, modules, depth)
    folder = Path(tempfile.mkdtemp(prefix="inspector-view-"))
    try:
        yield Drawable(_save(derived, folder / derived_name), derived_name, notes)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _depth_to_draw(graph, name: str, modules, depth, full: bool, limit: int):
    """(--depth to collapse at or None, notes): the one asked for, or a fallback for huge graphs."""
    from ..onnx.collapse import collapsed_size, deepest_depth_within
    from ..onnx.scopes import has_scopes

    size = len(graph.node)
    if depth is not None or modules or full or size <= limit:
        return depth, ()
    if not has_scopes(graph):
        return None, (
            f"{name} has {size:,} nodes and records no module names to collapse it by; Netron "
            "may need minutes (raise --timeout if it runs out)",
        )
    fallback = deepest_depth_within(graph, limit)
    if fallback is None:
        return None, (f"{name} has {size:,} nodes, too many to collapse below {limit:,}",)
    return fallback, (
        f"{name} has {size:,} nodes, past {limit:,} (where Netron switches to its large-graph "
        f"layout); drawing it collapsed at --depth {fallback}, "
        f"{collapsed_size(graph, fallback):,} nodes (--full draws every node)",
    )


def _derived(model_path, name: str, modules, depth):
    """(the excerpt and/or collapsed model, its file name)."""
    from ..onnx.collapse import collapse
    from ..onnx.subgraph import cut_modules

    model = load_onnx(model_path, external_data=True)
    stem = name[: -len(".onnx")] if name.endswith(".onnx") else name
    parts = [stem]
    if modules:
        model = cut_modules(model, list(modules), label=name)
        parts.append("_".join(modules))
    if depth is not None:
        model = collapse(model, depth, label=name)
        parts.append(f"depth{depth}")
    model.graph.name = stem  # Netron names the graph by it when a function is opened
    return model, ".".join(parts) + ".onnx"


def _save(model, path: Path) -> Path:
    """Write a model we derived from a checked one; check it in memory, then trust the file."""
    import onnx

    if model.ByteSize() > SINGLE_FILE_LIMIT:
        onnx.save_model(model, str(path), save_as_external_data=True, location=path.name + ".data")
        return path  # too big to check in memory: render checks the file itself
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    vouch_for(path)
    return path
