"""ONNX files nobody here wrote: the onnx package's backend-test corpus, in the model-zoo layout.

    python benchmarks/onnx_corpus.py OUT                   # the slice tests/test_onnx_corpus.py uses
    python benchmarks/onnx_corpus.py OUT test_mvn test_relu   # chosen node tests
    python benchmarks/onnx_corpus.py OUT --all             # every node test (about 1,600 models)

Each test becomes OUT/NAME/model.onnx and OUT/NAME/test_data_set_0/input_K.pb, output_K.pb, ready
for `inspector verify OUT/NAME/model.onnx --data OUT/NAME`. The installed onnx wheel has no `node/`
data folder, but `onnx.backend.test.case.node` builds the node tests in memory: they are written
here as onnx's own `backend-test-tools generate-data` writes them (tensors as TensorProto,
sequences as SequenceProto, optionals as OptionalProto, maps as MapProto). The wheel's own
`light/`, `pytorch-converted/`, `pytorch-operator/` and `simple/` folders are already in that
layout: `wheel_models()` lists them.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

# The slice: every class of issue 29, a few models each (node test names of onnx >= 1.20).
SLICE = {
    "float8 outputs compared by value": (
        "test_cast_FLOAT_to_FLOAT8E4M3FN",
        "test_cast_no_saturate_FLOAT_to_FLOAT8E4M3FN",
    ),
    "types numpy cannot hold": (
        "test_cast_FLOAT_to_BFLOAT16",
        "test_cast_BFLOAT16_to_FLOAT",
        "test_cast_FLOAT8E5M2_to_FLOAT",
        "test_cast_FLOAT_to_FLOAT8E5M2",
        "test_einsum_batch_matmul_bfloat16",
    ),
    "packed 4- and 2-bit types": ("test_cast_INT4_to_FLOAT", "test_cast_UINT2_to_UINT8"),
    "sequences and optionals": (
        "test_sequence_insert_at_back",
        "test_split_to_sequence_1",
        "test_identity_opt",
        "test_if_opt",
        "test_loop16_seq_none",
    ),
    "no inputs": ("test_constant",),
    "shape inference disagrees": ("test_mvn",),
    "onnxruntime refuses": ("test_attention_4d_diff_heads_mask4d_padded_kv", "test_gru_batchwise"),
    "plain": ("test_relu", "test_add_bcast"),
}


def node_cases() -> dict:
    """name -> onnx.backend.test TestCase, every node test of the installed onnx (about 6 s)."""
    from onnx.backend.test.case import node

    with warnings.catch_warnings():  # the generators overflow on purpose (saturating casts)
        warnings.simplefilter("ignore")
        return {case.name: case for case in node.collect_testcases()}


def materialize(out, names=None) -> dict[str, Path]:
    """Write the named node tests (default: SLICE) under `out`; return name -> folder."""
    names = list(names or [name for group in SLICE.values() for name in group])
    cases = node_cases()
    missing = [name for name in names if name not in cases]
    if missing:
        raise KeyError(f"no such node test in this onnx: {', '.join(missing)}")
    out = Path(out)
    return {name: write_case(cases[name], out / name) for name in names}


def write_case(case, folder: Path) -> Path:
    """model.onnx and test_data_set_N/ of one TestCase, as onnx's generate-data writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(case.model.SerializeToString())
    graph = case.model.graph
    for index, (inputs, outputs) in enumerate(case.data_sets):
        data_set = folder / f"test_data_set_{index}"
        data_set.mkdir(exist_ok=True)
        for kind, values, infos in (
            ("input", inputs, graph.input),
            ("output", outputs, graph.output),
        ):
            for position, value in enumerate(values):
                proto = _proto(value, infos[position])
                (data_set / f"{kind}_{position}.pb").write_bytes(proto.SerializeToString())
    return folder


def _proto(value, info):
    from onnx import TensorProto, numpy_helper

    kind = info.type.WhichOneof("value")
    if kind == "map_type":
        return numpy_helper.from_dict(value, info.name)
    if kind == "sequence_type":
        return numpy_helper.from_list(value, info.name)
    if kind == "optional_type":
        return numpy_helper.from_optional(value, info.name)
    if isinstance(value, TensorProto):
        return value
    return numpy_helper.from_array(value, info.name)


def wheel_models() -> list[Path]:
    """The model folders the onnx wheel ships in the model-zoo layout (model.onnx + data sets)."""
    import onnx

    data = Path(onnx.__file__).parent / "backend" / "test" / "data"
    kinds = ("light", "pytorch-converted", "pytorch-operator", "simple")
    return sorted(model.parent for kind in kinds for model in (data / kind).glob("*/model.onnx"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the models into")
    parser.add_argument("names", nargs="*", help="node test names (default: the slice)")
    parser.add_argument("--all", action="store_true", help="every node test")
    args = parser.parse_args(argv)
    names = sorted(node_cases()) if args.all else args.names
    for name, folder in materialize(args.out, names).items():
        print(f"{name}\t{folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
