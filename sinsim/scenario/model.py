"""The scenario schema: frozen sections, validated at load time (see ``sinsim.scenario``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from sinsim.learn.datasets import DATASETS
from sinsim.learn.models import MODELS
from sinsim.learn.strategies import STRATEGIES
from sinsim.params import (
    Duration,
    Float,
    Float32,
    Int,
    PositiveDuration,
    Section,
    UtcDatetime,
    one_of,
)
from sinsim.registry import kind_given
from sinsim.scenario.nodes import (
    CircularOrbit,
    Clients,
    GroundStationSpec,
    Loiter,
    OMMSource,
    Server,
    ServerSatellite,
    TLESource,
    UAVSpec,
    Walker,
)
from sinsim.space.modcod import DVB_S2_MODCODS
from sinsim.space.radios import (
    OVERRIDABLE_KEYS,
    PROFILES,
    RATE_MODELS,
    RadioProfile,
    default_profile_name,
    radio_profile,
)

__all__ = ["CircularOrbit", "Clients", "GroundStationSpec", "Loiter", "OMMSource", "Server",
           "ServerSatellite", "TLESource", "UAVSpec", "Walker"]  # re-exported node sections

# bounds of integers that a library takes as a fixed-width C integer (or that spawn processes)
MAX_SEED = 2**64 - 1
MAX_CPU_THREADS = 1024
MAX_WORKERS = 256

# the radio-profile parameters a link direction may override (the dataclass declares them)
BUDGET_KEYS = OVERRIDABLE_KEYS


class Contacts(Section):
    """How the contact plan is computed."""

    step: PositiveDuration = 30.0
    max_range_km: Float = Field(default=5_000.0, gt=0)
    grazing_altitude_km: Float = Field(default=80.0, ge=0)
    cache_dir: str | None = None
    memory_mb: Float = Field(default=512.0, gt=0)  # node states held at once (not in the cache key)
    rate_step: PositiveDuration = 10.0  # budget links: rate sampled along each pass


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
    range (and is zero where the radio cannot close the link)."""

    topology: Literal["plus_grid", "range"] = "plus_grid"
    rate_bps: Float = Field(default=100e6, gt=0)
    max_range_km: Float = Field(default=5000.0, gt=0)
    grazing_altitude_km: Float = Field(default=80.0, ge=0)
    profile: str | None = None

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, v: str | None) -> str | None:
        return v if v is None else one_of(v, list(PROFILES), "profile")


class Links(Section):
    """Client-to-server links. ``uplink`` is client -> server (an update), ``downlink`` is
    server -> client (the global model). ``routing``: ``direct`` (a client talks to the server
    only over its own link) or ``relay`` (store-and-forward over every link, ``isl`` included,
    along the earliest-arrival route of the contact plan)."""

    model: Literal["fixed", "budget"] = "fixed"
    uplink: LinkDirection = LinkDirection(rate_bps=10e6)
    downlink: LinkDirection = LinkDirection(rate_bps=50e6)
    loss: Loss = NoLoss()
    failures: Failures = Failures()
    on_loss_of_signal: Literal["resume", "restart"] = "resume"
    routing: Literal["direct", "relay"] = "direct"
    isl: ISL | None = None

    @model_validator(mode="after")
    def _fixed_needs_rates(self) -> Links:
        if self.model == "fixed":
            for name in ("uplink", "downlink"):
                if getattr(self, name).rate_bps is None:
                    raise ValueError(f"links.{name}.rate_bps is required when links.model is fixed")
        return self


class Selection(Section):
    """``random``: uniform over all clients (the seed paper). ``visible``: uniform over the
    clients in view of the server now or within ``lookahead``."""

    kind: Literal["random", "visible"] = "random"
    lookahead: Duration = Field(default=0.0, ge=0)


def _selection(value: Any) -> Any:
    return {"kind": value} if isinstance(value, str) else value


class IidPartition(Section):
    """``iid``: shuffled, equal shards."""

    kind: Literal["iid"] = "iid"


class DirichletPartition(Section):
    """``dirichlet``: label-skewed shards, per class proportions from Dirichlet(``alpha``)."""

    kind: Literal["dirichlet"]
    alpha: Float = Field(default=0.5, gt=0)


class ByPlanePartition(Section):
    """``by_plane``: the satellites of an orbital plane see ``classes_per_plane`` classes only
    (``sinsim.learn.partitions``); planes are told apart by RAAN and inclination within the
    tolerances (``sinsim.space.planes``). Needs satellite clients (walker, tle, omm)."""

    kind: Literal["by_plane"]
    classes_per_plane: Int = Field(ge=1)
    raan_tolerance_deg: Float = Field(default=2.0, gt=0, le=180)
    inclination_tolerance_deg: Float = Field(default=1.0, gt=0, le=180)


PARTITION_KINDS = ("iid", "dirichlet", "by_plane")

# one section per partition kind, chosen by ``kind`` (a bare kind name stands for its defaults)
Partition = Annotated[IidPartition | DirichletPartition | ByPlanePartition,
                      Field(discriminator="kind"),
                      BeforeValidator(kind_given(PARTITION_KINDS, shorthand=True))]



class Training(Section):
    dataset: str = "mnist"
    data_dir: str | None = None
    download: bool = True
    partition: Partition = IidPartition()
    model: str = "lenet5"
    rounds: Int = Field(default=10, gt=0)
    clients_per_round: Int = Field(default=10, gt=0)
    local_epochs: Int = Field(default=1, gt=0)
    batch_size: Int = Field(default=10, gt=0)
    lr: Float32 = Field(default=0.01, gt=0)
    momentum: Float32 = Field(default=0.0, ge=0, lt=1)
    eval_batch_size: Int = Field(default=1000, gt=0)
    round_deadline: PositiveDuration = 3600.0
    selection: Annotated[Selection, BeforeValidator(_selection)] = Selection()
    target_accuracy: Float | None = Field(default=None, gt=0, le=1)
    stop_at_target: bool = False  # end an algorithm's run at the round it reaches the target
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # torch intra-op threads on the CPU: LeNet-5 steps are too small to gain from more, and
    # ALQ's many small tensor operations lose several-fold to thread hand-offs
    # (at most MAX_CPU_THREADS: torch.set_num_threads takes a C int and 2**31 overflows it)
    cpu_threads: Int = Field(default=1, gt=0, le=MAX_CPU_THREADS)
    # processes that train a round's clients (this one included; same tables as 1): ``auto``
    # one per cpu_threads idle cores (cores minus the load average), at most clients_per_round
    # and 8 (sinsim.learn.parallel.resolve_workers); a number: that many processes (at most
    # MAX_WORKERS: each holds pipes and a copy of the data, and 10**20 of them ran out of files)
    workers: int | Literal["auto"] = "auto"
    # FedAvg clients of a round trained together in one vectorised step (torch.func.vmap):
    # equal to the sequential numbers up to floating-point summation order
    batched: bool = False

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, v: Any) -> int | str:
        if v == "auto" and isinstance(v, str):
            return v
        if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
            if v > MAX_WORKERS:
                raise ValueError(f"must be at most {MAX_WORKERS} processes, got {v}")
            return v
        raise ValueError(f"must be auto or a whole number >= 1, got {v!r}")

    @model_validator(mode="after")
    def _target(self) -> Training:
        if self.stop_at_target and self.target_accuracy is None:
            raise ValueError("stop_at_target needs training.target_accuracy")
        return self

    @model_validator(mode="after")
    def _classes_per_plane(self) -> Training:
        p = self.partition
        n = DATASETS[self.dataset].n_classes
        if p.kind == "by_plane" and p.classes_per_plane > n:
            raise ValueError(f"partition.classes_per_plane ({p.classes_per_plane}) is more than "
                             f"the {n} classes of {self.dataset}")
        return self

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        return one_of(v, DATASETS.names(), "dataset")

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        return one_of(v, MODELS.names(), "model")


class Compute(Section):
    """On-board compute: simulated training time = training FLOPs / ``flops_per_s``."""

    flops_per_s: Float = Field(default=1e12, gt=0)


class Power(Section):
    """Each satellite client's battery (``sinsim.sim.power``): solar power in sunlight (Earth
    shadow from ``sinsim.space.eclipse``), a constant ``idle_w`` drain, and ``compute_w``,
    ``tx_w``, ``rx_w`` on top of it while the node trains, transmits or receives.  A node
    neither trains nor transmits when that would take its charge below ``min_soc`` of the
    capacity; it waits for the sun instead.  Absent (``None``): power is not modelled.

    The defaults are a *typical* 6U CubeSat, not a specific one: an ~80 Wh Li-ion pack
    (e.g. GomSpace NanoPower BPX / EnduroSat 6U battery packs are 77-86 Wh), ~30 W orbit-
    average-in-sun from deployable panels (6U double-deployed arrays are quoted at 30-40 W
    peak), ~5 W idle bus (OBC, ADCS, receiver), ~15 W for an on-board GPU/AI module
    (Jetson-class boards run at 10-20 W), ~20 W while transmitting (X/S-band transmitters
    draw 10-30 W), ~5 W receiving, and a 30% depth-of-discharge floor (LEO batteries are
    kept to shallow cycles for life).  Field names are those of
    ``sinsim.sim.power.PowerParams``: ``PowerParams(**power.model_dump())``.
    """

    battery_wh: Float = Field(default=80.0, gt=0)
    solar_w: Float = Field(default=30.0, ge=0)
    idle_w: Float = Field(default=5.0, ge=0)
    compute_w: Float = Field(default=15.0, ge=0)
    tx_w: Float = Field(default=20.0, ge=0)
    rx_w: Float = Field(default=5.0, ge=0)
    min_soc: Float = Field(default=0.3, ge=0, lt=1)
    initial_soc: Float = Field(default=1.0, ge=0, le=1)


class Algorithm(Section):
    """One algorithm of the run: a name in the strategy registry
    (``sinsim.learn.strategies.STRATEGIES``) and its parameters, checked against the
    strategy's own ``Params`` section, with every default filled in; plus ``label``, its name
    in the output tables (default: the algorithm's name)."""

    name: str
    params: dict[str, Any] = {}

    @model_validator(mode="after")
    def _params(self) -> Algorithm:
        strategy = STRATEGIES[self.name]  # an unknown name: ValueError with a did-you-mean
        given = dict(self.params)
        label = given.pop("label", None)
        if label is not None and (not isinstance(label, str) or not label):
            raise ValueError(f"label must be a non-empty string, got {label!r}")
        full = {"label": label, **strategy.Params.model_validate(given).model_dump()}
        object.__setattr__(self, "params", full)
        return self

    @property
    def label(self) -> str:
        """The name in the output tables: ``params.label`` or the algorithm's name."""
        return self.params.get("label") or self.name

    @property
    def strategy_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if k != "label"}


def _algorithm(value: Any) -> Any:
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, Mapping) and len(value) == 1 and "name" not in value:
        ((name, params),) = value.items()
        return {"name": name, "params": params or {}}
    return value


class Scenario(Section):
    name: str = Field(min_length=1)
    # torch.manual_seed takes an unsigned 64-bit integer (2**64 overflows it)
    seed: Int = Field(default=0, ge=0, le=MAX_SEED)
    start: UtcDatetime = datetime(2026, 1, 1, tzinfo=timezone.utc)
    horizon: PositiveDuration = 86400.0
    clients: Clients
    server: Server = Server()
    contacts: Contacts = Contacts()
    links: Links = Links()
    training: Training = Training()
    compute: Compute = Compute()
    power: Power | None = None  # None: power not modelled
    algorithms: list[Annotated[Algorithm, BeforeValidator(_algorithm)]] = Field(
        default_factory=lambda: [Algorithm(name="fedavg")], min_length=1
    )

    @field_validator("algorithms")
    @classmethod
    def _known_algorithms(cls, v: list[Algorithm]) -> list[Algorithm]:
        labels = [a.label for a in v]
        dup = {n for n in labels if labels.count(n) > 1}
        if dup:
            raise ValueError(f"algorithm listed twice: {', '.join(sorted(dup))} (give each "
                             f"entry its own `label`)")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        n = self.n_clients_known
        if n is not None and self.training.clients_per_round > n:
            raise ValueError(
                f"training.clients_per_round ({self.training.clients_per_round}) is larger than "
                f"the number of clients ({n})"
            )
        if self.clients.orbital and not self.server.defined:
            raise ValueError("orbital clients need a server: server.ground_stations, "
                             "server.satellite or server.uav")
        if not self.clients.orbital and self.server.defined:
            raise ValueError("abstract clients (clients.count) have an abstract server; give "
                             "orbital clients (walker, tle, omm, uavs) to use server nodes")
        if self.training.partition.kind == "by_plane" and (not self.clients.orbital
                                                           or self.clients.uavs):
            raise ValueError("training.partition: by_plane needs satellite clients (walker, tle "
                             "or omm), whose orbital planes it partitions by; abstract clients "
                             "(clients.count) and UAVs have none")
        if not self.clients.orbital and self.links.model == "budget":
            raise ValueError("links.model budget needs orbital clients and a server to "
                             "compute ranges")
        if self.links.model == "budget":
            self._check_radios()
        if self.power is not None and not self.clients.orbital:
            raise ValueError("power needs satellite clients (walker, tle, omm): abstract "
                             "clients have no orbit to find the sun from")
        hierarchical = [a.label for a in self.algorithms
                        if STRATEGIES[a.name].hierarchical]
        if hierarchical and self.links.isl is None:
            raise ValueError(f"{hierarchical[0]} aggregates over each plane's inter-satellite "
                             f"links: give links.isl")
        if self.links.isl is not None and not self.clients.orbital:
            raise ValueError("links.isl needs satellite clients (walker, tle, omm)")
        if (self.links.isl is not None and self.links.isl.topology == "plus_grid"
                and self.clients.walker is None):
            raise ValueError("links.isl.topology plus_grid needs a Walker shell "
                             "(clients.walker); use topology: range for other satellites")
        return self

    def node_kinds(self) -> tuple[tuple[str, ...], str]:
        """The kinds of client node (``satellite``, ``uav``) and the server's kind
        (``ground``, ``satellite``, ``uav``) of an orbital scenario."""
        c, s = self.clients, self.server
        clients = (("satellite",) if c.walker is not None or c.from_files else ()) + (
            ("uav",) if c.uavs else ())
        server = "ground" if s.ground_stations else "satellite" if s.satellite else "uav"
        return clients, server

    def _check_radios(self) -> None:
        clients, server = self.node_kinds()
        for kind in clients:
            for name, tx, rx in (("uplink", kind, server), ("downlink", server, kind)):
                try:
                    getattr(self.links, name).radio(tx, rx)
                except ValueError as e:
                    raise ValueError(f"links.{name}: {e}") from None

    @property
    def n_clients_known(self) -> int | None:
        """The number of clients when known without reading files (None with a TLE/OMM file)."""
        c = self.clients
        if c.count is not None:
            return c.count
        if c.from_files:
            return None
        n = sum(w.total for w, _ in c.walker_shells) + len(c.uavs or [])
        if self.server.satellite is not None and self.server.satellite.client is not None:
            n -= 1
        return n

    def resolved(self) -> dict[str, Any]:
        """The fully resolved scenario as plain JSON-able data (what ``summary.json`` records)."""
        return self.model_dump(mode="json")
