"""Reading user files (YAML validated by pydantic models) with errors that name the file, the line, the
field, the value, what is allowed and the nearest known field. Shared by every spec suanli reads.

A spec file comes from whoever may submit a job, so the reader is the place that keeps a hostile or
broken file from costing the agent more than the file is worth: it reads at most MAX_FILE_BYTES, and
before anything is built from the YAML it walks the parser's events once (without recursion) to refuse
nesting deeper than MAX_DEPTH, aliases that would repeat more than MAX_ALIAS_NODES nodes (a "billion
laughs" file of a few hundred bytes expands to gigabytes once a consumer walks or prints it), an alias
to the node that contains it (a cycle) and a second document.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ValidationError

from suanli.core.errors import BadInput, did_you_mean, unreadable

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return value


# The name of a part of a spec that becomes part of a job's name (a participant, a replica, a service).
Name = Annotated[str, AfterValidator(_check_name)]


def check_unique(names: list[str], field: str, among: str) -> None:
    """BadInput naming the first repeated name (`field`[i].name)."""
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise BadInput(f"{field}[{i}].name", name, f"must be unique among {among}")
        seen.add(name)


MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_ALIAS_NODES = 10_000
# Near names for a mistyped field must be close: at difflib's default 0.5, SkyPilot's `service` came
# out as "did you mean: user?" and `secrets` as "retries?".
NEAR_CUTOFF = 0.7


def shorten(value: object, limit: int = 60) -> str:
    """`value` as one short printable line for an error message: control characters escaped, long
    text cut with its full length named."""
    text = value if isinstance(value, str) else repr(value)
    if not text.isprintable():
        text = repr(text)[1:-1]
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text)} chars)"
    return text


def _where(source: str, line: int | None) -> str:
    return f"{source}:{line}" if line is not None else source


def _yaml_error(e: yaml.YAMLError, source: str, text: str) -> BadInput:
    """One line for a YAML syntax error, at its line when the parser knows it."""
    mark = getattr(e, "problem_mark", None)
    if mark is not None:
        line: int | None = mark.line + 1
    elif isinstance(e, yaml.reader.ReaderError):  # a character YAML does not allow (NUL, other controls)
        line = text.count("\n", 0, e.position) + 1
    else:
        line = None
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return BadInput("yaml", "", f"not valid YAML: {problem}", source=_where(source, line))


@dataclass
class _Open:
    """A mapping or sequence whose end event has not come yet."""

    anchor: str | None
    nodes: int = 1  # itself and everything under it, aliases expanded
    height: int = 1  # levels of nesting from it down, aliases expanded


@dataclass
class _Walk:
    """What check_structure has seen so far of one YAML stream."""

    source: str
    stack: list[_Open] = field(default_factory=list)
    anchors: dict[str, tuple[int, int]] = field(default_factory=dict)  # closed anchor -> (nodes, height)
    alias_nodes: int = 0
    documents: int = 0

    def refuse(self, event: yaml.Event, allowed: str, hint: str | None = None) -> BadInput:
        return BadInput("yaml", "", allowed, hint=hint, source=_where(self.source, event.start_mark.line + 1))

    def add(self, event: yaml.Event, nodes: int, height: int) -> None:
        """Count a finished node (`nodes` of it, `height` levels deep) into the collection holding it."""
        if len(self.stack) + height > MAX_DEPTH:
            raise self.refuse(event, f"nests deeper than {MAX_DEPTH} levels (counting what aliases repeat)")
        if self.stack:
            parent = self.stack[-1]
            parent.nodes += nodes
            parent.height = max(parent.height, height + 1)

    def alias(self, event: yaml.AliasEvent) -> None:
        anchor = event.anchor
        if any(o.anchor == anchor for o in self.stack):
            raise self.refuse(event, f"alias *{anchor} is inside the node it names (a cycle)")
        nodes, height = self.anchors.get(anchor, (1, 0))  # an undefined alias: the loader names it
        self.alias_nodes += nodes
        if self.alias_nodes > MAX_ALIAS_NODES:
            raise self.refuse(
                event,
                f"aliases repeat more than {MAX_ALIAS_NODES} nodes (alias *{anchor} repeats {nodes})",
                hint="write the values out, or use fewer aliases",
            )
        self.add(event, nodes, height)


def check_structure(text: str, source: str, *, documents_hint: str | None = None) -> None:
    """BadInput unless `text` is one YAML document within MAX_DEPTH levels whose aliases repeat at most
    MAX_ALIAS_NODES nodes in all and never name a node they are inside. Walks the parser's events,
    which PyYAML produces without recursion, so nothing is built and no Python stack is used."""
    walk = _Walk(source)
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.DocumentStartEvent):
                walk.documents += 1
                if walk.documents > 1:
                    raise walk.refuse(
                        event, "holds more than one YAML document (separated by ---); one is allowed",
                        hint=documents_hint,
                    )  # fmt: skip
            elif isinstance(event, yaml.AliasEvent):
                walk.alias(event)
            elif isinstance(event, yaml.ScalarEvent):
                if event.anchor:
                    walk.anchors[event.anchor] = (1, 0)
                walk.add(event, 1, 0)
            elif isinstance(event, yaml.CollectionStartEvent):
                if len(walk.stack) >= MAX_DEPTH:
                    raise walk.refuse(event, f"nests deeper than {MAX_DEPTH} levels")
                walk.stack.append(_Open(event.anchor))
            elif isinstance(event, yaml.CollectionEndEvent):
                done = walk.stack.pop()
                if done.anchor:
                    walk.anchors[done.anchor] = (done.nodes, done.height)
                walk.add(event, done.nodes, done.height)
    except yaml.YAMLError as e:
        raise _yaml_error(e, source, text) from None


class _SafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, whose value constructors fail with the YAML error they should raise (at the
    value's line) instead of a bare ValueError, KeyError or IndexError: `!!int ""`, `!!bool`,
    `date: 2001-02-29`."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as e:  # ValueError, KeyError, IndexError, AttributeError, ... from one value
            tag = str(node.tag).rsplit(":", 1)[-1]
            problem = f"cannot read {shorten(node.value, 40)!r} as {tag} ({shorten(str(e), 80)})"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


def load_yaml_text(text: str, source: str, *, documents_hint: str | None = None) -> Any:
    """The data in `text` (one YAML document), after check_structure; BadInput for bad YAML."""
    check_structure(text, source, documents_hint=documents_hint)
    try:
        return yaml.load(text, Loader=_SafeLoader)  # a SafeLoader: builds only plain data
    except yaml.YAMLError as e:
        raise _yaml_error(e, source, text) from None


def read_yaml(path: str | Path, what: str, *, documents_hint: str | None = None) -> tuple[Any, str]:
    """(parsed data, text) of a YAML spec file; one BadInput naming `what` or the file (and the line
    when known) for a missing, unreadable, oversized, non-UTF-8, malformed or hostile file.
    `documents_hint` says what to do with a file of several documents."""
    path = Path(path)
    source = str(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; anything but a regular file is refused
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise unreadable(what, path, e) from None
    except (ValueError, UnicodeEncodeError):  # a NUL byte, or a name the file system cannot hold
        raise BadInput(what, source, "is not a valid file name") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise unreadable(what, path, IsADirectoryError(21, "Is a directory"))
        raise BadInput(what, source, "is not a regular file")
    with os.fdopen(fd, "rb") as f:
        try:
            raw = f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            raise unreadable(what, path, e) from None
    if len(raw) > MAX_FILE_BYTES:
        allowed = f"is larger than {MAX_FILE_BYTES // 1024} KiB, the most a spec file may be"
        raise BadInput(what, source, allowed)
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise unreadable(what, path, e) from None
    return load_yaml_text(text, source, documents_hint=documents_hint), text


def yaml_lines(text: str) -> dict[tuple[str, ...], int]:
    """Line number (1-based) of every mapping key and list item in the YAML, by path. Best effort: {}
    for text that check_structure refuses. Walks without recursion and enters a node repeated by aliases
    once, at its first (anchored) place."""
    lines: dict[tuple[str, ...], int] = {}
    try:
        check_structure(text, "")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, BadInput):
        return lines
    stack: list[tuple[yaml.Node, tuple[str, ...]]] = [] if root is None else [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        children: list[tuple[yaml.Node, tuple[str, ...]]] = []
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    sub = (*path, str(key.value))
                    lines[sub] = key.start_mark.line + 1
                    children.append((value, sub))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                sub = (*path, str(i))
                lines[sub] = item.start_mark.line + 1
                children.append((item, sub))
        stack.extend(reversed(children))  # document order, so an anchor is entered before its aliases
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


def near_field(name: str, names: list[str]) -> str | None:
    """'did you mean' for a mistyped field name, only from names that are really close."""
    wanted = name.lower()
    close = [n for n in names if difflib.SequenceMatcher(None, wanted, n.lower()).ratio() >= NEAR_CUTOFF]
    return did_you_mean(name, close) if close else None


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
    loc = tuple(shorten((aliases or {}).get(str(p), str(p)), 40) for p in first["loc"])
    field = ".".join((*prefix, *loc)) or root
    if first["type"] == "extra_forbidden":
        names = field_names(owner_model(model, loc[:-1]))
        hint = near_field(loc[-1], names) or "known: " + ", ".join(names)
        return BadInput(field, shorten(first.get("input")), "is not a known field", hint=hint)
    if first["type"] == "missing":
        return BadInput(field, "(missing)", "is required")
    message = first["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    return BadInput(field, shorten(first.get("input")), message)
