"""Registries: the named things a scenario can choose (algorithms, codecs, models, datasets), each
entry declared once, in the module that implements it.

A registry maps a name to its entry; an entry that takes parameters declares them as one
:class:`sinsim.params.Section` (its ``Params``), and the scenario schema is built from the
registries (``sinsim.scenario.model``), so a default is written in one place only. An unknown
name is an error that lists the valid ones and suggests the closest.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from sinsim.params import one_of

T = TypeVar("T")


class UnknownName(ValueError, KeyError):
    """A name no entry has (a ``ValueError`` for validators, a ``KeyError`` for mappings)."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Mapping[str, T], Generic[T]):
    """``name -> entry`` for one kind of thing (``what``: how error messages call it)."""

    def __init__(self, what: str, entries: Mapping[str, T] | None = None):
        self.what = what
        self._entries: dict[str, T] = {}
        for name, entry in (entries or {}).items():
            self.register(name, entry)

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            try:
                one_of(name, tuple(self._entries), self.what)
            except (ValueError, TypeError) as e:
                raise UnknownName(str(e)) from None
            raise UnknownName(f"unknown {self.what} {name!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {', '.join(self._entries)})"
