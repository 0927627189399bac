"""The dry run: each chain run along every branch (up to DRY_RUNS_PER_CHAIN runs) before any event is written,
so undefined names, steps not emitted yet, unknown Faker generators and template errors are load errors.

A failure is explained from what the template engine knows (which name was missing, and of what: the
instance's vars, its steps, the shared data), never from the text of its message.
"""

from __future__ import annotations

from collections.abc import Sequence
from random import Random
from typing import Any

import orjson
from jinja2.utils import missing

from ..envelope.fields import Clock
from ..hints import did_you_mean, hint, known_or_close
from ..load.model import Chain
from ..run.interpreter import ChainInstance, Node, NotADelayError, Program, Start
from ..templates.compiler import RenderError
from ..templates.fakers import Fakers, UnknownGeneratorError
from ..templates.sandbox import UndefinedNameError

DRY_RUNS_PER_CHAIN = 64
SCOPE = "vars, data, faker, random, steps, chain, event, elapsed_ms, delay_ms, visit"
VARS_SCOPE = "vars (those above this one), data, faker, random, chain"  # vars are drawn before any event


def dry_run(program: Program, data: dict[str, Any], report: Any, fakers: Fakers,
            start: Start | None = None) -> bool:
    """Run the chain along every branch (with `start`'s vars and forced branches, for a scripted start); report
    the first failure (False), or True when every run passed."""
    pending: list[list[int]] = [[]]
    runs = 0
    while pending and runs < DRY_RUNS_PER_CHAIN:
        prefix = pending.pop()
        taken: list[int] = []
        widths: list[int] = []

        def choose(node: Node, open_branches: Sequence[Node], rng: Random,
                   prefix: list[int] = prefix, taken: list[int] = taken, widths: list[int] = widths) -> Node:
            k = len(taken)
            pick = prefix[k] if k < len(prefix) else 0
            pick = min(pick, len(open_branches) - 1)
            taken.append(pick)
            widths.append(len(open_branches))
            return open_branches[pick]

        instance: ChainInstance | None = None
        try:
            instance = ChainInstance(program, 0, Random(f"dry-run:{runs}"), {"data": data}, _check_json, Clock(),
                                     fakers, choose, start=start)
            time = instance.start(0)
            while time is not None:
                time = instance.resume(time)
        except RenderError as error:
            explain(error, report, program.chain, data, instance)
            return False
        runs += 1
        for k in range(len(prefix), len(taken)):
            for alternative in range(1, widths[k]):
                pending.append([*taken[:k], alternative])
    return True


def _check_json(event: dict[str, Any]) -> None:
    try:
        orjson.dumps(event)
    except TypeError as error:  # a number beyond 64 bits (to_json converts everything else)
        raise RenderError(("payload",), TypeError(f"the payload is not JSON: {error}")) from error


def explain(error: RenderError, report: Any, chain: Chain, data: dict[str, Any],
            instance: ChainInstance | None) -> None:
    """Report a failed template as a load problem, with the table's hint for what failed."""
    cause = error.error
    emitted = ", ".join(instance.steps if instance else []) or "none yet"
    if isinstance(cause, UndefinedNameError):
        message, hint_text = _undefined(cause, error, chain, data, instance, emitted)
    elif isinstance(cause, UnknownGeneratorError) and cause.owner == "faker":
        message, hint_text = str(error), hint("template", "faker generator")
    elif isinstance(cause, NotADelayError):
        message, hint_text = str(error), hint("template", "delay")
    else:
        message, hint_text = str(error), ""
    report(error.path, f"template error: {message}", hint_text)


def _undefined(cause: UndefinedNameError, error: RenderError, chain: Chain, data: dict[str, Any],
               instance: ChainInstance | None, emitted: str) -> tuple[str, str]:
    name, owner = cause.name or "", cause.owner
    context = instance.context if instance is not None else {}
    scope = hint("template", "undefined", scope=VARS_SCOPE if error.path[:1] == ("vars",) else SCOPE)
    if owner is missing or owner is None:
        return str(error), scope
    if owner is context.get("vars"):
        if name in chain.vars:
            return f"vars.{name} is used before it is set", hint("template", "var order", name=name)
        return f"vars.{name} is undefined", known_or_close(name, chain.vars, "vars of this chain")
    if owner is context.get("steps"):
        ids = [step.id for step in chain.walk()]
        if name in ids:
            return f"steps.{name} is not emitted yet", hint("template", "undefined step", emitted=emitted)
        return f"no step {name!r} in this chain", known_or_close(name, ids, "step ids in this chain")
    if owner is data:
        known = ", ".join(sorted(data)) or "none"
        return f"data.{name} is undefined", did_you_mean(name, sorted(data), hint("template", "data list", known=known))
    if isinstance(owner, dict):  # a key missing in an event or payload read through steps.<id>
        return str(error), f"{scope}; {hint('template', 'undefined step', emitted=emitted)}"
    return str(error), scope
