"""The JSON Schema of chain files, and its errors turned into problems a person can act on.

`schemas/chain.schema.json` is the single source of truth for the format; hints live in one table.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from pathlib import Path as FsPath
from typing import Any

import jsonschema

from ..errors import Path, Problem
from ..hints import did_you_mean, hint
from .yaml_marks import Document

SCHEMA_NAME = "chain.schema.json"
SCHEMAS = (SCHEMA_NAME, "scenario.schema.json")  # they refer to each other by $id

_DURATION_KEYS = {"min", "max", "mean", "stddev", "median", "at", "every", "window", "over", "on", "off", "for",
                  "interval", "duration"}
_RATE_KEYS = {"rate", "from", "to", "base", "peak"}
_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "nothing",
}
# The field a pattern checks -> what a value of it is called in a message.
_PATTERN_NOUNS = {"name": "chain name", "id": "step id", "locale": "locale", "vars": "var name"}
_FIELD_NOUNS = {**_PATTERN_NOUNS, "event_type": "event type", "outcome": "outcome", "tenant_id": "tenant id",
                "namespace": "namespace", "goto": "goto target"}
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@functools.cache
def schema(name: str = SCHEMA_NAME) -> dict[str, Any]:
    """A schema of schemas/: from the source tree, or from the installed package (engine/schemas/)."""
    source = FsPath(__file__).resolve().parents[2] / "schemas" / name
    if source.is_file():
        text = source.read_text(encoding="utf-8")
    else:
        text = resources.files("engine.schemas").joinpath(name).read_text(encoding="utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


@functools.cache
def validator(name: str = SCHEMA_NAME) -> jsonschema.Draft202012Validator:
    from referencing import Registry, Resource

    registry: Registry[Any] = Registry().with_resources(
        (schema(each)["$id"], Resource.from_contents(schema(each))) for each in SCHEMAS)
    return jsonschema.Draft202012Validator(schema(name), registry=registry)


def _definition(ref: str, name: str) -> dict[str, Any]:
    """The definition a `$ref` names: `#/$defs/x` in this schema, or `<$id>#/$defs/x` in another."""
    target, _, pointer = ref.partition("#")
    owner = next((each for each in SCHEMAS if target and schema(each)["$id"] == target), name)
    result: dict[str, Any] = schema(owner)["$defs"].get(pointer.split("/")[-1], {})
    return result


def describe(value: Any) -> str:
    """How a found value reads in a message."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) < 40 else "a string"
    return repr(value)


def hint_for(keyword: str, field: str | None, kind: str = "chain") -> str:
    """The table's hint for a schema keyword about a field, in a chain or scenario file (else the keyword's own,
    else none)."""
    return hint("schema", keyword, field or "", kind)


def _kind(name: str) -> str:
    return "chain" if name == SCHEMA_NAME else "scenario"


def _field(path: Path) -> str | None:
    """The name the rule is about: the last key in the path (skipping list indexes)."""
    for part in reversed(path):
        if isinstance(part, str):
            return part
    return None


def _leaves(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """Descend anyOf/oneOf to the alternative meant for this kind of value, and give all its errors
    (a misspelt key and the key it leaves missing are two errors of one alternative)."""
    if not error.context:
        return [error]
    fitting = [e for e in error.context if _fits(e)]
    if not fitting:
        return [error]
    best = jsonschema.exceptions.best_match(fitting)
    groups: dict[object, list[jsonschema.ValidationError]] = {}
    for each in fitting:
        groups.setdefault(each.relative_schema_path[0] if each.relative_schema_path else None, []).append(each)
    # The alternative meant is the one whose keys the value uses (fewest unknown keys), then jsonschema's best.
    alternative = min(groups, key=lambda a: (_unknown_keys(groups[a]), best not in groups[a]))
    return [leaf for e in groups[alternative] for leaf in _leaves(e)]


def _unknown_keys(errors: list[jsonschema.ValidationError]) -> int:
    return sum(1 for error in errors for leaf in _leaves(error)
               if leaf.validator in ("additionalProperties", "unevaluatedProperties"))


def _fits(error: jsonschema.ValidationError) -> bool:
    """False for an alternative meant for another kind of value (a list where a mapping stands...)."""
    if error.validator == "type" and not error.relative_path:
        return False
    if error.validator in ("anyOf", "oneOf") and not error.relative_path and error.context:
        return any(_fits(e) for e in error.context)
    return True


def _known_keys(error: jsonschema.ValidationError, name: str) -> list[str]:
    sub = error.schema if isinstance(error.schema, dict) else {}
    keys = list(sub.get("properties", {}))
    ref = sub.get("$ref", "")
    if "#/$defs/" in ref:
        keys += list(_definition(ref, name).get("properties", {}))
    return sorted(set(keys))


def _unknown_key_problems(error: jsonschema.ValidationError, path: Path, doc: Document, file: str,
                          name: str) -> list[Problem]:
    known = _known_keys(error, name)
    problems = []
    instance = error.instance if isinstance(error.instance, dict) else {}
    for key in instance:
        if key in known:
            continue
        mark = doc.mark((*path, key), key=True)
        problems.append(Problem(file, mark.line, mark.column, (*path, key), f"unknown key {key!r}", "",
                                did_you_mean(key, known, hint_for("unknown key", None).format(known=", ".join(known)))))
    return problems


def _control_character(text: str) -> str:
    """`control character U+0000 (character 4)` for the first one in text, else ""."""
    found = _CONTROL.search(text)
    return f"control character U+{ord(found.group()):04X} (character {found.start() + 1})" if found else ""


def _message(error: jsonschema.ValidationError, path: Path, kind: str) -> tuple[str, str]:
    """(message, hint) for one leaf error."""
    keyword, field, found = error.validator, _field(path), error.instance
    if keyword == "required":
        missing = error.message.split("'")[1]
        return f"missing required key {missing!r}", hint_for("required", missing, kind)
    if keyword == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else expected
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        return f"expected {wanted}, found {describe(found)}", hint_for("type", field if path else "$", kind)
    if keyword == "pattern":
        if field in _RATE_KEYS:
            return f"{describe(found)} is not a rate", hint_for("pattern", "rate", kind)
        if field in _DURATION_KEYS or field == "delay" or isinstance(path[-1] if path else None, int):
            return f"{describe(found)} is not a duration", hint_for("pattern", "duration", kind)
        if isinstance(found, str) and _control_character(found):
            return f"{_control_character(found)} in the {_FIELD_NOUNS.get(field or '', field)}", \
                hint_for("control character", None, kind)
        if isinstance(found, str) and ("{{" in found or "{%" in found):
            return f"the {_FIELD_NOUNS.get(field or '', field)} is not a template", \
                hint_for("not template", None, kind).format(field=field)
        if field in _PATTERN_NOUNS:
            return f"{describe(found)} is not a valid {_PATTERN_NOUNS[field]}", hint_for("pattern", field, kind)
        return f"{describe(found)} does not match {error.validator_value}", hint_for("pattern", field, kind)
    if keyword in ("minimum", "exclusiveMinimum", "maximum"):
        relation = {"minimum": "at least", "exclusiveMinimum": "above", "maximum": "at most"}[keyword]
        about = "duration" if keyword == "maximum" and (field in _DURATION_KEYS or field == "delay"
                                                        or isinstance(path[-1] if path else None, int)) else field
        return f"must be {relation} {error.validator_value:,}, found {found!r}", hint_for(keyword, about, kind)
    if keyword in ("minItems", "maxItems"):
        size = "at least" if keyword == "minItems" else "at most"
        return f"needs {size} {error.validator_value} items, found {len(found)}", hint_for(keyword, field, kind)
    if keyword == "enum":
        options = ", ".join(map(str, error.validator_value))
        return f"{describe(found)} is not one of {options}", hint_for("enum", field, kind)
    if keyword == "minLength":
        return "must not be empty", hint_for(keyword, field, kind)
    return error.message, hint_for(keyword, field, kind)


def check_value(value: Any, definition: str, file: str, name: str = "scenario.schema.json") -> list[Problem]:
    """Every problem of a value against one definition of a schema (`shape` of the scenario schema for
    `--shape`), placed at line 0: a value given on the command line has no lines."""
    from referencing import Registry, Resource

    registry: Registry[Any] = Registry().with_resources(
        (schema(each)["$id"], Resource.from_contents(schema(each))) for each in SCHEMAS)
    checker = jsonschema.Draft202012Validator({"$ref": f"{schema(name)['$id']}#/$defs/{definition}"},
                                              registry=registry)
    doc = Document(value, {}, {})
    problems: list[Problem] = []
    for top in checker.iter_errors(value):
        for error in _leaves(top):
            problems += _problems(error, doc, file, name)
    return _without_explained(problems)


def check(doc: Document, file: str, name: str = SCHEMA_NAME) -> list[Problem]:
    """Every schema problem of one loaded file (an empty list when it is valid)."""
    problems: list[Problem] = []
    for top in validator(name).iter_errors(doc.data):
        for error in _leaves(top):
            problems += _problems(error, doc, file, name)
    return _without_explained(problems)


def _problems(error: jsonschema.ValidationError, doc: Document, file: str, name: str) -> list[Problem]:
    path: Path = tuple(error.absolute_path)
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        return _unknown_key_problems(error, path, doc, file, name)
    if "propertyNames" in error.schema_path:  # the error is about a key, so it stands at the key
        bad = error.instance
        path = (*path, bad)
        mark = doc.mark(path, key=True)
        field = _field(path[:-1])
        noun = _PATTERN_NOUNS.get(field or "", "name")
        return [Problem(file, mark.line, mark.column, path, f"{describe(bad)} is not a valid {noun}", "",
                        hint_for("pattern", field, _kind(name)))]
    message, hint_text = _message(error, path, _kind(name))
    mark = doc.mark(path)
    return [Problem(file, mark.line, mark.column, path, message, "", hint_text)]


def _without_explained(problems: list[Problem]) -> list[Problem]:
    """Drop `missing required key 'median'` where an unknown key beside it says `did you mean 'median'?`."""
    meant = {(p.path[:-1], p.hint) for p in problems if p.message.startswith("unknown key")}
    kept, seen = [], set()
    for problem in problems:
        if problem.message.startswith("missing required key"):
            key = problem.message.split("'")[1]
            if (problem.path, f"did you mean {key!r}?") in meant:
                continue
        if (problem.path, problem.message) in seen:
            continue
        seen.add((problem.path, problem.message))
        kept.append(problem)
    return kept
