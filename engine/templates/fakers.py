"""The `faker` templates see: Faker's data generators, seeded by the chain instance's own random.Random.

The same seed gives the same payloads however chain instances interleave. Templates are untrusted: the
facade exposes data-returning generators only, with size arguments capped. The generators themselves belong
to the run (`Fakers`): their "now" is the run's simulated time, and no Faker state is shared with another
run or with a user's own Faker.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import random
from collections.abc import Iterable
from typing import Any

from faker.config import AVAILABLE_LOCALES, PROVIDERS
from jinja2.exceptions import TemplateRuntimeError
from jinja2.runtime import Undefined
from jinja2.sandbox import SecurityError

from ..hints import did_you_mean
from .limits import MAX_FAKER_SIZE, check_argument  # noqa: F401 - MAX_FAKER_SIZE is re-exported
from .simulated_faker import SimulatedFaker, SimulatedTime, provider_class

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
PROTOCOL_NAMES = frozenset({"unsafe_callable", "alters_data", "jinja_pass_arg"})


class UnknownGeneratorError(TemplateRuntimeError):
    """faker.<name> (or random.<name>) is not a generator templates may call; the message has a did-you-mean."""

    def __init__(self, owner: str, name: str, known: Iterable[str], noun: str = "generator") -> None:
        self.owner, self.name = owner, name
        suggestion = did_you_mean(name, known)
        super().__init__(f"{owner} has no {noun} {name!r}" + (f"; {suggestion}" if suggestion else ""))


class Fakers:
    """The Faker generators of one run, one per locale, and the simulated time their date generators read.

    A run (or a load's dry run) owns one: nothing is shared with other runs or with a user's own Faker.
    """

    def __init__(self) -> None:
        self.time = SimulatedTime()
        self._builder = SimulatedFaker(self.time)
        self._generators: dict[str, Any] = {}

    def generator(self, locale: str) -> Any:
        generator = self._generators.get(locale)
        if generator is None:
            if locale not in AVAILABLE_LOCALES:
                raise ValueError(f"unknown Faker locale {locale!r}; "
                                 + did_you_mean(locale, AVAILABLE_LOCALES, "e.g. 'en_US' or 'de_DE'"))
            generator = self._generators[locale] = self._builder.generator(locale)
        return generator


@functools.cache
@functools.cache
def _owners(locale: str) -> dict[str, type]:
    """Each public callable of the locale's providers -> the provider class a Faker generator takes it from
    (the last of PROVIDERS that has it, as Generator.add_provider sets each callable in turn)."""
    owners: dict[str, type] = {}
    for path in PROVIDERS:
        if path != "faker.providers":
            cls = provider_class(path, locale)[0]
            owners.update((name, cls) for name in dir(cls) if not name.startswith("_") and callable(getattr(cls, name)))
    return owners


@functools.cache
def generator_names(locale: str) -> frozenset[str]:
    """The faker.<name> generators templates may call for this locale."""
    names = {name for name, cls in _owners(locale).items() if not _dated_at_import(getattr(cls, name))}
    return frozenset(names - BLOCKED_GENERATORS)


def _dated_at_import(method: Any) -> bool:
    """A generator whose default arguments hold a date: computed from the wall clock when Faker was
    imported (e.g. passport_dates(birthday=date.today())), so its output would depend on the day."""
    defaults = getattr(method, "__defaults__", None) or ()
    return any(isinstance(value, dt.date) for value in defaults)


@functools.cache
def _signature(locale: str, name: str) -> inspect.Signature:
    """The signature of faker.<name>() as a template calls it (without self)."""
    cls = _owners(locale)[name]
    signature = inspect.signature(getattr(cls, name))
    if isinstance(inspect.getattr_static(cls, name), classmethod | staticmethod):
        return signature
    return signature.replace(parameters=list(signature.parameters.values())[1:])


def _named_arguments(name: str, locale: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """(parameter name, value) of every argument; keyword-only calls need no signature."""
    if not args:
        return [kwargs.items()]
    try:
        bound = _signature(locale, name).bind_partial(*args, **kwargs)
    except TypeError:
        return []  # wrong arguments: let the generator itself say so
    return [value.items() if isinstance(value, dict) and argument == "kwargs" else [(argument, value)]
            for argument, value in bound.arguments.items()]


def _check_arguments(name: str, locale: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for values in _named_arguments(name, locale, args, kwargs):
        for key, item in values:
            if isinstance(item, Undefined):
                item._fail_with_undefined_error()
            # A callable (cast_to=...) would run outside the sandbox's call checks.
            if callable(item):
                raise SecurityError(f"faker.{name}() takes data, not a callable, for {key!r}")
            if key in SIZE_ARGUMENTS:
                check_argument(f"faker.{name}()", key, item)


def set_time(facade: FakerFacade, ms: int) -> None:
    """Set the simulated time (epoch ms) that the facade's date generators take as "now".

    A function, not a method: templates must not be able to move the clock.
    """
    facade._now = ms


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

    __slots__ = ("_generator", "_rng", "_locale", "_names", "_now", "_time")

    def __init__(self, locale: str, rng: random.Random, fakers: Fakers) -> None:
        self._generator = fakers.generator(locale)
        self._time = fakers.time
        self._rng = rng
        self._locale = locale
        self._names = generator_names(locale)
        self._now = 0

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in PROTOCOL_NAMES or name in FakerFacade.__slots__:
            raise AttributeError(name)
        if name not in self._names:
            raise UnknownGeneratorError("faker", name, self._names)
        return _Generator(self, name)

    def __dir__(self) -> list[str]:
        return sorted(self._names)

    def __repr__(self) -> str:
        return f"<faker {self._locale}>"

    def _check(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if args or kwargs:
            _check_arguments(name, self._locale, args, kwargs)

    def _generate(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self._check(name, args, kwargs)
        return self._generate_checked(name, args, kwargs)

    def _generate_checked(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call generator `name` with arguments already checked."""
        generator = self._generator
        # A run's generator serves all its instances of a locale: point it at ours (and our time) first.
        generator.random = self._rng
        self._time.ms = self._now
        return getattr(generator, name)(*args, **kwargs)
