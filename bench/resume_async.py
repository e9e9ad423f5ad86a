"""What ``--resume`` saves an asynchronous run: FedBuff on ``scenarios/tiny.yaml`` (concurrency 8,
buffer 4, 10 versions, one process) is stopped after version ``--stop`` (as a kill after that
version's checkpoint would leave it), then resumed. Prints the host seconds of the stopped run,
of the resumed one, and of the resumed one's replay (from the algorithm's start to the
checkpoint's last version made again from the log), the checkpoint's size on disk, and last
the headline ``resume_async_replay_over_stopped``: replay / stopped run::

    SINSIM_DATA_DIR=data python bench/resume_async.py [--stop 7] [--out /tmp/resume_async]

Host times depend on the machine and its load; the replay trains and evaluates nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import time
from pathlib import Path

from sinsim.scenario import load_scenario
from sinsim.sim import async_server, checkpoint, engine


class _Stop(Exception):
    pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stop", type=int, default=7, help="versions before the stop (< 10)")
    ap.add_argument("--out", default="/tmp/resume_async")
    args = ap.parse_args()
    sc = load_scenario("scenarios/tiny.yaml", [
        "training.workers=1", "training.portable=false", "training.rounds=10",
        "algorithms=[{fedbuff: {concurrency: 8, buffer_size: 4}}]"])
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    seen = []

    def stop(row):
        seen.append(row)
        if len(seen) == args.stop:
            raise _Stop

    t0 = time.perf_counter()
    with contextlib.suppress(_Stop):
        engine.run_scenario(sc, out, on_round_end=stop)
    stopped_s = time.perf_counter() - t0
    cp = checkpoint.load(out)
    log_bytes = sum(p.stat().st_size for p in (out / checkpoint.LOG).glob("*.npz"))
    npz_bytes = (out / checkpoint.CHECKPOINT).stat().st_size

    marks: dict[str, float] = {}
    check, run_async = async_server._Replay.check, engine.run_async

    def timed_check(self, tables, *rest):
        row = check(self, tables, *rest)
        if tables[0]["round"] == self.versions:
            marks["replayed"] = time.perf_counter()
        return row

    def timed_run_async(*a, **k):
        marks["start"] = time.perf_counter()
        return run_async(*a, **k)

    async_server._Replay.check, engine.run_async = timed_check, timed_run_async
    t0 = time.perf_counter()
    engine.run_scenario(sc, out, resume=True)
    resumed_s = time.perf_counter() - t0
    print(f"stopped after version {len(cp.current.rows)} ({len(cp.current.log)} trainings "
          f"logged): checkpoint.npz {npz_bytes:,} B, checkpoint.log/ {log_bytes:,} B")
    print(f"stopped_run_s {stopped_s:.2f}  resumed_run_s {resumed_s:.2f}  "
          f"replay_s {marks['replayed'] - marks['start']:.2f}")
    # the headline: what the replay costs, as a fraction of the run it stands in for
    print(f"resume_async_replay_over_stopped: {(marks['replayed'] - marks['start']) / stopped_s:.3f}")


if __name__ == "__main__":
    main()
