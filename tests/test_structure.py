"""The package's shape: no import cycles (function-level imports included), ONNX code without torch,
the export code without the CLI. Read from the source with ast, so a lazy import counts too."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "inspector"


def _module_files() -> dict[str, Path]:
    files = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    for path in (ROOT / "models").glob("*.py"):  # installed as inspector.models
        name = "inspector.models" if path.stem == "__init__" else f"inspector.models.{path.stem}"
        files[name] = path
    return files


FILES = _module_files()


def _imports(name: str, path: Path) -> set[str]:
    """Every module `name` imports anywhere in its file, as absolute names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from . import models` names a module, not an attribute of the package
            submodules = {f"{base}.{a.name}" for a in node.names} & FILES.keys()
            found.update(submodules)
            if node.module or len(submodules) < len(node.names):
                found.add(base)
    return found


GRAPH = {name: _imports(name, path) for name, path in FILES.items()}


def _reaches(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in GRAPH.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_graph_was_read():
    assert "inspector.onnx.files" in GRAPH and "inspector.export.cache" in GRAPH
    assert "inspector.export.exporter" in GRAPH["inspector.export.cache"]


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_import_of_ours_names_a_module_that_exists(name):
    """A moved module leaves relative imports behind that only fail when their line runs; mypy
    cannot see them (it ignores missing imports for the untyped libraries)."""
    missing = {t for t in GRAPH[name] if t.split(".")[0] == "inspector" and t not in FILES}
    assert not missing, f"{name} imports modules that do not exist: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(FILES))
def test_no_import_cycle(name):
    """A module must not reach itself through its imports: the data flows one way."""
    internal = {target for target in _reaches(name) if target in FILES}
    assert name not in internal, f"{name} imports itself through: {sorted(internal)}"


@pytest.mark.parametrize("name", sorted(n for n in FILES if n.startswith("inspector.onnx")))
def test_onnx_code_never_reaches_torch(name):
    reached = _reaches(name)
    assert not {m for m in reached if m == "torch" or m.startswith("torch.")}, name
    assert not {m for m in reached if m.startswith("inspector.") and not _torch_free(m)}


def _torch_free(module: str) -> bool:
    allowed = ("inspector.onnx", "inspector.errors", "inspector.util")
    return module.startswith(allowed) or module in ("inspector.defaults", "inspector")


@pytest.mark.parametrize("name", sorted(n for n in FILES if n.startswith("inspector.export")))
def test_export_code_never_imports_the_cli(name):
    assert not any(m.startswith("inspector.cli") for m in _reaches(name)), name


def test_importing_every_onnx_module_leaves_torch_unloaded():
    """The same promise at run time: `verify FILE.onnx --data DIR` works without PyTorch."""
    modules = sorted(n for n in FILES if n.startswith("inspector.onnx"))
    code = "; ".join(f"import {m}" for m in modules) + "; import sys; print('torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


MAX_TOP_LEVEL_MODULES = 11  # each command's work in one place: a helper lives beside its command


def test_few_modules_at_the_top_level():
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_no_module_shadows_a_function_of_the_python_api():
    """Importing inspector.X sets the attribute X of the package: a module named like a function
    of the API (`inspector.diff`, `inspector.verify`) would replace the function once imported."""
    import inspector

    clashes = [
        name
        for name in inspector._API
        if (PACKAGE / f"{name}.py").exists() or (PACKAGE / name / "__init__.py").exists()
    ]
    assert not clashes


def test_every_package_is_installed():
    """A package missing from pyproject's list works from a checkout and is absent from the wheel."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {".".join(path.parent.relative_to(ROOT).parts) for path in PACKAGE.rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)


def _api_functions():
    import inspect

    import inspector

    for name in inspector._API:
        obj = getattr(inspector, name)
        if inspect.isfunction(obj):
            yield name, obj


@pytest.mark.parametrize("name", [name for name, _ in _api_functions()])
def test_the_public_functions_are_documented_as_torchinfo_does(name):
    """Every parameter annotated, and a docstring with Args: (each parameter) and Returns:."""
    import inspect

    import inspector

    function = getattr(inspector, name)
    parameters = inspect.signature(function).parameters
    assert not [p for p in parameters if parameters[p].annotation is inspect.Parameter.empty]
    assert inspect.signature(function).return_annotation is not inspect.Signature.empty
    doc = inspect.getdoc(function) or ""
    assert "\nArgs:\n" in doc and "\nReturns:\n" in doc, name
    args = doc.split("\nArgs:\n")[1].split("\n\n")[0]
    for parameter in parameters.values():
        star = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(parameter.kind.name, "")
        assert f"    {star}{parameter.name}: " in args, f"{name}: Args: misses {parameter.name}"


MAX_EXPORT_OPTIONS_MADE = 3  # the CLI, the one function the API's keywords go through, no other


def _export_options_made() -> list[str]:
    """Where inspector's code makes an ExportOptions: a call of the class, or a copy of an options
    object with fields changed (dataclasses.replace), which would be checked again."""
    made = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            function = ast.unparse(node.func)
            first = ast.unparse(node.args[0]) if node.args else ""
            copied = function.endswith("replace") and "options" in first
            if function.split(".")[-1] == "ExportOptions" or copied:
                made.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return made


def test_export_options_are_made_in_few_places():
    """Parsed once and passed down: the options are not unpacked and rebuilt on the way."""
    made = _export_options_made()
    assert 1 <= len(made) <= MAX_EXPORT_OPTIONS_MADE, made


def test_the_export_cache_takes_the_options_object_not_loose_keywords():
    import inspect

    from inspector.export import cache

    loose = {"graph", "exporter", "opset", "dynamic_batch", "dynamic_dims", "precision"}
    for function in (cache.cache_key, cache.cached_export, cache.exported_model):
        parameters = set(inspect.signature(function).parameters)
        assert "options" in parameters and not parameters & loose, function.__name__


# Errors raised only where the Python API never goes (module path, function): parse_kwargs reads
# the CLI's --kwargs JSON text; load_model takes a dict.
CLI_ONLY_ERRORS = {("inspector/loading.py", "parse_kwargs")}
_ERRORS = {"InspectorError", "LibraryError"}


def _call_name(node: ast.Call) -> str | None:
    return getattr(node.func, "id", None) or getattr(node.func, "attr", None)


def _flag_texts(node: ast.AST):
    """The string literals in an error's message that name a flag, outside option(...) calls."""
    if isinstance(node, ast.Call) and _call_name(node) == "option":
        return
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if node.value.startswith("--") or " --" in node.value:
            yield node.value
        return
    for child in ast.iter_child_nodes(node):
        yield from _flag_texts(child)


def test_library_errors_name_flags_only_through_option():
    """Outside the CLI an error names an option with errors.option(): `--port 70000` on the command
    line, `port=70000` from Python. (Literals only: a message built elsewhere is not seen.)"""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        if where.startswith("inspector/cli/"):
            continue
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if (where, function.name) in CLI_ONLY_ERRORS:
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and _call_name(node) in _ERRORS:
                    texts = [t for arg in node.args for t in _flag_texts(arg)]
                    found += [f"{where}:{node.lineno} {t!r}" for t in texts]
    assert not found, "use errors.option() for: " + "; ".join(sorted(set(found)))
