"""A model's architecture as a JSON record, and what changed between two records.

The record (what `model_snapshot` keeps beside a test): the input/output signature of the model's
ONNX export, its totals (parameters, mult-adds), the export's op histogram, and every layer of
torchinfo's summary with its output shape and parameter count. Two records differ in short lines
that name the layer, shape, parameter count or op that changed.

record_differences() is plain dict comparison, no torch: it can later be one of `inspector diff`'s
engines.
"""

from __future__ import annotations

import json
import re

FORMAT = 1  # bump when the record's layout changes
DEPTH = 100  # every layer torchinfo sees, however deeply nested
MAX_LINES = 20  # a diff longer than this says how many more changes it left out


def architecture_record(module, *inputs, use_cache: bool = True, **keyword_inputs) -> dict:
    """The record of an nn.Module called with example `inputs` (their shapes and dtypes are what
    counts); keyword inputs go to forward by name."""
    from ..export.cache import exported_model
    from ..loading import loaded_from_module
    from ..onnx.summary import summarize_onnx
    from ..summary import summarize

    loaded = loaded_from_module(module, inputs, keyword_inputs)
    summary = summarize(loaded, depth=DEPTH)
    with exported_model(loaded, use_cache=use_cache) as path:
        onnx = summarize_onnx(path)
    return {
        "format": FORMAT,
        "model": summary.model,
        "inputs": [_tensor(t) for t in onnx.inputs],
        "outputs": [_tensor(t) for t in onnx.outputs],
        "total_params": summary.total_params,
        "trainable_params": summary.trainable_params,
        "mult_adds": summary.mult_adds,
        "ops": dict(sorted(onnx.ops.items())),
        "layers": _layers(summary.layers),
    }


def dump_record(record: dict) -> str:
    """JSON with one line per layer, input and output, so that a change is a one-line git diff."""
    lines = []
    for key, value in record.items():
        if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
            rows = ",\n".join(f"    {json.dumps(row)}" for row in value)
            lines.append(f"  {json.dumps(key)}: [\n{rows}\n  ]")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _tensor(info) -> dict:
    return {"name": info.name, "shape": list(info.shape), "dtype": info.dtype}


def _layers(layers) -> list[dict]:
    """torchinfo's rows with a dotted path each (`features.3.block.0`), unique in the record."""
    rows: list[dict] = []
    stack: list[str] = []
    seen: dict[str, int] = {}
    for layer in layers:
        if layer.depth == 0:
            continue  # the model itself: its totals are recorded above
        del stack[layer.depth - 1 :]
        stack.append(layer.name)
        path = ".".join(stack)
        seen[path] = seen.get(path, 0) + 1
        if seen[path] > 1:  # a module called twice appears twice
            path = f"{path}#{seen[path]}"
        rows.append(
            {
                "layer": path,
                "type": layer.type,
                "output_shape": list(layer.output_shape),
                "params": layer.params,
            }
        )
    return rows


def record_differences(old: dict, new: dict) -> list[str]:
    """What changed from `old` to `new`, one short line each; [] when they are the same."""
    if old.get("format") != new.get("format"):
        return [f"record format {old.get('format')} -> {new.get('format')}: write it again"]
    lines = []
    if old.get("model") != new.get("model"):
        lines.append(f"model {old.get('model')} -> {new.get('model')}")
    for kind in ("inputs", "outputs"):
        lines += _keyed_changes(kind[:-1], old.get(kind, []), new.get(kind, []), "name")
    for total in ("total_params", "trainable_params", "mult_adds"):
        before, after = old.get(total), new.get(total)
        if before != after:
            lines.append(f"{total.replace('_', ' ')} {_number(before)} -> {_number(after)}")
    lines += _op_changes(old.get("ops", {}), new.get("ops", {}))
    lines += _keyed_changes("layer", old.get("layers", []), new.get("layers", []), "layer")
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES], f"... and {len(lines) - MAX_LINES} more change(s)"]
    return lines


def _keyed_changes(kind: str, old: list, new: list, key: str) -> list[str]:
    before = {row[key]: row for row in old}
    after = {row[key]: row for row in new}
    lines = []
    for name in before.keys() - after.keys():
        lines.append(f"{kind} {name} removed (was {_describe(before[name], key)})")
    for name in after.keys() - before.keys():
        lines.append(f"{kind} {name} added ({_describe(after[name], key)})")
    for name in before.keys() & after.keys():
        fields = [
            f"{field.replace('_', ' ')} {_value(before[name][field])} -> "
            f"{_value(after[name][field])}"
            for field in before[name]
            if field != key and before[name][field] != after[name].get(field)
        ]
        if fields:
            lines.append(f"{kind} {name}: {', '.join(fields)}")
    order: dict = {}  # the new record's order, then where removed rows used to be
    for name in [*after, *before]:
        order.setdefault(name, len(order))
    return sorted(lines, key=lambda line: order.get(_subject(line, kind), len(order)))


def _subject(line: str, kind: str) -> str:
    return re.split(r"[: ]", line[len(kind) + 1 :], maxsplit=1)[0]


def _describe(row: dict, key: str) -> str:
    return ", ".join(
        f"{field.replace('_', ' ')} {_value(value)}" for field, value in row.items() if field != key
    )


def _op_changes(old: dict, new: dict) -> list[str]:
    changes = [
        f"{op} {old.get(op, 0)} -> {new.get(op, 0)}"
        for op in sorted(old.keys() | new.keys())
        if old.get(op, 0) != new.get(op, 0)
    ]
    return [f"ops: {', '.join(changes)}"] if changes else []


def _value(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return _number(value) if isinstance(value, int) else str(value)


def _number(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)
