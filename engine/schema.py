"""The JSON Schema of chain files, and its errors turned into problems a person can act on.

`schemas/chain.schema.json` is the single source of truth for the format; hints live in one table.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path as FsPath
from typing import Any

import jsonschema

from ._yaml import Document
from .errors import Path, Problem, did_you_mean

SCHEMA_NAME = "chain.schema.json"

DELAY_HINT = 'a delay is milliseconds (150), a duration ("1.5s"), a range [min, max] or {distribution: ...}'
DURATION_HINT = (
    'a duration is a number of milliseconds (150) or a string with a unit: "150ms", "1.5s", "2m", "1h"'
)
CHAIN_FILE_HINT = "a chain file is a mapping with at least name and steps, e.g. name: my_chain, steps: [...]"

# (keyword, field) -> hint; (keyword, None) is the fallback for the keyword. Never guess beyond this table.
HINTS: dict[tuple[str, str | None], str] = {
    ("required", "name"): "every chain file names its chain, e.g. name: agent_execution",
    ("required", "steps"): (
        "a chain needs a list of steps, e.g. steps: [{id: requested, event_type: x.requested.v1}]"
    ),
    ("required", "id"): "every step needs an id, e.g. id: query_requested",
    ("required", "weight"): "every branch needs a weight, e.g. weight: 90",
    ("required", "max"): "normal, lognormal and exponential delays are bounded: add max, e.g. max: 5s",
    ("required", "min"): "a uniform delay needs min and max, or write it as [min, max]",
    ("required", "mean"): "normal and exponential delays need a mean, e.g. mean: 200ms",
    ("required", "stddev"): "a normal delay needs a stddev, e.g. stddev: 50ms",
    ("required", "median"): "a lognormal delay needs a median, e.g. median: 800ms",
    ("required", "sigma"): "a lognormal delay needs a sigma (spread of its logarithm), e.g. sigma: 0.5",
    ("required", "distribution"): (
        "a delay written as a mapping names its distribution: uniform, normal, lognormal or exponential"
    ),
    ("pattern", "name"): (
        "chain names are snake_case: lowercase letters, digits and _, starting with a letter"
    ),
    ("pattern", "id"): (
        "step ids are letters, digits and _, not starting with a digit (templates read them as steps.<id>)"
    ),
    ("pattern", "locale"): "a Faker locale looks like en_US or de_DE",
    ("pattern", "vars"): (
        "var names are letters, digits and _, not starting with a digit (templates read them as vars.<name>)"
    ),
    ("exclusiveMinimum", "weight"): "weights are relative and above 0; to turn something off, remove it",
    ("exclusiveMinimum", "sigma"): "sigma is the spread of the delay's logarithm and is above 0, e.g. 0.5",
    ("minimum", "max_visits"): "max_visits counts visits of one chain instance and is at least 1",
    ("minimum", None): "durations and counts cannot be negative",
    ("minItems", "branches"): "a step with branches needs at least two; for one, write the step itself",
    ("minItems", "steps"): "give at least one step",
    ("minItems", "delay"): "a delay range is [min, max] in milliseconds, e.g. delay: [500, 1500]",
    ("maxItems", "delay"): "a delay range is [min, max] in milliseconds, e.g. delay: [500, 1500]",
    ("enum", "distribution"): "a distribution is one of uniform, normal, lognormal, exponential",
    ("type", "$"): CHAIN_FILE_HINT,
    ("type", "delay"): DELAY_HINT,
    ("type", "weight"): "a weight is a number, written without quotes, e.g. weight: 90",
    ("type", "sigma"): "sigma is a plain number, written without quotes, e.g. sigma: 0.5",
    ("type", "max_visits"): "max_visits is a whole number, e.g. max_visits: 3",
    ("type", "end"): "end is true or false, e.g. end: true",
    ("type", "payload"): "a payload is any YAML value; a mapping of fields is usual, e.g. payload: {user: x}",
    ("type", "steps"): "steps is a list: each item starts with '- id: ...'",
    ("type", "branches"): "branches is a list: each item starts with '- id: ...' and has a weight",
    ("type", "envelope"): "envelope is a mapping, e.g. envelope: {tenant_id: acme, namespace: staging}",
    ("type", "vars"): "vars is a mapping of names to values or templates",
}

_DURATION_KEYS = {"min", "max", "mean", "stddev", "median"}
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


@functools.cache
def schema() -> dict[str, Any]:
    """The chain schema: from the source tree, or from the installed package."""
    source = FsPath(__file__).resolve().parent.parent / "schemas" / SCHEMA_NAME
    if source.is_file():
        text = source.read_text(encoding="utf-8")
    else:
        text = resources.files("engine.schemas").joinpath(SCHEMA_NAME).read_text(encoding="utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


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


def hint_for(keyword: str, field: str | None) -> str:
    return HINTS.get((keyword, field)) or HINTS.get((keyword, None), "")


def _field(path: Path) -> str | None:
    """The name the rule is about: the last key in the path (skipping list indexes)."""
    for part in reversed(path):
        if isinstance(part, str):
            return part
    return None


def _leaf(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Descend anyOf/oneOf to the alternative meant for this kind of value."""
    while error.context:
        fitting = [e for e in error.context if _fits(e)]
        if not fitting:
            return error
        error = jsonschema.exceptions.best_match(fitting)
    return error


def _fits(error: jsonschema.ValidationError) -> bool:
    """False for an alternative meant for another kind of value (a list where a mapping stands...)."""
    if error.validator == "type" and not error.relative_path:
        return False
    if error.validator in ("anyOf", "oneOf") and not error.relative_path and error.context:
        return any(_fits(e) for e in error.context)
    return True


def _known_keys(error: jsonschema.ValidationError) -> list[str]:
    sub = error.schema if isinstance(error.schema, dict) else {}
    keys = list(sub.get("properties", {}))
    ref = sub.get("$ref", "")
    if ref.startswith("#/$defs/"):
        keys += list(schema()["$defs"][ref.split("/")[-1]].get("properties", {}))
    return sorted(set(keys))


def _unknown_key_problems(
    error: jsonschema.ValidationError, path: Path, doc: Document, file: str
) -> list[Problem]:
    known = _known_keys(error)
    problems = []
    instance = error.instance if isinstance(error.instance, dict) else {}
    for key in instance:
        if key in known:
            continue
        hint = did_you_mean(key, known, f"known keys here: {', '.join(known)}")
        mark = doc.mark((*path, key), key=True)
        problems.append(Problem(file, mark.line, mark.column, (*path, key), f"unknown key {key!r}", "", hint))
    return problems


def _message(error: jsonschema.ValidationError, path: Path) -> tuple[str, str]:
    """(message, hint) for one leaf error."""
    keyword, field, found = error.validator, _field(path), error.instance
    if keyword == "required":
        missing = error.message.split("'")[1]
        return f"missing required key {missing!r}", hint_for("required", missing)
    if keyword == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else expected
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        hint = hint_for("type", field if path else "$")
        return f"expected {wanted}, found {describe(found)}", hint
    if keyword == "pattern":
        if field in _DURATION_KEYS or field == "delay" or isinstance(path[-1] if path else None, int):
            return f"{describe(found)} is not a duration", DURATION_HINT
        if field in _PATTERN_NOUNS:
            return f"{describe(found)} is not a valid {_PATTERN_NOUNS[field]}", hint_for("pattern", field)
        return f"{describe(found)} does not match {error.validator_value}", hint_for("pattern", field)
    if keyword in ("minimum", "exclusiveMinimum"):
        relation = "at least" if keyword == "minimum" else "above"
        return f"must be {relation} {error.validator_value}, found {found!r}", hint_for(keyword, field)
    if keyword in ("minItems", "maxItems"):
        size = "at least" if keyword == "minItems" else "at most"
        return f"needs {size} {error.validator_value} items, found {len(found)}", hint_for(keyword, field)
    if keyword == "enum":
        options = ", ".join(map(str, error.validator_value))
        return f"{describe(found)} is not one of {options}", hint_for("enum", field)
    if keyword == "minLength":
        return "must not be empty", hint_for(keyword, field)
    return error.message, hint_for(keyword, field)


def check(doc: Document, file: str) -> list[Problem]:
    """Every schema problem of one loaded file (an empty list when it is valid)."""
    problems: list[Problem] = []
    for top in _validator().iter_errors(doc.data):
        error = _leaf(top)
        path: Path = tuple(error.absolute_path)
        if error.validator in ("additionalProperties", "unevaluatedProperties"):
            problems += _unknown_key_problems(error, path, doc, file)
            continue
        if "propertyNames" in error.schema_path:  # the error is about a key, so it stands at the key
            bad = error.instance
            path = (*path, bad)
            mark = doc.mark(path, key=True)
            field = _field(path[:-1])
            noun = _PATTERN_NOUNS.get(field or "", "name")
            message = f"{describe(bad)} is not a valid {noun}"
            hint = hint_for("pattern", field)
            problems.append(Problem(file, mark.line, mark.column, path, message, "", hint))
            continue
        message, hint = _message(error, path)
        mark = doc.mark(path)
        problems.append(Problem(file, mark.line, mark.column, path, message, "", hint))
    return problems
