"""`package.module:attr` and `path/to/file.py:attr`: import the user's code and find the attribute.

Importing runs the code, exactly as `python file.py` would. A file's folder comes first on
sys.path, so `from models.common import Backbone` in a user's `net.py` finds the user's own
`models` package (inspector ships its lecture models as `inspector.models`, never as `models`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import sysconfig
import traceback
from pathlib import Path

from ..errors import InspectorError
from ..util.text import first_line
from .usercode import user_code


def import_attr(spec: str, what: str = "a model"):
    """The object `spec` names: `module:attr` or `path/file.py:attr` (attr may be dotted)."""
    where, _, attr = spec.rpartition(":")
    if not where or not attr:
        raise InspectorError(f"{spec!r}: write {what} as module:attr or path/file.py:attr")
    with user_code(spec, "its import"):
        module = import_code(where)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InspectorError(f"{spec}: {where} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def import_code(where: str):
    """Import `path/to/file.py` (run as `python file.py` would run it) or `package.module`."""
    return _import_file(Path(where)) if where.endswith(".py") else _import_module(where)


def _import_module(name: str):
    _current_folder_first_if_it_provides(name.split(".")[0])
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and name.split(".")[0] != error.name.split(".")[0]:
            raise InspectorError(_broken_dependency(name, error)) from error
        raise InspectorError(f"cannot import module {name!r}: {error}") from error
    except SystemExit as stop:
        raise InspectorError(_exited(name, stop)) from stop
    except Exception as error:
        raise InspectorError(_broken_dependency(name, error)) from error


def _import_file(path: Path):
    from ..util.files import file_kind

    kind = file_kind(path)
    if kind is not None:  # a FIFO would block the import forever, a device never end
        raise InspectorError(f"{path} is {kind}, not a Python file")
    if not path.is_file():
        raise InspectorError(f"{path}: no such file")
    folder = path.resolve().parent
    _put_first_on_path(folder)
    # Named after the path, the same in every process (hash() of a str is salted per process, and
    # the export cache's key includes the module name: it would never hit in a new process).
    name = f"_inspector_user_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InspectorError(f"{path}: Python cannot import this file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as stop:  # script code at top level, e.g. argparse reading our argv
        sys.modules.pop(name, None)
        raise InspectorError(_exited(str(path), stop)) from stop
    except Exception as error:
        sys.modules.pop(name, None)
        raise InspectorError(_broken_dependency(str(path), error)) from error
    return module


def _current_folder_first_if_it_provides(top: str) -> None:
    """`package.module` from the current folder, as `python -m package.module` finds it there: the
    installed `inspector` command, unlike `python -m`, does not have the folder on sys.path. Only
    when the folder holds that package, so an installed one of another name is imported as ever."""
    try:
        folder = Path.cwd()
    except OSError:  # the current folder was removed
        return
    if (folder / top).is_dir() or (folder / f"{top}.py").is_file():
        _put_first_on_path(folder, only={top})


def _put_first_on_path(folder: Path, only: set[str] | None = None) -> None:
    """The file's folder first on sys.path, as `python file.py` has it; and a top-level package
    that this folder provides (its own `models/`, `utils.py`) but that an earlier import in this
    process took from elsewhere is forgotten, so the file imports its neighbours, not those
    (`only`: of these names alone)."""
    entry = str(folder)
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)
    provided = {p.stem for p in folder.glob("*.py")} | {
        p.name for p in folder.iterdir() if (p / "__init__.py").is_file()
    }
    if only is not None:
        provided &= only
    for name in provided & set(sys.modules):
        module = sys.modules[name]
        origin = getattr(module, "__file__", None)
        if origin and not _is_installed(origin) and not Path(origin).is_relative_to(folder):
            for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
                del sys.modules[loaded]


def _is_installed(origin: str) -> bool:
    """Code from site-packages or the standard library: never unloaded (torch stays torch)."""
    paths = sysconfig.get_paths()
    roots = {paths["purelib"], paths["platlib"], paths["stdlib"]}
    return any(Path(origin).is_relative_to(root) for root in roots)


def _exited(where: str, stop: SystemExit) -> str:
    return (
        f"running {where} failed: it called sys.exit({stop.code!r}) while being imported; "
        "put its script code under if __name__ == '__main__':"
    )


def _broken_dependency(where: str, error: BaseException) -> str:
    """Name the installed package whose own import failed (a CUDA torchvision beside the CPU
    torch says "operator torchvision::nms does not exist"), not only the user's file."""
    package = _failing_package(error)
    reason = f"{type(error).__name__}: {first_line(error)}"
    if package is None:
        return f"importing {where} failed: {reason}"
    version = _version_of(package)
    return (
        f"importing {where} failed inside the installed package {package}"
        f"{f' {version}' if version else ''}: {reason}; that package is broken or does not "
        f"match this environment (torch {_version_of('torch') or '?'}): check "
        f"'pip show {package}' and reinstall a build made for this torch"
    )


def _failing_package(error: BaseException) -> str | None:
    """The installed package nearest the error (innermost frame first), torch's own frames
    skipped: torch raises on behalf of the package that called it."""
    paths = sysconfig.get_paths()
    roots = {Path(paths["purelib"]), Path(paths["platlib"])}
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename)
        for root in roots:
            if path.is_relative_to(root):
                top = path.relative_to(root).parts[0].removesuffix(".py")
                if top not in ("torch", "inspector", "importlib"):
                    return top
    return None


def _version_of(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
    except Exception:  # a broken installation's metadata
        return None
