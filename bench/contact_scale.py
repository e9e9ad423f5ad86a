"""Contact plans of mega-constellations in bounded memory: time and peak RSS per size.

Walker delta shells at 550 km, 53 deg (1,584 = 22 x 72, 6,336 = 72 x 88, 10,000 = 100 x 100
satellites) against 10 ground stations (25 deg mask) over 72 h, grid step 30 s, no cache: the
plan ``python -m sinsim contacts`` computes (``compute_contact_plan``, which also indexes the
windows by pair). Each measurement is a fresh child process (this file with ``--child N``) that
prints its own peak RSS (``ru_maxrss``), so a peak belongs to that plan only.

The baseline is the same plan computed in one chunk (``memory_mb`` large enough for every node:
what sinsim did before chunking), for the sizes where it fits (``--baseline-sizes``, 1,584 by
default; at 6,336 it would need about 8 GB). Printed per size: windows, seconds, peak RSS, seconds
per satellite-day; then the ratio of the largest to the smallest seconds per satellite-day
(flat = linear time) and, last, the headline ``peak_rss_gb_10k: X`` (target <= 2.0).

    .venv/bin/python bench/contact_scale.py                      # all three sizes (~4 min)
    .venv/bin/python bench/contact_scale.py --sizes 1584 --hours 24   # quick look

The sizes run one after the other (never two big ones at once); the 10,000-satellite plan takes
several minutes on a 2-core machine, longer than the other benches.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python bench/x.py` without sinsim installed
    sys.path.insert(0, str(REPO))

SHELLS = {1584: 22, 6336: 72, 10000: 100}  # satellites -> planes (53 deg, F=1, 550 km)
STATIONS = [  # (id, lat_deg, lon_deg) -- approximate city centres
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
MASK_DEG = 25.0
STEP_S = 30.0
TARGET_GB = 2.0
UNCHUNKED_MB = 1e9  # a budget every node fits in: one chunk


def child(n_sats: int, hours: float, memory_mb: float) -> dict:
    from sinsim.space.contacts import compute_contact_plan
    from sinsim.space.orbits import GroundStation, walker_constellation
    from sinsim.space.timebase import Timebase

    start = datetime(2020, 5, 7, tzinfo=timezone.utc)
    sats = walker_constellation(inclination_deg=53.0, total=n_sats, planes=SHELLS[n_sats],
                                phasing=1, altitude_m=550e3, epoch_utc=start)
    stations = [GroundStation(n, lat, lon, 0.0, MASK_DEG) for n, lat, lon in STATIONS]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    plan = compute_contact_plan(sats, stations, Timebase(start), hours * 3600.0,
                                step_s=STEP_S, memory_mb=memory_mb)
    seconds = time.perf_counter() - t0
    return {"windows": len(plan.windows), "seconds": seconds,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "before_mb": rss0 / 1024}


def measure(n_sats: int, hours: float, memory_mb: float) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(n_sats), "--hours", str(hours),
         "--memory-mb", str(memory_mb)],
        capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1584,6336,10000")
    ap.add_argument("--baseline-sizes", default="1584")
    ap.add_argument("--hours", type=float, default=72.0)
    ap.add_argument("--memory-mb", type=float, default=None,
                    help="contacts.memory_mb (default: sinsim's default)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_mb is None:
        from sinsim.space.contacts import DEFAULT_MEMORY_MB
        args.memory_mb = DEFAULT_MEMORY_MB
    if args.child is not None:
        print(json.dumps(child(args.child, args.hours, args.memory_mb)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    baseline = {int(s) for s in args.baseline_sizes.split(",") if s}
    print(f"Walker delta 53 deg at 550 km, {len(STATIONS)} stations ({MASK_DEG:g} deg mask), "
          f"{args.hours:g} h, grid step {STEP_S:g} s, memory_mb {args.memory_mb:g}; "
          f"one fresh process per measurement")
    per_sat_day, peak_gb = {}, {}
    for n in sizes:
        sat_days = n * args.hours / 24.0
        r = measure(n, args.hours, args.memory_mb)
        per_sat_day[n] = r["seconds"] / sat_days
        peak_gb[n] = r["peak_mb"] / 1024
        line = (f"  {n:>6} satellites: {r['windows']:>7} windows, {r['seconds']:7.1f} s, "
                f"peak RSS {r['peak_mb']:7.0f} MB (imports and nodes {r['before_mb']:.0f} MB), "
                f"{per_sat_day[n] * 1e3:.2f} ms per satellite-day")
        print(line, flush=True)
        if n in baseline:
            b = measure(n, args.hours, UNCHUNKED_MB)
            print(f"  {n:>6} one chunk  : {b['windows']:>7} windows, {b['seconds']:7.1f} s, "
                  f"peak RSS {b['peak_mb']:7.0f} MB  -> chunked/one-chunk peak "
                  f"{r['peak_mb'] / b['peak_mb']:.2f}, time {r['seconds'] / b['seconds']:.2f}, "
                  f"same window count: {b['windows'] == r['windows']}", flush=True)
    lo, hi = min(sizes), max(sizes)
    print(f"time_per_sat_day_ratio_{hi}_vs_{lo}: {per_sat_day[hi] / per_sat_day[lo]:.2f}")
    if 10000 in peak_gb:
        print(f"peak_rss_gb_10k: {peak_gb[10000]:.2f}  (target <= {TARGET_GB:g})")
    else:
        print(f"peak_rss_gb_{hi}: {peak_gb[hi]:.2f}  (10,000 not run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
