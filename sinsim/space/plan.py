"""The contact plan: windows plus what is needed to recompute link geometry.

Built by :func:`sinsim.space.contacts.compute_contact_plan` (re-exported there).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .orbits import GroundStation, positions_itrs_m
from .plancache import WINDOW_COLUMNS
from .timebase import Timebase

__all__ = ["ContactPlan", "CSV_COLUMNS"]

CSV_COLUMNS = [
    "client",
    "server",
    "start_s",
    "end_s",
    "start_utc",
    "end_utc",
    "duration_s",
    "max_elevation_deg",
]


def _node_id(node) -> str:
    return node if isinstance(node, str) else node.id


def _merge_intervals(arr: np.ndarray) -> np.ndarray:
    if not len(arr):
        return np.zeros((0, 2))
    arr = arr[np.argsort(arr[:, 0], kind="stable")]
    out = [list(arr[0])]
    for s, e in arr[1:]:
        if s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return np.array(out, dtype=float)


class ContactPlan:
    """Contact windows plus what is needed to recompute link geometry.

    Attributes: ``windows`` (DataFrame, :data:`WINDOW_COLUMNS`), ``clients``,
    ``servers`` (node lists), ``timebase``, ``horizon_s``, ``from_cache``
    (True when loaded from the disk cache).
    """

    def __init__(
        self,
        windows: pd.DataFrame,
        clients,
        servers,
        timebase: Timebase,
        horizon_s: float,
        *,
        from_cache: bool = False,
    ):
        missing = [c for c in WINDOW_COLUMNS if c not in windows.columns]
        if missing:
            raise ValueError(f"windows lacks columns {missing}")
        self.windows = windows[WINDOW_COLUMNS].reset_index(drop=True)
        self.clients = list(clients)
        self.servers = list(servers)
        self.timebase = timebase
        self.horizon_s = float(horizon_s)
        self.from_cache = bool(from_cache)
        self._client_ids = {n.id: n for n in self.clients}
        # per pair and per client (a 10,000-satellite plan has 100,000 pairs: no scans of them)
        spans = self.windows[["start_s", "end_s"]].to_numpy(dtype=float)
        rows = self.windows.groupby(["client", "server"], sort=False).indices
        self._by_pair = {key: spans[idx] for key, idx in rows.items()}
        self._by_client: dict[str, list[np.ndarray]] = {}
        for (cid, _), w in self._by_pair.items():
            self._by_client.setdefault(cid, []).append(w)

    def __repr__(self) -> str:
        return (
            f"ContactPlan({len(self.windows)} windows, {len(self.clients)} clients, "
            f"{len(self.servers)} servers, horizon {self.horizon_s:g} s)"
        )

    def _client(self, client):
        cid = _node_id(client)
        if cid not in self._client_ids:
            raise KeyError(f"unknown client {cid!r}")
        return self._client_ids[cid]

    def windows_for(self, client) -> np.ndarray:
        """``(k, 2)`` array of [start_s, end_s]: the client's windows to any server, merged and sorted."""
        cid = self._client(client).id
        parts = self._by_client.get(cid, [])
        return _merge_intervals(np.concatenate(parts)) if parts else np.zeros((0, 2))

    def geometry(self, client, times_s) -> tuple[np.ndarray, np.ndarray]:
        """``(range_m, elevation_deg)`` to the nearest *visible* server at each time.

        When no server is visible the range is to the nearest server and the
        elevation is NaN.  Elevation is that of the client seen from the
        chosen server when it is a ground station, NaN otherwise.
        """
        node = self._client(client)
        t = np.atleast_1d(np.asarray(times_s, dtype=float))
        servers = [s for s in self.servers if s.id != node.id]
        if not servers:
            raise ValueError(f"client {node.id!r} has no server to talk to")
        pos = positions_itrs_m([node] + servers, self.timebase, t)
        d = pos[1:] - pos[:1]
        rng = np.linalg.norm(d, axis=-1)
        visible = np.zeros(rng.shape, dtype=bool)
        for i, s in enumerate(servers):
            w = self._by_pair.get((node.id, s.id))
            if w is not None and len(w):
                j = np.searchsorted(w[:, 0], t, side="right") - 1
                visible[i] = (j >= 0) & (t <= w[np.maximum(j, 0), 1])
        masked = np.where(visible, rng, np.inf)
        any_vis = visible.any(axis=0)
        best = np.where(any_vis, np.argmin(masked, axis=0), np.argmin(rng, axis=0))
        cols = np.arange(t.size)
        range_m = rng[best, cols]
        elevation = np.full(t.size, np.nan)
        for i, s in enumerate(servers):
            sel = any_vis & (best == i)
            if isinstance(s, GroundStation) and sel.any():
                sin_el = (
                    -(d[i, sel] @ s.up_unit()) / range_m[sel]
                )  # client as seen from the station
                elevation[sel] = np.degrees(np.arcsin(np.clip(sin_el, -1.0, 1.0)))
        return range_m, elevation

    def to_csv(self, path, timebase: Timebase | None = None) -> None:
        """Write ``contacts.csv`` with columns exactly :data:`CSV_COLUMNS`."""
        tb = timebase if timebase is not None else self.timebase
        w = self.windows
        out = pd.DataFrame(
            {
                "client": w["client"],
                "server": w["server"],
                "start_s": w["start_s"],
                "end_s": w["end_s"],
                "start_utc": tb.utc_iso(w["start_s"].to_numpy()) if len(w) else [],
                "end_utc": tb.utc_iso(w["end_s"].to_numpy()) if len(w) else [],
                "duration_s": w["duration_s"],
                "max_elevation_deg": w["max_elevation_deg"],
            },
            columns=CSV_COLUMNS,
        )
        out.to_csv(path, index=False)
