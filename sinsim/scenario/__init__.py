"""Scenario files: YAML -> a frozen, validated :class:`Scenario`.

Every key is checked at load time. Unknown keys are errors with a did-you-mean, types and ranges
are checked, and every message names the file and the key path::

    scenarios/x.yaml: links.uplink.rate_bps: must be > 0, got -5

Durations accept a number of seconds or a string with a unit (``90s``, ``10min``, ``1.5h``,
``3d``); they are stored as float seconds. ``--set key.path=value`` overrides (parsed as YAML
scalars) are applied to the raw mapping before validation, so they are checked like the file.

Modules: ``model`` (the sections and :class:`Scenario`), ``loading``
(files, overrides, error messages).
"""

from sinsim.params import Duration, Float, Int, PositiveDuration, parse_duration_s
from sinsim.scenario.loading import apply_override, load_scenario, validate_scenario
from sinsim.scenario.model import (
    Algorithm,
    BernoulliLoss,
    ByPlanePartition,
    CircularOrbit,
    Clients,
    Compute,
    Contacts,
    DirichletPartition,
    Failures,
    GilbertElliottLoss,
    GroundStationSpec,
    IidPartition,
    LinkDirection,
    Links,
    Loiter,
    Loss,
    NoLoss,
    OMMSource,
    Partition,
    Power,
    Scenario,
    Selection,
    Server,
    ServerSatellite,
    TLESource,
    Training,
    UAVSpec,
    Walker,
)

__all__ = [
    "Algorithm",
    "CircularOrbit",
    "Clients",
    "Compute",
    "Contacts",
    "Duration",
    "Failures",
    "Float",
    "GroundStationSpec",
    "Int",
    "LinkDirection",
    "Links",
    "Loiter",
    "BernoulliLoss",
    "GilbertElliottLoss",
    "Loss",
    "NoLoss",
    "OMMSource",
    "Partition",
    "IidPartition",
    "DirichletPartition",
    "ByPlanePartition",
    "PositiveDuration",
    "Power",
    "Scenario",
    "Selection",
    "Server",
    "ServerSatellite",
    "TLESource",
    "Training",
    "UAVSpec",
    "Walker",
    "apply_override",
    "load_scenario",
    "parse_duration_s",
    "validate_scenario",
]
