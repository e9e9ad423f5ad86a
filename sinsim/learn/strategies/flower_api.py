"""What the ``flower`` algorithm needs of Flower itself: finding a strategy class by name,
building it from a scenario's ``params`` with errors that name the key, the client config a
strategy sends, and the stand-ins of a Flower server (a ``Grid`` that knows the round's nodes,
the task identity messages are stamped with, seeded randomness).

Flower (``flwr``) is an optional dependency (``pip install 'sinsim[flower]'``): it is imported
only when a scenario names a ``flower`` algorithm. Only Flower's current Message API
(``flwr.serverapp.strategy``) is driven; its older ``flwr.server.strategy`` classes are refused
with the name of their current counterpart (docs/flower.md says why).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import logging
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

INSTALL = "the flwr package (Flower) is not installed: pip install 'sinsim[flower]'"
NODE_ID_BASE = 100  # Flower node id of sinsim client c: NODE_ID_BASE + c (1 is the SuperLink)
LOG = logging.getLogger("sinsim.flower")
FLOWER_KEY = 25  # the key that sets Flower's draws apart in the ``select`` random stream


class FlowerParamError(ValueError):
    """A ``flower`` entry Flower refuses: ``where`` is the key path under the entry
    (``("params", "eta")``)."""

    def __init__(self, where: tuple[str, ...], message: str):
        super().__init__(message)
        self.where = where


def flwr_strategy_module() -> Any:
    """``flwr.serverapp.strategy``; ``FlowerParamError`` naming the extra when Flower is
    missing."""
    try:
        return importlib.import_module("flwr.serverapp.strategy")
    except ImportError:
        raise FlowerParamError(("strategy",), INSTALL) from None


def builtin_names() -> tuple[str, ...]:
    """Flower's own strategies (the classes of ``flwr.serverapp.strategy``)."""
    mod = flwr_strategy_module()
    return tuple(n for n in mod.__all__ if isinstance(getattr(mod, n), type)
                 and issubclass(getattr(mod, n), mod.Strategy) and n != "Strategy")


def resolve_class(name: str) -> type:
    """The strategy class ``name``: one of Flower's (``FedAdam``) or ``module:Class`` (any
    importable subclass of ``flwr.serverapp.strategy.Strategy``)."""
    mod = flwr_strategy_module()
    if ":" not in name:
        names = builtin_names()
        if name in names:
            return getattr(mod, name)
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        close = close or [n for n in names if n.lower() == name.lower()]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise FlowerParamError(("strategy",), f"unknown Flower strategy {name!r}{hint} (Flower's "
                               f"strategies: {', '.join(names)}; or give module:Class)")
    module_name, _, attr = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise FlowerParamError(("strategy",), f"cannot import {name!r}: {e}") from None
    if not (isinstance(cls, type) and issubclass(cls, mod.Strategy)):
        old = _old_api_hint(cls)
        raise FlowerParamError(("strategy",), old or f"{name} is not a Flower strategy (a "
                               f"subclass of flwr.serverapp.strategy.Strategy)")
    return cls


def _old_api_hint(cls: Any) -> str | None:
    """The refusal of a class of Flower's older ``flwr.server.strategy`` API."""
    try:
        old = importlib.import_module("flwr.server.strategy")
    except ImportError:
        return None
    if not (isinstance(cls, type) and issubclass(cls, old.Strategy)):
        return None
    now = cls.__name__ if cls.__name__ in builtin_names() else None
    use = f"flwr.serverapp.strategy.{now} (strategy: {now})" if now else \
        "a subclass of flwr.serverapp.strategy.Strategy"
    return (f"{cls.__module__}.{cls.__name__} is Flower's older strategy API "
            f"(flwr.server.strategy: configure_fit/aggregate_fit on ClientProxy and Parameters); "
            f"sinsim drives the current Message API: use {use}")


def build(name: str, params: Mapping[str, Any]) -> Any:
    """An instance of strategy ``name`` with keyword arguments ``params``; a parameter the
    class does not take gets a did-you-mean, and what its constructor raises is reported with
    Flower's own message, naming the parameter where the message does. A ``strategy``
    parameter given as ``{strategy: NAME, params: {...}}`` is built the same way (the strategy
    a wrapper such as ``DifferentialPrivacyServerSideFixedClipping`` wraps)."""
    cls = resolve_class(name)
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        sig = None
    if sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        known = [p for p in sig.parameters if p != "self"]
        for key in params:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise FlowerParamError(("params", str(key)), f"no such parameter of {name}"
                                       f"{hint} (it takes: {', '.join(known)})")
        _check_types(cls, params)
    params = dict(params)
    inner = params.get("strategy")
    if isinstance(inner, Mapping):  # a wrapper (Flower's DP strategies): the wrapped one
        try:
            params["strategy"] = build(inner.get("strategy", "FedAvg"), inner.get("params", {}))
        except FlowerParamError as e:
            raise FlowerParamError(("params", "strategy", *e.where), str(e)) from None
    try:
        with quiet():
            return cls(**params)
    except Exception as e:  # noqa: BLE001 - whatever Flower's constructor says, told as input
        said = str(e).lower()
        named = [k for k in params if str(k).lower() in said
                 or str(k).replace("_", " ").lower() in said]
        where = ("params", str(named[0])) if named else ("params",)
        raise FlowerParamError(where, f"{name}: {type(e).__name__}: {e}") from None


def _check_types(cls: type, params: Mapping[str, Any]) -> None:
    """Each of ``params`` against the constructor's type hint (Flower's constructors take
    ``int``, ``float``, ``str``... and check little themselves: a list for an ``int`` would
    fail deep inside a round)."""
    import typing

    from pydantic import TypeAdapter, ValidationError

    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - hints that do not resolve: nothing to check against
        return
    for key, value in params.items():
        if isinstance(value, float) and not np.isfinite(value):
            raise FlowerParamError(("params", str(key)), f"must be a finite number, got {value}")
        if key not in hints:
            continue
        try:
            TypeAdapter(hints[key]).validate_python(value, strict=True)
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            raise FlowerParamError(("params", str(key)),
                                   f"{first['msg'].lower()}, got {value!r}") from None
        except Exception:  # noqa: BLE001, S112 - a hint pydantic cannot check (a Callable)
            continue


# -- the client config a strategy sends ------------------------------------------------------

# ConfigRecord keys a sinsim client honours; "server-round" is Flower's own round stamp
CLIENT_KEYS = ("lr", "local-epochs", "batch-size", "proximal-mu")
INFORMATIONAL_KEYS = ("server-round",)


@dataclass(frozen=True)
class ClientConfig:
    """What one client does with a round's ConfigRecord: None means the scenario's value."""

    lr: float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    proximal_mu: float = 0.0


def client_config(config: Mapping[str, Any], unknown: set[str]) -> ClientConfig:
    """The ``ClientConfig`` of a ConfigRecord; keys sinsim's clients do not know are added to
    ``unknown`` (and reported once by the caller). Values out of range raise ``ValueError``."""
    for key in config:
        if key not in CLIENT_KEYS and key not in INFORMATIONAL_KEYS:
            unknown.add(key)

    def number(key: str, kind: type, low: float, strict: bool) -> Any:
        if key not in config:
            return None
        v = config[key]
        ok = (isinstance(v, (int, float)) and not isinstance(v, bool)
              and (kind is float or float(v).is_integer()) and np.isfinite(v))
        if not ok or (v <= low if strict else v < low):
            raise ValueError(f"config {key!r} must be a {kind.__name__} "
                             f"{'>' if strict else '>='} {low}, got {v!r}")
        return kind(v)

    return ClientConfig(number("lr", float, 0, True), number("local-epochs", int, 0, True),
                        number("batch-size", int, 0, True),
                        number("proximal-mu", float, 0, False) or 0.0)


# -- stand-ins of Flower's server -------------------------------------------------------------


class NotEnoughNodes(RuntimeError):
    """The strategy would wait for more nodes to connect than the round offers."""


def sin_grid(node_ids: Iterable[int]) -> Any:
    """A ``flwr.serverapp.Grid`` whose connected nodes are ``node_ids``: what a strategy's
    ``configure_*`` asks of it. sinsim moves the messages itself (over the SIN), so sending
    through this grid is refused."""
    from flwr.serverapp.grid import Grid

    nodes = tuple(node_ids)

    class SinGrid(Grid):
        def get_node_ids(self) -> Iterable[int]:
            return list(nodes)

        def _refuse(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("sinsim carries the messages over the SIN; a strategy inside "
                               "sinsim configures and aggregates, it does not send")

        set_run = run = create_message = push_messages = pull_messages = _refuse
        send_and_receive = _refuse

    return SinGrid()


@contextlib.contextmanager
def server_side(seed: int, round_: int, phase: int) -> Iterator[None]:
    """Around every call into a strategy: Flower's task identity (a ServerApp's, as messages
    need it), Python's and numpy's global random generators seeded from the scenario ``seed``,
    the round and the ``phase`` (0 configure, 1 aggregate; the ``select`` stream with the keys
    (round, FLOWER_KEY, phase), apart from sinsim's own draw of the round) (Flower
    samples nodes with ``random.sample`` and DP noise with ``np.random``; both restored
    after), Flower's per-call INFO logging quiet, and a strategy that would wait for nodes to
    connect raises ``NotEnoughNodes`` instead of sleeping."""
    from flwr.serverapp.strategy import strategy_utils
    from flwr.supercore.task_identity import TaskIdentity

    from sinsim._rng import rng_for

    ident = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 1, 1
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002 - Flower draws from them
    g = rng_for(seed, "select", round_, FLOWER_KEY, phase)
    random.seed(int(g.integers(2**63)))
    np.random.seed(int(g.integers(2**32)))  # noqa: NPY002
    sleep = strategy_utils.sleep

    def no_wait(_s: float) -> None:
        raise NotEnoughNodes()

    strategy_utils.sleep = no_wait
    try:
        with quiet():
            yield
    finally:
        strategy_utils.sleep = sleep
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
        TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = ident


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Flower's logger at WARNING for the duration (it logs every sampling at INFO)."""
    logger = logging.getLogger("flwr")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)
