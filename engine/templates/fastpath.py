"""Fast paths for the templates chain files write most: `{{ vars.x }}`, `{{ faker.name() }}`,
`{{ random.randint(1, 9) }}`, `{{ steps.a.payload.b }}`, `{{ x | round(2) }}`, and text around them.

A full Jinja render builds a new Context per call; for these shapes that is most of an event's cost.
`compile_fast` turns such an expression tree into plain closures; any node it does not know returns
None and the template keeps its full sandboxed render. The sandbox stays whole: names resolve only in
the template context, attribute access on anything but a plain dict goes through the sandbox's own
`getattr`, calls are only to the `faker` and `random` facades (our own objects, which check their own
arguments), operators the sandbox intercepts go through its `call_binop`, and filters are the
sandbox's filter table.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, cast

from jinja2 import nodes
from jinja2.filters import FILTERS
from jinja2.runtime import Undefined, new_context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg, missing

from .fakers import FakerFacade
from .sandbox import UndefinedNameError

Fast = Callable[[Mapping[str, Any]], Any]

FACADES = frozenset({"faker", "random"})
NUMERIC_FILTERS = frozenset({"round", "int", "float", "abs"})
_DICT_ATTRIBUTES = frozenset(dir(dict))
_COMPARE = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lteq": operator.le,
    "gt": operator.gt, "gteq": operator.ge, "in": lambda a, b: a in b, "notin": lambda a, b: a not in b,
}
_BINOPS = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "FloorDiv": "//", "Mod": "%", "Pow": "**"}


class _Unsupported(Exception):
    pass


def _undefined(message: str, name: str, owner: Any = missing) -> Any:
    raise UndefinedNameError(message, name, owner)


def compile_fast(env: ImmutableSandboxedEnvironment, node: nodes.Node) -> Fast | None:
    """Closures equivalent to the expression `node`, or None when it has a shape we do not handle.

    The result's `spends` says whether it charges the sandbox's budget (a guarded filter, an intercepted
    operator): an event whose templates all spend nothing needs no budget reset.
    """
    compiler = _Compiler(env)
    try:
        fast = compiler.expr(node)
    except _Unsupported:
        return None
    fast.spends = compiler.spends  # type: ignore[attr-defined]
    return fast


def compile_fast_output(env: ImmutableSandboxedEnvironment, template: nodes.Template) -> Fast | None:
    """A whole template made of text and `{{ }}` outputs, as one string-building closure, or None."""
    if len(template.body) != 1 or not isinstance(template.body[0], nodes.Output):
        return None
    compiler = _Compiler(env)
    parts: list[Any] = []
    try:
        for part in template.body[0].nodes:
            parts.append(part.data if isinstance(part, nodes.TemplateData) else compiler.expr(part))
    except _Unsupported:
        return None
    finalize = env.finalize  # the sandbox's size check on every printed value

    def render(context: Mapping[str, Any]) -> str:
        out = []
        for part in parts:
            if type(part) is str:
                out.append(part)
            else:
                value = part(context)
                if isinstance(value, Undefined):
                    value._fail_with_undefined_error()
                out.append(str(finalize(None, value) if finalize else value))
        return env.concat(out)  # type: ignore[attr-defined]

    return render


class _Compiler:
    def __init__(self, env: ImmutableSandboxedEnvironment) -> None:
        self.env = env
        self.spends = False  # a part of the expression charges the budget

    def expr(self, node: nodes.Node) -> Fast:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise _Unsupported(type(node).__name__)
        result: Fast = method(node)
        return result

    def _Const(self, node: nodes.Const) -> Fast:
        value = node.value
        return lambda context: value

    def _Name(self, node: nodes.Name) -> Fast:
        name = node.name
        if node.ctx != "load":
            raise _Unsupported("store")

        def load(context: Mapping[str, Any]) -> Any:
            try:
                return context[name]
            except KeyError:
                return _undefined(f"{name!r} is undefined", name)

        return load

    def _Getattr(self, node: nodes.Getattr) -> Fast:
        attr = node.attr
        if attr.startswith("_") or attr in _DICT_ATTRIBUTES:
            raise _Unsupported(attr)  # let the sandbox decide
        env_getattr = self.env.getattr
        inner = self.expr(node.node)

        def get(context: Mapping[str, Any]) -> Any:
            obj = inner(context)
            if type(obj) is dict:
                try:
                    return obj[attr]
                except KeyError:
                    return _undefined(f"'dict object' has no attribute {attr!r}", attr, obj)
            value = env_getattr(obj, attr)
            if isinstance(value, Undefined):
                value._fail_with_undefined_error()
            return value

        return get

    def _Getitem(self, node: nodes.Getitem) -> Fast:
        if node.ctx != "load":
            raise _Unsupported("store")
        inner, key = self.expr(node.node), self.expr(node.arg)
        env_getitem = self.env.getitem

        def get(context: Mapping[str, Any]) -> Any:
            value = env_getitem(inner(context), key(context))
            if isinstance(value, Undefined):
                value._fail_with_undefined_error()
            return value

        return get

    def _List(self, node: nodes.List) -> Fast:
        items = [self.expr(item) for item in node.items]
        return lambda context: [item(context) for item in items]

    def _Tuple(self, node: nodes.Tuple) -> Fast:
        if node.ctx != "load":
            raise _Unsupported("store")
        items = [self.expr(item) for item in node.items]
        return lambda context: tuple(item(context) for item in items)

    def _Dict(self, node: nodes.Dict) -> Fast:
        pairs = [(self.expr(pair.key), self.expr(pair.value)) for pair in node.items]
        return lambda context: {k(context): v(context) for k, v in pairs}

    def _Call(self, node: nodes.Call) -> Fast:
        callee = node.node
        if not (isinstance(callee, nodes.Getattr) and isinstance(callee.node, nodes.Name)
                and callee.node.name in FACADES and not callee.attr.startswith("_")):
            raise _Unsupported("call")
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise _Unsupported("dynamic arguments")
        facade, method = callee.node.name, callee.attr
        args = [self.expr(arg) for arg in node.args]
        kwargs: list[tuple[str, Fast]] = [(kw.key, self.expr(kw.value)) for kw in node.kwargs]
        constant = all(isinstance(a, nodes.Const) for a in node.args) and \
            all(isinstance(kw.value, nodes.Const) for kw in node.kwargs)
        fixed_args = tuple(cast(nodes.Const, a).value for a in node.args) if constant else ()
        fixed_kwargs = {kw.key: cast(nodes.Const, kw.value).value for kw in node.kwargs} if constant else {}
        env_getattr = self.env.getattr
        checked: set[type] = set()  # facade classes whose `method` the sandbox has let through
        checked_locales: set[str] = set()  # faker locales that accepted the constant arguments

        # No allocation budget here: without loops, a fast template makes a bounded number of calls,
        # and the facades cap each call's size themselves.
        def call(context: Mapping[str, Any]) -> Any:
            target = context[facade]
            kind = type(target)
            if kind not in checked:
                # The sandbox's own attribute check, as a full render does; its answer depends only
                # on the facade's class and the name, so it is asked once per class.
                function = env_getattr(target, method)
                if isinstance(function, Undefined):
                    function._fail_with_undefined_error()
                checked.add(kind)
            if constant:
                values, named = fixed_args, fixed_kwargs
            else:
                values = tuple([a(context) for a in args])
                named = {k: v(context) for k, v in kwargs}
            if kind is not FakerFacade:
                return getattr(target, method)(*values, **named)
            if not constant:
                return target._generate(method, values, named)
            if target._locale not in checked_locales:  # constant arguments: check them once per locale
                target._check(method, values, named)
                checked_locales.add(target._locale)
            return target._generate_checked(method, values, named)

        return call


    def _Filter(self, node: nodes.Filter) -> Fast:
        function = self.env.filters.get(node.name)
        if function is not None and node.name in NUMERIC_FILTERS:
            function = FILTERS[node.name]  # numbers in, a number out: no size to guard
        if function is None or node.node is None or node.dyn_args or node.dyn_kwargs:
            raise _Unsupported("filter")
        inner = self.expr(node.node)
        args = [self.expr(arg) for arg in node.args]
        # The parser gives filters Keyword nodes (key: str), though the node class declares Pairs.
        kwargs: list[tuple[str, Fast]] = [(cast(str, kw.key), self.expr(kw.value)) for kw in node.kwargs]
        pass_arg = _PassArg.from_obj(function)  # type: ignore[arg-type]
        self.spends = self.spends or node.name not in NUMERIC_FILTERS
        if pass_arg is None:
            return lambda context: function(inner(context), *[a(context) for a in args],
                                            **{k: v(context) for k, v in kwargs})
        if pass_arg is not _PassArg.context:
            raise _Unsupported("filter with an evaluation context")
        # The sandbox's filters take a Jinja context for its environment and budget, never for template
        # variables; one empty context serves every call.
        lead = new_context(self.env, None, {})
        return lambda context: function(lead, inner(context), *[a(context) for a in args],
                                        **{k: v(context) for k, v in kwargs})

    def _BinExpr(self, node: nodes.BinExpr) -> Fast:
        symbol = _BINOPS.get(type(node).__name__)
        if symbol is None:
            raise _Unsupported("operator")
        left, right = self.expr(node.left), self.expr(node.right)
        env = self.env
        if symbol in env.intercepted_binops:
            self.spends = True
            return lambda context: env.call_binop(None, symbol, left(context), right(context))  # type: ignore[arg-type]
        apply = env.binop_table[symbol]
        return lambda context: apply(left(context), right(context))

    _Add = _Sub = _Mul = _Div = _FloorDiv = _Mod = _Pow = _BinExpr

    def _Compare(self, node: nodes.Compare) -> Fast:
        if len(node.ops) != 1 or node.ops[0].op not in _COMPARE:
            raise _Unsupported("compare")
        left, right, test = self.expr(node.expr), self.expr(node.ops[0].expr), _COMPARE[node.ops[0].op]
        return lambda context: test(left(context), right(context))

    def _CondExpr(self, node: nodes.CondExpr) -> Fast:
        if node.expr2 is None:
            raise _Unsupported("if without else")
        test, then, other = self.expr(node.test), self.expr(node.expr1), self.expr(node.expr2)
        return lambda context: then(context) if test(context) else other(context)

    def _And(self, node: nodes.And) -> Fast:
        left, right = self.expr(node.left), self.expr(node.right)
        return lambda context: left(context) and right(context)

    def _Or(self, node: nodes.Or) -> Fast:
        left, right = self.expr(node.left), self.expr(node.right)
        return lambda context: left(context) or right(context)

    def _Not(self, node: nodes.Not) -> Fast:
        inner = self.expr(node.node)
        return lambda context: not inner(context)

    def _Neg(self, node: nodes.Neg) -> Fast:
        inner = self.expr(node.node)
        return lambda context: -inner(context)
