"""Payload rendering: a JSON tree whose strings are Jinja templates, compiled once at load time.

Compiling turns the tree into a renderer (a function of the template context) and folds constant
subtrees, so the per-event path renders only what varies. A string that is one `{{ expression }}`
keeps the expression's native type: `"{{ random.randint(1, 9) }}"` is the number 7, not "7".
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import Path
from .fastpath import compile_fast, compile_fast_output
from .sandbox import check_output

Renderer = Callable[[Mapping[str, Any]], Any]

SPENDS = "<budget>"  # in a template's names: it may charge the sandbox's budget (see compile_string)
_PLAIN = (str, int, bool, type(None))  # JSON as they are (a float may be NaN or infinite: see to_json)
_TEMPLATE_MARKERS = ("{{", "{%", "{#")


class TemplateValueError(ValueError):
    """A template gave a value the engine cannot use (its message says which and why)."""


class RenderError(ValueError):
    """A template failed while rendering; carries the path of the template within its chain file."""

    def __init__(self, path: Path, error: BaseException) -> None:
        ours = isinstance(error, jinja2.TemplateError | TemplateValueError)
        text = str(error) if ours else f"{type(error).__name__}: {error}"
        super().__init__(text)
        self.path, self.error = path, error
        self.file = ""  # set by the chain instance, which knows its chain file


class NotJsonError(TemplateValueError):
    """A template produced a value an event cannot carry (NaN, infinity, an object...)."""


class TemplateProblem(ValueError):
    """A template that does not compile; `line` is the line within the template (1-based)."""

    def __init__(self, path: Path, message: str, line: int = 1) -> None:
        super().__init__(message)
        self.path, self.message, self.line = path, message, line


def to_json(value: Any) -> Any:
    """A template's native result as a JSON value (datetimes as ISO text, decimals as numbers...)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        if value - value == 0.0:  # false for NaN and the infinities (inf - inf is NaN)
            return value
        raise NotJsonError(f"a template produced the number {value}, which JSON cannot hold (no NaN, no infinity)")
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [to_json(v) for v in items]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, str):  # subclasses such as Markup
        return str(value)
    if isinstance(value, int):  # subclasses such as IntEnum
        return int(value)
    if isinstance(value, float):
        return to_json(float(value))
    if isinstance(value, uuid.UUID):
        return str(value)
    raise NotJsonError(f"a template produced {kind.__name__}, which is not a JSON value")


def _native(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    # A list can hold 100,000 references to one 1 MB string: cheap to build, huge to encode.
    return to_json(check_output(value))


def _constant(value: Any) -> Renderer:
    return lambda context: value


def _single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression when the whole template is one `{{ ... }}`, else None."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts = tree.body[0].nodes
    if len(parts) != 1 or isinstance(parts[0], nodes.TemplateData):
        return None
    return parts[0]


def _expression_source(source: str) -> str:
    inner = source.strip()
    return inner[2:-2].strip("-+").strip()


def compile_string(env: ImmutableSandboxedEnvironment, source: str, path: Path,
                   names: set[str] | None = None, fast: bool = True) -> Renderer:
    """One template string; TemplateProblem when it does not compile.

    Common shapes run as plain closures (engine/templates/fastpath.py); the rest, or all with fast=False
    (for the tests that hold the fast path to the full render), as full sandboxed renders.
    The names the template reads are added to `names` (a superset: loop variables count too), and SPENDS
    when it may charge the sandbox's per-event budget (all but fast paths without filters or intercepted
    operators), so a chain whose templates never do skips the budget's reset.
    """
    if not any(marker in source for marker in _TEMPLATE_MARKERS):
        return _constant(source)
    try:
        tree = env.parse(source)
        if names is not None:
            names.update(node.name for node in tree.find_all(nodes.Name))
        expression = _single_expression(tree)
        if expression is not None:
            run = compile_fast(env, expression) if fast else None
            spends = run is None or run.spends  # type: ignore[attr-defined]
            if run is None:
                run = env.compile_expression(_expression_source(source), undefined_to_none=False)
            native = True
        else:
            run = (compile_fast_output(env, tree) if fast else None) or env.from_string(source).render
            native, spends = False, True  # printed values are counted (the sandbox's finalize)
        if names is not None and spends:
            names.add(SPENDS)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateProblem(path, f"template syntax error: {error.message}", error.lineno or 1) from None
    except RecursionError:  # the parser and compiler recurse once per nesting level
        raise TemplateProblem(path, "template syntax error: template nests too deeply") from None

    def render(context: Mapping[str, Any]) -> Any:
        try:
            value: Any = run(context)
            kind = type(value)
            if not native or kind in _PLAIN:
                return value
            if kind is float and value - value == 0.0:  # a finite number (NaN and infinities go to to_json)
                return value
            return _native(value)
        except Exception as error:  # any failure inside untrusted code is reported with its place
            raise RenderError(path, error) from error

    return render


def compile_tree(
    env: ImmutableSandboxedEnvironment, tree: Any, path: Path, problems: list[TemplateProblem],
    names: set[str] | None = None, fast: bool = True,
) -> Renderer:
    """A payload tree; every template problem is appended to `problems` (all are found in one pass), and
    the names its templates read to `names`."""
    if isinstance(tree, str):
        try:
            return compile_string(env, tree, path, names, fast)
        except TemplateProblem as problem:
            problems.append(problem)
            return _constant(None)
    if isinstance(tree, dict):
        items = [(key, compile_tree(env, value, (*path, key), problems, names, fast)) for key, value in tree.items()]
        if all(_is_constant(r) for _, r in items):
            return _constant(tree)
        return lambda context: {key: render(context) for key, render in items}
    if isinstance(tree, list):
        renderers = [compile_tree(env, value, (*path, i), problems, names, fast) for i, value in enumerate(tree)]
        if all(_is_constant(r) for r in renderers):
            return _constant(tree)
        return lambda context: [r(context) for r in renderers]
    return _constant(tree)


def _is_constant(renderer: Renderer) -> bool:
    return renderer.__code__ is _constant(None).__code__
