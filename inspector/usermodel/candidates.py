"""What a model file offers: its nn.Module classes and the functions that build one, read from its
source (ast) without running it, to name them when a spec leaves out the `:attr`."""

from __future__ import annotations

import ast
from pathlib import Path

from ..errors import InspectorError

MODULE_BASES = {"Module", "Sequential", "ModuleList", "ModuleDict"}


def missing_attr_error(spec: str) -> InspectorError:
    """`path/file.py` without `:attr`: say so, listing what the file could name."""
    path = Path(spec)
    if not path.is_file():
        return InspectorError(f"{spec}: no such file (a model file is written path/file.py:ATTR)")
    names = model_candidates(path)
    if names:
        return InspectorError(f"{spec} names no model: add :ATTR, one of {', '.join(names)}")
    return InspectorError(
        f"{spec} names no model: add :ATTR, the name of an nn.Module class or of a function that "
        "returns one (none found in the file)"
    )


def model_candidates(path: Path) -> list[str]:
    """Top-level nn.Module subclasses (also through other classes of the file), then functions
    that return one of them or a torch.nn module, in the file's order; [] if it does not parse."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return []
    classes = _module_classes(tree)
    factories = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and not node.name.startswith("_")
        and _builds_a_module(node, classes)
    ]
    return [name for name in classes if not name.startswith("_")] + factories


def _module_classes(tree: ast.Module) -> list[str]:
    found: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
            _last_name(base) in MODULE_BASES or _last_name(base) in found for base in node.bases
        ):
            found.append(node.name)
    return found


def _builds_a_module(function: ast.FunctionDef | ast.AsyncFunctionDef, classes: list[str]) -> bool:
    known = set(classes) | MODULE_BASES
    if function.returns is not None and _last_name(function.returns) in known:
        return True
    for node in ast.walk(function):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Call):
            callee = node.value.func
            if _last_name(callee) in set(classes) or _is_torch_nn(callee):
                return True
    return False


def _is_torch_nn(node: ast.expr) -> bool:
    """`nn.Linear(...)`, `torch.nn.Sequential(...)`: a module of torch.nn, by the usual spelling."""
    return isinstance(node, ast.Attribute) and (
        (isinstance(node.value, ast.Name) and node.value.id == "nn")
        or (isinstance(node.value, ast.Attribute) and node.value.attr == "nn")
    )


def _last_name(node: ast.expr) -> str | None:
    """`nn.Module` -> Module, `Net` -> Net, `"Net"` (a string annotation) -> Net."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.rpartition(".")[2]
    if isinstance(node, ast.Subscript):
        return _last_name(node.value)
    return None
