"""The Jinja sandbox that chain-file payload templates run in.

Chain files are untrusted, so their templates are untrusted code. Jinja's
ImmutableSandboxedEnvironment already blocks attribute escapes; this module routes loops,
operators, filters and calls through the resource limits of engine/templates/limits.py, so a
template can neither hang a run nor exhaust memory. An undefined name fails at once (StrictUndefined),
with an error that says which name and of what (`UndefinedNameError`).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterable
from typing import Any

from jinja2 import StrictUndefined, UndefinedError, nodes, pass_context, pass_environment
from jinja2.filters import FILTERS, make_attrgetter
from jinja2.runtime import Context, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter, SecurityError
from jinja2.utils import _PassArg, missing
from jinja2.visitor import NodeTransformer
from markupsafe import EscapeFormatter, Markup

from .limits import (  # noqa: F401 - the public names are re-exported
    BINOP_CHECKS,
    BLOCKED_ATTRIBUTES,
    CONCAT_FILTER,
    DIGITS,
    FILTER_CHECKS,
    LOOP_FILTER,
    MAX_ALLOCATED,
    MAX_LOOP_ITERATIONS,
    MAX_MACRO_CALLS,
    MAX_MACRO_DEPTH,
    MAX_OUTPUT,
    MAX_POWER_BITS,
    MAX_RANGE,
    MAX_SEQUENCE,
    MAX_STRING,
    BudgetedRange,
    RenderBudget,
    TemplateLimitError,
    check_add,
    check_count,
    check_output,
    check_size,
    check_str_method,
    check_text,
    checked_concat,
    loop_budget,
    text_size,
)


class UndefinedNameError(UndefinedError):
    """A template read a name that is not there: `name` (None when unknown), of `owner` (`missing`: a
    top-level name of the template context; else the object it was looked up on)."""

    def __init__(self, message: str | None = None, name: str | None = None, owner: Any = missing) -> None:
        super().__init__(message)
        self.name, self.owner = name, owner


class ChainUndefined(StrictUndefined):
    """StrictUndefined whose error carries the name and its owner, so a hint needs no message parsing."""

    __slots__ = ()

    def __init__(self, hint: str | None = None, obj: Any = missing, name: str | None = None,
                 exc: Any = UndefinedError) -> None:
        if exc is UndefinedError:  # not the sandbox's SecurityError for an unsafe attribute
            exc = functools.partial(UndefinedNameError, name=name, owner=obj)
        super().__init__(hint, obj, name, exc)


class _BudgetTransformer(NodeTransformer):
    """Rewrites the parsed template so loops and `~` go through the budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _filter_node(node.iter, LOOP_FILTER)  # type: ignore[arg-type]
        return node

    def visit_Call(self, node: nodes.Call) -> nodes.Node:
        # loop(children) in a recursive loop iterates outside For.iter.
        self.generic_visit(node)
        if isinstance(node.node, nodes.Name) and node.node.name == "loop" and node.args:
            node.args[0] = _filter_node(node.args[0], LOOP_FILTER)
        return node

    def visit_Filter(self, node: nodes.Filter) -> nodes.Node:
        # A tree compiled twice must not be wrapped twice (loops would count double).
        return node if node.name in (LOOP_FILTER, CONCAT_FILTER) else self.generic_visit(node)

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        items = nodes.List(node.nodes, lineno=node.lineno)
        return _filter_node(items, CONCAT_FILTER)


def _filter_node(expr: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(expr, name, [], [], None, None, lineno=expr.lineno)


# Filters that stringify their input: a structure must not print to something huge.
_STRINGIFYING = frozenset({
    "capitalize", "center", "e", "escape", "forceescape", "format", "indent", "join", "lower",
    "replace", "safe", "string", "striptags", "title", "tojson", "trim", "truncate", "upper",
    "urlencode", "wordcount", "wordwrap", "xmlattr",
})

# `random` uses the module-level random (breaks determinism); pprint and urlize are not needed.
SAFE_FILTERS = (
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e",
    "escape", "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent",
    "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject",
    "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort",
    "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique", "upper",
    "urlencode", "wordcount", "wordwrap", "xmlattr",
)


@pass_environment
def _checked_sum(environment: Any, iterable: Iterable[Any], attribute: Any = None,
                 start: Any = 0) -> Any:
    # Jinja's sum would add lists quadratically with start=[]; check each step instead.
    if attribute is not None:
        iterable = map(make_attrgetter(environment, attribute), iterable)
    total = start
    for item in iterable:
        check_add(total, item)
        total = environment.budget.charge(total + item)
    return total


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    pass_arg = _PassArg.from_obj(func)  # type: ignore[arg-type]
    check = FILTER_CHECKS.get(name)

    # pass_context also stops Jinja from running the filter at compile time (constant folding).
    @pass_context
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        env = context.environment
        budget: RenderBudget = env.budget  # type: ignore[attr-defined]
        if name == "join":
            value = budget.charge(list(value))
            check_text(value, "joined text")
        elif name in _STRINGIFYING:
            check_text(value, f"input of |{name}")
        if check is not None:
            check(value, *args, **kwargs)
        lead = {_PassArg.context: context, _PassArg.eval_context: context.eval_ctx,
                _PassArg.environment: env}.get(pass_arg)  # type: ignore[arg-type]
        result = func(value, *args, **kwargs) if lead is None else func(lead, value, *args, **kwargs)
        return budget.charge(result)

    return guarded


def _safe_filters() -> dict[str, Callable[..., Any]]:
    chosen = {name: FILTERS[name] for name in SAFE_FILTERS}
    chosen["sum"] = _checked_sum
    filters = {name: _guard_filter(name, func) for name, func in chosen.items()}
    filters[LOOP_FILTER] = loop_budget
    filters[CONCAT_FILTER] = checked_concat
    return filters


# ---- str.format --------------------------------------------------------------------


class _CheckedFormatter(SandboxedFormatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        for number in DIGITS.findall(format_spec):
            check_count(int(number), "a format width/precision")
        check_text(value, "format() argument")
        return super().format_field(value, format_spec)


class _CheckedEscapeFormatter(_CheckedFormatter, EscapeFormatter):
    pass


# ---- the environment ---------------------------------------------------------------


class ChainSandbox(ImmutableSandboxedEnvironment):
    """ImmutableSandboxedEnvironment plus the resource limits above; env.budget is per event."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self) -> None:
        self.budget = RenderBudget()
        super().__init__(undefined=ChainUndefined, autoescape=False,
                         keep_trailing_newline=True, cache_size=0, finalize=self._finalize)
        budget = self.budget

        def budgeted_range(*args: int) -> BudgetedRange:
            return BudgetedRange(budget, *args)

        self.globals = {name: self.globals[name] for name in ("dict", "cycler", "joiner", "namespace")}
        self.globals["range"] = budgeted_range
        self.filters = _safe_filters()
        self.concat = self._concat_output  # type: ignore[method-assign]

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        # Here rather than in _parse: compile_expression() builds its tree without _parse.
        source = _BudgetTransformer().visit(source)
        return super()._generate(source, name, filename, defer_init)  # type: ignore[no-any-return]

    @pass_context
    def _finalize(self, context: Context, value: Any) -> Any:
        size = text_size(value, MAX_OUTPUT)
        check_size(size, "rendered value", MAX_OUTPUT)
        self.budget.spend(size)
        return value

    def _concat_output(self, pieces: Iterable[str]) -> str:
        # The top-level render joins here: stop as soon as the output passes the cap.
        kept, size = [], 0
        for piece in pieces:
            size += len(piece)
            check_size(size, "rendered output", MAX_OUTPUT)
            kept.append(piece)
        return "".join(kept)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return attr not in BLOCKED_ATTRIBUTES and super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        BINOP_CHECKS[operator](left, right)
        return self.budget.charge(self.binop_table[operator](left, right))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if not self.is_safe_callable(obj):
            raise SecurityError(f"{obj!r} is not safely callable")
        args = check_str_method(obj, args, kwargs)
        if not isinstance(obj, Macro):
            return self.budget.charge(context.call(obj, *args, **kwargs))
        self.budget.enter_macro()
        try:
            return self.budget.charge(context.call(obj, *args, **kwargs))
        finally:
            self.budget.macro_depth -= 1

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # Same as Jinja's, with formatters that also check widths and argument sizes.
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or \
                value.__name__ not in ("format", "format_map"):
            return None
        f_self = value.__self__
        if not isinstance(f_self, str):
            return None
        formatter: SandboxedFormatter = (
            _CheckedEscapeFormatter(self, escape=f_self.escape) if isinstance(f_self, Markup)
            else _CheckedFormatter(self)
        )
        is_format_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one positional argument")
                return type(f_self)(formatter.vformat(f_self, (), args[0]))
            return type(f_self)(formatter.vformat(f_self, args, kwargs))

        return wrapper


def new_environment() -> ImmutableSandboxedEnvironment:
    """The one Jinja environment chain templates run in. env.budget is its RenderBudget."""
    return ChainSandbox()
