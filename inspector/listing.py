"""`inspector list`: the registry as a result that prints itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .usermodel.inputs import InputSpec, parse_input


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    input_shapes: list
    inputs: list  # every input as a SPEC string ("input_ids=2x16:int64:0..1000", "1x3x224x224")


@dataclass
class Listing:
    models: list[Entry]

    def to_dict(self) -> dict:
        return {"models": [asdict(entry) for entry in self.models]}

    def __str__(self) -> str:
        width = max((len(e.name) for e in self.models), default=4)
        shapes = [", ".join(e.inputs) for e in self.models]
        shape_width = max(map(len, shapes), default=5)
        lines = [f"{'name':<{width}}  {'input':<{shape_width}}  description"]
        lines += [
            f"{e.name:<{width}}  {s:<{shape_width}}  {e.description}"
            for e, s in zip(self.models, shapes, strict=True)
        ]
        return "\n".join(lines)


def registry_listing(pattern: str | None = None) -> Listing:
    from . import models

    listed = []
    for name in models.list_models(pattern):
        entry = models.get_entry(name)
        specs = [parse_input(text) for text in entry.inputs] or [
            InputSpec(tuple(shape)) for shape in entry.input_shapes
        ]
        listed.append(
            Entry(name, entry.description, [list(s.shape) for s in specs], [str(s) for s in specs])
        )
    return Listing(listed)
