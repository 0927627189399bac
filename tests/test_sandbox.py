"""The sandbox, as chain files meet it: every template compiled as the loader compiles it and rendered as the
interpreter renders it, on the fast path and on Jinja's full render; and whole chain files that try to escape
or exhaust a run, refused at load time with their place."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from jinja2.exceptions import SecurityError, TemplateAssertionError, UndefinedError

from engine import LoadError, load_catalog
from engine.templates.compiler import SPENDS, RenderError, TemplateProblem, compile_string
from engine.templates.fakers import FakerFacade, Fakers
from engine.templates.randoms import RandomFacade
from engine.templates.sandbox import (
    MAX_LOOP_ITERATIONS,
    MAX_OUTPUT,
    TemplateLimitError,
    check_output,
    new_environment,
)

Render = Callable[..., Any]


def engine_render(source: str, fast: bool, **context: Any) -> Any:
    """Compile `source` as the loader does and render it as the interpreter does (budget reset when it may
    spend, facades of the instance's rng in the context); a failure is raised as the template's own error."""
    env = new_environment()
    names: set[str] = set()
    try:
        compiled = compile_string(env, source, ("steps", 0, "payload", "x"), names, fast)
    except TemplateProblem as problem:
        raise TemplateAssertionError(problem.message, problem.line) from problem
    if SPENDS in names:
        env.budget.reset()
    rng = random.Random(1)
    scope = {"faker": FakerFacade("en_US", rng, Fakers()), "random": RandomFacade(rng), "vars": {}, "data": {},
             "steps": {}, "chain": {"name": "c", "instance": 0, "correlation_id": "x"}, **context}
    try:
        return compiled(scope)
    except RenderError as error:
        raise error.error from error


@pytest.fixture(params=["fast path", "full render"])
def render(request: pytest.FixtureRequest) -> Render:
    """Render through the fast path where the template's shape allows it, or always through Jinja itself."""
    fast = request.param == "fast path"
    return lambda source, **context: engine_render(source, fast, **context)


ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ range.__self__ }}",
    "{{ joiner.__init__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ [1].append(2) }}",
    "{{ {}.update({'a': 1}) }}",
    "{{ 'x'|attr('__class__') }}",
    "{{ lipsum() }}",
    "{{ config }}",
    "{{ os }}",
    "{{ open('/etc/passwd').read() }}",
    "{{ __import__('os') }}",
    "{{ environ['HOME'] }}",
    "{{ self.__init__.__globals__['os'].environ }}",
    "{{ dict.__subclasses__() }}",
    "{{ 'a'.translate({97: 'b'}) }}",
    "{{ (1).to_bytes(8, 'big') }}",
    "{{ '{0.__class__}'.format(1) }}",
    "{{ range(3).__iter__ }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_escape_attempts_raise_a_sandbox_error(source: str, render: Render) -> None:
    """Reaching Python internals, files, env vars or mutating data fails with a Jinja error."""
    with pytest.raises((SecurityError, UndefinedError)):
        render(source)


def test_random_filter_is_not_available(render: Render) -> None:
    """The |random filter draws from the module-level random, so the environment has none."""
    with pytest.raises(TemplateAssertionError, match="No filter named 'random'"):
        render("{{ [1, 2]|random }}")


RESOURCE_ATTACKS = [
    "{{ 'a' * 10**9 }}",
    "{{ [0] * 10**9 }}",
    "{{ 10 ** (10 ** 10) }}",
    "{{ 2 ** 100000 }}",
    "{{ 2 ** 4000 * 2 ** 4000 }}",
    "{{ range(10**9)|list }}",
    "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "{% set r = range(5000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}",
    "{% set s = 'x' * 5000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) if false %}{% endfor %}",
    "{% for i in range(20000) %}{% endfor %}",
    "{% for x in [[1] * 8000, [1] * 8000] recursive %}{{ loop(x) if x is sequence else '' }}{% endfor %}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%*d' % (10**9, 1) }}",
    "{{ '%.999999999f' % 1.0 }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{:{w}}'.format(1, w=10**9) }}",
    "{{ '{x:>999999999}'.format_map({'x': 1}) }}",
    "{{ 'x'|center(10**9) }}",
    "{{ 'x'|indent(10**9) }}",
    "{{ ('a\n' * 50000)|indent(100) }}",
    "{{ 'x'|wordwrap(10**9) }}",
    "{{ 'x'|truncate(10**9) }}",
    "{{ [1]|batch(10**9, 0)|list }}",
    "{{ [1]|slice(10**9)|list }}",
    "{{ '%0999999999d'|format(1) }}",
    "{{ ('a' * 100000)|replace('a', 'b' * 100) }}",
    "{{ 'x'.ljust(10**9) }}",
    "{{ ('ab' * 10).replace('', 'x' * 100000) }}",
    "{% set s = 'a' * 100000 %}{{ ''.join([s] * 100000) }}",
    "{% set s = 'a' * 100000 %}{{ ([s] * 100000)|join }}",
    "{% set s = 'a' * 100000 %}{{ [s] * 100000 }}",
    "{% set s = 'a' * 100000 %}{{ ([s] * 100000)|tojson }}",
    "{% set s = 'a' * 100000 %}{{ '%s' % ([s] * 100000,) }}",
    "{% set s = 'a' * 100000 %}{{ ([s] * 100000)|map('upper')|list|length }}",
    "{% set s = 'a' * 100000 %}{{ ([[s] * 1000] * 1000)|sum(start=[])|length }}",
    "{% set ns = namespace(s='a' * 100000) %}"
    "{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% set ns = namespace(s='a' * 100000) %}"
    "{% for i in range(30) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "{% set s = 'a' * 100000 %}{% for i in range(20) %}{{ s }}{% endfor %}",
    "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
    "{% macro m(n) %}{{ m(n + 1) }}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
]


@pytest.mark.parametrize("source", RESOURCE_ATTACKS)
def test_resource_attacks_raise_template_limit_error_without_hanging(source: str, render: Render) -> None:
    """Unbounded loops, strings, numbers and recursion stop with TemplateLimitError instead of running on."""
    started = time.perf_counter()
    with pytest.raises(TemplateLimitError):
        render(source)
    # Not a speed target (bench/ measures speed): unbounded, these run for minutes or exhaust memory.
    assert time.perf_counter() - started < 10.0


def test_loop_budget_error_says_what_and_the_limit(render: Render) -> None:
    """The loop budget error names the budget and its size."""
    with pytest.raises(TemplateLimitError) as caught:
        render("{% for i in range(20000) %}{% endfor %}")
    assert "template loop budget exceeded (10,000 iterations per event)" == str(caught.value)


def test_width_error_says_what_and_the_limit(render: Render) -> None:
    """A too-wide format says which width and the limit."""
    with pytest.raises(TemplateLimitError) as caught:
        render("{{ 'x'|center(10**9) }}")
    assert "center width is 1,000,000,000; the limit is 100,000" == str(caught.value)


def test_template_limit_error_is_a_security_error() -> None:
    """Callers that catch Jinja's SecurityError also catch resource limits."""
    assert issubclass(TemplateLimitError, SecurityError)


def test_loops_of_a_hundred_items_work(render: Render) -> None:
    """An ordinary loop with loop.length, loop.last and else renders normally."""
    source = "{% for i in items %}{{ i }}{% if loop.last %}/{{ loop.length }}{% endif %}{% endfor %}"
    assert "".join(map(str, range(100))) + "/100" == render(source, items=list(range(100)))


def test_empty_loop_renders_its_else_block(render: Render) -> None:
    """{% else %} still runs when the loop has nothing to iterate."""
    assert "none" == render("{% for i in [] %}x{% else %}none{% endfor %}")


def test_recursive_loops_work(render: Render) -> None:
    """A recursive loop walks nested lists."""
    source = (
        "{% for x in [[1, [2, 3]], [4]] recursive %}"
        "{% if x is sequence %}{{ loop(x) }}{% else %}{{ x }}{% endif %}{% endfor %}"
    )
    assert "1234" == render(source)


def test_loop_helpers_work(render: Render) -> None:
    """loop.cycle, loop.index and loop.revindex behave as in plain Jinja."""
    source = (
        "{% for i in range(3) %}"
        "{{ loop.cycle('a', 'b') }}{{ loop.index }}{{ loop.revindex }}{% endfor %}"
    )
    assert "a13b22a31" == render(source)


def test_strings_arithmetic_and_filters_work(render: Render) -> None:
    """Concatenation, arithmetic and common filters give plain Jinja's results."""
    source = (
        "{{ 'a' ~ 1 ~ 'b' }} {{ 'ab' + 'cd' }} {{ 2 ** 10 }} {{ 7 % 3 }} {{ 'x' * 3 }} "
        "{{ [1, 2, 3]|join(',')|upper }} {{ 3.14159|round(2) }} {{ [1, 2]|sum }} "
        "{{ [[1], [2]]|sum(start=[]) }} {{ '%05d|%s' % (42, 'z') }} {{ '{:>4}'.format(7) }} "
        "{{ 'a b'|title }} {{ range(5)|reverse|list }} {{ {'b': 2, 'a': 1}|dictsort }}"
    )
    expected = (
        "a1b abcd 1024 1 xxx 1,2,3 3.14 3 [1, 2] 00042|z    7 A B [4, 3, 2, 1, 0] "
        "[('a', 1), ('b', 2)]"
    )
    assert expected == render(source)


def test_namespace_collects_values_across_iterations(render: Render) -> None:
    """namespace() is available and can be updated inside a loop."""
    source = (
        "{% set ns = namespace(total=0) %}"
        "{% for i in range(5) %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }}"
    )
    assert "10" == render(source)


def test_macros_and_call_blocks_work(render: Render) -> None:
    """Macros, caller() and filter blocks still render."""
    source = (
        "{% macro box() %}[{{ caller() }}]{% endmacro %}"
        "{% call box() %}in{% endcall %}{% filter upper %}up{% endfilter %}"
    )
    assert "[in]UP" == render(source)


def test_undefined_variables_fail_loudly(render: Render) -> None:
    """StrictUndefined: a misspelt variable is an error, not an empty string."""
    with pytest.raises(UndefinedError):
        render("{{ nmae }}")


def test_budget_resets_between_renders() -> None:
    """Two 6,000-iteration renders fit when the budget is reset between them, but not without."""
    env = new_environment()
    template = env.from_string("{% for i in range(6000) %}{% endfor %}done")
    env.budget.reset()
    assert "done" == template.render()
    env.budget.reset()
    assert "done" == template.render()
    with pytest.raises(TemplateLimitError):
        template.render()


def test_range_counts_once_inside_a_loop(render: Render) -> None:
    """A loop over range() uses one budget unit per iteration, not two."""
    limit = MAX_LOOP_ITERATIONS
    assert "ok" == render(f"{{% for i in range({limit}) %}}{{% endfor %}}ok")


def test_output_larger_than_the_cap_fails(render: Render) -> None:
    """The rendered text may not pass MAX_OUTPUT characters."""
    with pytest.raises(TemplateLimitError):
        render("{% for i in range(11) %}{{ s }}{% endfor %}", s="x" * 100_000)


def test_check_output_passes_small_text_and_rejects_big_text() -> None:
    """check_output returns text under the cap and raises above it."""
    assert "ok" == check_output("ok")
    with pytest.raises(TemplateLimitError):
        check_output("x" * (MAX_OUTPUT + 1))


def test_constant_filters_are_not_folded_at_compile_time() -> None:
    """A capped filter on constants fails when rendered, not when the template is compiled."""
    env = new_environment()
    template = env.from_string("{{ 'x'|center(10**9) }}")
    with pytest.raises(TemplateLimitError):
        template.render()


def test_wide_macro_recursion_hits_the_call_limit(render: Render) -> None:
    """A macro that calls itself twice per level stops at the macro call limit, not after 2**20 calls."""
    source = "{% macro m(n) %}{% if n < 20 %}{{ m(n + 1) }}{{ m(n + 1) }}{% endif %}{% endmacro %}{{ m(0) }}"
    with pytest.raises(TemplateLimitError) as caught:
        render(source)
    assert "more than 10,000 macro calls in one event" == str(caught.value)


def test_power_error_says_how_many_bits(render: Render) -> None:
    """A huge power is refused before it is computed, naming the bits needed and the limit."""
    with pytest.raises(TemplateLimitError) as caught:
        render("{{ 2 ** 100000 }}")
    assert "an integer power would need 100,000 bits; the limit is 4,096" == str(caught.value)


def test_left_associative_power_of_powers_is_small_enough(render: Render) -> None:
    """Jinja's ** is left-associative, so 10 ** 10 ** 10 is (10**10)**10 and fits the limit."""
    assert 10**100 == render("{{ 10 ** 10 ** 10 }}")  # a lone expression keeps its type


def test_compile_expression_values_are_checked() -> None:
    """Single expressions compiled with compile_expression() also go through the ~ check."""
    env = new_environment()
    expression = env.compile_expression("'a' ~ x", undefined_to_none=False)
    assert "ab" == expression(x="b")
    with pytest.raises(TemplateLimitError):
        expression(x=["a" * 100_000] * 100_000)


def test_check_output_measures_structures_without_printing_them() -> None:
    """A list of many references to one big string is refused before it is turned into text."""
    assert [1, 2] == check_output([1, 2])
    with pytest.raises(TemplateLimitError):
        check_output(["a" * 100_000] * 100_000)


def test_a_tree_compiled_twice_counts_loops_once() -> None:
    """Compiling one parsed tree twice does not wrap its loops twice."""
    env = new_environment()
    tree = env.parse("{% for i in range(3) %}{{ i }}{% endfor %}")
    first, second = env.from_string(tree), env.from_string(tree)
    env.budget.reset()
    assert ("012", "012") == (first.render(), second.render())
    assert 6 == env.budget.iterations


def _chain_with(source: str) -> str:
    return ("name: hostile\nsteps:\n  - id: one\n    event_type: x.one.v1\n    payload:\n"
            f"      x: {json.dumps(source)}\n")


@pytest.mark.parametrize("source", ESCAPES + RESOURCE_ATTACKS)
def test_a_chain_file_that_tries_to_escape_or_exhaust_is_refused_at_load_time(source: str, chain_dir) -> None:
    """The template in a real chain file: the loader compiles it, dry-runs the chain and refuses the file with
    the template's place, before any event."""
    folder = chain_dir({"hostile.yaml": _chain_with(source)})
    started = time.perf_counter()
    with pytest.raises(LoadError) as caught:
        load_catalog(folder)
    assert time.perf_counter() - started < 10.0  # not a speed target: unbounded, these run for minutes
    [problem] = caught.value.problems
    assert (6, ("steps", 0, "payload", "x"), "chain 'hostile' > step 'one' > key 'payload.x'") == (
        problem.line, problem.path, problem.where)
    assert problem.message.startswith(("template error: ", "template syntax error: "))
