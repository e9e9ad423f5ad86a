"""Named radio profiles: one complete link-budget parameter set per kind of link.

A :class:`RadioProfile` is a transmitter, a receiver, the band between them, the losses of the
path and the way the radio turns signal into rate (``rate_model``):

- ``acm``: DVB-S2 adaptive coding and modulation (:mod:`sinsim.space.modcod`), the best MODCOD
  (up to ``max_modcod``) whose Es/N0 threshold plus ``implementation_loss_db`` and ``margin_db``
  the link clears, at ``bandwidth_hz / (1 + roll_off)`` symbols per second;
- ``fixed``: a single-rate radio that carries ``data_rate_bps`` while Eb/N0 clears
  ``required_ebn0_db`` plus implementation loss and margin (or, when ``sensitivity_dbw`` is
  given, while the received power does), and nothing otherwise;
- ``shannon``: ``efficiency * bandwidth * log2(1 + SNR)``, capped at ``max_rate_bps``, with SNR
  after implementation loss and margin (the rate model sinsim had before MODCODs).

Each default profile's numbers and where they come from are in ``docs/space.md`` (and in the
comments below); :data:`DEFAULT_PROFILES` chooses one per (transmitting node kind, receiving
node kind). Ground links lose gases (and rain, when given) by elevation
(:mod:`sinsim.space.atmosphere`); links between nodes above the weather lose none.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from .constants import SPEED_OF_LIGHT_M_PER_S
from .modcod import modcod
from .nodes import UAV, GroundStation, Satellite

__all__ = [
    "RadioProfile",
    "RATE_MODELS",
    "PROFILES",
    "DEFAULT_PROFILES",
    "OVERRIDABLE_KEYS",
    "NODE_KINDS",
    "dish_gain_dbi",
    "photon_sensitivity_dbw",
    "radio_profile",
    "default_profile_name",
    "node_kind",
]

RATE_MODELS = ("acm", "fixed", "shannon")
NODE_KINDS = ("ground", "satellite", "uav")
PLANCK_J_S = 6.62607015e-34  # exact, SI 2019


def dish_gain_dbi(
    diameter_m: float, frequency_hz: float, aperture_efficiency: float = 0.6
) -> float:
    """Gain of a circular aperture ``eta (pi D f / c)^2`` in dBi (dishes and telescopes)."""
    if diameter_m <= 0 or frequency_hz <= 0 or not 0 < aperture_efficiency <= 1:
        raise ValueError("diameter_m, frequency_hz must be > 0 and 0 < aperture_efficiency <= 1")
    return 10.0 * math.log10(
        aperture_efficiency * (math.pi * diameter_m * frequency_hz / SPEED_OF_LIGHT_M_PER_S) ** 2
    )


def photon_sensitivity_dbw(photons_per_bit: float, wavelength_m: float,
                           data_rate_bps: float) -> float:
    """Received optical power, dBW, that delivers ``photons_per_bit`` at ``data_rate_bps``."""
    photon_j = PLANCK_J_S * SPEED_OF_LIGHT_M_PER_S / wavelength_m
    return 10.0 * math.log10(photons_per_bit * photon_j * data_rate_bps)


@dataclass(frozen=True)
class RadioProfile:
    """One link's radios and path. Units in the names; losses are positive dB."""

    name: str
    description: str
    rate_model: Literal["acm", "fixed", "shannon"]
    frequency_hz: float
    tx_power_dbw: float
    tx_antenna_gain_dbi: float
    rx_antenna_gain_dbi: float
    system_noise_temp_k: float  # clear sky, antenna at zenith for a ground receiver
    bandwidth_hz: float  # occupied bandwidth (acm: symbol rate x (1 + roll-off))
    pointing_loss_db: float = 0.0
    polarization_loss_db: float = 0.0
    implementation_loss_db: float = 0.0  # modem below its ideal threshold
    margin_db: float = 0.0  # kept in hand on top of the threshold
    zenith_gas_loss_db: float = 0.0  # ground links: scaled by elevation (atmosphere.gas_loss_db)
    rain_rate_mm_per_h: float = 0.0  # ground links: 0 = clear sky
    rain_height_m: float = 5_000.0  # ITU-R P.839 rain height, ~5 km at mid latitudes
    sky_noise: bool = False  # ground receiver: add the sky noise of gases and rain by elevation
    roll_off: float = 0.2  # acm
    max_modcod: str | None = None  # acm: the modem's most efficient MODCOD (None: all 28)
    modulation: str = ""  # fixed: what the radio sends (printed by `sinsim links`)
    data_rate_bps: float | None = None  # fixed
    required_ebn0_db: float | None = None  # fixed
    sensitivity_dbw: float | None = None  # fixed: threshold on received power instead of Eb/N0
    efficiency: float = 0.5  # shannon: fraction of capacity
    max_rate_bps: float | None = None  # shannon: cap (None: none)

    def __post_init__(self):
        if self.rate_model not in RATE_MODELS:
            raise ValueError(f"rate_model must be one of {', '.join(RATE_MODELS)}, "
                             f"got {self.rate_model!r}")
        for key in ("frequency_hz", "system_noise_temp_k", "bandwidth_hz"):
            _check(key, getattr(self, key), positive=True)
        for key in ("tx_power_dbw", "tx_antenna_gain_dbi", "rx_antenna_gain_dbi"):
            _check(key, getattr(self, key))
        for key in ("pointing_loss_db", "polarization_loss_db", "implementation_loss_db",
                    "margin_db", "zenith_gas_loss_db", "rain_rate_mm_per_h"):
            _check(key, getattr(self, key), nonnegative=True)
        _check("rain_height_m", self.rain_height_m, nonnegative=True)
        if self.rain_rate_mm_per_h > 0 and not 1e9 <= self.frequency_hz <= 50e9:
            raise ValueError("rain_rate_mm_per_h: rain attenuation is tabulated for 1-50 GHz")
        if self.rate_model == "acm":
            if not 0 < self.roll_off <= 1:
                raise ValueError(f"roll_off must be in (0, 1], got {self.roll_off!r}")
            if self.max_modcod is not None:
                try:
                    modcod(self.max_modcod)
                except KeyError as e:
                    raise ValueError(f"max_modcod: {e.args[0]}") from None
        elif self.rate_model == "fixed":
            if self.data_rate_bps is None:
                raise ValueError("data_rate_bps is required when rate_model is fixed")
            _check("data_rate_bps", self.data_rate_bps, positive=True)
            if (self.required_ebn0_db is None) == (self.sensitivity_dbw is None):
                raise ValueError("a fixed radio needs exactly one of required_ebn0_db and "
                                 "sensitivity_dbw")
            for key in ("required_ebn0_db", "sensitivity_dbw"):
                if getattr(self, key) is not None:
                    _check(key, getattr(self, key))
        else:
            if not 0 < self.efficiency <= 1:
                raise ValueError(f"efficiency must be in (0, 1], got {self.efficiency!r}")
            if self.max_rate_bps is not None:
                _check("max_rate_bps", self.max_rate_bps, positive=True)

    @property
    def eirp_dbw(self) -> float:
        return self.tx_power_dbw + self.tx_antenna_gain_dbi

    @property
    def g_over_t_db_per_k(self) -> float:
        return self.rx_antenna_gain_dbi - 10.0 * math.log10(self.system_noise_temp_k)

    @property
    def symbol_rate_hz(self) -> float:
        """acm: ``bandwidth / (1 + roll_off)``."""
        return self.bandwidth_hz / (1.0 + self.roll_off)

    def replace(self, **overrides) -> RadioProfile:
        """This profile with ``overrides`` (checked like the profile itself)."""
        return dataclasses.replace(self, **overrides)


def _check(key: str, value, positive: bool = False, nonnegative: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{key} must be > 0, got {value!r}")
    if nonnegative and value < 0:
        raise ValueError(f"{key} must be >= 0, got {value!r}")


# the keys a scenario may override (links.uplink / links.downlink); name and description are
# the profile's own
OVERRIDABLE_KEYS = tuple(f.name for f in dataclasses.fields(RadioProfile)
                         if f.name not in ("name", "description"))

_GS_DISH_M = 3.7  # ground station dish (S/X-band small-satellite station class)
_OPTICAL_WAVELENGTH_M = 1550e-9

PROFILES: dict[str, RadioProfile] = {p.name: p for p in (
    RadioProfile(
        name="leo_xband_dvbs2",
        description="LEO satellite -> ground station: 2 W X-band DVB-S2 ACM transmitter, "
                    "patch antenna, into a 3.7 m dish",
        rate_model="acm",
        frequency_hz=8.2e9,  # EESS (space-to-Earth) allocation 8025-8400 MHz, ITU RR Art. 5
        tx_power_dbw=3.0,  # 2 W RF: CubeSat X-band transmitters (e.g. USU 2 W, 3-50 Mbit/s)
        tx_antenna_gain_dbi=6.0,  # X-band patch, 5-8 dBi; the satellite points it at the station
        rx_antenna_gain_dbi=round(dish_gain_dbi(_GS_DISH_M, 8.2e9), 1),  # 47.8 dBi, eta 0.6
        system_noise_temp_k=150.0,  # X-band LNA + feed + clear zenith sky: G/T ~26 dB/K
        bandwidth_hz=10e6,  # channel; 8.33 Msym/s at roll-off 0.2
        roll_off=0.2,  # DVB-S2's tightest roll-off
        max_modcod="16APSK 9/10",  # PA near saturation: 32APSK needs too much back-off
        pointing_loss_db=1.0,  # 0.5 dish tracking + 0.5 spacecraft attitude
        polarization_loss_db=0.5,  # circular-to-circular axial-ratio mismatch
        implementation_loss_db=1.0,  # demodulator short of Table 13's ideal thresholds
        margin_db=2.0,  # ACM follows the pass: a smaller margin than a fixed-rate link
        zenith_gas_loss_db=0.05,  # ITU-R P.676 standard atmosphere at 8 GHz: ~0.04-0.05 dB
        sky_noise=True,
    ),
    RadioProfile(
        name="leo_sband_command",
        description="ground station -> LEO satellite: 250 kbit/s BPSK S-band command "
                    "uplink from a 10 W amplifier and a 3.7 m dish",
        rate_model="fixed",
        frequency_hz=2.05e9,  # space-operation (Earth-to-space) 2025-2110 MHz, ITU RR Art. 5
        tx_power_dbw=10.0,  # 10 W ground power amplifier
        tx_antenna_gain_dbi=round(dish_gain_dbi(_GS_DISH_M, 2.05e9), 1),  # 35.8 dBi, eta 0.6
        rx_antenna_gain_dbi=3.0,  # wide-beam S-band patch on the satellite
        system_noise_temp_k=500.0,  # receiver NF ~2 dB (170 K) looking at the 290 K Earth
        bandwidth_hz=300e3,  # BPSK at 250 kbit/s, roll-off 0.2
        modulation="BPSK 250 kbit/s",
        data_rate_bps=250e3,  # S-band command uplinks: 200-250 kbit/s (Altunc et al. 2015)
        required_ebn0_db=9.6,  # uncoded BPSK at bit error rate 1e-5: Q(sqrt(2 Eb/N0)) = 1e-5
        pointing_loss_db=0.5,  # dish tracking; the satellite's wide beam needs no pointing
        polarization_loss_db=0.5,
        implementation_loss_db=1.0,
        margin_db=3.0,  # a fixed-rate link's customary margin
        zenith_gas_loss_db=0.035,  # ITU-R P.676 standard atmosphere at 2 GHz
    ),
    RadioProfile(
        name="isl_ka_rf",
        description="satellite <-> satellite: Ka-band RF crosslink, 5 W, 0.3 m steered "
                    "antennas, DVB-S2 ACM in 50 MHz",
        rate_model="acm",
        frequency_hz=23.0e9,  # inter-satellite service 22.55-23.55 GHz, ITU RR Art. 5
        tx_power_dbw=7.0,  # 5 W Ka-band solid-state amplifier
        tx_antenna_gain_dbi=round(dish_gain_dbi(0.3, 23.0e9), 1),  # 35.0 dBi, eta 0.6
        rx_antenna_gain_dbi=round(dish_gain_dbi(0.3, 23.0e9), 1),
        system_noise_temp_k=600.0,  # NF ~3 dB receiver; part of the beam sees the Earth
        bandwidth_hz=50e6,
        roll_off=0.2,
        max_modcod="16APSK 9/10",
        pointing_loss_db=1.0,  # 0.5 per end for a 3 degree beam
        polarization_loss_db=0.5,
        implementation_loss_db=1.0,
        margin_db=2.0,
    ),
    RadioProfile(
        name="isl_optical",
        description="satellite <-> satellite: 1550 nm laser terminal, 1 W, 8 cm telescopes, "
                    "1 Gbit/s on-off keying",
        rate_model="fixed",
        frequency_hz=SPEED_OF_LIGHT_M_PER_S / _OPTICAL_WAVELENGTH_M,  # 1550 nm
        tx_power_dbw=0.0,  # 1 W optical (fibre amplifier)
        tx_antenna_gain_dbi=round(dish_gain_dbi(0.08, SPEED_OF_LIGHT_M_PER_S
                                                / _OPTICAL_WAVELENGTH_M, 0.8), 1),  # 103.2
        rx_antenna_gain_dbi=round(dish_gain_dbi(0.08, SPEED_OF_LIGHT_M_PER_S
                                                / _OPTICAL_WAVELENGTH_M, 0.8), 1),
        system_noise_temp_k=290.0,  # unused: the threshold is on received power
        bandwidth_hz=1e9,
        modulation="OOK 1 Gbit/s",
        data_rate_bps=1e9,
        # a preamplified receiver needing 300 photons per bit (an engineering allowance; the
        # quantum limit of OOK at BER 1e-9 is ~10)
        sensitivity_dbw=round(photon_sensitivity_dbw(300, _OPTICAL_WAVELENGTH_M, 1e9), 2),
        pointing_loss_db=3.0,  # both ends, micro-radian beams
        implementation_loss_db=3.0,  # telescope and fibre-coupling losses, both ends
        margin_db=3.0,
    ),
    RadioProfile(
        name="uav_cband_dvbs2",
        description="UAV -> ground station: 10 W C-band DVB-S2 ACM data link, blade antenna, "
                    "into a 1.2 m tracking dish",
        rate_model="acm",
        frequency_hz=4.7e9,  # C-band 4.4-5.0 GHz, used by UAV payload data links
        tx_power_dbw=10.0,  # 10 W airborne amplifier
        tx_antenna_gain_dbi=3.0,  # vertical blade (omnidirectional in azimuth)
        rx_antenna_gain_dbi=round(dish_gain_dbi(1.2, 4.7e9), 1),  # 33.2 dBi, eta 0.6
        system_noise_temp_k=200.0,
        bandwidth_hz=10e6,
        roll_off=0.2,
        max_modcod="16APSK 9/10",  # as leo_xband_dvbs2: a saturated amplifier
        pointing_loss_db=0.5,  # dish tracking
        polarization_loss_db=3.0,  # linear blade into a circular feed
        implementation_loss_db=1.0,
        margin_db=3.0,  # airframe shadowing and multipath
        zenith_gas_loss_db=0.04,  # ITU-R P.676 at 5 GHz (an overestimate for a UAV: it flies
        # above most of the water vapour)
        sky_noise=True,
    ),
    RadioProfile(
        name="ground_cband_uav",
        description="ground station -> UAV: 10 W C-band DVB-S2 ACM from a 1.2 m dish to a "
                    "blade antenna",
        rate_model="acm",
        frequency_hz=4.7e9,
        tx_power_dbw=10.0,
        tx_antenna_gain_dbi=round(dish_gain_dbi(1.2, 4.7e9), 1),
        rx_antenna_gain_dbi=3.0,
        system_noise_temp_k=500.0,  # the blade sees the 290 K Earth
        bandwidth_hz=10e6,
        roll_off=0.2,
        max_modcod="16APSK 9/10",  # as leo_xband_dvbs2: a saturated amplifier
        pointing_loss_db=0.5,
        polarization_loss_db=3.0,
        implementation_loss_db=1.0,
        margin_db=3.0,
        zenith_gas_loss_db=0.04,
    ),
    RadioProfile(
        name="uav_air_to_air",
        description="UAV <-> UAV: 10 W C-band DVB-S2 ACM between blade antennas",
        rate_model="acm",
        frequency_hz=4.7e9,
        tx_power_dbw=10.0,
        tx_antenna_gain_dbi=3.0,
        rx_antenna_gain_dbi=3.0,
        system_noise_temp_k=500.0,
        bandwidth_hz=10e6,
        roll_off=0.2,
        max_modcod="16APSK 9/10",  # as leo_xband_dvbs2: a saturated amplifier
        implementation_loss_db=1.0,
        margin_db=3.0,
    ),
    # sinsim's defaults before DVB-S2 (Shannon x 0.5, capped, one flat 3 dB of losses): kept
    # so that older results can be reproduced and compared
    RadioProfile(
        name="legacy_xband_shannon",
        description="the X-band downlink sinsim used before MODCODs: Shannon x 0.5 in 10 MHz, "
                    "capped at 50 Mbit/s, flat 3 dB losses",
        rate_model="shannon",
        frequency_hz=8.2e9, tx_power_dbw=3.0, tx_antenna_gain_dbi=6.0,
        rx_antenna_gain_dbi=47.8, system_noise_temp_k=150.0, bandwidth_hz=10e6,
        pointing_loss_db=1.0, polarization_loss_db=0.5, implementation_loss_db=1.5,
        efficiency=0.5, max_rate_bps=50e6,
    ),
    RadioProfile(
        name="legacy_sband_shannon",
        description="the S-band uplink sinsim used before MODCODs: Shannon x 0.5 in 1 MHz, "
                    "capped at 4 Mbit/s, flat 3 dB losses",
        rate_model="shannon",
        frequency_hz=2.05e9, tx_power_dbw=10.0, tx_antenna_gain_dbi=35.8,
        rx_antenna_gain_dbi=3.0, system_noise_temp_k=500.0, bandwidth_hz=1e6,
        pointing_loss_db=1.0, polarization_loss_db=0.5, implementation_loss_db=1.5,
        efficiency=0.5, max_rate_bps=4e6,
    ),
)}

# (transmitting node kind, receiving node kind) -> profile name
DEFAULT_PROFILES: dict[tuple[str, str], str] = {
    ("satellite", "ground"): "leo_xband_dvbs2",
    ("ground", "satellite"): "leo_sband_command",
    ("satellite", "satellite"): "isl_ka_rf",
    ("uav", "ground"): "uav_cband_dvbs2",
    ("ground", "uav"): "ground_cband_uav",
    ("uav", "uav"): "uav_air_to_air",
}


def default_profile_name(tx_kind: str, rx_kind: str) -> str:
    """The default profile from a ``tx_kind`` node to an ``rx_kind`` node (``KeyError``
    saying so when there is none: satellite <-> UAV links need a named profile)."""
    try:
        return DEFAULT_PROFILES[(tx_kind, rx_kind)]
    except KeyError:
        raise KeyError(f"no default radio profile from a {tx_kind} to a {rx_kind}; name one "
                       f"({', '.join(PROFILES)})") from None


def radio_profile(name: str, **overrides) -> RadioProfile:
    """The profile called ``name``, with ``overrides`` (``KeyError`` / ``ValueError`` saying
    what is wrong). A fixed radio's threshold given one way (``required_ebn0_db`` or
    ``sensitivity_dbw``) replaces the profile's threshold given the other way."""
    try:
        base = PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown radio profile {name!r}; one of: {', '.join(PROFILES)}") from None
    for given, other in (("required_ebn0_db", "sensitivity_dbw"),
                         ("sensitivity_dbw", "required_ebn0_db")):
        if given in overrides and other not in overrides:
            overrides[other] = None
    return base.replace(**overrides) if overrides else base


def node_kind(node) -> str:
    """``ground``, ``satellite`` or ``uav``: the kind of node a radio profile is for."""
    for cls, kind in ((GroundStation, "ground"), (Satellite, "satellite"), (UAV, "uav")):
        if isinstance(node, cls):
            return kind
    raise TypeError(f"not a node: {node!r}")
