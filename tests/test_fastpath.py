"""The fast path against Jinja itself: for each template shape the fast path takes, the same state gives the
same value (or the same error) through the plain-closure renderer and through the full sandboxed render."""

from __future__ import annotations

import random
from typing import Any

import pytest

from engine.templates.compiler import RenderError, compile_string
from engine.templates.fakers import FakerFacade, Fakers, set_time
from engine.templates.randoms import RandomFacade
from engine.templates.sandbox import new_environment

TEMPLATES = [
    "{{ vars.user }}",
    "{{ vars.user.name }}",
    "{{ vars['user']['name'] }}",
    "{{ vars.n + 1 }}",
    "{{ vars.n * 3 }}",
    "{{ vars.n ** 2 }}",
    "{{ vars.n % 4 }}",
    "{{ vars.n / 4 }}",
    "{{ vars.n // 4 }}",
    "{{ vars.n - 40 }}",
    "{{ -vars.n }}",
    "{{ vars.ratio | round(2) }}",
    "{{ vars.ratio | int }}",
    "{{ vars.ratio | float }}",
    "{{ -vars.ratio | abs }}",
    "{{ vars.tags | join(',') }}",
    "{{ vars.tags | length }}",
    "{{ vars.name | upper }}",
    "{{ vars.tags[0] }}",
    "{{ vars.n > 10 }}",
    "{{ vars.n == 42 and vars.name != 'x' }}",
    "{{ vars.missing or 'fallback' if false else vars.n }}",
    "{{ 'big' if vars.n > 10 else 'small' }}",
    "{{ not vars.flag }}",
    "{{ 'a' in vars.tags }}",
    "{{ 'z' not in vars.tags }}",
    "{{ [vars.n, vars.name, 3] }}",
    "{{ (vars.n, 2) }}",
    "{{ {'k': vars.n, 'name': vars.name} }}",
    "{{ steps.requested.payload.size }}",
    "{{ steps.requested.event_id }}",
    "{{ chain.instance }}",
    "{{ faker.name() }}",
    "{{ faker.sentence(nb_words=6) }}",
    "{{ faker.pyint(1, vars.n) }}",
    "{{ faker.date_time_this_year() }}",
    "{{ random.randint(1, 6) }}",
    "{{ random.choice(vars.tags) }}",
    "{{ random.weighted({'a': 3, 'b': 1}) }}",
    "{{ random.sample(vars.tags, 2) }}",
    "{{ random.uniform(0, 1) | round(3) }}",
    "user={{ vars.name }} n={{ vars.n }}",
    "{{ faker.user_name() }}@{{ vars.name }}.example",
    "{{ vars.tags }} and {{ vars.user }}",
    "{{ nothing_here }}",
    "{{ vars.nope }}",
    "{{ steps.later.payload }}",
    "{{ vars.n / 0 }}",
    "{{ vars.name * 10**9 }}",
    "{{ faker.nme() }}",
    "{{ random.randint.__self__ }}",
    "{{ vars.user.__class__ }}",
    "{{ vars.tags.append(1) }}",
]


def _state(seed: int) -> dict[str, Any]:
    """A template context as the interpreter builds it, with facades on fresh, equally seeded streams."""
    rng = random.Random(seed)
    faker = FakerFacade("en_US", rng, Fakers())
    set_time(faker, 1767225600000)
    return {
        "vars": {"user": {"name": "ada", "id": 7}, "n": 42, "ratio": 2.71828, "tags": ["a", "b", "c"],
                 "name": "ada", "flag": False},
        "data": {}, "faker": faker, "random": RandomFacade(rng),
        "steps": {"requested": {"event_id": "e-1", "payload": {"size": 12}}},
        "chain": {"name": "c", "instance": 3, "correlation_id": "x"},
        "event": {"event_id": "e-2"}, "elapsed_ms": 5, "delay_ms": 5, "visit": 1,
    }


def _outcome(source: str, fast: bool) -> tuple[str, Any]:
    env = new_environment()
    compiled = compile_string(env, source, ("payload", "x"), set(), fast)
    env.budget.reset()
    try:
        return "value", compiled(_state(11))
    except RenderError as error:
        return type(error.error).__name__, str(error)


@pytest.mark.parametrize("source", TEMPLATES)
def test_the_fast_path_gives_what_the_full_render_gives(source: str) -> None:
    """Same template, same state: the same value (type and all), or an error of the same type and text."""
    assert _outcome(source, fast=False) == _outcome(source, fast=True)


def test_the_templates_here_take_the_fast_path() -> None:
    """The corpus exercises the fast path: most of its shapes compile to plain closures, not Jinja renders."""
    from jinja2 import nodes

    from engine.templates.fastpath import compile_fast, compile_fast_output

    env = new_environment()
    fast = 0
    for source in TEMPLATES:
        tree = env.parse(source)
        parts = tree.body[0].nodes if isinstance(tree.body[0], nodes.Output) else []
        if len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData):
            fast += compile_fast(env, parts[0]) is not None
        else:
            fast += compile_fast_output(env, tree) is not None
    assert fast >= len(TEMPLATES) - 3
