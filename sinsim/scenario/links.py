"""The scenario's link sections: each direction's rate (fixed, or the link budget of a radio
profile from ``sinsim.space.radios``), losses, failures, routing and inter-satellite links.
Re-exported by ``sinsim.scenario`` (and ``sinsim.scenario.model``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from sinsim.params import Duration, Float, PositiveDuration, Section, one_of
from sinsim.registry import kind_given
from sinsim.space.modcod import DVB_S2_MODCODS
from sinsim.space.radios import (
    OVERRIDABLE_KEYS,
    PROFILES,
    RATE_MODELS,
    RadioProfile,
    default_profile_name,
    radio_profile,
)

# the radio-profile parameters a link direction may override (the dataclass declares them)
BUDGET_KEYS = OVERRIDABLE_KEYS


class LinkDirection(Section):
    """One direction of the client-server link.

    ``fixed``: ``rate_bps`` (and ``propagation_delay_s`` for abstract clients; orbital links take
    the delay from the range). ``budget``: the radio ``profile`` (``sinsim.space.radios``; by
    default the one for the kinds of node at each end, documented in ``docs/space.md``), with
    any of its parameters overridden here.
    """

    rate_bps: Float | None = Field(default=None, gt=0)
    propagation_delay_s: Float = Field(default=0.0, ge=0)
    profile: str | None = None
    rate_model: Literal[RATE_MODELS] | None = None
    frequency_hz: Float | None = Field(default=None, gt=0)
    tx_power_dbw: Float | None = None
    tx_antenna_gain_dbi: Float | None = None
    rx_antenna_gain_dbi: Float | None = None
    system_noise_temp_k: Float | None = Field(default=None, gt=0)
    bandwidth_hz: Float | None = Field(default=None, gt=0)
    pointing_loss_db: Float | None = Field(default=None, ge=0)
    polarization_loss_db: Float | None = Field(default=None, ge=0)
    implementation_loss_db: Float | None = Field(default=None, ge=0)
    margin_db: Float | None = Field(default=None, ge=0)
    zenith_gas_loss_db: Float | None = Field(default=None, ge=0)
    rain_rate_mm_per_h: Float | None = Field(default=None, ge=0)
    rain_height_m: Float | None = Field(default=None, ge=0)
    sky_noise: bool | None = None
    roll_off: Float | None = Field(default=None, gt=0, le=1)
    max_modcod: str | None = None
    modulation: str | None = None
    data_rate_bps: Float | None = Field(default=None, gt=0)
    required_ebn0_db: Float | None = None
    sensitivity_dbw: Float | None = None
    efficiency: Float | None = Field(default=None, gt=0, le=1)
    max_rate_bps: Float | None = Field(default=None, gt=0)

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, v: str | None) -> str | None:
        return v if v is None else one_of(v, list(PROFILES), "profile")

    @field_validator("max_modcod")
    @classmethod
    def _known_modcod(cls, v: str | None) -> str | None:
        return v if v is None else one_of(v, [m.name for m in DVB_S2_MODCODS], "max_modcod")

    def budget_overrides(self) -> dict[str, Any]:
        """The radio-profile parameters given here (``sinsim.space.radios.RadioProfile``
        names them; a test checks that every one of them is a key of this section)."""
        return {k: getattr(self, k) for k in BUDGET_KEYS if getattr(self, k) is not None}

    def radio(self, tx_kind: str, rx_kind: str) -> RadioProfile:
        """The radio of this direction from a ``tx_kind`` node to an ``rx_kind`` node: the
        named ``profile`` or the default for those kinds, with the overrides given here
        (``ValueError`` saying what is wrong)."""
        try:
            name = self.profile or default_profile_name(tx_kind, rx_kind)
            return radio_profile(name, **self.budget_overrides())
        except KeyError as e:
            raise ValueError(e.args[0]) from None


class NoLoss(Section):
    """``none``: every transfer that completes in time is delivered."""

    kind: Literal["none"] = "none"


class BernoulliLoss(Section):
    """``bernoulli``: each transfer is lost with probability ``p`` (a keyed draw per round,
    client and direction, the same for every algorithm of the run)."""

    kind: Literal["bernoulli"]
    p: Float = Field(default=0.0, ge=0, le=1)


class GilbertElliottLoss(Section):
    """``gilbert_elliott``: each link alternates good/bad states (per ``step``: good->bad with
    ``p_good_to_bad``, bad->good with ``p_bad_to_good``); a transfer that is on the air during a
    bad state is lost with probability ``loss_bad``, otherwise with ``loss_good``."""

    kind: Literal["gilbert_elliott"]
    p_good_to_bad: Float = Field(default=0.01, gt=0, le=1)
    p_bad_to_good: Float = Field(default=0.1, gt=0, le=1)
    loss_good: Float = Field(default=0.0, ge=0, le=1)
    loss_bad: Float = Field(default=1.0, ge=0, le=1)
    step: PositiveDuration = 1.0


LOSS_KINDS = ("none", "bernoulli", "gilbert_elliott")


# one section per loss kind, chosen by ``kind`` (sinsim.sim.impairments implements each)
Loss = Annotated[NoLoss | BernoulliLoss | GilbertElliottLoss, Field(discriminator="kind"),
                 BeforeValidator(kind_given(LOSS_KINDS))]


class Failures(Section):
    """Node failures: each client goes dark at the times of a Poisson process of
    ``rate_per_day`` and stays dark for ``duration``; nothing moves to or from it then."""

    rate_per_day: Float = Field(default=0.0, ge=0)
    duration: PositiveDuration = 3600.0


class ISL(Section):
    """Inter-satellite links between client satellites. ``topology``: ``plus_grid`` (Walker
    shells: each satellite to its two in-plane neighbours and the nearest satellite of each
    adjacent plane; no links across a star pattern's seam) or ``range`` (any pair of satellites).
    Either way a pair's link is up while the range is ``<= max_range_km`` and the line of sight
    clears ``grazing_altitude_km``. ``rate_bps`` is the rate each way (fixed; optical terminals
    carry Gb/s, RF crosslinks tens of Mb/s), unless ``profile`` names a radio profile
    (``isl_ka_rf``, ``isl_optical``, ...): then the rate follows that link budget along the
    range (and is zero where the radio cannot close the link).

    ``loss`` and ``failures`` are the crosslinks' own (the ground links' are ``links.loss``
    and ``links.failures``): a failure takes one crosslink (both directions) down for its
    ``duration``. ``acquisition``: the time at the start of every crosslink contact before
    data moves (pointing, acquisition and tracking, lock); 0 (the default) reproduces
    crosslinks that carry data from their first instant. ``terminals``: the crosslinks a
    satellite carries at once (relayed transfers book them; the +Grid's 4 by default). Typical orders of magnitude (not
    from one cited source): about a second for an RF crosslink, seconds to tens of seconds
    for an optical terminal's pointing, acquisition and tracking."""

    topology: Literal["plus_grid", "range"] = "plus_grid"
    rate_bps: Float = Field(default=100e6, gt=0)
    max_range_km: Float = Field(default=5000.0, gt=0)
    grazing_altitude_km: Float = Field(default=80.0, ge=0)
    profile: str | None = None
    loss: Loss = NoLoss()
    failures: Failures = Failures()
    acquisition: Duration = Field(default=0.0, ge=0)
    terminals: int = Field(default=4, ge=1, le=64)  # crosslinks a satellite carries at once

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, v: str | None) -> str | None:
        return v if v is None else one_of(v, list(PROFILES), "profile")


class Links(Section):
    """Client-to-server links. ``uplink`` is client -> server (an update), ``downlink`` is
    server -> client (the global model). ``routing``: ``direct`` (a client talks to the server
    only over its own link) or ``relay`` (store-and-forward over every link, ``isl`` included,
    along the earliest-arrival route of the contact plan). ``acquisition``: the time at the
    start of every ground pass before data moves (antenna pointing, carrier and symbol lock,
    link set-up); 0 (the default) reproduces passes that carry data from acquisition of
    signal. Typical order of magnitude (not from one cited source): seconds to about a
    minute of each pass. ``slew``: the time a station's antenna (``server.ground_stations[]
    .antennas``) takes to turn from the satellite it last served to another one: a transfer
    on an antenna whose previous use was a different satellite starts at least ``slew`` after
    that use ended (on top of ``acquisition``, which every pass pays); 0 (the default)
    reproduces antennas that repoint at once. Typical order of magnitude (not from one cited
    source): tens of seconds to about a minute for a worst-case turn of an amateur az/el
    rotator (the kind many SatNOGS stations use), professional tracking dishes a few deg/s."""

    model: Literal["fixed", "budget"] = "fixed"
    uplink: LinkDirection = LinkDirection(rate_bps=10e6)
    downlink: LinkDirection = LinkDirection(rate_bps=50e6)
    loss: Loss = NoLoss()
    failures: Failures = Failures()
    on_loss_of_signal: Literal["resume", "restart"] = "resume"
    routing: Literal["direct", "relay"] = "direct"
    isl: ISL | None = None
    acquisition: Duration = Field(default=0.0, ge=0)
    slew: Duration = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _fixed_needs_rates(self) -> Links:
        if self.model == "fixed":
            for name in ("uplink", "downlink"):
                if getattr(self, name).rate_bps is None:
                    raise ValueError(f"links.{name}.rate_bps is required when links.model is fixed")
        return self
