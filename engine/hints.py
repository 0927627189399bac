"""Every hint chainsim prints, in one table, and the one did-you-mean.

A hint is what to do next. It is picked by what the engine knows (a schema keyword and the field it is about,
the kind of a template failure, a YAML parser's problem), never guessed from an exception's text; where no
entry fits there is no hint. `hint(key, **fields)` fills an entry's {fields}.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

DELAY = 'a delay is milliseconds (150), a duration ("1.5s"), a range [min, max] or {distribution: ...}'
DURATION = 'a duration is a number of milliseconds (150) or a string with a unit: "150ms", "1.5s", "2m", "1h", "1d"'
RANGE = "a delay range is [min, max] in milliseconds, e.g. delay: [500, 1500]"
CHAIN_FILE = "a chain file is a mapping with at least name and steps, e.g. name: my_chain, steps: [...]"
FINITE = "a number here is finite: JSON has no NaN or infinity; write a number, or quote it ('.inf') for text"
YAML_BOOL = "YAML 1.2 (what chainsim reads): only true and false are booleans; quote the word ('yes') for text"

HINTS: dict[tuple[str, ...], str] = {
    # ---- the JSON Schema: (schema, keyword, field); (schema, keyword) is the keyword's fallback
    ("schema", "required", "name"): "every chain file names its chain, e.g. name: agent_execution",
    ("schema", "required", "steps"): (
        "a chain needs a list of steps, e.g. steps: [{id: requested, event_type: x.requested.v1}]"
    ),
    ("schema", "required", "id"): "every step needs an id, e.g. id: query_requested",
    ("schema", "required", "weight"): "every branch needs a weight, e.g. weight: 90",
    ("schema", "required", "max"): "distributions and computed delays are bounded: add max, e.g. max: 5s",
    ("schema", "required", "min"): "a uniform delay needs min and max, or write it as [min, max]",
    ("schema", "required", "mean"): "normal and exponential delays need a mean, e.g. mean: 200ms",
    ("schema", "required", "stddev"): "a normal delay needs a stddev, e.g. stddev: 50ms",
    ("schema", "required", "median"): "a lognormal delay needs a median, e.g. median: 800ms",
    ("schema", "required", "sigma"): "a lognormal delay needs a sigma (spread of its logarithm), e.g. sigma: 0.5",
    ("schema", "required", "distribution"): (
        "a delay written as a mapping names its distribution: uniform, normal, lognormal or exponential"
    ),
    ("schema", "pattern", "name"): (
        "chain names are snake_case: lowercase letters, digits and _, starting with a letter"
    ),
    ("schema", "pattern", "id"): (
        "step ids are letters, digits and _, not starting with a digit (templates read them as steps.<id>)"
    ),
    ("schema", "pattern", "locale"): "a Faker locale looks like en_US or de_DE",
    ("schema", "pattern", "vars"): (
        "var names are letters, digits and _, not starting with a digit (templates read them as vars.<name>)"
    ),
    ("schema", "pattern", "duration"): DURATION,
    ("schema", "exclusiveMinimum", "weight"): "weights are relative and above 0; to turn something off, remove it",
    ("schema", "exclusiveMinimum", "sigma"): "sigma is the spread of the delay's logarithm and is above 0, e.g. 0.5",
    ("schema", "maximum", "weight"): "weights are relative: 90 and 10 say the same as 9e12 and 1e12; use small numbers",
    ("schema", "maximum", "sigma"): "sigma is the spread of the logarithm: 0.5 is usual, 3 is already very wide",
    ("schema", "maximum", "duration"): "the longest delay is 366 days (31,622,400,000 ms)",
    ("schema", "minimum", "max_visits"): "max_visits counts visits of one chain instance and is at least 1",
    ("schema", "maximum", "max_visits"): "max_visits bounds a loop; a million visits is the most one step may take",
    ("schema", "minimum"): "durations and counts cannot be negative",
    ("schema", "minItems", "branches"): "a step with branches needs at least two; for one, write the step itself",
    ("schema", "minItems", "steps"): "give at least one step",
    ("schema", "minItems", "delay"): RANGE,
    ("schema", "maxItems", "delay"): RANGE,
    ("schema", "enum", "distribution"): "a distribution is one of uniform, normal, lognormal, exponential",
    ("schema", "type", "$"): CHAIN_FILE,
    ("schema", "type", "delay"): DELAY,
    ("schema", "type", "weight"): "a weight is a number, written without quotes, e.g. weight: 90",
    ("schema", "type", "sigma"): "sigma is a plain number, written without quotes, e.g. sigma: 0.5",
    ("schema", "type", "max_visits"): "max_visits is a whole number, e.g. max_visits: 3",
    ("schema", "type", "end"): "end is true or false, e.g. end: true",
    ("schema", "type", "payload"): "a payload is any YAML value; a mapping of fields is usual, e.g. payload: {user: x}",
    ("schema", "type", "steps"): "steps is a list: each item starts with '- id: ...'",
    ("schema", "type", "branches"): "branches is a list: each item starts with '- id: ...' and has a weight",
    ("schema", "type", "envelope"): "envelope is a mapping, e.g. envelope: {tenant_id: acme, namespace: staging}",
    ("schema", "type", "vars"): "vars is a mapping of names to values or templates",
    ("schema", "type", "yaml-1.1-boolean"): YAML_BOOL,
    ("schema", "unknown key"): "known keys here: {known}",
    ("schema", "not template"): (
        "{field} is written as is, not rendered: make it plain text; put what varies in the payload"
    ),
    ("schema", "control character"): "ids, names and types are plain text: remove the control character",
    # ---- YAML: (yaml, what)
    ("yaml", "expected <block end>"): "check the indentation: the keys of a mapping, and the '-' of a list, line up",
    ("yaml", "expected ',' or ']'"): "a [ is not closed: add the ], or quote a value that starts with [",
    ("yaml", "expected ',' or '}'"): "a { is not closed: add the }, or quote a value that starts with {",
    ("yaml", "mapping values are not allowed here"): "quote a value that contains ': ', or indent a nested mapping",
    ("yaml", "found character '\\t'"): "YAML indents with spaces, not tabs",
    ("yaml", "found unexpected end of stream"): "a quoted string is not closed: add the closing quote",
    ("yaml", "depth"): "chain files are shallow; flatten the structure",
    ("yaml", "aliases"): "use fewer *aliases; write shared lists once under chains/data/",
    ("yaml", "expansion"): "aliases that repeat aliases multiply; write the data out or make it smaller",
    ("yaml", "recursive alias"): "an anchor cannot contain an alias of itself; write the repeated part out",
    ("yaml", "tag"): "chain files are plain YAML: no custom tags",
    ("yaml", "merge"): "merge an &anchor of a mapping, e.g. <<: *defaults",
    ("yaml", "key"): "write each key as a plain word, e.g. id:",
    ("yaml", "key not text"): "keys are text: quote it ('{key}') if you mean the word",
    ("yaml", "duplicate key"): "{key!r} is already set at line {line}; keep one",
    ("yaml", "not finite"): FINITE,
    ("yaml", "yaml-1.1-boolean"): (
        "YAML 1.1 reads {text!r} as {old}, YAML 1.2 as text: write {new} for a boolean, or quote it ({quoted}) for text"
    ),
    ("yaml", "yaml-1.1-number"): (
        "YAML 1.1 reads {text!r} as {old}, YAML 1.2 as {new}: write the number you mean plainly "
        "({plain}), or quote it ({quoted}) for text"
    ),
    ("yaml", "surrogate"): "write the character itself (files are UTF-8), or \\U0001F600 for one beyond U+FFFF",
    ("yaml", "control character"): "remove it; a tab or line break in text is written \\t or \\n inside double quotes",
    ("file", "utf-8"): "save the file as UTF-8",
    ("file", "not a file"): "the chains folder holds chain files (*.yaml) only; move or remove this entry",
    ("file", "too large"): "chain files are small; split the data into files under data/, each below {limit:,} bytes",
    ("file", "empty"): CHAIN_FILE,
    ("folder", "missing"): "give the folder of chain files, e.g. --chains chains/",
    ("folder", "no chains"): "each chain is one YAML file in this folder; shared data lists go under data/",
    # ---- the chain model: (model, what)
    ("model", "delay max"): "min is the smallest delay and max the largest: swap them, or fix one",
    ("model", "delay mean"): "the mean lies within [min, max] (min defaults to 0): move the mean, or widen the range",
    ("model", "delay median"): (
        "the median lies within [min, max] (min defaults to 0): move the median, or widen the range"
    ),
    ("model", "delay range"): RANGE,
    ("model", "delay too long"): "the longest delay is 366 days (31,622,400,000 ms)",
    ("model", "event_type and branches"): "move this step's event into one of its branches, or remove branches",
    ("model", "no event_type"): "add event_type: <type of the event>, or branches: [...] to choose among alternatives",
    ("model", "payload on branches"): "move the payload into each branch",
    ("model", "end and goto"): "keep one of end, goto",
    ("model", "duplicate id"): "step ids are unique within a chain; {id!r} is also the id at {other}",
    ("model", "unbounded loop"): "bound the loop with max_visits on this step, e.g. max_visits: 3",
    ("model", "loop without bound"): (
        "put max_visits on a step every pass of the loop goes through (here: {steps}), e.g. max_visits: 3"
    ),
    ("model", "duplicate chain"): "chain names are unique across files; {other} uses it too",
    # ---- templates: (template, kind)
    ("template", "syntax"): "check the {{ }} and {% %} pairs of this template",  # never formatted
    ("template", "undefined"): "names in scope: {scope}",
    ("template", "undefined step"): "steps.<id> holds events already emitted by this instance (here: {emitted})",
    ("template", "var order"): "a var sees only the vars above it; move {name!r} up, above its first use",
    ("template", "data list"): "data.<name> is the file data/<name>.yaml of the chains folder; here: {known}",
    ("template", "faker generator"): "see https://faker.readthedocs.io/en/stable/providers.html for generator names",
    ("template", "not json"): "a payload value is JSON: text, a finite number, true/false, null, a list or a mapping",
    ("template", "delay"): "a computed delay's template gives milliseconds (a number) or a duration such as '1.5s'",
    ("template", "at run time"): "the events before this one were written; fix the template and run again",
    ("schema", "pattern", "rate"): (
        "a rate is chain starts per second (10, '600/min', '10 chains/s') or events: '500 events/s'"
    ),
    ("schema", "maximum", "rate"): "a fault's rate is a share of the events, from 0 to 1 (e.g. 0.05); "
                                   "a rate of chain starts is at most 1,000,000 per second",
    ("schema", "enum", "kind"): "a fault is one of duplicate, reorder, drop, late, stuck, orphan, drift",
    ("schema", "enum", "drift"): "a drift is missing, renamed or wrong_type (or leave it out for any of them)",
    ("schema", "type", "$", "scenario"): "a scenario file is a mapping with at least a name, e.g. name: failure_storm",
    ("schema", "required", "name", "scenario"): "every scenario file names itself, e.g. name: failure_storm",
    ("schema", "pattern", "name", "scenario"): "scenario names are snake_case: lowercase letters, digits and _",
    ("schema", "required", "over"): "a ramp needs from, to and over, e.g. ramp: {from: 1, to: 50, over: 10m}",
    ("schema", "required", "from"): "a ramp needs from, to and over, e.g. ramp: {from: 1, to: 50, over: 10m}",
    ("schema", "required", "to"): "a ramp needs from, to and over, e.g. ramp: {from: 1, to: 50, over: 10m}",
    ("schema", "required", "for"): "each stage has a rate and how long it lasts, e.g. {rate: 10, for: 1m}",
    ("schema", "required", "on"): "bursts need rate, on and off, e.g. bursts: {rate: 200, on: 5s, off: 1m}",
    ("schema", "required", "off"): "bursts need rate, on and off, e.g. bursts: {rate: 200, on: 5s, off: 1m}",
    ("schema", "required", "peak"): "a daily curve needs its peak rate, e.g. daily: {peak: 50}",
    ("schema", "required", "rate"): "give the rate: chain starts per second, e.g. rate: 10 (or for a fault, a share)",
    ("schema", "required", "at"): "a scripted start says when, after the run's start, e.g. at: 2s",
    ("schema", "required", "chain"): "a scripted start names its chain, e.g. chain: agent_execution",
    ("schema", "required", "kind"): "a fault names its kind: duplicate, reorder, drop, late, stuck, orphan or drift",
    ("schema", "required", "scale"): "scale a delay with {scale: 10}, or write a delay as in a chain file",
    ("schema", "maxProperties", "shape"): "a shape is one of constant, poisson, ramp, stages, bursts, daily",
    ("schema", "minProperties", "shape"): "a shape is one of constant, poisson, ramp, stages, bursts, daily",
    # ---- scenarios: (scenario, what)
    ("scenario", "file"): "a scenario file is a mapping with at least a name, e.g. name: failure_storm",
    ("scenario", "all zero"): "keep at least one branch above 0: a branch with weight 1 and the others 0 always wins",
    ("scenario", "start"): "write the start as RFC 3339, e.g. start: 2026-01-01T00:00:00Z",
    ("scenario", "arrivals"): "chains start by one of rate (Poisson), interval (evenly) or shape (a curve)",
    ("scenario", "rate"): "a rate is chain starts per second (10, '600/min') or events: '500 events/s'",
    ("scenario", "field"): "name a payload field, e.g. field: duration_ms",
    # ---- the command line and sinks
    ("usage", "sink"): "known sinks: {known}",
    ("usage", "graph format"): "a diagram is mermaid (GitHub renders it) or dot (Graphviz: dot -Tsvg): --format dot",
    ("sink", "kafka"): "check that the broker runs and the topic can be written; events delivered before it were kept",
    ("sink", "postgres duplicate"): (
        "a run with the same chains, --seed and --start writes the same event ids; use another --seed "
        "or table, or delete the earlier rows (batches written before this one were kept)"
    ),
    ("sink", "postgres"): "batches written before this one were kept",
    ("sink", "write"): "the events before it were handed to the sink",
    ("run", "end of time"): (
        "timestamps are RFC 3339 with four-digit years: a run ends at 9999-12-31T23:59:59.999Z; start earlier"
    ),
}


def hint(*key: str, **fields: Any) -> str:
    """The table's hint for `key` (falling back to its first parts), its {fields} filled; "" when none."""
    for size in range(len(key), 1, -1):
        text = HINTS.get(key[:size])
        if text is not None:
            return text.format(**fields) if fields else text
    return ""


def did_you_mean(name: str, known: Iterable[str], otherwise: str = "") -> str:
    """The hint for a name that is not known: the closest known one, else `otherwise`."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean {close[0]!r}?" if close else otherwise


def known_or_close(name: str, known: Iterable[str], noun: str) -> str:
    """did-you-mean, else the list of what is known: `noun: a, b, c`."""
    names = list(known)
    return did_you_mean(name, names, f"{noun}: {', '.join(names) or 'none'}")
