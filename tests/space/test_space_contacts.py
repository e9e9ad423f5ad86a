"""Contact-window invariants, hand-made geometries, brute-force checks, ContactPlan and its cache."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from space_oracle import assert_same_windows, brute_force_los, brute_force_station

import sinsim.space.contacts as contacts
from sinsim.space.constants import EARTH_RADIUS_M
from sinsim.space.contacts import (
    CSV_COLUMNS,
    WINDOW_COLUMNS,
    ContactPlan,
    compute_contact_plan,
    contact_windows,
)
from sinsim.space.orbits import (
    UAV,
    GroundStation,
    circular_satellite,
    positions_itrs_m,
    walker_constellation,
)
from sinsim.space.timebase import Timebase

H = 21600.0


def _pairs(df):
    return {k: g[["start_s", "end_s"]].to_numpy() for k, g in df.groupby(["client", "server"])}


def test_window_invariants(walker24, madrid_sydney, timebase):
    df = contact_windows(walker24, madrid_sydney(10.0), timebase, H, step_s=45.0)
    assert list(df.columns) == WINDOW_COLUMNS
    assert len(df) > 10
    assert (df.start_s < df.end_s).all() and (df.start_s >= 0).all() and (df.end_s <= H).all()
    assert np.allclose(df.duration_s, df.end_s - df.start_s)
    assert df.equals(df.sort_values(["client", "server", "start_s"]).reset_index(drop=True))
    for w in _pairs(df).values():
        assert np.all(w[1:, 0] > w[:-1, 1])  # never overlap, never touch
    assert df.max_elevation_deg.between(10.0, 90.0).all()


def test_coarse_grid_finds_the_same_short_passes(walker24, madrid_sydney, timebase):
    st = madrid_sydney(30.0)
    fine = contact_windows(walker24, st, timebase, H, step_s=20.0)
    coarse = contact_windows(walker24, st, timebase, H, step_s=300.0)  # longer than many passes
    assert (fine.duration_s < 300.0).sum() > 5
    assert len(fine) == len(coarse)
    assert (
        np.abs(
            fine[["start_s", "end_s"]].to_numpy() - coarse[["start_s", "end_s"]].to_numpy()
        ).max()
        < 1.0
    )


def test_clipping_at_start_and_horizon(walker24, madrid_sydney, start_utc):
    st = madrid_sydney(10.0)[:1]
    tb = Timebase(start_utc)
    first = contact_windows(walker24[:1], st, tb, 86400.0).iloc[0]
    mid = 0.5 * (first.start_s + first.end_s)
    shifted = Timebase(start_utc + timedelta(seconds=mid))  # starts mid-pass
    horizon = 0.5 * (first.end_s - mid)  # ends before the pass does
    df = contact_windows(walker24[:1], st, shifted, horizon)
    assert df[["start_s", "end_s"]].to_numpy().tolist() == [[0.0, horizon]]
    assert df.max_elevation_deg[0] > 10.0


def test_client_station_and_uav_pairs_match_brute_force(walker24, madrid_sydney, timebase):
    madrid = madrid_sydney(10.0)[0]
    # satellite windows seen from the client side (client = station): same as the other way round
    a = contact_windows(walker24[:6], [madrid], timebase, H)
    b = contact_windows([madrid], walker24[:6], timebase, H)
    assert np.allclose(
        a[["start_s", "end_s"]].to_numpy(),
        b.sort_values(["server", "start_s"])[["start_s", "end_s"]].to_numpy(),
    )
    assert b.max_elevation_deg.isna().all()  # the server is not a ground station
    # a UAV flying over a station: elevations computed by hand from positions
    uav = UAV("uav", 2000.0, 60.0, waypoints=[(40.0, -4.5), (40.8, -3.0)])
    st = GroundStation("gs", 40.4, -3.7, 650.0, 20.0)
    df = contact_windows([uav], [st], timebase, 12 * 3600.0, step_s=60.0)
    ref = brute_force_station(uav, st, timebase, 12 * 3600.0)
    assert len(ref) >= 2
    assert_same_windows(zip(df.start_s, df.end_s), ref, 0.6)


def test_isl_symmetric_and_matches_brute_force(walker24, timebase, start_utc):
    hubs = walker_constellation(
        inclination_deg=97.0,
        total=2,
        planes=2,
        phasing=0,
        altitude_m=800e3,
        epoch_utc=start_utc,
        id_prefix="hub",
    )
    kw = dict(max_range_m=4000e3, step_s=60.0)
    ab = contact_windows(walker24[:4], hubs, timebase, H, **kw)
    ba = contact_windows(hubs, walker24[:4], timebase, H, **kw)
    pa, pb = _pairs(ab), {(s, c): w for (c, s), w in _pairs(ba).items()}
    assert pa.keys() == pb.keys() and len(pa) > 2
    for k in pa:
        assert np.allclose(pa[k], pb[k], atol=1e-6)
    assert ab.max_elevation_deg.isna().all()
    for sat in walker24[:2]:
        ref = brute_force_los(
            sat, hubs[0], timebase, H, sphere_radius_m=EARTH_RADIUS_M + 80e3, max_range_m=4000e3
        )
        mine = ab[(ab.client == sat.id) & (ab.server == hubs[0].id)]
        assert_same_windows(zip(mine.start_s, mine.end_s), ref, 0.6)


def _ring_pair(start_utc, separation_deg, altitude_m=550e3):
    """Two satellites in the same equatorial circular orbit, a fixed angle apart: constant geometry."""
    kw = dict(altitude_m=altitude_m, inclination_deg=0.0, epoch_utc=start_utc)
    return (
        circular_satellite("a", arg_latitude_deg=0.0, satnum=1, **kw),
        circular_satellite("b", arg_latitude_deg=separation_deg, satnum=2, **kw),
    )


def test_grazing_sphere_hand_made_geometry(start_utc, timebase):
    r = EARTH_RADIUS_M + 550e3
    # the chord between two points at radius r, 2*theta apart, passes at r*cos(theta) from the centre
    theta_limit = math.degrees(math.acos((EARTH_RADIUS_M + 80e3) / r))  # 21.2 deg for 80 km
    assert 21.0 < theta_limit < 21.5
    for sep, visible in ((2 * theta_limit - 2.0, True), (2 * theta_limit + 2.0, False)):
        a, b = _ring_pair(start_utc, sep)
        df = contact_windows([a], [b], timebase, 7200.0)
        if visible:
            assert df[["start_s", "end_s"]].to_numpy().tolist() == [[0.0, 7200.0]]
        else:
            assert df.empty
    a, b = _ring_pair(start_utc, 2 * theta_limit + 2.0)
    assert (
        len(contact_windows([a], [b], timebase, 7200.0, grazing_altitude_m=0.0)) == 1
    )  # clears the surface
    a, b = _ring_pair(start_utc, 30.0)
    chord = 2 * r * math.sin(math.radians(15.0))  # 3586 km
    assert len(contact_windows([a], [b], timebase, 7200.0, max_range_m=chord + 50e3)) == 1
    assert contact_windows([a], [b], timebase, 7200.0, max_range_m=chord - 50e3).empty


def test_uav_to_satellite_uses_the_surface_not_the_grazing_sphere(start_utc, timebase):
    sat = circular_satellite("s", altitude_m=550e3, inclination_deg=53.0, epoch_utc=start_utc)
    uav = UAV("u", 10e3, 50.0, loiter_center=(10.0, 20.0), loiter_radius_m=5e3)
    df = contact_windows([uav], [sat], timebase, 86400.0)
    assert (
        len(df) >= 1
    )  # a UAV below the 80 km grazing altitude still sees satellites above its horizon


def test_empty_and_invalid_inputs(walker24, timebase):
    st = [GroundStation("g", 0.0, 0.0)]
    empty = contact_windows([], st, timebase, 100.0)
    assert list(empty.columns) == WINDOW_COLUMNS and empty.empty
    with pytest.raises(ValueError, match="horizon_s"):
        contact_windows(walker24[:1], st, timebase, -5.0)
    with pytest.raises(ValueError, match="step_s"):
        contact_windows(walker24[:1], st, timebase, 100.0, step_s=0.0)
    with pytest.raises(ValueError, match="duplicate"):
        contact_windows(walker24[:1] * 2, st, timebase, 100.0)
    with pytest.raises(TypeError):
        contact_windows(["sat"], st, timebase, 100.0)


def test_contact_plan_windows_for_geometry_and_csv(walker24, timebase, tmp_path):
    a = GroundStation("a", 40.4, -3.7, 650.0, 10.0)
    b = GroundStation("b", 41.4, -2.2, 0.0, 10.0)  # ~160 km away: overlapping windows
    sat = walker24[0]
    plan = compute_contact_plan([sat], [a, b], timebase, 86400.0)
    merged = plan.windows_for(sat.id)
    assert merged.shape[1] == 2 and np.all(merged[1:, 0] > merged[:-1, 1])
    union = plan.windows[["start_s", "end_s"]].to_numpy()
    assert merged[:, 0].min() == union[:, 0].min() and merged[:, 1].max() == union[:, 1].max()
    assert len(merged) < len(plan.windows)  # some windows of a and b overlapped and merged
    # geometry inside a window of station a only vs by hand
    wa = plan.windows[plan.windows.server == "a"].iloc[0]
    t = np.array([0.5 * (wa.start_s + wa.end_s), wa.start_s - 600.0])
    rng_m, el = plan.geometry(sat, t)
    pos = positions_itrs_m([sat, a, b], timebase, t)
    d_a, d_b = np.linalg.norm(pos[0] - pos[1], axis=1), np.linalg.norm(pos[0] - pos[2], axis=1)
    assert rng_m[0] == pytest.approx(min(d_a[0], d_b[0]))
    assert el[0] >= 10.0 - 1e-6
    if not ((merged[:, 0] <= t[1]) & (t[1] <= merged[:, 1])).any():
        assert np.isnan(el[1]) and rng_m[1] == pytest.approx(min(d_a[1], d_b[1]))
    out = tmp_path / "contacts.csv"
    plan.to_csv(out, timebase)
    csv = pd.read_csv(out)
    assert list(csv.columns) == CSV_COLUMNS
    assert len(csv) == len(plan.windows)
    assert csv.start_utc[0] == timebase.utc_iso(csv.start_s[0])[0] and csv.end_utc[0].endswith("Z")
    with pytest.raises(KeyError):
        plan.windows_for("nobody")


def test_cache_hit_and_misses(walker24, madrid_sydney, timebase, start_utc, tmp_path, monkeypatch):
    sats, st = walker24[::4], madrid_sydney(10.0)
    kw = dict(cache_dir=tmp_path, step_s=60.0)
    first = compute_contact_plan(sats, st, timebase, H, **kw)
    assert not first.from_cache and len(list(tmp_path.glob("contacts-*.npz"))) == 1
    assert len(first.windows) > 3

    def boom(*a, **k):
        raise AssertionError("recomputed although cached")

    with monkeypatch.context() as m:
        m.setattr(contacts, "contact_windows", boom)
        second = compute_contact_plan(sats, st, timebase, H, **kw)
    assert second.from_cache
    pd.testing.assert_frame_equal(first.windows, second.windows)

    variants = [
        dict(clients=sats[:3]),
        dict(servers=madrid_sydney(12.0)),
        dict(horizon_s=H + 60.0),
        dict(timebase=Timebase(start_utc + timedelta(seconds=1))),
        dict(step_s=30.0),
        dict(max_range_m=3e6),
        dict(grazing_altitude_m=50e3),
        dict(edge_tolerance_s=0.5),
        dict(
            clients=sats[:-1]
            + walker_constellation(
                inclination_deg=53.0,
                total=24,
                planes=6,
                phasing=1,
                altitude_m=551e3,
                epoch_utc=start_utc,
            )[20:21]
        ),
    ]
    for v in variants:
        args = dict(clients=sats, servers=st, timebase=timebase, horizon_s=H, **kw)
        args.update(v)
        plan = compute_contact_plan(
            args.pop("clients"),
            args.pop("servers"),
            args.pop("timebase"),
            args.pop("horizon_s"),
            **args,
        )
        assert not plan.from_cache, v
    n_entries = len(list(tmp_path.glob("contacts-*.npz")))
    assert n_entries == 1 + len(variants)
    # a corrupt entry is recomputed (and rewritten)
    for p in tmp_path.glob("contacts-*.npz"):
        p.write_bytes(b"not a zip file")
    again = compute_contact_plan(sats, st, timebase, H, **kw)
    assert not again.from_cache
    pd.testing.assert_frame_equal(first.windows, again.windows)
    assert compute_contact_plan(sats, st, timebase, H, **kw).from_cache


def test_contact_plan_direct_construction(walker24, madrid_sydney, timebase):
    df = contact_windows(walker24[:2], madrid_sydney(10.0), timebase, H)
    plan = ContactPlan(df, walker24[:2], madrid_sydney(10.0), timebase, H)
    assert "windows" in repr(plan)
    with pytest.raises(ValueError, match="columns"):
        ContactPlan(df.drop(columns=["duration_s"]), walker24[:2], [], timebase, H)


def _same_windows_and_work(a, b):
    pd.testing.assert_frame_equal(a, b)
    ea, eb = a.attrs["evaluations"], b.attrs["evaluations"]
    # probe calls grow with the number of chunks; the samples and the points probed do not
    assert ea["grid_samples"] == eb["grid_samples"] and ea["probe_points"] == eb["probe_points"]


def test_chunked_plan_is_identical(walker24, madrid_sydney, timebase, start_utc):
    uav = UAV("uav", 3000.0, 50.0, loiter_center=(40.4, -3.7), loiter_radius_m=20e3)
    st = madrid_sydney(10.0) + [uav]
    one = contact_windows(walker24, st, timebase, H, step_s=60.0)
    n_t = int(H / 60.0) + 1
    assert contacts.max_chunk_nodes(contacts.DEFAULT_MEMORY_MB, n_t) > len(walker24) + 3
    for memory_mb in (4 * contacts.BYTES_PER_NODE_SAMPLE * n_t / 2**20, 1e-6):
        # 4 nodes a chunk: one client with the 3 servers; then the floor (a pair a chunk)
        many = contact_windows(walker24, st, timebase, H, step_s=60.0, memory_mb=memory_mb)
        assert many.attrs["evaluations"]["probe_calls"] > one.attrs["evaluations"]["probe_calls"]
        _same_windows_and_work(one, many)
    with pytest.raises(ValueError, match="memory_mb"):
        contact_windows(walker24, st, timebase, H, memory_mb=0)
    # satellite pairs (inter-satellite links), chunked by pairs in their order
    pairs = [(i, j) for i in range(12) for j in range(i + 1, 12)]
    kw = dict(step_s=60.0, max_range_m=4000e3)
    one = contacts.pair_windows(walker24[:12], pairs, timebase, H, **kw)
    assert len(one) > 10
    tiny = 3 * contacts.BYTES_PER_NODE_SAMPLE * n_t / 2**20
    many = contacts.pair_windows(walker24[:12], pairs, timebase, H, memory_mb=tiny, **kw)
    _same_windows_and_work(one, many)
    # the cache key does not depend on the budget
    k1 = contacts.plan_cache_key(walker24, st, timebase, H, step_s=60.0)
    k2 = contacts.plan_cache_key(walker24, st, timebase, H, step_s=60.0, memory_mb=1.0)
    assert k1 == k2


def test_pair_chunks_bound_the_nodes():
    pairs = [(c, s) for c in range(10) for s in (10, 11)]
    chunks = contacts._pair_chunks(pairs, 5)
    assert chunks[0] == (0, 6) and chunks[-1][1] == len(pairs)
    assert all(len({i for p in pairs[lo:hi] for i in p}) <= 5 for lo, hi in chunks)
    assert contacts._pair_chunks(pairs, 2)[:2] == [(0, 1), (1, 2)]
