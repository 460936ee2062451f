"""One small name -> object table per ablation axis (activations, optimizers, datasets, ...).

Every axis of the suite is a `Registry`; adding a technique is one `add`/`register` call next to the
registry, and tests parametrized over `names()` pick it up.  Unknown names fail with the valid choices.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterable, Mapping, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad configuration value: raised before any training starts, naming the value and the choices."""


class Registry(Generic[T]):
    """Name -> object table for one ablation axis."""

    def __init__(self, kind: str, entries: Mapping[str, T] | None = None):
        self.kind = kind
        self._entries: dict[str, T] = {}
        for name, obj in (entries or {}).items():
            self.add(name, obj)

    def add(self, name: str, obj: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = obj
        return obj

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""
        return lambda obj: self.add(name, obj)

    def get(self, name: str) -> T:
        self.check(name)
        return self._entries[name]

    def check(self, name: object) -> None:
        if not isinstance(name, str) or name not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; valid choices: {', '.join(self.names())}")

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterable[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
