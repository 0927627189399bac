"""Safe YAML loading for untrusted chain files, keeping the line and column of every value.

Safe loading only (no Python tags), duplicate keys are errors, and nesting depth, aliases and the
size a document expands to are bounded, so an alias bomb or a 100,000-level nest is refused quickly.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# libyaml's parser when PyYAML has it (several times faster), else the pure-Python one: both safe.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_BYTES = 2_000_000
MAX_DEPTH = 64
MAX_ALIASES = 200
MAX_NODES = 200_000

Path = tuple[str | int, ...]

_YAML_TAG = "tag:yaml.org,2002:"
_MERGE = _YAML_TAG + "merge"
_STR = _YAML_TAG + "str"
_COLLECTION_TAGS = {_YAML_TAG + "map", _YAML_TAG + "seq"}
# More openers in a row than MAX_DEPTH allows. PyYAML's scanner looks up to 1024 characters ahead
# inside a flow collection, at a cost that grows with each open bracket, before it yields one event.
_DEEP_FLOW = re.compile(rf"(?:[\[{{][ \t\r\n]*){{{MAX_DEPTH + 1}}}")
# Scalars that stay text: a timestamp or binary blob is just a string in an event payload.
_AS_TEXT = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}


@attrs.frozen
class Mark:
    line: int  # 1-based
    column: int  # 1-based
    style: str | None = None  # the scalar's style: None plain, '"', "'", '|', '>'


# PyYAML's problem text -> what to do about it. Never guess beyond this table.
SYNTAX_HINTS: dict[str, str] = {
    "expected <block end>": "check the indentation: the keys of a mapping, and the '-' of a list, line up",
    "expected ',' or ']'": "a [ is not closed: add the ], or quote a value that starts with [",
    "expected ',' or '}'": "a { is not closed: add the }, or quote a value that starts with {",
    "mapping values are not allowed here": "quote a value that contains ': ', or indent a nested mapping",
    "found character '\\t'": "YAML indents with spaces, not tabs",
    "found unexpected end of stream": "a quoted string is not closed: add the closing quote",
}


class YamlError(ValueError):
    """A file is not YAML we accept; line and column are 1-based; path is the value's place, if known."""

    def __init__(self, message: str, line: int = 0, column: int = 0, hint: str = "", path: Path = ()) -> None:
        super().__init__(message)
        self.message, self.line, self.column, self.hint, self.path = message, line, column, hint, path


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


def _nesting_error(line: int, column: int) -> YamlError:
    return YamlError(f"nesting deeper than {MAX_DEPTH} levels", line, column,
                     "chain files are shallow; flatten the structure")


def _check_flow_depth(text: str) -> None:
    """Refuse `[[[[...` quickly, at its first opener too many, before the scanner reads ahead."""
    run = _DEEP_FLOW.search(text)
    if run is None:
        return
    opener = [m.start() for m in re.finditer(r"[\[{]", run.group())][MAX_DEPTH] + run.start()
    line_start = text.rfind("\n", 0, opener) + 1
    raise _nesting_error(text.count("\n", 0, opener) + 1, opener - line_start + 1)


def _check_shape(text: str, loader: Any) -> None:
    """Refuse deep nesting, many aliases and big alias expansions, from the events, before building."""
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
            values += sizes.get(event.anchor or "", 1)
            if aliases > MAX_ALIASES:
                raise YamlError(f"more than {MAX_ALIASES} aliases", *_place(event),
                                "use fewer *aliases; write shared lists once under chains/data/")
        if values > MAX_NODES:
            raise YamlError(f"aliases expand the document to more than {MAX_NODES} values", *_place(event),
                            "aliases that repeat aliases multiply; write the data out or make it smaller")


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_YAML_TAG):] if tag.startswith(_YAML_TAG) else tag


def _refuse_tag(node: Node, path: Path) -> YamlError:
    mark = _mark_of(node)
    return YamlError(f"tag {_tag_name(node.tag)} is not allowed", mark.line, mark.column,
                     "chain files are plain YAML: no custom tags", path)


class _Builder:
    """Turns a composed node tree into plain data, recording marks by path."""

    def __init__(self) -> None:
        self.constructor = yaml.SafeLoader("")
        self.marks: dict[Path, Mark] = {}
        self.key_marks: dict[Path, Mark] = {}
        self.nodes = 0

    def build(self, node: Node, path: Path) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            mark = _mark_of(node)
            raise YamlError(f"document expands to more than {MAX_NODES} values", mark.line, mark.column,
                            "aliases that repeat aliases multiply; write the data out or make it smaller", path)
        self.marks.setdefault(path, _mark_of(node))
        if isinstance(node, MappingNode | SequenceNode) and node.tag not in _COLLECTION_TAGS:
            raise _refuse_tag(node, path)
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar(node, path)

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        if node.tag in _AS_TEXT:
            return node.value
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as error:
            raise _refuse_tag(node, path) from error

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        own: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in merged:
                    value = self.build(source, path)
                    if not isinstance(value, dict):
                        mark = _mark_of(source)
                        raise YamlError("a merge key (<<) takes a mapping", mark.line, mark.column,
                                        "merge an &anchor of a mapping, e.g. <<: *defaults", path)
                    result.update(value)
                continue
            if not isinstance(key_node, ScalarNode):
                mark = _mark_of(key_node)
                raise YamlError("mapping keys must be plain strings", mark.line, mark.column,
                                "write each key as a plain word, e.g. id:", path)
            key = key_node.value if key_node.tag == _STR else str(self._scalar(key_node, path))
            if key in own:
                mark = _mark_of(key_node)
                raise YamlError(
                    f"duplicate key {key!r}",
                    mark.line,
                    mark.column,
                    f"{key!r} is already set at line {self.key_marks[(*path, key)].line}; keep one",
                    (*path, key),
                )
            self.key_marks[(*path, key)] = _mark_of(key_node)
            own[key] = self.build(value_node, (*path, key))
        result.update(own)
        return result


def load(text: str) -> Document:
    """Parse one YAML document; raise YamlError with a 1-based line and column."""
    if len(text) > MAX_BYTES:
        raise YamlError(f"file is larger than {MAX_BYTES} bytes", 1, 1)
    try:
        try:
            _check_shape(text, _LOADER)
            node = yaml.compose(text, Loader=_LOADER)
        except yaml.YAMLError:
            # Say it in the pure-Python parser's words: they name the problem and its context better.
            _check_shape(text, yaml.SafeLoader)
            node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        raise _syntax_error(error) from None
    except yaml.YAMLError as error:
        raise YamlError(f"invalid YAML: {error}", 1, 1) from None
    lines = tuple(text.splitlines())
    if node is None:
        return Document(None, {(): Mark(1, 1)}, {}, lines)
    builder = _Builder()
    data = builder.build(node, ())
    return Document(data, builder.marks, builder.key_marks, lines)


def _syntax_error(error: yaml.MarkedYAMLError) -> YamlError:
    """PyYAML's problem, at its place, with where the enclosing construct began."""
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    message = error.problem or error.context or str(error)
    if error.context and error.problem and error.context_mark and error.context_mark.line + 1 != line:
        message += f" ({error.context} at line {error.context_mark.line + 1})"
    elif error.context and error.problem:
        message += f" ({error.context})"
    hint = next((h for problem, h in SYNTAX_HINTS.items() if problem in (error.problem or "")), "")
    return YamlError(f"invalid YAML: {message}", line, column, hint)
