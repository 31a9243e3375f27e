"""--repro DIR: the root-cause module's part of the graph as DIR/model.onnx, with the values PyTorch
gave it and got from it as model-zoo test data (DIR/test_data_set_0/input_K.pb, output_K.pb).

`inspector verify DIR/model.onnx --data DIR` then reproduces the mismatch with onnxruntime alone,
and the folder can be attached to a bug report. No torch here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import InspectorError, option
from .module_values import ModuleValues, ancestors_within, constant_producers, constant_values
from .subgraph import cut_nodes, node_reads
from .testdata import DataSet, write_test_data

MODEL_FILE = "model.onnx"


def check_repro_request(folder, localize: bool) -> None:
    """Refuse --repro without --localize, or into a used folder, before any slow work."""
    if folder is None:
        return
    if not localize:
        needed = option("--localize", "localize=True")
        raise InspectorError(
            f"{option('--repro', 'repro')} needs {needed}: it writes the module {needed} names"
        )
    check_repro_destination(folder)


def check_repro_destination(folder) -> Path:
    """Refuse a folder we must not write, before any slow work starts."""
    folder = Path(folder)
    if not folder.parent.is_dir():
        where = option("--repro", "repro", str(folder))
        raise InspectorError(f"{where}: folder {folder.parent} does not exist")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InspectorError(
            f"{option('--repro', 'repro', str(folder))} already exists and is not an empty folder; "
            "remove it or choose another"
        )
    return folder


def repro_model(model, entry: ModuleValues, output_value: str, description: str):
    """The nodes of `entry` that `output_value` depends on, cut between the module's input values
    and that one output; constants they read from outside the module come along."""
    graph = model.graph
    nodes = ancestors_within(graph, entry.nodes, output_value)
    made = {value for index in nodes for value in graph.node[index].output}
    constant = constant_values(graph)
    outside = [
        value
        for index in nodes
        for value in node_reads(graph.node[index])
        if value not in made and value in constant
    ]
    nodes = sorted(set(nodes) | set(constant_producers(graph, outside)))
    excerpt = cut_nodes(model, [graph.node[index] for index in nodes], name=description)
    outputs = excerpt.graph.output
    kept = [output for output in outputs if output.name == output_value]
    if not kept:
        raise InspectorError(
            f"{option('--repro', 'repro')}: value {output_value!r} is not an output of its module"
        )
    del outputs[:]
    outputs.extend(kept[:1])
    excerpt.metadata_props.add(key="inspector.repro", value=description)
    return excerpt


def write_repro(
    folder,
    model,
    entry: ModuleValues,
    output_value: str,
    *,
    values: dict,
    expected,
    description,
    weights_folder=None,
) -> Path:
    """Write DIR/model.onnx and DIR/test_data_set_0 (inputs from `values` by name, the output
    `expected`), all or nothing: an existing folder is never touched. A model whose weights are
    external data (onnx/weightless.py) reads the excerpt's from `weights_folder`."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model

    folder = check_repro_destination(folder)
    excerpt = repro_model(model, entry, output_value, description)
    if weights_folder is not None:
        load_external_data_for_model(excerpt, str(weights_folder))
    names = [value.name for value in excerpt.graph.input]
    missing = [name for name in names if name not in values]
    if missing:
        raise InspectorError(
            f"{option('--repro', 'repro')}: no value for the module's input {missing[0]!r}"
        )
    data_set = DataSet("", [values[name] for name in names], [expected], names, [output_value])
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        built = write_test_data(staging / folder.name, [data_set])
        onnx.save(excerpt, str(built / MODEL_FILE))
        built.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would keep it from a bug report's readers
        if folder.exists():
            folder.rmdir()  # empty (checked above): replace it with the finished folder
        built.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
