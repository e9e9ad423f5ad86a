"""Registries: the named things a scenario can choose (algorithms, codecs, models, datasets), each
entry declared once, in the module that implements it.

A registry maps a name to its entry; an entry that takes parameters declares them as one
:class:`sinsim.params.Section` (its ``Params``), and the scenario schema is built from the
registries (``sinsim.scenario.model``), so a default is written in one place only. An unknown
name is an error that lists the valid ones and suggests the closest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import reduce
from operator import or_
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BeforeValidator, Field, create_model

from sinsim.params import Section, one_of

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
        self._kind_sections: dict[str, type[Section]] = {}  # see kind_sections
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


class NoParams(Section):
    """The parameters of an entry that takes none."""


def kind_sections(registry: Registry[Any]) -> dict[str, type[Section]]:
    """For each entry of ``registry``, its ``Params`` (``NoParams`` when it declares none)
    with a ``kind`` field naming the entry: the members of a tagged union (made once per
    registry and entry, so a default built from them is a member of the union). They are
    attributes of this module, named ``<what>_<name>``, so their instances pickle (a strategy
    goes to the training processes with its parameters)."""
    out = registry._kind_sections
    for name, entry in registry.items():
        if name in out:
            continue
        params = getattr(entry, "Params", NoParams)
        cls_name = f"{registry.what}_{name}".replace(" ", "_")
        cls = create_model(cls_name, __base__=params, __doc__=params.__doc__,
                           __module__=__name__,
                           kind=(Literal[name], name))  # type: ignore[valid-type]
        if cls_name in globals():  # pickles find members by name: one registry per ``what``
            raise ValueError(f"two registries of {registry.what!r} both have {name!r}")
        globals()[cls_name] = out[name] = cls
    return dict(out)


def tagged_union(registry: Registry[Any]) -> Any:
    """A scenario field choosing one entry of ``registry`` with its parameters:
    ``{kind: NAME, ...parameters}``, or just ``NAME`` when the defaults will do."""
    members = tuple(kind_sections(registry).values())
    union = reduce(or_, members) if len(members) > 1 else members[0]
    return Annotated[union, Field(discriminator="kind"),
                     BeforeValidator(kind_given(tuple(registry), shorthand=True))]


def kind_given(kinds: tuple[str, ...], *, shorthand: bool = False) -> Callable[[Any], Any]:
    """A before-validator for a tagged union on ``kind``: a mapping without ``kind`` is an
    error that lists ``kinds``; with ``shorthand`` a bare name stands for ``{kind: name}``."""

    def check(value: Any) -> Any:
        if shorthand and isinstance(value, str):
            return {"kind": value}
        if isinstance(value, Mapping) and "kind" not in value:
            raise ValueError(f"give its kind: one of {', '.join(kinds)}")
        return value

    return check


def build_entry(registry: Registry[Any], choice: Section, *args: Any) -> Any:
    """The entry ``choice.kind`` of ``registry``, built with ``args`` and its parameters."""
    params = {k: v for k, v in choice.model_dump().items() if k != "kind"}
    return registry[choice.kind](*args, **params)
