"""Benchmark: sinsim's vectorised contact_windows vs Skyfield's find_events.

Default run: a 1,584-satellite Walker delta shell (53 deg, 22 planes x 72
satellites, phasing F=1, 550 km) over 24 h against 10 ground stations in
cities around the world, 25 deg elevation mask.

sinsim computes the full plan (all 15,840 satellite-station pairs).  Running
find_events for every pair takes minutes, so it is timed on a random subset
of ``--pairs`` pairs and its total is extrapolated per pair (the output says
so).  Every edge of the sampled pairs is compared with sinsim's windows.

    python bench/contact_plan.py            # default run (a few minutes at most)
    python bench/contact_plan.py --quick    # 66 satellites, 2 stations, all pairs
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skyfield.api import wgs84  # noqa: E402

from sinsim.space.contacts import contact_windows  # noqa: E402
from sinsim.space.orbits import GroundStation, walker_constellation  # noqa: E402
from sinsim.space.timebase import Timebase  # noqa: E402
from tests.space.space_oracle import windows_from_find_events  # noqa: E402  (the test oracle)

CITIES = [  # (id, lat_deg, lon_deg) -- approximate city centres
    ("madrid", 40.4168, -3.7038),
    ("new_york", 40.7128, -74.0060),
    ("sao_paulo", -23.5505, -46.6333),
    ("nairobi", -1.2921, 36.8219),
    ("singapore", 1.3521, 103.8198),
    ("tokyo", 35.6762, 139.6503),
    ("sydney", -33.8688, 151.2093),
    ("moscow", 55.7558, 37.6173),
    ("los_angeles", 34.0522, -118.2437),
    ("cape_town", -33.9249, 18.4241),
]


def find_events_windows(sat, topos, t0, t1, mask_deg, timebase, horizon_s):
    """Windows [(start_s, end_s)] from one EarthSatellite.find_events call."""
    t, events = sat.find_events(topos, t0, t1, altitude_degrees=mask_deg)
    return windows_from_find_events(timebase.to_seconds(t), events, horizon_s)


def compare(mine, ref):
    """(max |edge error| over matched windows, missed, extra) by overlap matching."""
    used = set()
    max_err, missed = 0.0, 0
    for a, b in ref:
        hit = [i for i, (c, d) in enumerate(mine) if i not in used and c < b and a < d]
        if not hit:
            missed += 1
            continue
        i = hit[0]
        used.add(i)
        c, d = mine[i]
        max_err = max(max_err, abs(a - c), abs(b - d))
    return max_err, missed, len(mine) - len(used)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--pairs", type=int, default=200, help="satellite-station pairs timed with find_events"
    )
    ap.add_argument(
        "--quick", action="store_true", help="66 satellites, 2 stations, every pair checked"
    )
    ap.add_argument("--step", type=float, default=120.0, help="sinsim coarse grid step in seconds")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    start = datetime(2020, 5, 7, tzinfo=timezone.utc)
    tb = Timebase(start)
    horizon_s, mask_deg = 86400.0, 25.0
    if args.quick:
        total, planes, cities = 66, 6, CITIES[:2]
    else:
        total, planes, cities = 1584, 22, CITIES
    sats = walker_constellation(
        inclination_deg=53.0,
        total=total,
        planes=planes,
        phasing=1,
        altitude_m=550e3,
        epoch_utc=start,
    )
    stations = [GroundStation(n, lat, lon, 0.0, mask_deg) for n, lat, lon in cities]
    n_pairs = len(sats) * len(stations)
    print(
        f"constellation: Walker delta 53deg {total}/{planes}/1 at 550 km; {len(stations)} stations; "
        f"mask {mask_deg:g} deg; horizon 24 h; sinsim grid step {args.step:g} s"
    )

    t_start = time.perf_counter()
    windows = contact_windows(sats, stations, tb, horizon_s, step_s=args.step)
    sinsim_s = time.perf_counter() - t_start
    print(f"sinsim_windows: {len(windows)} over {n_pairs} pairs")

    rng = np.random.default_rng(args.seed)
    all_pairs = [(i, j) for i in range(len(sats)) for j in range(len(stations))]
    n_check = n_pairs if args.quick else min(args.pairs, n_pairs)
    chosen = [all_pairs[p] for p in sorted(rng.choice(n_pairs, size=n_check, replace=False))]
    t0, t1 = tb.to_time(0.0), tb.to_time(horizon_s)
    earth_sats = {i: sats[i].earth_satellite(tb.ts) for i, _ in chosen}
    topos = [wgs84.latlon(s.lat_deg, s.lon_deg, s.altitude_m) for s in stations]
    grouped = {key: g for key, g in windows.groupby(["client", "server"])}

    fe_s, max_err, missed, extra = 0.0, 0.0, 0, 0
    for i, j in chosen:
        t_a = time.perf_counter()
        ref = find_events_windows(earth_sats[i], topos[j], t0, t1, mask_deg, tb, horizon_s)
        fe_s += time.perf_counter() - t_a
        g = grouped.get((sats[i].id, stations[j].id))
        mine = [] if g is None else list(zip(g["start_s"], g["end_s"]))
        e, m, x = compare(mine, ref)
        max_err, missed, extra = max(max_err, e), missed + m, extra + x
    per_pair = fe_s / n_check
    extrapolated = per_pair * n_pairs
    note = (
        "measured on all pairs"
        if n_check == n_pairs
        else f"extrapolated from {n_check} random pairs"
    )
    print(f"pairs_checked: {n_check}")
    print(f"max_edge_error_s: {max_err:.3f}")
    print(f"missed: {missed}")
    print(f"extra: {extra}")
    print(f"sinsim_s: {sinsim_s:.2f}  (full plan, {n_pairs} pairs)")
    print(f"find_events_s_per_pair: {per_pair * 1e3:.2f} ms")
    print(
        f"find_events_s_extrapolated: {extrapolated:.1f}  ({note}: {per_pair * 1e3:.2f} ms x {n_pairs} pairs)"
    )
    print(f"speedup_vs_find_events: {extrapolated / sinsim_s:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
