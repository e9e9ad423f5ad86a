"""What a scenario's radios give: one row per link kind, direction and range (``sinsim links``).

:func:`link_table` evaluates the link budget (:func:`sinsim.space.links.link_budget`) of each
radio a scenario uses, at a few ranges, without computing a contact plan:

- one link kind per kind of client node (``satellite-ground``, ``uav-ground``,
  ``satellite-satellite``, ...), ``up`` with ``links.uplink``'s radio (client -> server) and
  ``down`` with ``links.downlink``'s (server -> client); plus ``isl`` (``cross``) between client
  satellites when ``links.isl`` is given;
- by default, for a link with a ground end, the slant ranges at elevations 90, 60, 45, 30, 20
  and 10 degrees and at the smallest station mask, for the median altitude of the clients of
  that kind (a Walker shell's nominal altitude, an element set's mean altitude, a UAV's
  altitude); for links between nodes above the weather, 500 to 5,000 km capped at the range
  the contact plan allows (``contacts.max_range_km``; ``links.isl.max_range_km``), plus that
  cap;
- ``links.model: fixed``: the fixed rates (no budget), at the ranges asked for, else one row
  per direction without a range; an ``isl`` without a ``profile`` likewise gives its fixed
  ``rate_bps``.

Ranges a ground link cannot have (shorter than the client's altitude, beyond its horizon) are
left out; the table's ``attrs["skipped_km"]`` lists them per link kind (with the altitude in
``attrs["altitude_km"]``) so that the caller can say so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sinsim.errors import ConfigError
from sinsim.scenario import Scenario
from sinsim.sim.topology import build_nodes
from sinsim.sim.wiring import direction_radio
from sinsim.space.atmosphere import elevation_from_range_deg, slant_range_m
from sinsim.space.links import link_budget
from sinsim.space.nodes import UAV, Satellite
from sinsim.space.radios import RadioProfile, radio_profile

__all__ = ["COLUMNS", "GROUND_ELEVATIONS_DEG", "SPACE_RANGES_KM", "link_table"]

COLUMNS = ["link", "direction", "range_km", "elevation_deg", "snr_db", "modcod", "rate_bps",
           "bandwidth_hz", "profile", "cn0_dbhz"]
GROUND_ELEVATIONS_DEG = (90.0, 60.0, 45.0, 30.0, 20.0, 10.0)
SPACE_RANGES_KM = (500.0, 1000.0, 2000.0, 3000.0, 4000.0, 5000.0)
FIXED = "fixed"  # the profile column of a fixed-rate link


def link_table(scenario: Scenario, ranges_km: Sequence[float] | None = None) -> pd.DataFrame:
    """The link budget of every link kind and direction of ``scenario`` (columns
    :data:`COLUMNS`; unrounded floats, NaN where a value does not apply) at ``ranges_km``
    (positive, in km; default: see the module docstring). Raises ``ConfigError`` for abstract
    clients (key ``clients``) and for a direction with no radio for its node kinds (key
    ``links.uplink`` / ``links.downlink``); ``ValueError`` for a bad range."""
    if ranges_km is not None:
        ranges_km = _check_ranges(ranges_km)
    if not scenario.clients.orbital:
        raise ConfigError("abstract clients (clients.count) have no radios and no ranges; give "
                          "walker, tle, omm or uavs", key="clients")
    client_kinds, server_kind = scenario.node_kinds()
    clients, servers = build_nodes(scenario)
    altitudes = _client_altitudes_m(scenario, clients)
    links = scenario.links
    rows: list[dict] = []
    skipped: dict[str, list[float]] = {}
    altitude_km: dict[str, float] = {}
    ground = server_kind == "ground"
    mask_deg = (min(g.min_elevation_deg for g in scenario.server.ground_stations)
                if ground else None)
    for kind in client_kinds:
        if not altitudes[kind]:  # e.g. the one satellite became the server
            continue
        name = f"{kind}-{server_kind}"
        alt_m = float(np.median(altitudes[kind]))
        altitude_km[name] = alt_m / 1e3
        fixed = links.model == "fixed"
        if ground:
            if ranges_km is not None:
                rng_km = np.asarray(ranges_km, dtype=float)
                el = elevation_from_range_deg(rng_km * 1e3, alt_m)
                bad = ~np.isfinite(el)
                if bad.any():
                    skipped[name] = [float(r) for r in rng_km[bad]]
                rng_km, el = rng_km[~bad], el[~bad]
            elif fixed:
                rng_km, el = np.array([np.nan]), np.array([np.nan])
            else:
                rng_km, el = _ground_defaults(alt_m, mask_deg)
        else:
            if ranges_km is not None:
                rng_km = np.asarray(ranges_km, dtype=float)
            elif fixed:
                rng_km = np.array([np.nan])
            else:
                rng_km = _space_defaults(scenario.contacts.max_range_km)
            el = np.full(rng_km.shape, np.nan)
        for direction, key, tx, rx in (("up", "uplink", kind, server_kind),
                                       ("down", "downlink", server_kind, kind)):
            if fixed:
                rows += _fixed_rows(name, direction, rng_km, el, getattr(links, key).rate_bps)
            else:
                rows += _budget_rows(name, direction, rng_km, el,
                                      direction_radio(links, key, tx, rx))
    if links.isl is not None:
        isl = links.isl
        rng_km = (np.asarray(ranges_km, dtype=float) if ranges_km is not None
                  else _space_defaults(isl.max_range_km))
        el = np.full(rng_km.shape, np.nan)
        if isl.profile is None:
            rows += _fixed_rows("isl", "cross", rng_km, el, isl.rate_bps)
        else:
            rows += _budget_rows("isl", "cross", rng_km, el, radio_profile(isl.profile))
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["skipped_km"] = skipped
    table.attrs["altitude_km"] = altitude_km
    return table


def _check_ranges(ranges_km: Sequence[float]) -> list[float]:
    values = [float(r) for r in ranges_km]
    if not values or any(not math.isfinite(r) or r <= 0 for r in values):
        raise ValueError(f"ranges must be finite numbers > 0 (km), got {list(ranges_km)!r}")
    return sorted(set(values))


def _client_altitudes_m(scenario: Scenario, clients: list) -> dict[str, list[float]]:
    """The altitude of each client by kind: a Walker shell's nominal altitude for its
    satellites (their positions sit a little above or below it, and the mean semi-major axis
    too: a 550 km shell should read 550 km), the SGP4 mean altitude of a satellite from an
    element set, a UAV's flight altitude."""
    walker = {f"{prefix}{i:04d}": w.altitude_km * 1e3
              for w, prefix in scenario.clients.walker_shells for i in range(w.total)}
    out: dict[str, list[float]] = {"satellite": [], "uav": []}
    for node in clients:
        if isinstance(node, Satellite):
            alt = walker.get(node.id) if node.source == "walker" else None
            out["satellite"].append(node.mean_altitude_m if alt is None else alt)
        elif isinstance(node, UAV):
            out["uav"].append(float(node.altitude_m))
    return out


def _ground_defaults(altitude_m: float, mask_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """(range km, elevation deg) at the standard elevations and the station mask, by range."""
    el = np.array(sorted({*GROUND_ELEVATIONS_DEG, float(mask_deg)}, reverse=True))
    rng_km = np.asarray(slant_range_m(el, altitude_m), dtype=float) / 1e3
    order = np.argsort(rng_km, kind="stable")
    return rng_km[order], el[order]


def _space_defaults(cap_km: float) -> np.ndarray:
    """:data:`SPACE_RANGES_KM` below ``cap_km``, and ``cap_km``."""
    return np.array([r for r in SPACE_RANGES_KM if r < cap_km] + [float(cap_km)])


def _budget_rows(link: str, direction: str, range_km: np.ndarray, elevation_deg: np.ndarray,
                 radio: RadioProfile) -> list[dict]:
    if not len(range_km):
        return []
    b = link_budget(radio, range_km * 1e3, elevation_deg)
    return [{"link": link, "direction": direction, "range_km": float(range_km[i]),
             "elevation_deg": float(elevation_deg[i]), "snr_db": float(b.snr_db[i]),
             "modcod": str(b.modcod[i]), "rate_bps": float(b.rate_bps[i]),
             "bandwidth_hz": float(radio.bandwidth_hz), "profile": radio.name,
             "cn0_dbhz": float(b.cn0_dbhz[i])} for i in range(len(range_km))]


def _fixed_rows(link: str, direction: str, range_km: np.ndarray, elevation_deg: np.ndarray,
                rate_bps: float) -> list[dict]:
    nan = math.nan
    return [{"link": link, "direction": direction, "range_km": float(r),
             "elevation_deg": float(e), "snr_db": nan, "modcod": "", "rate_bps": float(rate_bps),
             "bandwidth_hz": nan, "profile": FIXED, "cn0_dbhz": nan}
            for r, e in zip(range_km, elevation_deg, strict=True)]
