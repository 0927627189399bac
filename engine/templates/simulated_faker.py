"""Faker generators that belong to one run: their "now" is the run's simulated time, and nothing of Faker
is changed for anybody else.

Faker's date generators read "now" from the wall clock through the globals of their provider modules
(`datetime.now()`, `date.today()`, the machine's time zone). A run needs them to read its own simulated time,
and two runs (two threads, a server beside a test) need two times. So each run gets its own copies of the
provider classes: a parallel class hierarchy whose functions are the same code objects with other globals,
in which `datetime`, `date` and the time zone are the run's (`SimulatedTime`). Faker's modules, classes and
its shared `random` stay as they were: a user's own `Faker()` in the same process is never affected.

The copies also carry two exact speed-ups for the pinned Faker version (`FAKER_PINNED`); any other version
runs Faker's own code:
- weighted draws (`random_elements` on an OrderedDict of weights) with running totals computed once per table
  and run, instead of summing all weights on every draw: the same values from the same random stream;
- the lorem word list handed on instead of copied on every `word()`: the same words.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import importlib.machinery
import itertools
import os
import types
from collections import OrderedDict
from typing import Any

import faker
from faker.config import DEFAULT_LOCALE, PROVIDERS
from faker.generator import Generator

FAKER_PINNED = "40.63.0"  # the version whose internals the exact speed-ups reproduce
_EPOCH = dt.datetime(1970, 1, 1)
_MODULE_SUFFIXES = tuple(importlib.machinery.all_suffixes())
_SKIPPED = (types.MemberDescriptorType, types.GetSetDescriptorType)


class SimulatedTime:
    """The time (epoch ms) a run's Faker generators take as "now"; the facade sets it before each call."""

    __slots__ = ("ms",)

    def __init__(self) -> None:
        self.ms = 0


class _Same(type):
    """isinstance(x, SimDatetime) is isinstance(x, datetime): Faker checks its arguments with it."""

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(obj, self.__mro__[1])

    def __subclasscheck__(self, sub: Any) -> bool:
        return issubclass(sub, self.__mro__[1])


def _time_classes(time: SimulatedTime) -> tuple[type, type]:
    """`datetime` and `date` look-alikes whose now()/today() are `time` (naive UTC, as Faker expects)."""

    class SimDatetime(dt.datetime, metaclass=_Same):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            moment = _EPOCH + dt.timedelta(milliseconds=time.ms)
            return moment if tz is None else moment.replace(tzinfo=dt.UTC).astimezone(tz)

        @classmethod
        def today(cls) -> Any:
            return cls.now()

    class SimDate(dt.date, metaclass=_Same):
        @classmethod
        def today(cls) -> Any:
            return SimDatetime.now().date()

    return SimDatetime, SimDate


class SimulatedFaker:
    """Builds one run's Faker generators (one per locale) on copies of the provider classes."""

    def __init__(self, time: SimulatedTime) -> None:
        self.time = time
        self._datetime, self._date = _time_classes(time)
        shim = {**vars(dt), "datetime": self._datetime, "date": self._date}
        self._dt_module = types.SimpleNamespace(**shim)
        self._globals: dict[str, dict[str, Any]] = {}
        self._classes: dict[type, type] = {}
        self._totals: dict[int, tuple[Any, tuple[Any, ...], list[float]]] = {}  # id(table) -> running totals

    def generator(self, locale: str) -> Generator:
        """A new Faker generator for `locale`, as `faker.Faker(locale)` builds it, on this run's classes."""
        config: dict[str, Any] = {"locale": locale, "use_weighting": True}
        generator = Generator(**config)
        for path in PROVIDERS:
            if path == "faker.providers":
                continue
            original, lang = provider_class(path, locale)
            provider = self.copy(original)(generator)
            provider.__use_weighting__ = True
            provider.__provider__ = path
            provider.__lang__ = lang
            self._speed_up(provider)
            generator.add_provider(provider)
        return generator

    # ---- the copies ------------------------------------------------------------------------------------

    def copy(self, cls: type) -> type:
        """This run's copy of a Faker class that reads the time (or derives from one), else the class itself.

        A copy's functions are rebound to the run's time where its module reads the time; elsewhere they are
        the class's own, but for those that call super(), which must find the copy.
        """
        if cls in self._classes:
            return self._classes[cls]
        if not _reads_time(cls):
            return cls
        bases = tuple(self.copy(base) for base in cls.__bases__)
        module_globals = self._module_globals(cls.__module__) if _clocked(cls.__module__) else None
        cells: list[types.CellType] = []  # the copies' __class__ cells, for super() to find the copy
        namespace = {name: self._rebind(value, module_globals, cells) for name, value in vars(cls).items()
                     if name not in ("__dict__", "__weakref__") and not isinstance(value, _SKIPPED)}
        new = type(cls)(cls.__name__, bases, namespace)
        for cell in cells:
            cell.cell_contents = new
        self._classes[cls] = new
        return new

    def _module_globals(self, name: str) -> dict[str, Any]:
        """A copy of a Faker module's globals in which time is this run's; its functions copied into it."""
        if name in self._globals:
            return self._globals[name]
        module = importlib.import_module(name)
        original = vars(module)
        copied: dict[str, Any] = dict(original)
        self._globals[name] = copied
        for key, value in original.items():
            if value is dt:
                copied[key] = self._dt_module
            elif value is dt.datetime:
                copied[key] = self._datetime
            elif value is dt.date:
                copied[key] = self._date
            elif isinstance(value, types.FunctionType) and value.__globals__ is original:
                copied[key] = self._function(value, [])
        if "_get_local_timezone" in copied:
            copied["_get_local_timezone"] = lambda: dt.UTC  # not the machine's zone: same output everywhere
        return copied

    def _rebind(self, value: Any, module_globals: dict[str, Any] | None, cells: list[types.CellType]) -> Any:
        if isinstance(value, types.FunctionType):
            return self._function(value, cells) if module_globals is not None or _calls_super(value) else value
        if isinstance(value, classmethod | staticmethod) and isinstance(value.__func__, types.FunctionType):
            function = value.__func__
            if module_globals is None and not _calls_super(function):
                return value
            return type(value)(self._function(function, cells))
        if isinstance(value, property):
            fget, fset, fdel = (None if f is None else self._rebind(f, module_globals, cells)
                                for f in (value.fget, value.fset, value.fdel))
            return property(fget, fset, fdel, value.__doc__)
        return value

    def _function(self, function: types.FunctionType, cells: list[types.CellType]) -> types.FunctionType:
        """The same code, with the run's time where the Faker module that defines it reads the time (for a
        decorator's wrapper: the decorators' module), the functions it wraps copied too; a `__class__` cell is
        renewed (filled once the class copy exists). A function of another package is itself."""
        module = function.__module__ or ""
        if not module.startswith("faker.") or function.__globals__ is not vars(importlib.import_module(module)):
            return function
        closure = None
        if function.__closure__:
            renewed = []
            for name, cell in zip(function.__code__.co_freevars, function.__closure__, strict=True):
                if name == "__class__":
                    cell = types.CellType()
                    cells.append(cell)
                else:
                    try:
                        inner = cell.cell_contents
                    except ValueError:  # an empty cell
                        inner = None
                    if isinstance(inner, types.FunctionType):
                        cell = types.CellType(self._function(inner, cells))
                renewed.append(cell)
            closure = tuple(renewed)
        module_globals = self._module_globals(module) if _clocked(module) else function.__globals__
        copy = types.FunctionType(function.__code__, module_globals, function.__name__, function.__defaults__,
                                  closure)
        copy.__kwdefaults__ = function.__kwdefaults__
        copy.__dict__.update(function.__dict__)
        copy.__qualname__, copy.__doc__ = function.__qualname__, function.__doc__
        copy.__annotations__ = function.__annotations__
        return copy

    # ---- exact speed-ups, pinned Faker only --------------------------------------------------------------

    def _speed_up(self, provider: Any) -> None:
        """The exact speed-ups, on this run's provider instances (Faker's classes stay as they are)."""
        if faker.VERSION != FAKER_PINNED:
            return
        from faker.providers import BaseProvider
        from faker.providers.lorem import Provider as Lorem

        provider.random_elements = types.MethodType(self._random_elements(BaseProvider.random_elements), provider)
        if isinstance(provider, Lorem):
            provider.get_words_list = types.MethodType(_get_words_list(Lorem.get_words_list), provider)  # type: ignore[method-assign]

    def _random_elements(self, original: Any) -> Any:
        """Faker's weighted draw with the running totals of a table's weights computed once per run.

        Faker's tables (first names, last names, words...) are OrderedDicts of value -> weight; on every draw,
        random_elements() copies the weights and random.choices() adds them all up again. Drawing with the
        running totals gives the very same values from the same random stream (random.choices(population,
        cum_weights=...) is what choices(weights=...) does after summing).
        """
        totals = self._totals

        def random_elements(self: Any, elements: Any = ("a", "b", "c"), length: int | None = None,
                            unique: bool = False, use_weighting: bool | None = None) -> Any:
            weighted = use_weighting if use_weighting is not None else self.__use_weighting__
            if unique or not weighted or not isinstance(elements, OrderedDict):
                return original(self, elements, length, unique, use_weighting)
            rng = self.generator.random
            if length is None:
                length = rng.randint(1, len(elements))
            known = totals.get(id(elements))
            if known is None or known[0] is not elements:
                known = totals[id(elements)] = (elements, tuple(elements.keys()),
                                                list(itertools.accumulate(elements.values())))
            return rng.choices(known[1], cum_weights=known[2], k=length)

        random_elements.original = original  # type: ignore[attr-defined]  # for the test that compares them
        return random_elements


def _get_words_list(original: Any) -> Any:
    """word(), words(), sentence(), slug()... without copying the locale's word list on every call.

    Faker's lorem get_words_list() returns list(word_list): ~1,000 words copied per call (twice for word()).
    Its callers in the pinned version only draw from the list, so the list itself is handed on: the same
    words from the same random stream. A template calling faker.get_words_list() gets the (immutable) tuple
    where Faker gives a list: the same JSON.
    """

    def get_words_list(self: Any, part_of_speech: str | None = None, ext_word_list: Any = None) -> Any:
        if ext_word_list is not None:
            words = ext_word_list
        elif part_of_speech:
            return original(self, part_of_speech, ext_word_list)  # Faker's own check of the name
        else:
            words = self.word_list
        return words if isinstance(words, (tuple, list)) else list(words)

    get_words_list.original = original  # type: ignore[attr-defined]  # for the test that compares them
    return get_words_list


@functools.cache
def _clocked(module: str) -> bool:
    """Does a Faker module read the time: `datetime`, `date`, the datetime module or the machine's zone?"""
    names = vars(importlib.import_module(module))
    return "_get_local_timezone" in names or any(value is dt or value is dt.datetime or value is dt.date
                                                 for value in names.values())


@functools.cache
def _reads_time(cls: type) -> bool:
    """A Faker class defined in a module that reads the time, or derived from one."""
    if not cls.__module__.startswith("faker."):
        return False
    return _clocked(cls.__module__) or any(_reads_time(base) for base in cls.__bases__)


def _calls_super(function: types.FunctionType) -> bool:
    return "__class__" in function.__code__.co_freevars


@functools.cache
def provider_class(path: str, locale: str) -> tuple[type, str | None]:
    """(Provider class, locale found) of a Faker provider package for a locale, as Faker chooses it.

    Faker asks whether a localized provider has the locale by listing its folder's packages (~700 folders in
    all, a fifth of `validate`). For the pinned version the question is answered by looking for that one
    package; the classes chosen are the same (a test compares them). Other versions ask Faker.
    """
    if faker.VERSION != FAKER_PINNED:
        from faker.factory import Factory

        cls, lang, _ = Factory._find_provider_class(path, locale)
        return cls, lang
    module = importlib.import_module(path)
    if not getattr(module, "localized", False):
        return module.Provider, None
    folder = os.path.dirname(module.__file__ or "")
    found = locale if _has_package(folder, locale) else getattr(module, "default_locale", "") or DEFAULT_LOCALE
    return importlib.import_module(f"{path}.{found}").Provider, found


def _has_package(folder: str, name: str) -> bool:
    """Is there a package `name` in `folder` (a folder holding an `__init__` module), as pkgutil lists it?"""
    if not name or "." in name or os.sep in name:
        return False
    package = os.path.join(folder, name)
    return any(os.path.exists(os.path.join(package, "__init__" + suffix)) for suffix in _MODULE_SUFFIXES)
