"""Command line: parse, load, run, write. No simulation logic lives here.

    python -m sinsim SCENARIO.yaml [--out DIR] [--set key.path=value ...]

Exit status: 0 success; 2 bad input (message names the file and key, no traceback);
1 a failure while running.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from sinsim.errors import InputError

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sinsim",
        description="Simulate federated learning over a Space Information Network.",
        epilog="Other commands: `python -m sinsim contacts SCENARIO.yaml` (only the contact "
               "plan and the nodes), `python -m sinsim plot RESULTS_DIR` (standard figures), "
               "`python -m sinsim sweep SWEEP.yaml` (a grid of runs, see sweeps/tiny.yaml). "
               "Exit status: 0 success, 2 bad input, 1 failure while running.",
    )
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--out", help="results directory (default: results/<scenario name>/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key, e.g. --set training.rounds=3 (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _contacts_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sinsim contacts",
        description="Compute only the contact plan of a scenario and the nodes it built: "
                    "contacts.csv, nodes.csv, nodes.tle.")
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--out", help="output directory (default: results/<scenario name>/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return p


def _plot_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sinsim plot",
        description="Draw the standard figures of a results directory (accuracy, bytes, round "
                    "time, contact timeline, ground tracks: whatever its tables allow) or of a "
                    "sweep directory (one holding runs.csv: each metric against each swept key).")
    p.add_argument("results", help="a results directory (rounds.csv, contacts.csv, ...) or a "
                                   "sweep directory (runs.csv)")
    p.add_argument("--out", help="where to write the figures (default: beside the tables)")
    p.add_argument("--format", dest="formats", action="append", metavar="EXT",
                   help="file format, repeatable (default: png and pdf)")
    return p


def _sweep_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sinsim sweep",
        description="Run a study: a base scenario, a grid over scenario keys and repeats over "
                    "seeds. Each run writes OUT/runs/<run_id>/; OUT/runs.csv (and runs.parquet) "
                    "combines their rounds. Runs that already finished are skipped.")
    p.add_argument("sweep", help="sweep YAML file (e.g. sweeps/tiny.yaml)")
    p.add_argument("--out", help="output directory (default: results/<sweep name>/)")
    p.add_argument("--workers", type=_positive_int, help="worker processes (default: the "
                   "sweep file's executor.workers, else one per core)")
    p.add_argument("--executor", choices=("local", "dask"),
                   help="local process pool or dask.distributed (default: the sweep file's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number > 0, got {text!r}")
    return n


def _sweep(args: argparse.Namespace) -> int:
    from sinsim.studies.sweep import plan_sweep, run_sweep

    plan = plan_sweep(args.sweep, executor=args.executor, workers=args.workers)
    out = Path(args.out) if args.out else Path("results") / plan.name
    r = run_sweep(plan, out, progress=False if args.quiet else None)
    print(f"sweep {plan.name}: {len(plan.runs)} runs: {len(r.done)} done, {len(r.skipped)} "
          f"skipped (already finished), {len(r.failed)} failed "
          f"[{r.executor}, {r.workers} worker{'s' if r.workers != 1 else ''}, {r.wall_s:.1f} s]")
    if r.rerun_changed:
        print(f"  {len(r.rerun_changed)} finished run(s) rerun because their scenario changed")
    print(f"runs in {out}/runs/, index in {out}/runs_index.csv")
    print(f"table: {r.table_paths[0]} ({r.table_rows} rows"
          + (", also runs.parquet)" if len(r.table_paths) > 1 else ")"))
    for run_id, error in r.failed.items():
        print(f"sinsim: run {run_id} failed: {error} (see {out}/runs/{run_id}/error.txt)",
              file=sys.stderr)
    return EXIT_FAILURE if r.failed else EXIT_OK


def _plot(args: argparse.Namespace) -> int:
    from sinsim.studies.plots import plot_results

    try:
        paths = plot_results(args.results, args.out, tuple(args.formats or ("png", "pdf")))
    except (FileNotFoundError, ValueError) as e:  # no tables, unreadable tables, bad --format
        raise InputError(str(e)) from None
    for p in paths:
        print(p)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "contacts":
        args, command = _contacts_parser().parse_args(argv[1:]), _contacts
    elif argv and argv[0] == "plot":
        args, command = _plot_parser().parse_args(argv[1:]), _plot
    elif argv and argv[0] == "sweep":
        args, command = _sweep_parser().parse_args(argv[1:]), _sweep
    else:
        args, command = _parser().parse_args(argv), _run
    try:
        return command(args)
    except InputError as e:
        msg = str(e)
        source = getattr(args, "scenario", None)
        if source and source not in msg:
            msg = f"{source}: {msg}"
        print(f"sinsim: error: {msg}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("sinsim: interrupted; finished rounds are on disk", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as e:  # noqa: BLE001 - a failure while running: exit 1, keep the traceback
        traceback.print_exc()
        print(f"sinsim: run failed: {type(e).__name__}: {e}; finished rounds are on disk",
              file=sys.stderr)
        return EXIT_FAILURE


def _contacts(args: argparse.Namespace) -> int:
    from sinsim.errors import ConfigError
    from sinsim.scenario import load_scenario
    from sinsim.sim.topology import build_topology, write_topology

    scenario = load_scenario(args.scenario, args.overrides)
    if not scenario.clients.orbital:
        raise ConfigError("abstract clients (clients.count) have no contact plan; give walker, "
                          "tle or uavs", key="clients")
    out = Path(args.out) if args.out else Path("results") / scenario.name
    topology = build_topology(scenario)
    write_topology(topology, out)
    w = topology.plan.windows
    print(f"scenario {scenario.name}: {len(topology.clients)} clients, "
          f"{len(topology.servers)} server node(s), {len(w)} contact windows over "
          f"{scenario.horizon / 3600:g} h")
    if len(w):
        print(f"  mean window {w.duration_s.mean():.1f} s, "
              f"{w.client.nunique()} clients with at least one contact")
    print(f"contacts in {out}/")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from sinsim.scenario import load_scenario

    scenario = load_scenario(args.scenario, args.overrides)
    out = Path(args.out) if args.out else Path("results") / scenario.name

    from tqdm.auto import tqdm

    from sinsim.sim.engine import run_scenario

    total = scenario.training.rounds * len(scenario.algorithms)
    disable = True if args.quiet else None  # None: tqdm shows the bar only on a terminal
    t0 = time.perf_counter()
    with tqdm(total=total, unit="round", disable=disable, dynamic_ncols=True) as bar:

        def on_round_end(row: dict) -> None:
            bar.set_description(row["algorithm"])
            bar.set_postfix(clients=f"{row['completed']}/{row['selected']}",
                            acc=f"{row['test_accuracy']:.3f}")
            bar.update(1)

        summary = run_scenario(scenario, out, on_round_end=on_round_end)
    wall = time.perf_counter() - t0
    ds = summary["dataset"]
    print(f"scenario {scenario.name}: {ds['name']} from {ds['source']}, "
          f"{summary['n_clients']} clients, {scenario.training.rounds} rounds")
    for name, s in summary["algorithms"].items():
        print(f"  {name:10s} accuracy {s['final_accuracy']:.4f}  "
              f"up {s['bytes_up_total']:,} B  down {s['bytes_down_total']:,} B  "
              f"sim {s['sim_time_s']:.1f} s")
    print(f"results in {out}/")
    if not bar.disable:
        print(f"host wall time {wall:.1f} s")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
