"""The seeded data facades payload templates see as `faker` and `random`.

Both draw only from the chain instance's own random.Random, so the same seed gives the
same payloads however chain instances interleave. Templates are untrusted: the facades
expose data-returning generators only, with size arguments capped.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import faker
from faker.config import AVAILABLE_LOCALES
from jinja2.exceptions import TemplateRuntimeError
from jinja2.runtime import Undefined
from jinja2.sandbox import SecurityError

from engine.sandbox import TemplateLimitError

MAX_FAKER_SIZE = 10_000  # largest size/length/count argument a generator accepts

# Generator methods that reseed, reconfigure, parse arbitrary generator names, take
# classes, or build big blobs/files. Everything else a provider offers returns data.
BLOCKED_GENERATORS = frozenset({
    "seed", "seed_instance", "seed_locale", "random", "add_provider", "get_providers",
    "provider", "set_formatter", "get_formatter", "set_arguments", "get_arguments",
    "del_arguments", "parse", "format", "locales", "weights", "factories", "unique",
    "optional", "items",
    "enum", "pyobject", "pystr_format", "pytimezone", "time_series",
    "binary", "zip", "tar", "image", "json", "json_bytes", "csv", "tsv", "psv", "dsv",
    "fixed_width", "xml",
})

# Arguments that decide how big a generator's result is.
SIZE_ARGUMENTS = frozenset({
    "length", "max_chars", "min_chars", "nb", "nb_words", "nb_sentences", "nb_elements",
    "nb_texts", "max_nb_chars", "digits", "left_digits", "right_digits", "depth", "deep",
    "levels", "count",
})

# Names Jinja and Python probe with getattr(); they must stay plain AttributeErrors.
_PROTOCOL_NAMES = frozenset({"unsafe_callable", "alters_data", "jinja_pass_arg"})


class UnknownGeneratorError(TemplateRuntimeError):
    """faker.<name> is not a Faker generator (or is blocked). Message includes a did-you-mean from difflib."""

    def __init__(self, owner: str, name: str, known: Iterable[str], noun: str = "generator") -> None:
        matches = difflib.get_close_matches(name, list(known), n=1)
        self.name = name
        self.suggestion: str | None = matches[0] if matches else None
        hint = f"; did you mean {self.suggestion!r}?" if self.suggestion else ""
        super().__init__(f"{owner} has no {noun} {name!r}{hint}")


def _check_size(owner: str, argument: str, value: Any, limit: int = MAX_FAKER_SIZE) -> None:
    if isinstance(value, int) and value > limit:
        raise TemplateLimitError(f"{owner}: {argument}={value:,} is too big; the limit is {limit:,}")


@functools.cache
def faker_for_locale(locale: str) -> faker.Faker:
    """The shared Faker for a locale (building one is slow); facades never reseed it."""
    if locale not in AVAILABLE_LOCALES:
        close = difflib.get_close_matches(locale, AVAILABLE_LOCALES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "; e.g. 'en_US' or 'de_DE'"
        raise ValueError(f"unknown Faker locale {locale!r}{hint}")
    return faker.Faker(locale)


@functools.cache
def generator_names(locale: str) -> frozenset[str]:
    """The faker.<name> generators templates may call for this locale."""
    generator = faker_for_locale(locale)._factories[0]
    names = {
        name
        for provider in generator.get_providers()
        for name in dir(provider)
        if not name.startswith("_") and callable(getattr(provider, name))
    }
    return frozenset(names - BLOCKED_GENERATORS)


def _check_arguments(name: str, method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        bound = inspect.signature(method).bind_partial(*args, **kwargs)
    except TypeError:
        return  # wrong arguments: let the generator itself say so
    for argument, value in bound.arguments.items():
        values = value.items() if isinstance(value, dict) and argument == "kwargs" else [(argument, value)]
        for key, item in values:
            if isinstance(item, Undefined):
                item._fail_with_undefined_error()
            # A callable (cast_to=...) would run outside the sandbox's call checks.
            if callable(item):
                raise SecurityError(f"faker.{name}() takes data, not a callable, for {key!r}")
            if key in SIZE_ARGUMENTS:
                _check_size(f"faker.{name}()", key, item)


class _Generator:
    """One faker.<name> bound to a facade; what a template calls."""

    __slots__ = ("_facade", "_name")

    def __init__(self, facade: FakerFacade, name: str) -> None:
        self._facade = facade
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._facade._generate(self._name, args, kwargs)

    def __repr__(self) -> str:
        return f"<faker.{self._name}>"


class FakerFacade:
    """What templates see as `faker`: Faker's generators, seeded by the chain instance's own random.Random."""

    __slots__ = ("_generator", "_rng", "_locale", "_names")

    def __init__(self, locale: str, rng: random.Random) -> None:
        self._generator = faker_for_locale(locale)._factories[0]
        self._rng = rng
        self._locale = locale
        self._names = generator_names(locale)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in _PROTOCOL_NAMES or name in FakerFacade.__slots__:
            raise AttributeError(name)
        if name not in self._names:
            raise UnknownGeneratorError("faker", name, self._names)
        return _Generator(self, name)

    def __dir__(self) -> list[str]:
        return sorted(self._names)

    def __repr__(self) -> str:
        return f"<faker {self._locale}>"

    def _generate(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        method = getattr(self._generator, name)
        _check_arguments(name, method, args, kwargs)
        # Faker instances are shared per locale: point this one at our rng before every call.
        self._generator.random = self._rng
        return method(*args, **kwargs)


RANDOM_HELPERS = (
    "random", "randint", "uniform", "choice", "choices", "sample", "gauss", "lognormvariate",
    "expovariate", "shuffle", "uuid4", "hex", "weighted",
)


def _population(items: Any) -> Sequence[Any]:
    # random.Random needs an indexable sequence; a mapping gives its keys, like Python's list().
    if isinstance(items, Sequence):
        return items
    return list(items)


class RandomFacade:
    """What templates see as `random`: seeded helpers drawing from the instance's random.Random."""

    __slots__ = ("_rng",)

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in _PROTOCOL_NAMES or name in RandomFacade.__slots__:
            raise AttributeError(name)
        raise UnknownGeneratorError("random", name, RANDOM_HELPERS, noun="helper")

    def __repr__(self) -> str:
        return "<random>"

    def random(self) -> float:
        return self._rng.random()

    def randint(self, a: int, b: int) -> int:
        return self._rng.randint(a, b)

    def uniform(self, a: float, b: float) -> float:
        return self._rng.uniform(a, b)

    def choice(self, seq: Iterable[Any]) -> Any:
        return self._rng.choice(_population(seq))

    def choices(self, seq: Iterable[Any], weights: Iterable[float] | None = None, k: int = 1) -> list[Any]:
        _check_size("random.choices()", "k", k)
        weights = None if weights is None else list(weights)
        return self._rng.choices(_population(seq), weights=weights, k=k)

    def sample(self, seq: Iterable[Any], k: int) -> list[Any]:
        _check_size("random.sample()", "k", k)
        return self._rng.sample(_population(seq), k)

    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        return self._rng.gauss(mu, sigma)

    def lognormvariate(self, mu: float, sigma: float) -> float:
        return self._rng.lognormvariate(mu, sigma)

    def expovariate(self, lambd: float = 1.0) -> float:
        return self._rng.expovariate(lambd)

    def shuffle(self, seq: Iterable[Any]) -> list[Any]:
        """A shuffled copy: templates cannot change their data in place."""
        items = list(seq)
        self._rng.shuffle(items)
        return items

    def uuid4(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def hex(self, nbytes: int = 16) -> str:
        _check_size("random.hex()", "nbytes", nbytes)
        return self._rng.randbytes(max(nbytes, 0)).hex()

    def weighted(self, mapping: Mapping[Any, float]) -> Any:
        """A key of mapping, drawn with the mapping's values as weights."""
        keys = list(mapping)
        return self._rng.choices(keys, weights=[mapping[key] for key in keys], k=1)[0]
