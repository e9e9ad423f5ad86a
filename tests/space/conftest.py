"""Fixtures for the space tests."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from sinsim.space.orbits import GroundStation, walker_constellation
from sinsim.space.timebase import Timebase

DATA = Path(__file__).resolve().parents[1] / "data"
START = datetime(2020, 5, 7, tzinfo=timezone.utc)  # within a day of the sample TLEs' epochs


@pytest.fixture(scope="session")
def start_utc():
    return START


@pytest.fixture(scope="session")
def timebase():
    return Timebase(START)


@pytest.fixture(scope="session")
def starlink_tle_path():
    return DATA / "starlink_sample.tle"


@pytest.fixture(scope="session")
def walker24():
    return walker_constellation(
        inclination_deg=53.0, total=24, planes=6, phasing=1, altitude_m=550e3, epoch_utc=START
    )


@pytest.fixture(scope="session")
def madrid_sydney():
    def make(mask_deg):
        return [
            GroundStation("madrid", 40.4168, -3.7038, 650.0, mask_deg),
            GroundStation("sydney", -33.8688, 151.2093, 0.0, mask_deg),
        ]

    return make
