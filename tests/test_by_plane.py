"""The by_plane partition: the satellites of an orbital plane see a few classes only. Planes from
the elements (``sinsim.space.planes``), shards (``sinsim.learn.partitions``), the scenario
section and the engine's ``prepare``."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from sinsim._rng import rng_for
from sinsim.errors import ConfigError
from sinsim.learn.datasets import partition_dirichlet, partition_iid
from sinsim.learn.partitions import make_partition, partition_by_plane, plane_classes
from sinsim.scenario import ByPlanePartition, DirichletPartition, IidPartition, validate_scenario
from sinsim.sim.engine import prepare
from sinsim.sim.topology import client_planes
from sinsim.space.orbits import UAV, circular_satellite, walker_constellation
from sinsim.space.planes import orbital_planes

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
PLANES, PER_PLANE = 4, 5


def walker(planes=PLANES, per_plane=PER_PLANE, pattern="delta"):
    return walker_constellation(inclination_deg=53, total=planes * per_plane, planes=planes,
                                phasing=1, altitude_m=550e3, epoch_utc=EPOCH, pattern=pattern)


def labels(n=3000, seed=0):
    return np.random.default_rng(seed).integers(0, 10, n)


# --------------------------------------------------------------------------------------------
# planes


@pytest.mark.parametrize("pattern", ["delta", "star"])
def test_planes_of_a_walker_shell_are_index_div_sats_per_plane(pattern):
    sats = walker(pattern=pattern)
    assert orbital_planes(sats) == [i // PER_PLANE for i in range(PLANES * PER_PLANE)]


def test_planes_group_by_raan_within_the_tolerance_across_0_deg():
    # Prepare: element sets as from a TLE file, their RAANs scattered by < 1 deg around
    # 359.5 deg (one plane across 0/360) and 90 deg, another shell at 97 deg inclination
    def sat(i, inc_deg, raan_deg):
        return circular_satellite(f"s{i}", altitude_m=550e3, inclination_deg=inc_deg,
                                  raan_deg=raan_deg, arg_latitude_deg=30.0 * i, epoch_utc=EPOCH)

    nodes = [sat(0, 53.0, 359.5), sat(1, 53.1, 0.3), sat(2, 53.0, 90.0), sat(3, 52.9, 359.0),
             sat(4, 97.0, 0.0), sat(5, 53.0, 90.8)]

    # Execute / Assert
    assert orbital_planes(nodes) == [0, 0, 1, 0, 2, 1]
    assert orbital_planes(nodes, raan_tolerance_deg=0.6) == [0, 1, 2, 0, 3, 4]


def test_a_node_without_an_orbit_has_no_plane():
    uav = UAV("drone", 1000.0, 30.0, loiter_center=(0.0, 0.0), loiter_radius_m=1000.0)
    with pytest.raises(TypeError, match="'drone' is not a satellite"):
        orbital_planes([*walker(), uav])


# --------------------------------------------------------------------------------------------
# shards


def test_by_plane_shards_keep_each_plane_to_its_classes():
    # Prepare: Walker 4 planes x 5 satellites, 3 classes a plane
    planes = orbital_planes(walker())
    y = labels()
    partition = ByPlanePartition(kind="by_plane", classes_per_plane=3)

    # Execute
    shards = make_partition(partition, y, len(planes), seed=7, planes=planes)

    # Assert: labels within the plane's classes, disjoint, none empty, every class seen
    classes = plane_classes(PLANES, 3, 10, rng_for(7, "partition", 1))
    for k, shard in enumerate(shards):
        assert len(shard) > 0
        assert set(y[shard]) <= set(classes[planes[k]].tolist()), k
        # the clients of a plane share its samples: all of its classes, about equal shares
        assert set(y[shard]) == set(classes[planes[k]].tolist())
    everything = np.concatenate(shards)
    assert len(everything) == len(np.unique(everything))  # no sample twice
    assert set(np.concatenate(classes).tolist()) == set(range(10))  # 4 * 3 >= 10
    assert len(everything) == len(y)  # so every sample is used


def test_by_plane_is_deterministic_per_seed():
    planes = orbital_planes(walker())
    y = labels()
    p = ByPlanePartition(kind="by_plane", classes_per_plane=3)
    a = make_partition(p, y, 20, seed=1, planes=planes)
    b = make_partition(p, y, 20, seed=1, planes=planes)
    c = make_partition(p, y, 20, seed=2, planes=planes)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))


@pytest.mark.parametrize(("n_planes", "k"), [(4, 3), (10, 1), (3, 3), (5, 2), (7, 10)])
def test_plane_classes_are_consecutive_blocks_of_a_seeded_order(n_planes, k):
    classes = plane_classes(n_planes, k, 10, np.random.default_rng(3))
    assert all(len(c) == k and len(set(c.tolist())) == k for c in classes)
    seen = set(np.concatenate(classes).tolist())
    assert len(seen) == min(10, n_planes * k)


def test_classes_per_plane_beyond_the_classes_is_refused():
    with pytest.raises(ValueError, match="1..10"):
        plane_classes(4, 11, 10, np.random.default_rng(0))


def test_a_client_left_without_samples_is_an_error_naming_it():
    y = np.array([0, 1, 1, 1])  # class 0 has one sample for the 2 clients of its plane
    with pytest.raises(ValueError, match="gets no sample"):
        partition_by_plane(y, [0, 0, 1, 1], 1, np.random.default_rng(0),
                           np.random.default_rng(1), n_classes=2)


def test_iid_and_dirichlet_draw_as_before():
    y = labels(500)
    old_iid = partition_iid(500, 7, rng_for(5, "partition"))
    old_dir = partition_dirichlet(y, 7, 0.3, rng_for(5, "partition"))
    new_iid = make_partition(IidPartition(), y, 7, 5)
    new_dir = make_partition(DirichletPartition(kind="dirichlet", alpha=0.3), y, 7, 5)
    assert all(np.array_equal(u, v) for u, v in zip(old_iid, new_iid))
    assert all(np.array_equal(u, v) for u, v in zip(old_dir, new_dir))


# --------------------------------------------------------------------------------------------
# scenario and engine


def walker_raw(tmp_path, partition, **clients):
    return {
        "name": "by_plane_test", "seed": 4, "horizon": "1h",
        "clients": clients or {"walker": {"inclination_deg": 53, "total": 20, "planes": 4,
                                          "phasing": 1, "altitude_km": 550}},
        "server": {"ground_stations": [{"id": "gs", "lat_deg": 40.4, "lon_deg": -4.2}]},
        "contacts": {"step": "60s", "cache_dir": str(tmp_path / "cache")},
        "training": {"dataset": "synthetic", "rounds": 1, "clients_per_round": 2,
                     "partition": partition},
    }


def test_prepare_gives_each_satellite_its_planes_classes(tmp_path):
    # Prepare
    scenario = validate_scenario(walker_raw(tmp_path, {"kind": "by_plane",
                                                       "classes_per_plane": 3}))

    # Execute: prepare(scenario) alone builds the nodes itself
    prep = prepare(scenario)

    # Assert
    planes = client_planes(scenario)
    assert planes == [i // PER_PLANE for i in range(20)]
    y = prep.dataset.y_train.numpy()
    for p in range(PLANES):
        seen = {int(c) for k in range(20) if planes[k] == p for c in np.unique(y[prep.shards[k]])}
        assert len(seen) == 3
    assert len(np.unique(np.concatenate(prep.shards))) == sum(len(s) for s in prep.shards)


@pytest.mark.parametrize(("partition", "key", "fragments"), [
    ({"kind": "by_plane"}, "training.partition.classes_per_plane", ["required key is missing"]),
    ({"kind": "by_plane", "classes_per_plane": 0}, "training.partition.classes_per_plane",
     ["must be >= 1", "got 0"]),
    ({"kind": "by_plane", "classes_per_plane": 11}, "training",
     ["partition.classes_per_plane (11)", "10 classes of synthetic"]),
    ({"kind": "by_plane", "classes_per_plane": 2, "raan_tol": 1},
     "training.partition.raan_tol", ["did you mean 'raan_tolerance_deg'?"]),
])
def test_by_plane_section_errors_name_the_key(tmp_path, partition, key, fragments):
    with pytest.raises(ConfigError) as info:
        validate_scenario(walker_raw(tmp_path, partition))
    assert info.value.key == key, str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize("clients", [
    {"count": 20},
    {"uavs": [{"id": "u1", "altitude_m": 1000, "speed_mps": 30,
               "loiter": {"lat_deg": 40, "lon_deg": -4, "radius_m": 2000}}] * 1},
])
def test_by_plane_needs_satellite_clients(tmp_path, clients):
    raw = walker_raw(tmp_path, {"kind": "by_plane", "classes_per_plane": 3}, **clients)
    raw["training"]["clients_per_round"] = 1
    if "count" in clients:
        del raw["server"]
    with pytest.raises(ConfigError) as info:
        validate_scenario(raw)
    assert str(info.value).startswith("training.partition: by_plane needs satellite clients")
