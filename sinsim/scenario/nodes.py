"""The scenario's node sections: who trains (``clients``: a Walker shell, TLE or OMM files, UAVs)
and who aggregates (``server``: ground stations, a satellite, a UAV). Re-exported by
``sinsim.scenario`` (and ``sinsim.scenario.model``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sinsim.params import Float, Int, Section


class Walker(Section):
    """A Walker constellation i:T/P/F at one altitude (``delta``: RAAN over 360 deg, ``star``:
    over 180 deg)."""

    inclination_deg: Float = Field(ge=0, le=180)
    total: Int = Field(gt=0, le=100_000)
    planes: Int = Field(gt=0)
    phasing: Int = Field(default=0, ge=0)
    altitude_km: Float = Field(gt=150, le=40_000)
    pattern: Literal["delta", "star"] = "delta"
    id_prefix: str = Field(default="sat", min_length=1)

    @model_validator(mode="after")
    def _walker(self) -> Walker:
        if self.total % self.planes:
            raise ValueError(f"total ({self.total}) must be a multiple of planes ({self.planes})")
        if self.phasing >= self.planes:
            raise ValueError(f"phasing must be < planes ({self.planes}), got {self.phasing}")
        return self


class TLESource(Section):
    """Satellites from a TLE file (2- or 3-line, Alpha-5 catalog numbers accepted); a relative
    path is relative to the scenario. ``name_pattern``: a case-insensitive glob on the names;
    ``limit``: keep the first N."""

    path: str = Field(min_length=1)
    name_pattern: str | None = None
    limit: Int | None = Field(default=None, gt=0)


class OMMSource(TLESource):
    """Satellites from an OMM file (CCSDS Orbit Mean-Elements Message) as CelesTrak and
    Space-Track publish it: JSON, CSV or XML, told apart by the content; a relative path is
    relative to the scenario. ``name_pattern`` matches ``OBJECT_NAME``."""


class Loiter(Section):
    lat_deg: Float = Field(ge=-90, le=90)
    lon_deg: Float = Field(ge=-180, le=360)
    radius_m: Float = Field(gt=0, le=500_000)


class UAVSpec(Section):
    """A UAV or HAP: altitude plus a circular loiter or a closed waypoint path."""

    id: str = Field(min_length=1)
    altitude_m: Float = Field(ge=0, le=60_000)
    speed_mps: Float = Field(gt=0, le=1_000)
    loiter: Loiter | None = None
    waypoints: list[tuple[Float, Float]] | None = Field(default=None, min_length=2)

    @model_validator(mode="after")
    def _one_path(self) -> UAVSpec:
        if (self.loiter is None) == (self.waypoints is None):
            raise ValueError("give exactly one of loiter or waypoints")
        return self


class Clients(Section):
    """Who trains: ``count`` abstract clients always in view, or orbital nodes (a Walker shell
    or a list of shells, a TLE file, an OMM file and/or UAVs; several may be combined).

    With a list of shells, shell ``k``'s ids are ``s{k}-sat0000``, ... unless it gives its own
    ``id_prefix``; one shell (a mapping) keeps ``sat0000``, ...."""

    count: Int | None = Field(default=None, gt=0, le=1_000_000)
    walker: Walker | list[Walker] | None = None
    tle: TLESource | None = None
    omm: OMMSource | None = None
    uavs: list[UAVSpec] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Clients:
        orbital = any(x is not None for x in (self.walker, self.tle, self.omm, self.uavs))
        if self.count is None and not orbital:
            raise ValueError("give count, or orbital clients: walker, tle, omm and/or uavs")
        if self.count is not None and orbital:
            raise ValueError("count (abstract clients) cannot be combined with "
                             "walker/tle/omm/uavs")
        if isinstance(self.walker, list):
            if not self.walker:
                raise ValueError("walker: give at least one shell")
            if sum(w.total for w in self.walker) > 99_999:
                raise ValueError("walker: at most 99999 satellites in all (TLE catalog numbers)")
            prefixes = [p for _, p in self.walker_shells]
            if len(set(prefixes)) != len(prefixes):
                raise ValueError("walker: the shells' id_prefix must differ")
        return self

    @property
    def walker_shells(self) -> list[tuple[Walker, str]]:
        """Each Walker shell with the id prefix of its satellites, in order (empty without)."""
        if self.walker is None:
            return []
        if isinstance(self.walker, Walker):
            return [(self.walker, self.walker.id_prefix)]
        return [(w, w.id_prefix if "id_prefix" in w.model_fields_set else f"s{k}-sat")
                for k, w in enumerate(self.walker)]

    @property
    def from_files(self) -> bool:
        """Whether some clients come from element-set files (their number is known only then)."""
        return self.tle is not None or self.omm is not None

    @property
    def orbital(self) -> bool:
        return self.count is None


class GroundStationSpec(Section):
    id: str = Field(default="gs0", min_length=1)
    lat_deg: Float = Field(ge=-90, le=90)
    lon_deg: Float = Field(ge=-180, le=360)
    altitude_m: Float = Field(default=0.0, ge=-500, le=9_000)
    min_elevation_deg: Float = Field(default=10.0, ge=0, lt=90)
    # links the station carries at once (one satellite tracked per antenna), either direction
    antennas: int = Field(default=1, ge=1, le=64)


class CircularOrbit(Section):
    altitude_km: Float = Field(gt=150, le=40_000)
    inclination_deg: Float = Field(ge=0, le=180)
    raan_deg: Float = Field(default=0.0, ge=0, lt=360)
    arg_latitude_deg: Float = Field(default=0.0, ge=0, lt=360)


class ServerSatellite(Section):
    """A satellite server: one of the client constellation (``client``: its node id, which then
    stops being a client), its own circular ``orbit``, or the one element set that a ``tle`` or
    ``omm`` file selection yields (``name_pattern``/``limit: 1``; its node id is ``id`` when
    given, else the element set's name)."""

    client: str | None = None
    orbit: CircularOrbit | None = None
    tle: TLESource | None = None
    omm: OMMSource | None = None
    id: str = Field(default="server_sat", min_length=1)

    @model_validator(mode="after")
    def _one(self) -> ServerSatellite:
        given = [k for k in ("client", "orbit", "tle", "omm") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of client, orbit, tle or omm"
                             + (f", got {', '.join(given)}" if given else ""))
        return self


class Server(Section):
    """Who aggregates: ground station(s) (a client reaches the server when it sees any of them),
    a satellite or a UAV. Abstract clients (``clients.count``) have an abstract server."""

    ground_stations: list[GroundStationSpec] | None = Field(default=None, min_length=1)
    satellite: ServerSatellite | None = None
    uav: UAVSpec | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> Server:
        given = [k for k in ("ground_stations", "satellite", "uav") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one server kind, got {', '.join(given)}")
        ids = [g.id for g in self.ground_stations or []]
        if len(set(ids)) != len(ids):
            raise ValueError("ground station ids must be unique")
        return self

    @property
    def defined(self) -> bool:
        return any(getattr(self, k) is not None for k in ("ground_stations", "satellite", "uav"))
