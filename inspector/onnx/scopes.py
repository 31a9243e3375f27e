"""Which PyTorch module each ONNX node came from, read from what torch.onnx records (no torch).

The dynamo exporter writes the module path of every node into its metadata
(`pkg.torch.onnx.name_scopes`, root first, the operator last) with the class of each level beside it
(`pkg.torch.onnx.class_hierarchy`); the TorchScript exporter writes the path into node names such as
`/features/features.0/conv/Conv`. Excerpts, collapsed views, diffs and --localize all start here.
"""

from __future__ import annotations

import ast

NAME_SCOPES = "pkg.torch.onnx.name_scopes"
CLASS_HIERARCHY = "pkg.torch.onnx.class_hierarchy"


def node_scopes(node) -> list[str]:
    """The qualified module names a node sits in, outermost first ("features", "features.0", ...)."""
    scopes = _metadata_list(node, NAME_SCOPES)
    if scopes is not None:
        # The first entry is the root module (""), the last the operator itself.
        return [scope for scope in scopes[1:-1] if scope]
    if node.name.startswith("/"):
        return _torchscript_scopes(node.name)
    return []


def node_module(node) -> str:
    """The innermost module path of a node ("" for a node of the root module or of no module)."""
    scopes = node_scopes(node)
    return scopes[-1] if scopes else ""


def module_types(node) -> dict[str, str]:
    """Module path -> its class name ("features.4" -> "InvertedResidual"), as far as recorded."""
    scopes = _metadata_list(node, NAME_SCOPES)
    classes = _metadata_list(node, CLASS_HIERARCHY)
    if not scopes or not classes or len(scopes) != len(classes):
        return {}
    return {
        scope: str(cls).rsplit(".", 1)[-1]
        for scope, cls in zip(scopes[1:-1], classes[1:-1], strict=True)
        if scope
    }


def has_scopes(graph) -> bool:
    return any(node_scopes(node) for node in graph.node)


def module_paths(graph) -> list[str]:
    """Every module path some node of the graph sits in, in the order the graph first uses them."""
    seen: dict = {}
    for node in graph.node:
        for scope in node_scopes(node):
            seen.setdefault(scope, None)
    return list(seen)


def _metadata_list(node, key: str) -> list | None:
    for prop in node.metadata_props:
        if prop.key == key:
            return _string_list(prop.value)
    return None


def _string_list(text: str) -> list:
    """The list a metadata value writes with repr(): ['', 'features', 'conv2d']."""
    # The common case without ast (a diff reads every node's): plain names in single quotes.
    if text.startswith("['") and text.endswith("']") and '"' not in text and "\\" not in text:
        return text[2:-2].split("', '")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return []
    return value if isinstance(value, list) else []


def _torchscript_scopes(node_name: str) -> list[str]:
    # "/features/features.1/block/block.0/block.0.2/Relu": a Sequential's children carry the
    # Sequential's own name ("block.0" in "block"), an attribute only its own ("block"). A part that
    # extends the part before it extends that module's path; any other is a child of it.
    scopes: list[str] = []
    previous = ""
    for part in node_name.strip("/").split("/")[:-1]:
        parent = scopes[-1] if scopes else ""
        if previous and part.startswith(previous + "."):
            scopes.append(parent + part[len(previous) :])
        else:
            scopes.append(f"{parent}.{part}" if parent else part)
        previous = part
    return scopes
