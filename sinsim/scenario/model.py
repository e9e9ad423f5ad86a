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
from sinsim.scenario.links import (
    BUDGET_KEYS,
    ISL,
    LOSS_KINDS,
    BernoulliLoss,
    Failures,
    GilbertElliottLoss,
    LinkDirection,
    Links,
    Loss,
    NoLoss,
)
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

__all__ = ["CircularOrbit", "Clients", "GroundStationSpec", "Loiter", "OMMSource", "Server",
           "ServerSatellite", "TLESource", "UAVSpec", "Walker",  # re-exported node sections
           "BUDGET_KEYS", "ISL", "LOSS_KINDS", "BernoulliLoss", "Failures", "GilbertElliottLoss",
           "LinkDirection", "Links", "Loss", "NoLoss"]  # and link sections

# bounds of integers that a library takes as a fixed-width C integer (or that spawn processes)
MAX_SEED = 2**64 - 1
MAX_CPU_THREADS = 1024
MAX_WORKERS = 256

class Contacts(Section):
    """How the contact plan is computed."""

    step: PositiveDuration = 30.0
    max_range_km: Float = Field(default=5_000.0, gt=0)
    grazing_altitude_km: Float = Field(default=80.0, ge=0)
    cache_dir: str | None = None
    memory_mb: Float = Field(default=512.0, gt=0)  # node states held at once (not in the cache key)
    rate_step: PositiveDuration = 10.0  # budget links: rate sampled along each pass


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
    # one per cpu_threads usable cores (the CPU affinity), at most clients_per_round, 1 inside
    # another pool's worker (sinsim.learn.parallel.resolve_workers); a number: that many (at most
    # MAX_WORKERS: each holds pipes and a copy of the data, and 10**20 of them ran out of files)
    workers: int | Literal["auto"] = "auto"
    # FedAvg clients of a round trained together in one vectorised step (torch.func.vmap):
    # equal to the sequential numbers up to floating-point summation order
    batched: bool = False
    # the same tables on any x86-64 processor: torch's CPU kernels pinned to one generic path
    # (sinsim.learn.portable; `python -m sinsim` re-executes itself with the pins), on the CPU
    # (``auto`` does not take a GPU), one thread
    portable: bool = False

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
    def _portable(self) -> Training:
        if self.portable and self.device == "cuda":
            raise ValueError("portable pins the CPU's kernels: device must be auto or cpu, got "
                             "cuda")
        if self.portable and self.cpu_threads != 1:
            raise ValueError(f"portable trains on one thread: cpu_threads must be 1, got "
                             f"{self.cpu_threads}")
        return self

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
    draw 10-30 W), ~5 W receiving, and ``min_soc`` 0.7: the charge never falls below 70 % of
    the capacity, a depth of discharge of at most 30 % (``min_soc`` is the state-of-charge
    floor; depth of discharge = 1 - ``min_soc``).  A LEO battery cycles ~5,500 times a year
    (one eclipse an orbit), so Li-ion packs there are kept to 20-40 % depth of discharge for
    a multi-year life (Wertz, Everett & Puschell, *Space Mission Engineering: The New SMAD*,
    2011, ch. 21 on power; NASA, *State-of-the-Art of Small Spacecraft Technology*, 2024,
    Power chapter).  Field names are those of
    ``sinsim.sim.power.PowerParams``: ``PowerParams(**power.model_dump())``.

    Every satellite node has a battery: a round's clients and the satellites that relay its
    payloads, which pay ``tx_w``/``rx_w`` for the segments of the hops they send and receive.
    ``isl_standby_w``: drawn all the time, on top of ``idle_w``, by every satellite when the
    scenario has crosslinks (``links.isl``): terminals kept powered, pointing and ready.
    Default 0 (not modelled). Typical: a few W for a CubeSat-class optical terminal (Tesat's
    CubeLCT is quoted at under 10 W in operation), tens of W for larger optical terminals;
    a terminal kept in standby draws a fraction of that.
    """

    battery_wh: Float = Field(default=80.0, gt=0)
    solar_w: Float = Field(default=30.0, ge=0)
    idle_w: Float = Field(default=5.0, ge=0)
    compute_w: Float = Field(default=15.0, ge=0)
    tx_w: Float = Field(default=20.0, ge=0)
    rx_w: Float = Field(default=5.0, ge=0)
    min_soc: Float = Field(default=0.7, ge=0, lt=1)  # 30 % depth of discharge at most
    initial_soc: Float = Field(default=1.0, ge=0, le=1)
    isl_standby_w: Float = Field(default=0.0, ge=0)  # with links.isl, on top of idle_w


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
