"""What the asynchronous strategies (FedAsync, FedBuff) share: how much a stale update counts,
and the parameters of the asynchronous server (``concurrency``).

An update's staleness tau counts the server versions made between the client's download of the
model it trained and the update's arrival (0: fresh). A staleness function s(tau) in (0, 1]
scales what the update does to the global model (Xie et al. 2019, "Asynchronous Federated
Optimization", section 5.2):

- ``constant``: s = 1;
- ``polynomial`` (``a`` >= 0): s = (1 + tau)^-a; a = 0.5 is FedBuff's 1 / sqrt(1 + tau)
  (Nguyen et al. 2022, "Federated Learning with Buffered Asynchronous Aggregation");
- ``hinge`` (``a`` >= 0, ``b`` >= 0): s = 1 for tau <= b, else 1 / (a (tau - b) + 1).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from sinsim.params import Float, Int, Section
from sinsim.registry import kind_given


class ConstantStaleness(Section):
    """s(tau) = 1: staleness is ignored."""

    kind: Literal["constant"] = "constant"


class PolynomialStaleness(Section):
    """s(tau) = (1 + tau)^-a."""

    kind: Literal["polynomial"] = "polynomial"
    a: Float = Field(default=0.5, ge=0)


class HingeStaleness(Section):
    """s(tau) = 1 for tau <= b, else 1 / (a (tau - b) + 1) (Xie et al.'s a = 10, b = 4)."""

    kind: Literal["hinge"] = "hinge"
    a: Float = Field(default=10.0, ge=0)
    b: Float = Field(default=4.0, ge=0)


STALENESS_KINDS = ("constant", "polynomial", "hinge")
Staleness = Annotated[ConstantStaleness | PolynomialStaleness | HingeStaleness,
                      Field(discriminator="kind"),
                      BeforeValidator(kind_given(STALENESS_KINDS, shorthand=True))]


def staleness_weight(fn: ConstantStaleness | PolynomialStaleness | HingeStaleness,
                     staleness: int) -> float:
    """s(tau) of the staleness function ``fn``; in (0, 1], 1 for a fresh update."""
    if staleness < 0:
        raise ValueError(f"staleness must be >= 0, got {staleness}")
    if fn.kind == "constant":
        return 1.0
    if fn.kind == "polynomial":
        return float((1.0 + staleness) ** -fn.a)
    if staleness <= fn.b:
        return 1.0
    return 1.0 / (fn.a * (staleness - fn.b) + 1.0)


class AsyncParams(Section):
    """The asynchronous server's parameters (every asynchronous strategy's ``Params`` has
    them): ``concurrency`` clients train at once (None: ``training.clients_per_round``; it may
    exceed K, as in FedBuff's experiments), ``staleness`` weights the late updates, and
    ``handover`` says which model a client gets: ``newest`` (the default), the model the server
    holds when the download's first bit goes on the air (the station is the server: it always
    has its newest model at the pass), staleness counting from that version; ``dispatch``, the
    model it held when it picked the client (the download then waits for the pass with an
    older model; for papers that model a server which commits to the model at dispatch).
    Same bytes and same times either way: only which model the bytes carry differs."""

    concurrency: Int | None = Field(default=None, gt=0)
    staleness: Staleness = PolynomialStaleness()  # type: ignore[valid-type]
    handover: Literal["newest", "dispatch"] = "newest"
