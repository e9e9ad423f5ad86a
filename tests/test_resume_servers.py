"""``--resume`` for the asynchronous and hierarchical servers: a run stopped after any version
(round) continues to the tables of an uninterrupted run. The asynchronous one replays the run
to its checkpoint from the trainings it logged; hierfl carries its late updates over."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sinsim.learn.training import LocalTrainer
from sinsim.scenario import validate_scenario
from sinsim.sim import checkpoint
from sinsim.sim.engine import run_scenario
from tests.test_async import _scenario as async_scenario
from tests.test_hierfl import raw
from tests.test_power_run import scenario as power_scenario
from tests.test_resume import _Stop, _stop_after

TABLES = ("rounds.csv", "transfers.csv", "clients.csv", "hops.csv")


@pytest.fixture(scope="module", autouse=True)
def _small_data(small_synthetic):
    """``synthetic_small`` (tests/conftest.py): these runs check tables, not learning."""


def _assert_same_tables(a: Path, b: Path) -> None:
    for t in TABLES:
        ta = pd.read_csv(a / t).drop(columns="host_wall_s", errors="ignore")
        tb = pd.read_csv(b / t).drop(columns="host_wall_s", errors="ignore")
        pd.testing.assert_frame_equal(ta, tb, check_exact=True, obj=t)


def _host_time_aside(summary):
    return {k: {**v, "host_wall_s": None} for k, v in summary["algorithms"].items()}


def _stopped_then_resumed(scenario, out: Path, stopped_after: int, again: int = 0):
    """Run ``scenario`` into ``out``, stopped after ``stopped_after`` rows (and the resumed
    run stopped again after ``again`` more rows, if any); the checkpoint it left; then resume
    it; the summary."""
    with pytest.raises(_Stop):
        run_scenario(scenario, out, on_round_end=_stop_after(stopped_after))
    if again:
        with pytest.raises(_Stop):
            run_scenario(scenario, out, on_round_end=_stop_after(again), resume=True)
    cp = checkpoint.load(out)
    assert cp is not None
    # the log's entries: a file each (the synchronous and hierarchical servers have none)
    assert len(list(out.glob(f"{checkpoint.LOG}/*.npz"))) == len(cp.current.log or {})
    with open(out / "rounds.csv", "a") as f:  # a torn row, as a kill mid-write would leave
        f.write("x,9,0.0,")
    return cp, run_scenario(scenario, out, resume=True)


# ---------------------------------------------------------------------------------------------
# asynchronous: FedAsync (newest-model handover), FedBuff (a buffer that fills across versions)


def _async(workers: int = 1):
    return async_scenario([{"fedasync": {"concurrency": 3}},
                           {"fedbuff": {"concurrency": 4, "buffer_size": 3}}],
                          rounds=5, clients=8, loss={"kind": "bernoulli", "p": 0.25},
                          workers=workers)


class _CountTraining:
    """Counts the local trainings (``LocalTrainer.train`` calls) while it is on."""

    def __init__(self, monkeypatch):
        self.calls = 0
        train = LocalTrainer.train

        def counted(trainer, *args, **kwargs):
            self.calls += 1
            return train(trainer, *args, **kwargs)
        monkeypatch.setattr(LocalTrainer, "train", counted)


@pytest.fixture(scope="module")
def async_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("async_reference")
    with pytest.MonkeyPatch.context() as mp:
        count = _CountTraining(mp)
        summary = run_scenario(_async(), out)
    return out, summary, count.calls


@pytest.mark.slow  # three small engine runs (~10 s)
@pytest.mark.parametrize("stopped_after", [2, 7])  # FedAsync's version 2; FedBuff's version 2
def test_an_async_run_resumes_to_the_uninterrupted_tables(async_reference, tmp_path,
                                                          monkeypatch, stopped_after):
    ref, ref_summary, ref_trainings = async_reference
    count = _CountTraining(monkeypatch)
    again = 2 if stopped_after == 7 else 0  # FedBuff: stopped at version 2, then at 4
    cp, summary = _stopped_then_resumed(_async(), tmp_path, stopped_after, again)

    # the checkpoint holds the trainings so far, some of dispatches still in flight
    state = cp.current
    assert state.label == ("fedasync" if stopped_after == 2 else "fedbuff")
    assert len(state.rows) == (2 if stopped_after == 2 else 4)
    logged = state.log
    clients = pd.read_csv(tmp_path / "clients.csv")
    done = clients[(clients.algorithm == state.label) & (clients["round"] <= len(state.rows))]
    assert len(logged) > (done.down_status == "delivered").sum()
    assert all(isinstance(data["update"]["payload"], np.ndarray) for data in logged.values())
    # the stopped run trained what it logged, the resumed one only the rest: together, what
    # the uninterrupted run trained, each once
    assert count.calls == ref_trainings

    _assert_same_tables(ref, tmp_path)
    assert summary["status"] == "complete"
    assert summary["resumed_from"] == {"rounds_done": stopped_after + again}
    assert _host_time_aside(summary) == _host_time_aside(ref_summary)
    assert checkpoint.load(tmp_path) is None  # removed once complete, with its log
    assert not (tmp_path / checkpoint.LOG).exists()


@pytest.mark.slow  # two small engine runs with a training pool (~15 s)
def test_an_async_run_with_two_processes_resumes_to_the_uninterrupted_tables(async_reference,
                                                                             tmp_path):
    # the replay takes the logged trainings and queues none of them on the pool; the
    # trainings after the checkpoint go through the pool: the tables of one process, unbroken
    ref, ref_summary, _ = async_reference
    _, summary = _stopped_then_resumed(_async(workers=2), tmp_path, 7)
    _assert_same_tables(ref, tmp_path)
    assert summary["training_processes"] == 2
    assert _host_time_aside(summary) == _host_time_aside(ref_summary)


@pytest.mark.slow  # two small engine runs (~5 s)
def test_an_async_checkpoint_that_does_not_replay_is_refused(tmp_path):
    scenario = async_scenario([{"fedasync": {"concurrency": 3}}], rounds=3, clients=8)
    with pytest.raises(_Stop):
        run_scenario(scenario, tmp_path, on_round_end=_stop_after(2))
    cp = checkpoint.load(tmp_path)
    cp.current.rows[1]["bytes_up"] += 1  # a version the replay does not make again
    checkpoint.save(tmp_path, cp)
    with pytest.raises(checkpoint.CheckpointError, match=r"version 2 \(bytes_up: "):
        run_scenario(scenario, tmp_path, resume=True)

    cp.current.rows[1]["bytes_up"] -= 1
    name = next(iter(cp.current.global_state))
    cp.current.global_state[name] = cp.current.global_state[name] + 1  # not the replay's model
    checkpoint.save(tmp_path, cp)
    with pytest.raises(checkpoint.CheckpointError, match=f"another global model \\(at {name}"):
        run_scenario(scenario, tmp_path, resume=True)

    first = next(iter(cp.current.log.values()))
    cp.current.log = {"b1c99": first}  # not the training it names
    checkpoint.save(tmp_path, cp)
    with pytest.raises(checkpoint.CheckpointError, match="does not fit"):
        run_scenario(scenario, tmp_path, resume=True)

    next((tmp_path / checkpoint.LOG).glob("*-b1c99.npz")).unlink()  # a log entry lost
    with pytest.raises(checkpoint.CheckpointError, match="damaged"):
        run_scenario(scenario, tmp_path, resume=True)


# ---------------------------------------------------------------------------------------------
# hierfl: late updates kept over a checkpoint


def _hier(tmp: Path):
    """tests/test_hierfl_both_ways.py's run: a 3 h deadline and slow computers (an update
    takes ~1.5 h), so some members are late and their updates kept for the next round."""
    return validate_scenario({**raw(training__round_deadline="3h", training__rounds=3,
                                    compute={"flops_per_s": 1.5e5}, algorithms=["hierfl"]),
                              "contacts": {"cache_dir": str(tmp / "contacts")}})


@pytest.mark.slow  # three small engine runs (~20 s)
def test_a_hierfl_run_resumes_with_its_kept_updates(tmp_path):
    ref = tmp_path / "ref"
    ref_summary = run_scenario(_hier(tmp_path), ref)
    out = tmp_path / "out"
    cp, summary = _stopped_then_resumed(_hier(tmp_path), out, 1)

    kept = cp.current.server["kept"]
    assert sum(len(updates) for _, updates in kept) > 0  # late updates crossed the checkpoint
    transfers = pd.read_csv(out / "transfers.csv")
    assert ((transfers["round"] == 2) & (transfers.direction == "carry")).any()
    _assert_same_tables(ref, out)
    assert _host_time_aside(summary) == _host_time_aside(ref_summary)

    # a checkpoint whose kept updates are not the scenario's is refused
    with pytest.raises(_Stop):
        run_scenario(_hier(tmp_path), out, on_round_end=_stop_after(1))
    cp = checkpoint.load(out)
    plane = next(p for p, updates in cp.current.server["kept"] if updates)
    cp.current.server["kept"] = [[plane + 1, updates] for p, updates in cp.current.server["kept"]
                                 if p == plane]  # another plane's satellites
    checkpoint.save(out, cp)
    with pytest.raises(checkpoint.CheckpointError, match=f"not one of plane {plane + 1}'s"):
        run_scenario(_hier(tmp_path), out, resume=True)
    cp.current.server["kept"] = [[99, []]]  # a plane the scenario does not have
    checkpoint.save(out, cp)
    with pytest.raises(checkpoint.CheckpointError, match="plane 99 is not one of the scen"):
        run_scenario(_hier(tmp_path), out, resume=True)


# ---------------------------------------------------------------------------------------------
# asynchronous with batteries and error feedback


def _powered(tmp: Path):
    """tests/test_power_run.py's satellites, whose batteries gate training, under FedAsync
    with top-k updates (error feedback: a residual a client)."""
    sc = power_scenario(tmp, routing="relay", isl={"rate_bps": 50e6, "max_range_km": 6000})
    raw_ = sc.resolved()
    raw_["training"] = {**raw_["training"], "dataset": "synthetic_small", "rounds": 4}
    raw_["algorithms"] = [{"fedasync": {"concurrency": 4,
                                        "update": {"kind": "topk", "fraction": 0.1}}}]
    return validate_scenario(raw_)


@pytest.mark.slow  # three small engine runs (~15 s)
def test_an_async_run_with_batteries_and_error_feedback_resumes(tmp_path):
    ref = tmp_path / "ref"
    ref_summary = run_scenario(_powered(tmp_path), ref)
    out = tmp_path / "out"
    cp, summary = _stopped_then_resumed(_powered(tmp_path), out, 2)

    state = cp.current
    assert state.strategy["residuals"]  # error feedback: some clients hold a residual
    assert any(b is not None for b in state.batteries)
    _assert_same_tables(ref, out)
    pd.testing.assert_frame_equal(pd.read_csv(ref / "power.csv"), pd.read_csv(out / "power.csv"),
                                  check_exact=True)
    assert _host_time_aside(summary) == _host_time_aside(ref_summary)
