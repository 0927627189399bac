"""The seeded data facades payload templates see as `faker` and `random`.

Both draw only from the chain instance's own random.Random, so the same seed gives the
same payloads however chain instances interleave. Templates are untrusted: the facades
expose data-returning generators only, with size arguments capped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import functools
import importlib.machinery
import inspect
import itertools
import numbers
import os
import random
import sys
import types
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import faker
from faker.config import AVAILABLE_LOCALES
from jinja2.exceptions import TemplateRuntimeError
from jinja2.runtime import Undefined
from jinja2.sandbox import SecurityError

from .errors import did_you_mean
from .sandbox import TemplateLimitError

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
    # Any real number: Faker takes 3e7 as readily as 30000000 (and NaN compares as not too big).
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and not value <= limit:
        raise TemplateLimitError(f"{owner}: {argument}={value:,} is too big; the limit is {limit:,}")


@functools.cache
def faker_for_locale(locale: str) -> faker.Faker:
    """The shared Faker for a locale (building one is slow); facades never reseed it."""
    if locale not in AVAILABLE_LOCALES:
        raise ValueError(f"unknown Faker locale {locale!r}; "
                         + did_you_mean(locale, AVAILABLE_LOCALES, "e.g. 'en_US' or 'de_DE'"))
    _install_cached_weights()
    with _locale_lookup():
        instance = faker.Faker(locale)
    _SimulatedNow.freeze_providers(instance._factories[0])
    return instance


class _SubPackages:
    """`locale in list_module(module)`, answered without listing the module's folder: is there a package
    of that name in it (a folder holding an `__init__` module), which is what pkgutil's listing yields."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not name or "." in name or os.sep in name:
            return False
        package = os.path.join(self.folder, name)
        return any(os.path.exists(os.path.join(package, "__init__" + suffix)) for suffix in _MODULE_SUFFIXES)


_MODULE_SUFFIXES = tuple(importlib.machinery.all_suffixes())


@contextlib.contextmanager
def _locale_lookup() -> Iterator[None]:
    """While Faker(locale) is built: each localized provider asks whether it has the locale by listing
    its folder's packages, ~700 folders in all, already listed once by `import faker` (a fifth of
    `validate`). For the pinned Faker version the question is answered by looking for that one package;
    the provider classes chosen are the same (a test compares them)."""
    import faker.factory
    from faker.utils.loading import get_path

    if faker.VERSION != _FAKER_PINNED:
        yield
        return
    listing = faker.factory.list_module
    faker.factory.list_module = lambda module: _SubPackages(str(get_path(module)))  # type: ignore[assignment,return-value]
    try:
        yield
    finally:
        faker.factory.list_module = listing


@functools.cache
def generator_names(locale: str) -> frozenset[str]:
    """The faker.<name> generators templates may call for this locale."""
    generator = faker_for_locale(locale)._factories[0]
    names = {
        name
        for provider in generator.get_providers()
        for name in dir(provider)
        if not name.startswith("_") and callable(getattr(provider, name))
        and not _dated_at_import(getattr(provider, name))
    }
    return frozenset(names - BLOCKED_GENERATORS)


def _dated_at_import(method: Any) -> bool:
    """A generator whose default arguments hold a date: computed from the wall clock when Faker was
    imported (e.g. passport_dates(birthday=date.today())), so its output would depend on the day."""
    defaults = getattr(method, "__defaults__", None) or ()
    return any(isinstance(value, dt.date) for value in defaults)


@functools.cache
def _signature(locale: str, name: str) -> inspect.Signature:
    return inspect.signature(getattr(faker_for_locale(locale)._factories[0], name))


class _Same(type):
    """isinstance(x, SimDatetime) is isinstance(x, datetime): Faker checks its arguments with it."""

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(obj, self.__mro__[1])

    def __subclasscheck__(self, sub: Any) -> bool:
        return issubclass(sub, self.__mro__[1])


class _SimulatedNow:
    """Faker's generators read "now" and "today": make them the simulated time, so a seed and a start
    give the same values on any day.

    Provider modules look `datetime`, `date` (or `dtdate`) up as module globals, or the datetime module
    itself; `freeze(module)` replaces those globals with look-alikes whose now()/today() return `ms`
    (naive UTC, as Faker expects), and the machine's time zone with UTC.
    """

    ms = 0

    class SimDatetime(dt.datetime, metaclass=_Same):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            moment = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=_SimulatedNow.ms)
            return moment if tz is None else moment.replace(tzinfo=dt.UTC).astimezone(tz)

        @classmethod
        def today(cls) -> Any:
            return cls.now()

    class SimDate(dt.date, metaclass=_Same):
        @classmethod
        def today(cls) -> Any:
            return _SimulatedNow.SimDatetime.now().date()

    @classmethod
    def freeze(cls, module: Any) -> None:
        if getattr(module, "_chainsim_clock", False):
            return
        patched = {dt.datetime: cls.SimDatetime, dt.date: cls.SimDate}
        shim = types.SimpleNamespace(**{**vars(dt), "datetime": cls.SimDatetime, "date": cls.SimDate})
        for name, value in list(vars(module).items()):
            if value is dt:
                setattr(module, name, shim)
            elif isinstance(value, type) and value in patched:
                setattr(module, name, patched[value])
        if hasattr(module, "_get_local_timezone"):
            module._get_local_timezone = lambda: dt.UTC  # not the machine's zone: same output everywhere
        module._chainsim_clock = True

    @classmethod
    def freeze_providers(cls, generator: Any) -> None:
        """Freeze the modules of every provider class of a Faker generator, base classes included."""
        for provider in generator.get_providers():
            for klass in type(provider).__mro__:
                module = sys.modules.get(klass.__module__)
                if module is not None and klass.__module__.startswith("faker."):
                    cls.freeze(module)


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


# The Faker version whose internals the fast paths below reproduce exactly (weighted draws, word lists,
# the locale lookup); any other version runs Faker's own code.
_FAKER_PINNED = "40.63.0"


def _install_cached_weights() -> None:
    """Make Faker's weighted draws O(log n) instead of O(n), with identical results.

    Faker's tables (first names, last names, words...) are OrderedDicts of value -> weight; on every
    draw, random_elements() copies the weights and random.choices() adds them all up again. Drawing
    with the running totals computed once gives the very same values from the same random stream
    (random.choices(population, cum_weights=...) is what choices(weights=...) does after summing).
    Only for the pinned Faker version; any other falls back to Faker's own code.
    """
    from faker.providers import BaseProvider

    if faker.VERSION != _FAKER_PINNED or getattr(BaseProvider, "_chainsim_weights", False):
        return
    original = BaseProvider.random_elements

    def random_elements(self: Any, elements: Any = ("a", "b", "c"), length: int | None = None,
                        unique: bool = False, use_weighting: bool | None = None) -> Any:
        weighted = use_weighting if use_weighting is not None else self.__use_weighting__
        if unique or not weighted or not isinstance(elements, OrderedDict):
            return original(self, elements, length, unique, use_weighting)
        rng = self.generator.random
        if length is None:
            length = rng.randint(1, len(elements))
        table: Any = elements  # Faker keeps its key cache as an attribute of the table; so do we
        keys = getattr(table, "_key_cache", None)
        if keys is None:
            keys = table._key_cache = tuple(table.keys())
        totals = getattr(table, "_chainsim_totals", None)
        if totals is None:
            totals = table._chainsim_totals = list(itertools.accumulate(table.values()))
        return rng.choices(keys, cum_weights=totals, k=length)

    random_elements.original = original  # type: ignore[attr-defined]  # for the test that compares them
    BaseProvider.random_elements = random_elements  # type: ignore[method-assign]
    BaseProvider._chainsim_weights = True  # type: ignore[attr-defined]
    _install_word_lists()


def _install_word_lists() -> None:
    """word(), words(), sentence(), slug()... without copying the locale's word list on every call.

    Faker's lorem get_words_list() returns list(word_list): ~1,000 words copied per call (twice for
    word()), 7% of a run of the seven chains. Its callers in the pinned version only draw from the list,
    so the list itself is handed on: the same words from the same random stream. A template calling
    faker.get_words_list() gets the (immutable) tuple where Faker gives a list: the same JSON.
    """
    from faker.providers.lorem import Provider as Lorem

    original = Lorem.get_words_list

    def get_words_list(self: Any, part_of_speech: str | None = None, ext_word_list: Any = None) -> Any:
        if ext_word_list is not None:
            words = ext_word_list
        elif part_of_speech:
            return original(self, part_of_speech, ext_word_list)  # Faker's own check of the name
        else:
            words = self.word_list
        return words if isinstance(words, (tuple, list)) else list(words)

    get_words_list.original = original  # type: ignore[attr-defined]  # for the test that compares them
    Lorem.get_words_list = get_words_list  # type: ignore[method-assign]


def _check_arguments(name: str, locale: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for values in _named_arguments(name, locale, args, kwargs):
        for key, item in values:
            if isinstance(item, Undefined):
                item._fail_with_undefined_error()
            # A callable (cast_to=...) would run outside the sandbox's call checks.
            if callable(item):
                raise SecurityError(f"faker.{name}() takes data, not a callable, for {key!r}")
            if key in SIZE_ARGUMENTS:
                _check_size(f"faker.{name}()", key, item)


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

    __slots__ = ("_generator", "_rng", "_locale", "_names", "_now")

    def __init__(self, locale: str, rng: random.Random) -> None:
        self._generator = faker_for_locale(locale)._factories[0]
        self._rng = rng
        self._locale = locale
        self._names = generator_names(locale)
        self._now = 0

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

    def _check(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if args or kwargs:
            _check_arguments(name, self._locale, args, kwargs)

    def _generate(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self._check(name, args, kwargs)
        return self._generate_checked(name, args, kwargs)

    def _generate_checked(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call generator `name` with arguments already checked."""
        generator = self._generator
        # Faker instances are shared per locale: point this one at our rng (and clock) before every call.
        generator.random = self._rng
        _SimulatedNow.ms = self._now
        return getattr(generator, name)(*args, **kwargs)


RANDOM_HELPERS = (
    "random", "randint", "uniform", "choice", "choices", "sample", "gauss", "lognormvariate",
    "expovariate", "shuffle", "uuid4", "hex", "weighted",
)


def _population(items: Any) -> Sequence[Any]:
    # random.Random needs an indexable sequence; a mapping gives its keys, like Python's list().
    if type(items) is list or isinstance(items, Sequence):
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
