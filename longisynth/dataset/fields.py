"""Dotted paths into :class:`~longisynth.spec.LesionSpec` ("diameter_mm", "location.lung_lobe").

The spec model stays the one schema: a sampled value is validated by building a spec that holds
it, and "any" means every member of the field's own enum.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from longisynth.spec import LesionSpec

# Fields a design may not sample: the seed is derived per case; vectors and lists have no
# scalar distribution (fix them in `spec` instead).
NOT_SAMPLED = {
    "seed": "the seed is derived per case from the design seed and the row",
    "timepoints_days": "sample n_timepoints and duration_days instead, or fix timepoints_days in spec",
    "location.point_mm": "a world point depends on the scan; fix it in spec or sample a lobe",
    "location.point_voxel": "a voxel depends on the scan; fix it in spec or sample a lobe",
}


def _leaf(path: str) -> tuple[type[BaseModel], str]:
    model: type[BaseModel] = LesionSpec
    parts = path.split(".")
    for i, part in enumerate(parts):
        if part not in model.model_fields:
            known = ", ".join(sorted(model.model_fields))
            where = ".".join(parts[:i]) or "LesionSpec"
            raise ValueError(f"{path!r} is not a field of the spec ({where} has: {known})")
        annotation = model.model_fields[part].annotation
        if i < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                raise ValueError(f"{'.'.join(parts[: i + 1])!r} has no sub-fields")
            model = annotation
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sub = ", ".join(f"{part}.{k}" for k in annotation.model_fields)
            raise ValueError(f"{path!r} is a group of fields; sample one of: {sub}")
    return model, parts[-1]


def check_path(path: str) -> None:
    """Raise ValueError unless ``path`` names a scalar LesionSpec field a design may sample."""
    if path in NOT_SAMPLED:
        raise ValueError(f"{path!r} cannot be sampled: {NOT_SAMPLED[path]}")
    _leaf(path)


def _base_types(path: str) -> list[Any]:
    model, name = _leaf(path)
    annotation = model.model_fields[name].annotation
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    return [a for a in args if a is not type(None)]


def enum_levels(path: str) -> list[Any] | None:
    """Every value of a categorical field (JSON form), or None for a numeric field."""
    for t in _base_types(path):
        if isinstance(t, type) and issubclass(t, enum.Enum):
            return [m.value for m in t]
        if t is bool:
            return [True, False]
    return None


def nest(path: str, value: Any) -> dict[str, Any]:
    """``nest("growth.law", "gompertz") == {"growth": {"law": "gompertz"}}``."""
    out: dict[str, Any] = {}
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def get(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def canonical(path: str, value: Any) -> Any:
    """The value as the spec stores it (JSON form: enums as strings), or ValueError saying why not."""
    try:
        spec = LesionSpec.model_validate(nest(path, value))
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ValueError(f"{value!r} is not a valid {path}: {msg}") from None
    return get(spec.model_dump(mode="json"), path)
