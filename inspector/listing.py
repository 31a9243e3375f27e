"""`inspector list`: the registry as a result that prints itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    input_shapes: list


@dataclass
class Listing:
    models: list[Entry]

    def to_dict(self) -> dict:
        return {"models": [asdict(entry) for entry in self.models]}

    def __str__(self) -> str:
        width = max((len(e.name) for e in self.models), default=4)
        shapes = [", ".join("x".join(map(str, s)) for s in e.input_shapes) for e in self.models]
        shape_width = max(map(len, shapes), default=5)
        lines = [f"{'name':<{width}}  {'input':<{shape_width}}  description"]
        lines += [
            f"{e.name:<{width}}  {s:<{shape_width}}  {e.description}"
            for e, s in zip(self.models, shapes, strict=True)
        ]
        return "\n".join(lines)


def registry_listing(pattern: str | None = None) -> Listing:
    from . import models

    entries = (models.get_entry(name) for name in models.list_models(pattern))
    return Listing(
        [Entry(e.name, e.description, [list(s) for s in e.input_shapes]) for e in entries]
    )
