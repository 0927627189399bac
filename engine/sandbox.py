"""The Jinja sandbox that chain-file payload templates run in.

Chain files are untrusted, so their templates are untrusted code. Jinja's
ImmutableSandboxedEnvironment already blocks attribute escapes; this module adds
resource limits so a template can neither hang a run nor exhaust memory.
"""

from __future__ import annotations

import math
import re
import types
from collections import abc
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import StrictUndefined, nodes, pass_context, pass_environment
from jinja2.filters import FILTERS, make_attrgetter
from jinja2.runtime import Context, Macro, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter, SecurityError
from jinja2.utils import Namespace, _PassArg
from jinja2.visitor import NodeTransformer
from markupsafe import EscapeFormatter, Markup

MAX_LOOP_ITERATIONS = 10_000  # loop iterations per render (per event payload)
MAX_RANGE = 100_000  # items one range() may hold (Jinja's own MAX_RANGE)
MAX_SEQUENCE = 100_000  # items/chars one `*` may build; largest width/count argument
MAX_STRING = 1_000_000  # chars/items one `+`, `~`, join, replace... may build
MAX_OUTPUT = 1_000_000  # chars of rendered text
MAX_ALLOCATED = 20_000_000  # chars/items all operations of one render may build
MAX_POWER_BITS = 4_096  # bits of an integer built by `**` or `*`
MAX_MACRO_DEPTH = 50
MAX_MACRO_CALLS = 10_000

# Filter names a template cannot type (not identifiers): only the AST rewrite uses them.
LOOP_FILTER = "chainsim-loop-budget"
CONCAT_FILTER = "chainsim-concat"

# Attributes that build unbounded data from a small input (a str translation table, int.to_bytes).
BLOCKED_ATTRIBUTES = frozenset({"translate", "maketrans", "to_bytes"})

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d*)(?:\.(\*|\d*))?")
_DIGITS = re.compile(r"\d+")


class TemplateLimitError(SecurityError):
    """A template tried to do unbounded work (too many loop iterations, a huge string/number...)."""


def _check_size(size: int, what: str, limit: int = MAX_SEQUENCE) -> None:
    if size > limit:
        raise TemplateLimitError(f"{what} would be {size:,} long; the limit is {limit:,}")


def _check_bits(bits: int, what: str) -> None:
    if bits > MAX_POWER_BITS:
        raise TemplateLimitError(f"{what} would need {bits:,} bits; the limit is {MAX_POWER_BITS:,}")


def _check_count(value: Any, what: str) -> None:
    if isinstance(value, int) and value > MAX_SEQUENCE:
        raise TemplateLimitError(f"{what} is {value:,}; the limit is {MAX_SEQUENCE:,}")


def text_size(value: Any, limit: int = MAX_STRING) -> int:
    """Estimate len(str(value)) without building it; stops counting once past limit.

    A list can hold 100,000 references to one 1 MB string: cheap to build, huge to print.
    """
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, Namespace):
            stack.append(object.__getattribute__(item, "_Namespace__attrs"))
        elif isinstance(item, abc.Mapping):
            total += 2 + 4 * len(item)
            stack.extend(item.items())
        elif isinstance(item, (list, tuple, abc.Set, abc.MappingView)):
            total += 2 + 2 * len(item)
            stack.extend(item)  # type: ignore[arg-type]
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        else:
            total += 16
    return total


def _check_text(value: Any, what: str = "text", limit: int = MAX_STRING) -> None:
    _check_size(text_size(value, limit), what, limit)


def check_output(value: Any) -> Any:
    """Return a rendered value (text, or what compile_expression() gave), or raise if it
    would print to more than MAX_OUTPUT characters."""
    _check_text(value, "rendered output", MAX_OUTPUT)
    return value


class RenderBudget:
    """The work one event's payload rendering may do, across all its templates."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.iterations = 0
        self.allocated = 0
        self.macro_calls = 0
        self.macro_depth = 0

    def tick(self) -> None:
        self.iterations += 1
        if self.iterations > MAX_LOOP_ITERATIONS:
            raise TemplateLimitError(
                f"template loop budget exceeded ({MAX_LOOP_ITERATIONS:,} iterations per event)"
            )

    def charge(self, value: Any) -> Any:
        """Count the size of a freshly built value against the allocation budget."""
        if isinstance(value, (str, bytes, list, tuple, dict, set)):
            self.spend(len(value))
        return value

    def spend(self, size: int) -> None:
        self.allocated += size
        if self.allocated > MAX_ALLOCATED:
            raise TemplateLimitError(
                f"template built more than {MAX_ALLOCATED:,} characters/items in one event"
            )

    def enter_macro(self) -> None:
        self.macro_calls += 1
        self.macro_depth += 1
        if self.macro_depth > MAX_MACRO_DEPTH:
            raise TemplateLimitError(f"macro calls nested deeper than {MAX_MACRO_DEPTH}")
        if self.macro_calls > MAX_MACRO_CALLS:
            raise TemplateLimitError(f"more than {MAX_MACRO_CALLS:,} macro calls in one event")


class BudgetedRange:
    """What templates get from range(): like Python's range, but iterating it uses the loop budget."""

    __slots__ = ("_range", "_budget")

    def __init__(self, budget: RenderBudget, *args: int) -> None:
        self._range = range(*args)
        self._budget = budget
        _check_size(len(self._range), "range()", MAX_RANGE)

    def __iter__(self) -> Iterator[int]:
        for number in self._range:
            self._budget.tick()
            yield number

    def __len__(self) -> int:
        return len(self._range)

    def __contains__(self, item: object) -> bool:
        return item in self._range

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            sliced = self._range[index]
            return BudgetedRange(self._budget, sliced.start, sliced.stop, sliced.step)
        return self._range[index]

    def __repr__(self) -> str:
        return repr(self._range)


# random.sample() and Jinja's `is sequence` accept it like a range.
abc.Sequence.register(BudgetedRange)


class _CountedIterable:
    """Wraps a {% for %} loop's iterable so each item drawn uses the loop budget."""

    __slots__ = ("_iterable", "_budget")

    def __init__(self, budget: RenderBudget, iterable: Iterable[Any]) -> None:
        self._iterable = iterable
        self._budget = budget

    def __len__(self) -> int:  # keeps loop.length cheap for sized iterables
        return len(self._iterable)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        for item in self._iterable:
            self._budget.tick()
            yield item


@pass_context
def _loop_budget(context: Context, iterable: Any) -> Any:
    if isinstance(iterable, BudgetedRange):  # already counts; don't charge twice
        return iterable
    return _CountedIterable(context.environment.budget, iterable)  # type: ignore[attr-defined]


@pass_context
def _checked_concat(context: Context, pieces: list[Any]) -> str:
    _check_text(pieces, "string built with ~")
    join = markup_join if context.eval_ctx.autoescape else str_join
    return context.environment.budget.charge(join(pieces))  # type: ignore[attr-defined]


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


# ---- binary operators and str methods -------------------------------------------------

_SEQUENCES = (str, bytes, list, tuple)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_multiply(left: Any, right: Any) -> None:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, _SEQUENCES) and isinstance(count, int):
            _check_size(len(seq) * max(count, 0), "repeated sequence")
    if _is_int(left) and _is_int(right):
        _check_bits(left.bit_length() + right.bit_length(), "an integer product")


def _check_power(base: Any, exponent: Any) -> None:
    if _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1:
        bits = exponent * math.log2(abs(base))  # estimate before computing
        _check_bits(math.ceil(bits), "an integer power")


def _check_percent(template: Any, values: Any) -> None:
    if not isinstance(template, (str, bytes)):
        return
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    for width, precision in _PERCENT_SPEC.findall(text):
        for number in (width, precision):
            if number == "*":  # the width comes from the values: check them all
                for value in values if isinstance(values, tuple) else (values,):
                    _check_count(value, "a %-format width")
            elif number:
                _check_count(int(number), "a %-format width/precision")
    _check_text(values, "%-format arguments")


def _check_add(left: Any, right: Any) -> None:
    if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        _check_size(len(left) + len(right), "concatenation", MAX_STRING)


_BINOP_CHECKS: dict[str, Callable[[Any, Any], None]] = {
    "*": _check_multiply,
    "**": _check_power,
    "%": _check_percent,
    "+": _check_add,
}


def _check_str_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Check the str/bytes methods whose arguments decide the result size; return the args to use."""
    target = getattr(method, "__self__", None)
    if not isinstance(method, types.BuiltinMethodType) or not isinstance(target, (str, bytes)):
        return args
    name = method.__name__
    if name in ("ljust", "rjust", "center", "zfill"):
        _check_count(args[0] if args else kwargs.get("width", 0), f"str.{name}() width")
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        _check_size(len(target) * max(tabsize, 1), "str.expandtabs() result", MAX_STRING)
    elif name == "replace" and len(args) >= 2:
        _check_replace(target, args[0], args[1], args[2] if len(args) > 2 else -1)
    elif name == "join" and args:
        items = list(args[0])  # materialise once so a generator is not consumed twice
        _check_size(len(target) * len(items) + text_size(items), "str.join() result", MAX_STRING)
        args = (items, *args[1:])
    return args


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not isinstance(text, (str, bytes)) or not isinstance(new, (str, bytes)):
        return
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    _check_size(len(text) + hits * len(new), "replace() result", MAX_STRING)


# ---- filters -----------------------------------------------------------------------


def _check_indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    pad = len(width) if isinstance(width, str) else width
    _check_count(pad, "indent width")
    lines = str(s).count("\n") + 1
    _check_size(len(str(s)) + lines * max(pad, 0), "indented text", MAX_STRING)


def _check_wordwrap(s: Any, width: Any = 79, _b: Any = True, wrapstring: Any = None, *_: Any,
                    **kwargs: Any) -> None:
    _check_count(width, "wordwrap width")
    wrapstring = kwargs.get("wrapstring", wrapstring) or "\n"
    lines = len(str(s)) // max(int(width), 1) + str(s).count(" ") + str(s).count("\n") + 1
    _check_size(len(str(s)) + lines * len(str(wrapstring)), "wrapped text", MAX_STRING)


def _check_format(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_percent(str(value), tuple(args) or kwargs)


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": lambda value, width=80, *_a, **_k: _check_count(width, "center width"),
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "truncate": lambda s, length=255, *_a, **_k: _check_count(length, "truncate length"),
    "batch": lambda value, linecount, *_a, **_k: _check_count(linecount, "batch size"),
    "slice": lambda value, slices, *_a, **_k: _check_count(slices, "slice count"),
    "format": _check_format,
    "replace": lambda s, old, new, count=None, *_a, **_k: _check_replace(
        str(s), str(old), str(new), -1 if count is None else count),
}

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
        _check_add(total, item)
        total = environment.budget.charge(total + item)
    return total


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    pass_arg = _PassArg.from_obj(func)  # type: ignore[arg-type]
    check = _FILTER_CHECKS.get(name)

    # pass_context also stops Jinja from running the filter at compile time (constant folding).
    @pass_context
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        env = context.environment
        budget: RenderBudget = env.budget  # type: ignore[attr-defined]
        if name == "join":
            value = budget.charge(list(value))
            _check_text(value, "joined text")
        elif name in _STRINGIFYING:
            _check_text(value, f"input of |{name}")
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
    filters[LOOP_FILTER] = _loop_budget
    filters[CONCAT_FILTER] = _checked_concat
    return filters


# ---- str.format --------------------------------------------------------------------


class _CheckedFormatter(SandboxedFormatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        for number in _DIGITS.findall(format_spec):
            _check_count(int(number), "a format width/precision")
        _check_text(value, "format() argument")
        return super().format_field(value, format_spec)


class _CheckedEscapeFormatter(_CheckedFormatter, EscapeFormatter):
    pass


# ---- the environment ---------------------------------------------------------------


class ChainSandbox(ImmutableSandboxedEnvironment):
    """ImmutableSandboxedEnvironment plus the resource limits above; env.budget is per event."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self) -> None:
        self.budget = RenderBudget()
        super().__init__(undefined=StrictUndefined, autoescape=False,
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
        _check_size(size, "rendered value", MAX_OUTPUT)
        self.budget.spend(size)
        return value

    def _concat_output(self, pieces: Iterable[str]) -> str:
        # The top-level render joins here: stop as soon as the output passes the cap.
        kept, size = [], 0
        for piece in pieces:
            size += len(piece)
            _check_size(size, "rendered output", MAX_OUTPUT)
            kept.append(piece)
        return "".join(kept)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return attr not in BLOCKED_ATTRIBUTES and super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _BINOP_CHECKS[operator](left, right)
        return self.budget.charge(self.binop_table[operator](left, right))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if not self.is_safe_callable(obj):
            raise SecurityError(f"{obj!r} is not safely callable")
        args = _check_str_method(obj, args, kwargs)
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
