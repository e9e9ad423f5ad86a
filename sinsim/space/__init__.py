"""The ``space`` room: orbits, visibility, contact plans and radio links.

Pure, vectorised physics on numpy/skyfield/sgp4/pandas only.  Simulated time
is float seconds since the scenario start (see :class:`Timebase`).
"""

from .contacts import ContactPlan, compute_contact_plan, contact_windows
from .eclipse import eclipse_fraction_circular, shadow_windows, sunlit_flags, sunlit_windows
from .links import (
    LinkBudget,
    free_space_path_loss_db,
    link_budget,
    propagation_delay_s,
    rate_bps,
)
from .orbits import (
    UAV,
    ElementAgeWarning,
    GroundStation,
    OMMFormatError,
    PropagationError,
    Satellite,
    TLEFormatError,
    export_tle,
    load_omm,
    load_tle,
    nodes_table,
    positions_itrs_m,
    walker_constellation,
    write_tle_file,
)
from .radios import PROFILES, RadioProfile, radio_profile
from .timebase import Timebase

__all__ = [
    "Timebase",
    "Satellite",
    "GroundStation",
    "UAV",
    "TLEFormatError",
    "OMMFormatError",
    "ElementAgeWarning",
    "PropagationError",
    "walker_constellation",
    "load_tle",
    "load_omm",
    "export_tle",
    "write_tle_file",
    "positions_itrs_m",
    "nodes_table",
    "contact_windows",
    "ContactPlan",
    "compute_contact_plan",
    "RadioProfile",
    "PROFILES",
    "radio_profile",
    "LinkBudget",
    "link_budget",
    "free_space_path_loss_db",
    "propagation_delay_s",
    "rate_bps",
    "sunlit_windows",
    "shadow_windows",
    "sunlit_flags",
    "eclipse_fraction_circular",
]
