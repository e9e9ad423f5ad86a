"""SpaceDML client-round schedules: parsing, presets, and the errors that name the item."""

from __future__ import annotations

import pytest

from sinsim.errors import ConfigError
from sinsim.learn.schedule import PRESETS, describe, epochs_of, parse_schedule
from sinsim.scenario import validate_scenario


def test_presets_expand_to_their_phases():
    assert parse_schedule("sequential") == (("prune", 1),) * 3 + (
        ("basis", 1), ("coordinate", 1), ("ste", 1))
    assert parse_schedule("interleaved") == (("prune", 1), ("basis", 1), ("coordinate", 1)) * 3 \
        + (("ste", 1),)
    assert set(PRESETS) == {"sequential", "interleaved"}


def test_items_epochs_and_repeats():
    steps = parse_schedule([{"prune": 4}, {"repeat": 2, "do": ["basis", {"coordinate": 2}]},
                            "ste"])
    # Assert: {prune: 4} is one phase over four epochs
    assert steps == (("prune", 4), ("basis", 1), ("coordinate", 2), ("basis", 1),
                     ("coordinate", 2), ("ste", 1))
    assert epochs_of(steps) == {"prune": 4, "basis": 2, "coordinate": 4, "ste": 1}
    assert describe(steps).startswith("prune:4 basis coordinate:2")


@pytest.mark.parametrize("value, needle", [
    ("foo", "unknown schedule preset 'foo'"),
    ([], "the schedule is empty"),
    (["prune", "bassis"], "item 1: unknown phase 'bassis' (did you mean 'basis'?)"),
    ([{"prune": 0}], "item 0.prune: a whole number >= 1, got 0"),
    ([{"prune": True}], "item 0.prune: a whole number >= 1, got True"),
    ([{"repeat": 2}], "item 0: a repeat needs exactly the keys `repeat` and `do`"),
    ([{"repeat": 2, "do": ["ste", "stee"]}], "item 0.do item 1: unknown phase 'stee'"),
    ([{"repeat": 2, "do": []}], "item 0.do: a non-empty list of phases"),
    ([{"prune": 1, "basis": 1}], "item 0: a phase name, {phase: epochs}"),
    (7, "a schedule is a preset name or a list of phases, got 7"),
])
def test_bad_schedules_name_the_item(value, needle):
    with pytest.raises(ValueError) as e:
        parse_schedule(value)
    assert needle in str(e.value)


def test_scenario_errors_give_the_key_path():
    with pytest.raises(ConfigError) as e:
        validate_scenario({"name": "x", "clients": {"count": 3},
                           "training": {"clients_per_round": 2},
                           "algorithms": ["fedavg", {"spacedml": {"schedule": ["prnue"]}}]})
    assert e.value.key == "algorithms.1.schedule"
    assert "did you mean 'prune'" in str(e.value)
    with pytest.raises(ConfigError) as e:
        validate_scenario({"name": "x", "clients": {"count": 3},
                           "training": {"clients_per_round": 2},
                           "algorithms": [{"spacedml": {"moments": "kept"}}]})
    assert e.value.key == "algorithms.0.moments"
