"""The `random` templates see: seeded helpers that draw only from the chain instance's own random.Random."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .fakers import PROTOCOL_NAMES, UnknownGeneratorError
from .limits import check_argument

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
        if name.startswith("__") or name in PROTOCOL_NAMES or name in RandomFacade.__slots__:
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
        check_argument("random.choices()", "k", k)
        weights = None if weights is None else list(weights)
        return self._rng.choices(_population(seq), weights=weights, k=k)

    def sample(self, seq: Iterable[Any], k: int) -> list[Any]:
        check_argument("random.sample()", "k", k)
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
        check_argument("random.hex()", "nbytes", nbytes)
        return self._rng.randbytes(max(nbytes, 0)).hex()

    def weighted(self, mapping: Mapping[Any, float]) -> Any:
        """A key of mapping, drawn with the mapping's values as weights."""
        keys = list(mapping)
        return self._rng.choices(keys, weights=[mapping[key] for key in keys], k=1)[0]
