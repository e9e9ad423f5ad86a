"""A transfer as a SimPy process: wait for a window, send, pause at loss of signal, resume.

``transfer`` is a generator to run inside a process (``yield from transfer(...)``). It returns a
:class:`TransferOutcome`. The bits move only inside the channel's windows at the channel's rate;
the last bit reaches the other end one propagation delay later (the delay at the transfer's first
transmission). At a window's end the transfer pauses: ``resume`` keeps the bits already sent,
``restart`` starts the payload again at the next window. Anything not delivered by
``deadline_s`` times out there. A lost transfer (decided up front by the caller, from a keyed
random stream; or a callable deciding from the segments on the air, for bursty channels)
occupies the link as long as a delivered one and ends ``dropped``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import simpy

from sinsim.sim.antennas import Antennas
from sinsim.sim.channel import Channel
from sinsim.sim.ledger import HopPower


@dataclass
class TransferOutcome:
    n_bytes: int
    start_s: float
    end_s: float = math.nan
    status: str = "pending"  # delivered | dropped | timeout
    pauses: int = 0
    bits_sent: float = 0.0  # bits put on the link, counting restarted ones
    transmit_s: float = 0.0  # time spent transmitting (not waiting for a pass)
    segments: list[tuple[float, float]] = field(default_factory=list)  # (start_s, end_s) on air

    @property
    def mean_rate_bps(self) -> float:
        return self.bits_sent / self.transmit_s if self.transmit_s > 0 else math.nan

    @property
    def wait_s(self) -> float:
        return (self.end_s - self.start_s) - self.transmit_s


def transfer(env: simpy.Environment, channel: Channel, n_bytes: int, deadline_s: float, *,
             lost: bool | Callable[[list[tuple[float, float]]], bool] = False,
             policy: str = "resume", antenna: Antennas | None = None, peer: str | None = None,
             power: HopPower | None = None):
    """Send ``n_bytes`` over ``channel`` (see the module). ``antenna``: one of a station's
    antennas is held while the bits are on the air (a transfer waits in the window for a free
    one, first come first served, and tries the next window if none frees in this one); one
    that last served another satellite than ``peer`` (the link's other end) first slews
    (``antenna.slew_s`` after it let go, holding the antenna meanwhile). ``power``: the
    batteries at the hop's ends (:class:`sinsim.sim.ledger.HopPower`): before each segment
    goes on the air the sender's must afford it, for that segment's airtime at this link's
    rate (else the transfer waits for charge, as for a window, and times out at the deadline);
    then the ends pay for it."""
    out = TransferOutcome(n_bytes=n_bytes, start_s=env.now)
    bits_left = 8.0 * n_bytes
    delay_s: float | None = None
    t = env.now  # the transfer's own clock: exact window edges, no float drift from env.now
    while True:
        window = channel.next_window(t)
        if window is None or window[0] >= deadline_s:
            return (yield from _time_out(env, out, deadline_s))
        t, end = window
        if t > env.now:
            yield env.timeout(t - env.now)
        if antenna is not None:
            result = yield from _with_antenna(env, channel, antenna, peer, out, bits_left, t,
                                              end, deadline_s, delay_s, lost, power)
            if isinstance(result, TransferOutcome):
                return result
            bits_left, t, delay_s = result
            if policy != "resume" and bits_left < 8.0 * n_bytes:
                bits_left = 8.0 * n_bytes
            continue
        if power is not None:
            start_s = _charged_from(power, channel, bits_left, t, end, deadline_s)
            if start_s > t:  # waits for charge (then for the window it falls in)
                t = start_s
                continue
        if delay_s is None:
            delay_s = float(channel.delay_s(t))
        done_s = channel.rate.time_for(t, bits_left)
        if done_s <= end and done_s <= deadline_s:  # the last bit leaves in this window
            _on_air(out, power, t, done_s, bits_left)
            if done_s + delay_s > deadline_s:  # ... but arrives after the round closed
                yield env.timeout(done_s - env.now)
                return (yield from _time_out(env, out, deadline_s))
            yield env.timeout(done_s + delay_s - env.now)
            return _landed(out, env.now, lost)
        stop_s = min(end, deadline_s)
        sent = channel.rate.bits(t, stop_s)
        _on_air(out, power, t, stop_s, sent)
        yield env.timeout(stop_s - env.now)
        t = stop_s
        if stop_s >= deadline_s:
            return (yield from _time_out(env, out, deadline_s))
        out.pauses += 1  # loss of signal: the window closed mid-transfer
        bits_left = bits_left - sent if policy == "resume" else 8.0 * n_bytes


def _with_antenna(env, channel: Channel, antenna: Antennas, peer: str | None,
                  out: TransferOutcome, bits_left: float, t: float, end: float,
                  deadline_s: float, delay_s: float | None, lost, power: HopPower | None):
    """One window of :func:`transfer` holding an antenna while on the air (slewing to
    ``peer`` first if it pointed elsewhere; giving it back to wait for charge): the outcome
    when the transfer ended in it, else ``(bits_left, t, delay_s)`` to go on from."""
    stop_s = min(end, deadline_s)
    with antenna.request() as turn:
        got = yield turn | env.timeout(max(0.0, stop_s - env.now))
        if turn in got:
            held, ready_s = antenna.take(peer)
            t = max(t, env.now, ready_s)
            if t >= stop_s:  # still slewing when the window closes: this window is lost
                antenna.give_back(held)
        if turn not in got or t >= stop_s:  # no antenna free (and pointed) in the window
            if stop_s >= deadline_s:
                return (yield from _time_out(env, out, deadline_s))
            return bits_left, end, delay_s
        if t > env.now:  # slewing
            yield env.timeout(t - env.now)
        if power is not None:
            start_s = _charged_from(power, channel, bits_left, t, end, deadline_s)
            if start_s > t:  # not yet: the antenna goes back while the sender charges
                antenna.give_back(held)
                return bits_left, start_s, delay_s
        if delay_s is None:
            delay_s = float(channel.delay_s(t))
        done_s = channel.rate.time_for(t, bits_left)
        finish = done_s <= end and done_s <= deadline_s
        last_s = done_s if finish else stop_s
        sent = bits_left if finish else channel.rate.bits(t, stop_s)
        _on_air(out, power, t, last_s, sent)
        yield env.timeout(last_s - env.now)
        antenna.give_back(held, peer, last_s)
    if finish:  # the antenna is free once the last bit left
        if done_s + delay_s > deadline_s:
            return (yield from _time_out(env, out, deadline_s))
        yield env.timeout(done_s + delay_s - env.now)
        return _landed(out, env.now, lost)
    if stop_s >= deadline_s:
        return (yield from _time_out(env, out, deadline_s))
    out.pauses += 1  # loss of signal
    return bits_left - sent, stop_s, delay_s


def _charged_from(power: HopPower, channel: Channel, bits_left: float, t: float, end: float,
                  deadline_s: float) -> float:
    """The earliest time ``>= t`` the sender can afford the segment that would start at ``t``
    (its airtime: until the last bit, the window's end or the deadline, whichever is first)."""
    last_s = min(channel.rate.time_for(t, bits_left), end, deadline_s)
    return power.earliest_start(t, max(0.0, last_s - t))


def _on_air(out: TransferOutcome, power: HopPower | None, start_s: float, end_s: float,
            bits: float) -> None:
    """A segment goes on the air now (``start_s``): recorded, and paid for by the ends."""
    out.segments.append((start_s, end_s))
    out.transmit_s += end_s - start_s
    out.bits_sent += bits
    if power is not None:
        power.on_air(start_s, end_s)


def _landed(out: TransferOutcome, end_s: float, lost) -> TransferOutcome:
    """``out`` as it ends at ``end_s`` with its last bit there: dropped when ``lost`` (a flag, or
    a function of the segments sent) says so, else delivered."""
    out.end_s = end_s
    is_lost = lost(out.segments) if callable(lost) else lost
    out.status = "dropped" if is_lost else "delivered"
    return out


def _time_out(env: simpy.Environment, out: TransferOutcome, deadline_s: float):
    if deadline_s > env.now:
        yield env.timeout(deadline_s - env.now)
    out.end_s = deadline_s
    out.status = "timeout"
    return out
