"""Safe YAML loading for untrusted files, keeping the line and column of every value.

Safe loading only (no Python tags), duplicate keys are errors, and nesting depth, aliases and the size a
document expands to are bounded, so an alias bomb or a 100,000-level nest is refused quickly; an anchor that
contains an alias of itself is refused where the alias stands.

Plain scalars are read as YAML 1.2 (the core schema), not as PyYAML's YAML 1.1: only `true`/`false` are
booleans, `010` is ten, `1e3` is a number, `1:30` and `2026-01-01` are text. Where the two versions read a
plain value differently (`yes`, `on`, `010`, `1:30`, `1_000`, `0b11`) the file is refused with a hint rather
than read either way, so nobody's file changes meaning silently. Keys are text as written (`on:` is "on",
`200:` is "200"); a key YAML 1.2 reads as null or a boolean is refused. Numbers are finite (JSON has no
NaN or infinity), and text is valid Unicode (no lone surrogates from a `\\ud800` escape).
"""

from __future__ import annotations

import math
import re
from typing import Any

import attrs
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import Path
from ..hints import HINTS, hint

MAX_BYTES = 2_000_000
MAX_DEPTH = 64
MAX_ALIASES = 200
MAX_NODES = 200_000

_YAML_TAG = "tag:yaml.org,2002:"
_MERGE = _YAML_TAG + "merge"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_YAML_TAG + kind for kind in ("str", "int", "float", "bool", "null"))
_COLLECTION_TAGS = {_YAML_TAG + "map", _YAML_TAG + "seq"}
# More openers in a row than MAX_DEPTH allows. PyYAML's scanner looks up to 1024 characters ahead
# inside a flow collection, at a cost that grows with each open bracket, before it yields one event.
_DEEP_FLOW = re.compile(rf"(?:[\[{{][ \t\r\n]*){{{MAX_DEPTH + 1}}}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TEXT_TAGS = {_STR, _YAML_TAG + "timestamp", _YAML_TAG + "binary"}
_SPECIAL_FLOAT = re.compile(r"^([-+]?)\.(inf|Inf|INF|nan|NaN|NAN)$")


def _core_schema(base: type) -> type:
    """A loader class that resolves plain scalars by the YAML 1.2 core schema (and keeps merge keys)."""
    resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}

    def add(tag: str, pattern: str, first: str) -> None:
        for char in first:
            resolvers.setdefault(char, []).append((tag, re.compile(pattern, re.X)))

    add(_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF")
    add(_NULL, r"^(?:~|null|Null|NULL|)$", "~nN")
    resolvers.setdefault(None, []).append((_NULL, re.compile(r"^$")))
    add(_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789")
    add(_FLOAT, r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+.0123456789")
    add(_MERGE, r"^<<$", "<")
    return type(f"Core{base.__name__}", (base,), {"yaml_implicit_resolvers": resolvers})


# libyaml's parser when PyYAML has it (several times faster), else the pure-Python one: both safe.
_LOADER = _core_schema(getattr(yaml, "CSafeLoader", yaml.SafeLoader))
_PURE_LOADER = _core_schema(yaml.SafeLoader)
_YAML_11 = yaml.resolver.Resolver()  # only asked how YAML 1.1 would read a plain scalar


@attrs.frozen
class Mark:
    line: int  # 1-based
    column: int  # 1-based
    style: str | None = None  # the scalar's style: None plain, '"', "'", '|', '>'


class YamlError(ValueError):
    """A file is not YAML we accept; line and column are 1-based; path is the value's place, if known."""

    def __init__(self, message: str, line: int = 0, column: int = 0, hint: str = "", path: Path = ()) -> None:
        super().__init__(message)
        self.message, self.line, self.column, self.hint, self.path = message, line, column, hint, path


class YamlErrors(ValueError):
    """Values and keys of a well-formed file that are refused (all of them), with the document built around
    them (refused values are None, refused keys left out), so each can be placed in its chain and step."""

    def __init__(self, errors: list[YamlError], document: Document) -> None:
        super().__init__("\n".join(error.message for error in errors))
        self.errors, self.document = errors, document


@attrs.frozen
class Document:
    """A loaded YAML file: plain data, plus where each value (and each mapping key) stands."""

    data: Any
    marks: dict[Path, Mark]
    key_marks: dict[Path, Mark]
    lines: tuple[str, ...] = ()  # the text, to place errors inside block scalars

    def mark(self, path: Path, key: bool = False) -> Mark:
        """The mark of the value at path (or of its key), else of the nearest enclosing value."""
        table = self.key_marks if key else self.marks
        if path in table:
            return table[path]
        while path:
            path = path[:-1]
            if path in self.marks:
                return self.marks[path]
        return Mark(1, 1)


def _mark_of(node: Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1, getattr(node, "style", None))


def _place(event: yaml.Event) -> tuple[int, int]:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark else (0, 0)


def _error_at(node: Node, message: str, hint_text: str, path: Path) -> YamlError:
    mark = _mark_of(node)
    return YamlError(message, mark.line, mark.column, hint_text, path)


def _nesting_error(line: int, column: int) -> YamlError:
    return YamlError(f"nesting deeper than {MAX_DEPTH} levels", line, column, hint("yaml", "depth"))


def _check_flow_depth(text: str) -> None:
    """Refuse `[[[[...` quickly, at its first opener too many, before the scanner reads ahead."""
    run = _DEEP_FLOW.search(text)
    if run is None:
        return
    opener = [m.start() for m in re.finditer(r"[\[{]", run.group())][MAX_DEPTH] + run.start()
    line_start = text.rfind("\n", 0, opener) + 1
    raise _nesting_error(text.count("\n", 0, opener) + 1, opener - line_start + 1)


def _check_shape(text: str, loader: Any) -> None:
    """Refuse deep nesting, many aliases, big alias expansions and recursive aliases, from the events,
    before anything is built."""
    _check_flow_depth(text)
    depth = aliases = values = 0
    open_anchors: list[tuple[str | None, int]] = []  # (anchor, values before it) of each open collection
    sizes: dict[str, int] = {}  # anchor -> how many values it expands to
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _nesting_error(*_place(event))
            open_anchors.append((event.anchor, values))
            values += 1
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1
            anchor, before = open_anchors.pop()
            if anchor is not None:
                sizes[anchor] = values - before
        elif isinstance(event, yaml.ScalarEvent):
            values += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if any(anchor == event.anchor for anchor, _ in open_anchors):
                raise YamlError(f"alias *{event.anchor} stands inside its own anchor &{event.anchor}: "
                                "a recursive alias", *_place(event), hint("yaml", "recursive alias"))
            values += sizes.get(event.anchor or "", 1)
            if aliases > MAX_ALIASES:
                raise YamlError(f"more than {MAX_ALIASES} aliases", *_place(event), hint("yaml", "aliases"))
        if values > MAX_NODES:
            raise YamlError(f"aliases expand the document to more than {MAX_NODES} values", *_place(event),
                            hint("yaml", "expansion"))


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_YAML_TAG):] if tag.startswith(_YAML_TAG) else tag


def _refuse_tag(node: Node, path: Path) -> YamlError:
    return _error_at(node, f"tag {_tag_name(node.tag)} is not allowed", hint("yaml", "tag"), path)


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _check_text(node: ScalarNode, text: str, path: Path) -> None:
    """Text is valid Unicode: a lone surrogate (from an escape) cannot be written as UTF-8."""
    if text.isascii():
        return
    found = _SURROGATE.search(text)
    if found is not None:
        raise _error_at(node, f"the text holds a lone surrogate U+{ord(found.group()):04X} "
                              f"(character {found.start() + 1}), which is not a character",
                        hint("yaml", "surrogate"), path)


class _Builder:
    """Turns a composed node tree into plain data, recording marks by path."""

    def __init__(self) -> None:
        self.constructor = yaml.SafeLoader("")
        self.marks: dict[Path, Mark] = {}
        self.key_marks: dict[Path, Mark] = {}
        self.nodes = 0
        self.refused: list[YamlError] = []  # values and keys refused; the build goes on without them

    def build(self, node: Node, path: Path) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _error_at(node, f"document expands to more than {MAX_NODES} values", hint("yaml", "expansion"),
                            path)
        self.marks.setdefault(path, _mark_of(node))
        if isinstance(node, MappingNode | SequenceNode) and node.tag not in _COLLECTION_TAGS:
            self.refused.append(_refuse_tag(node, path))
            return None
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        try:
            return self._scalar(node, path)
        except YamlError as error:
            self.refused.append(error)
            return None

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        tag, text = node.tag, node.value
        value: Any
        if tag in _TEXT_TAGS:  # a date or blob is text in an event payload
            _check_text(node, text, path)
            value = text
        elif tag == _NULL:
            value = None
        elif tag == _BOOL:
            value = text.lower() == "true"
        elif tag == _INT:
            value = int(text, 8 if text.startswith("0o") else 16 if text.startswith("0x") else 10)
        elif tag == _FLOAT:
            value = float(_SPECIAL_FLOAT.sub(lambda m: m.group(1) + m.group(2).lower(), text))
            if not math.isfinite(value):
                raise _error_at(node, f"{text} is not a finite number", hint("yaml", "not finite"), path)
        else:
            raise _refuse_tag(node, path)
        if not node.style:  # plain (libyaml says '', PyYAML None)
            self._check_ambiguous(node, value, path)
        return value

    def _check_ambiguous(self, node: ScalarNode, value: Any, path: Path) -> None:
        """Refuse a plain scalar that YAML 1.1 reads as another boolean or number than YAML 1.2 does."""
        text = node.value
        old_tag = _YAML_11.resolve(ScalarNode, text, (True, False))
        if old_tag in _TEXT_TAGS or old_tag == _NULL:
            return
        old = self.constructor.construct_object(ScalarNode(old_tag, text))
        if type(old) is type(value) and old == value:
            return
        new = "text" if isinstance(value, str) else repr(value).lower() if isinstance(value, bool) else repr(value)
        if old_tag == _BOOL:
            raise _error_at(node, f"{text!r} is a boolean in YAML 1.1 and {new} in YAML 1.2",
                            hint("yaml", "yaml-1.1-boolean", text=text, old=str(old).lower(), new=str(old).lower(),
                                 quoted=_quoted(text)), path)
        # 010: ten or eight? Say how to write each without doubt; 1:30, 1_000, 0b11: the number YAML 1.1 meant.
        plain = f"{value} or 0o{old:o}" if isinstance(value, int) and isinstance(old, int) else repr(old)
        raise _error_at(node, f"{text!r} is the number {old!r} in YAML 1.1 and {new} in YAML 1.2",
                        hint("yaml", "yaml-1.1-number", text=text, old=repr(old), new=new, plain=plain,
                             quoted=_quoted(text)), path)

    def _key(self, node: Node, path: Path) -> str:
        if not isinstance(node, ScalarNode):
            raise _error_at(node, "mapping keys must be plain strings", hint("yaml", "key"), path)
        at = (*path, node.value.encode("utf-8", "backslashreplace").decode("utf-8"))  # printable, surrogates too
        if node.tag in (_NULL, _BOOL) and not node.style:
            raise _error_at(node, f"the key {node.value!r} is read as {'null' if node.tag == _NULL else 'a boolean'}",
                            hint("yaml", "key not text", key=node.value), at)
        if node.tag not in (*_TEXT_TAGS, _INT, _FLOAT):
            raise _refuse_tag(node, at)
        _check_text(node, node.value, at)
        return node.value  # keys are text as written: 010 is "010", on is "on"

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        own: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in merged:
                    value = self.build(source, path)
                    if not isinstance(value, dict):
                        self.refused.append(_error_at(source, "a merge key (<<) takes a mapping",
                                                      hint("yaml", "merge"), path))
                        continue
                    result.update(value)
                continue
            try:
                key = self._key(key_node, path)
            except YamlError as error:
                self.refused.append(error)
                continue
            if key in own:
                self.refused.append(_error_at(
                    key_node, f"duplicate key {key!r}",
                    hint("yaml", "duplicate key", key=key, line=self.key_marks[(*path, key)].line), (*path, key)))
                continue
            self.key_marks[(*path, key)] = _mark_of(key_node)
            own[key] = self.build(value_node, (*path, key))
        result.update(own)
        return result


def load(text: str) -> Document:
    """Parse one YAML document; YamlError (a 1-based line and column) when it cannot be read at all, or
    YamlErrors listing every value and key refused in a file that could be read."""
    if len(text) > MAX_BYTES:
        raise YamlError(f"file is larger than {MAX_BYTES} bytes", 1, 1)
    try:
        try:
            _check_shape(text, _LOADER)
            node = yaml.compose(text, Loader=_LOADER)
        except yaml.YAMLError:
            # Say it in the pure-Python parser's words: they name the problem and its context better.
            _check_shape(text, _PURE_LOADER)
            node = yaml.compose(text, Loader=_PURE_LOADER)
    except YamlError:
        raise
    except yaml.MarkedYAMLError as error:
        raise _syntax_error(error) from None
    except yaml.YAMLError as error:
        raise YamlError(f"invalid YAML: {error}", 1, 1) from None
    lines = tuple(text.splitlines())
    if node is None:
        return Document(None, {(): Mark(1, 1)}, {}, lines)
    builder = _Builder()
    data = builder.build(node, ())
    document = Document(data, builder.marks, builder.key_marks, lines)
    if builder.refused:
        raise YamlErrors(builder.refused, document)
    return document


def _syntax_error(error: yaml.MarkedYAMLError) -> YamlError:
    """PyYAML's problem, at its place, with where the enclosing construct began.

    The hint is looked up by the parser's `problem` field (PyYAML's only description of what it met).
    """
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    message = error.problem or error.context or str(error)
    if error.context and error.problem and error.context_mark and error.context_mark.line + 1 != line:
        message += f" ({error.context} at line {error.context_mark.line + 1})"
    elif error.context and error.problem:
        message += f" ({error.context})"
    problem = error.problem or ""
    known = next((key for (kind, key) in _SYNTAX_KEYS if problem.startswith(key)), None)
    return YamlError(f"invalid YAML: {message}", line, column, hint("yaml", known) if known else "")


_SYNTAX_KEYS = [key for key in HINTS if key[0] == "yaml"]
