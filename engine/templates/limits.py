"""Resource limits of the template sandbox: the budget of one event's rendering and the checks that
keep a template from building gigantic strings, numbers or sequences.

engine/templates/sandbox.py wires these into the Jinja environment; nothing here knows about chains.
"""

from __future__ import annotations

import math
import numbers
import re
import threading
import types
from collections import abc
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import SecurityError
from jinja2.utils import Namespace

MAX_LOOP_ITERATIONS = 10_000  # loop iterations per render (per event payload)
MAX_RANGE = 100_000  # items one range() may hold (Jinja's own MAX_RANGE)
MAX_SEQUENCE = 100_000  # items/chars one `*` may build; largest width/count argument
MAX_STRING = 1_000_000  # chars/items one `+`, `~`, join, replace... may build
MAX_OUTPUT = 1_000_000  # chars of rendered text
MAX_ALLOCATED = 20_000_000  # chars/items all operations of one render may build
MAX_POWER_BITS = 4_096  # bits of an integer built by `**` or `*`
MAX_MACRO_DEPTH = 50
MAX_MACRO_CALLS = 10_000
MAX_FAKER_SIZE = 10_000  # largest size/length/count argument a `faker` generator or `random` helper accepts

# Filter names a template cannot type (not identifiers): only the AST rewrite uses them.
LOOP_FILTER = "chainsim-loop-budget"
CONCAT_FILTER = "chainsim-concat"

# Attributes that build unbounded data from a small input (a str translation table, int.to_bytes).
BLOCKED_ATTRIBUTES = frozenset({"translate", "maketrans", "to_bytes"})

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d*)(?:\.(\*|\d*))?")
DIGITS = re.compile(r"\d+")


class TemplateLimitError(SecurityError):
    """A template tried to do unbounded work (too many loop iterations, a huge string/number...)."""


def check_argument(owner: str, argument: str, value: Any, limit: int = MAX_FAKER_SIZE) -> None:
    """A facade's size argument (`nb_words`, `k`...) is at most `limit`."""
    # Any real number: Faker takes 3e7 as readily as 30000000 (and NaN compares as not too big).
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and not value <= limit:
        raise TemplateLimitError(f"{owner}: {argument}={value:,} is too big; the limit is {limit:,}")


def check_size(size: int, what: str, limit: int = MAX_SEQUENCE) -> None:
    if size > limit:
        raise TemplateLimitError(f"{what} would be {size:,} long; the limit is {limit:,}")


def _check_bits(bits: int, what: str) -> None:
    if bits > MAX_POWER_BITS:
        raise TemplateLimitError(f"{what} would need {bits:,} bits; the limit is {MAX_POWER_BITS:,}")


def check_count(value: Any, what: str) -> None:
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


def check_text(value: Any, what: str = "text", limit: int = MAX_STRING) -> None:
    check_size(text_size(value, limit), what, limit)


def check_output(value: Any) -> Any:
    """Return a rendered value (text, or what compile_expression() gave), or raise if it
    would print to more than MAX_OUTPUT characters."""
    check_text(value, "rendered output", MAX_OUTPUT)
    return value


class RenderBudget(threading.local):
    """The work one event's payload rendering may do, across all its templates.

    A catalog's templates share one budget (it lives in their environment); each thread counts its own, so
    runs of one catalog in several threads never charge each other. Most events render only fast-path
    templates, which spend nothing: reset() then only reads one flag (a thread-local write costs 6x a read).
    """

    def __init__(self) -> None:
        self.used = True
        self.reset()

    def reset(self) -> None:
        if self.used:
            self.iterations = self.allocated = self.macro_calls = self.macro_depth = 0
            self.used = False

    def tick(self) -> None:
        self.used = True
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
        self.used = True
        self.allocated += size
        if self.allocated > MAX_ALLOCATED:
            raise TemplateLimitError(
                f"template built more than {MAX_ALLOCATED:,} characters/items in one event"
            )

    def enter_macro(self) -> None:
        self.used = True
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
        check_size(len(self._range), "range()", MAX_RANGE)

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
def loop_budget(context: Context, iterable: Any) -> Any:
    if isinstance(iterable, BudgetedRange):  # already counts; don't charge twice
        return iterable
    return _CountedIterable(context.environment.budget, iterable)  # type: ignore[attr-defined]


@pass_context
def checked_concat(context: Context, pieces: list[Any]) -> str:
    check_text(pieces, "string built with ~")
    join = markup_join if context.eval_ctx.autoescape else str_join
    return context.environment.budget.charge(join(pieces))  # type: ignore[attr-defined]


# ---- binary operators and str methods -------------------------------------------------

_SEQUENCES = (str, bytes, list, tuple)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_multiply(left: Any, right: Any) -> None:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, _SEQUENCES) and isinstance(count, int):
            check_size(len(seq) * max(count, 0), "repeated sequence")
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
                    check_count(value, "a %-format width")
            elif number:
                check_count(int(number), "a %-format width/precision")
    check_text(values, "%-format arguments")


def check_add(left: Any, right: Any) -> None:
    if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        check_size(len(left) + len(right), "concatenation", MAX_STRING)


BINOP_CHECKS: dict[str, Callable[[Any, Any], None]] = {
    "*": _check_multiply,
    "**": _check_power,
    "%": _check_percent,
    "+": check_add,
}


def check_str_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Check the str/bytes methods whose arguments decide the result size; return the args to use."""
    target = getattr(method, "__self__", None)
    if not isinstance(method, types.BuiltinMethodType) or not isinstance(target, (str, bytes)):
        return args
    name = method.__name__
    if name in ("ljust", "rjust", "center", "zfill"):
        check_count(args[0] if args else kwargs.get("width", 0), f"str.{name}() width")
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        check_size(len(target) * max(tabsize, 1), "str.expandtabs() result", MAX_STRING)
    elif name == "replace" and len(args) >= 2:
        _check_replace(target, args[0], args[1], args[2] if len(args) > 2 else -1)
    elif name == "join" and args:
        items = list(args[0])  # materialise once so a generator is not consumed twice
        check_size(len(target) * len(items) + text_size(items), "str.join() result", MAX_STRING)
        args = (items, *args[1:])
    return args


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not isinstance(text, (str, bytes)) or not isinstance(new, (str, bytes)):
        return
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    check_size(len(text) + hits * len(new), "replace() result", MAX_STRING)


# ---- filters -----------------------------------------------------------------------


def _check_indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    pad = len(width) if isinstance(width, str) else width
    check_count(pad, "indent width")
    lines = str(s).count("\n") + 1
    check_size(len(str(s)) + lines * max(pad, 0), "indented text", MAX_STRING)


def _check_wordwrap(s: Any, width: Any = 79, _b: Any = True, wrapstring: Any = None, *_: Any,
                    **kwargs: Any) -> None:
    check_count(width, "wordwrap width")
    wrapstring = kwargs.get("wrapstring", wrapstring) or "\n"
    lines = len(str(s)) // max(int(width), 1) + str(s).count(" ") + str(s).count("\n") + 1
    check_size(len(str(s)) + lines * len(str(wrapstring)), "wrapped text", MAX_STRING)


def _check_format(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_percent(str(value), tuple(args) or kwargs)


FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": lambda value, width=80, *_a, **_k: check_count(width, "center width"),
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "truncate": lambda s, length=255, *_a, **_k: check_count(length, "truncate length"),
    "batch": lambda value, linecount, *_a, **_k: check_count(linecount, "batch size"),
    "slice": lambda value, slices, *_a, **_k: check_count(slices, "slice count"),
    "format": _check_format,
    "replace": lambda s, old, new, count=None, *_a, **_k: _check_replace(
        str(s), str(old), str(new), -1 if count is None else count),
}
