"""Reading user files (YAML validated by pydantic models) with errors that name the file, the line, the
field, the value, what is allowed and the nearest known field. Shared by every spec suanli reads."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from suanli.core.errors import BadInput, did_you_mean


def read_yaml(path: str | Path, what: str) -> tuple[Any, str]:
    """(parsed data, text) of a YAML file; BadInput naming `what` for a missing file or bad YAML."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BadInput(what, source, "does not exist") from None
    except (IsADirectoryError, PermissionError) as e:
        raise BadInput(what, source, f"cannot be read ({e.strerror})") from None
    try:
        return yaml.safe_load(text), text
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise BadInput("yaml", "", f"not valid YAML: {problem}", source=where) from None


def yaml_lines(text: str) -> dict[tuple[str, ...], int]:
    """Line number (1-based) of every mapping key and list item in the YAML, by path."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                lines[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*path, str(i))] = item.start_mark.line + 1
                walk(item, (*path, str(i)))

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def with_line(err: BadInput, source: str, text: str) -> BadInput:
    """`err` located at the line of its field (or of the nearest enclosing one) in `source`."""
    lines = yaml_lines(text)
    path = tuple(err.field.split("."))
    while path and path not in lines:
        path = path[:-1]
    where = f"{source}:{lines[path]}" if path else source
    return BadInput(err.field, err.value, err.allowed, hint=err.hint, source=where)


def field_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def owner_model(model: type[BaseModel], path: tuple[str, ...]) -> type[BaseModel]:
    """The model that owns the last field of `path`, following nested model fields (and lists/dicts)."""
    for part in path:
        by_name = {info.alias or name: info for name, info in model.model_fields.items()}
        info = by_name.get(part)
        if info is None:
            continue  # a list index or dict key: stay with the item's model found before
        nested = _models_in(info.annotation)
        if not nested:
            return model
        model = nested[0]
    return model


def bad_input_from(
    err: ValidationError,
    model: type[BaseModel],
    *,
    aliases: dict[str, str] | None = None,
    root: str = "spec",
    prefix: tuple[str, ...] = (),
) -> BadInput:
    """The first pydantic error as one BadInput: field path (under `prefix`, for a model validated as
    part of a larger file), value, what is allowed, near names."""
    first = err.errors()[0]
    loc = tuple((aliases or {}).get(str(p), str(p)) for p in first["loc"])
    field = ".".join((*prefix, *loc)) or root
    if first["type"] == "extra_forbidden":
        names = field_names(owner_model(model, loc[:-1]))
        hint = did_you_mean(loc[-1], names) or "known: " + ", ".join(names)
        return BadInput(field, first.get("input"), "is not a known field", hint=hint)
    if first["type"] == "missing":
        return BadInput(field, "(missing)", "is required")
    message = first["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    return BadInput(field, first.get("input"), message)
