"""The bodies of the command line's commands (``run``, ``contacts``, ``links``, ``plot``,
``sweep``, ``table1``, ``report``, ``fidelity``, ``view``): each takes the parsed arguments,
loads, calls the library and prints, and returns the exit status. The parser and the handling of
errors are in :mod:`sinsim.cli`; ``data`` and ``scenarios`` in :mod:`sinsim.cli_more`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sinsim.cli_more import LogProgress, duration, links_csv, load_for_command, plural
from sinsim.errors import InputError
from sinsim.outpaths import OutputPathError, _output_dir, _output_file

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def run_command(args: argparse.Namespace) -> int:
    """``sinsim run``: every algorithm of the scenario, a progress bar (or log lines), a summary."""
    scenario = load_for_command(args)
    _pin_portable(args, scenario.training.portable)
    out = _output_dir(args.out or Path("results") / scenario.name)

    from tqdm.auto import tqdm

    from sinsim.sim.engine import run_scenario

    total = scenario.training.rounds * len(scenario.algorithms)
    terminal = not args.quiet and sys.stderr.isatty()
    log = LogProgress(total) if not args.quiet and not terminal else None
    t0 = time.perf_counter()
    args.started = True
    with tqdm(total=total, unit="round", disable=not terminal, dynamic_ncols=True) as bar:

        def on_round_end(row: dict) -> None:
            bar.set_description(row["algorithm"])
            bar.set_postfix(clients=f"{row['completed']}/{row['selected']}",
                            acc=f"{row['test_accuracy']:.3f}")
            bar.update(1)
            if log is not None:
                log(row)

        summary = run_scenario(scenario, out, on_round_end=on_round_end,
                               resume=getattr(args, "resume", False))
    wall = time.perf_counter() - t0
    ds = summary["dataset"]
    print(f"scenario {scenario.name}: {ds['name']} from {ds['source']}, "
          f"{plural(summary['n_clients'], 'client')}, "
          f"{plural(scenario.training.rounds, 'round')}")
    for name, s in summary["algorithms"].items():
        print(f"  {name:10s} accuracy {s['final_accuracy']:.4f}  "
              f"up {s['bytes_up_total']:,} B  down {s['bytes_down_total']:,} B  "
              f"sim {duration(s['sim_time_s'])}")
    print(f"results in {out}/")
    if not args.quiet:  # on stderr: stdout stays the same from run to run
        print(f"host wall time {duration(wall)}", file=sys.stderr)
    return EXIT_OK


@contextmanager
def _environment(portable: bool) -> Iterator[None]:
    """This process's environment, with the portable pins while inside when ``portable``."""
    if not portable:
        yield
        return
    from sinsim.learn.portable import PINS

    before = dict(os.environ)
    os.environ.update(PINS)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)


def _pin_portable(args: argparse.Namespace, wanted: bool) -> None:
    """``training.portable``: pin torch's kernels (``sinsim.learn.portable``) in this process's
    environment. ATen and MKL read their pins at their first kernel, and loading a scenario runs
    none, so that holds; where it does not (checked), this command re-executes itself (same
    interpreter, same arguments) with the pins, unless ``main`` was called with arguments of its
    own rather than this process's command line: then the environment is left as it was, and
    the engine refuses the run."""
    from sinsim.learn import portable

    if not wanted or portable.pinned():
        return
    before = dict(os.environ)
    portable.pin_this_process()
    if not portable.departures(settings=False):
        return
    if getattr(args, "process_command_line", False):
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, sys.orig_argv, portable.environment())
    os.environ.clear()
    os.environ.update(before)


def contacts_command(args: argparse.Namespace) -> int:
    """``sinsim contacts``: the contact plan and the nodes only."""
    from sinsim.errors import ConfigError
    from sinsim.sim.topology import build_topology, contacts_info, write_topology

    scenario = load_for_command(args)
    if not scenario.clients.orbital:
        raise ConfigError("abstract clients (clients.count) have no contact plan; give walker, "
                          "tle, omm or uavs", key="clients")
    out = _output_dir(args.out or Path("results") / scenario.name)
    topology = build_topology(scenario)
    write_topology(topology, out)
    info = contacts_info(topology)
    print(f"scenario {scenario.name}: {info['clients']} clients, "
          f"{plural(len(info['servers']), 'server node')}, "
          f"{plural(info['windows'], 'contact window')} over {duration(scenario.horizon)}")
    if info["windows"]:
        print(f"  mean window {duration(info['mean_window_s'])}, "
              f"{plural(info['clients_with_contact'], 'client')} with at least one contact")
    print(f"contacts in {out}/")
    return EXIT_OK


def links_command(args: argparse.Namespace) -> int:
    """``sinsim links``: the link budget table as CSV (stdout, and ``--out``)."""
    from sinsim.sim.link_report import link_table

    scenario = load_for_command(args)
    path = _output_file(args.out) if args.out else None
    table = link_table(scenario, args.ranges_km)
    for link, ranges in table.attrs.get("skipped_km", {}).items():
        alt = table.attrs["altitude_km"][link]
        print(f"sinsim: {link}: skipped range(s) {', '.join(f'{r:g}' for r in ranges)} km: "
              f"no elevation gives them at the clients' {alt:g} km altitude (shorter than "
              f"the altitude or beyond the horizon)", file=sys.stderr)
    text = links_csv(table)
    print(text, end="")
    if path:
        path.write_text(text, encoding="utf-8")
    return EXIT_OK


def plot_command(args: argparse.Namespace) -> int:
    """``sinsim plot``: the standard figures of a results or sweep directory."""
    from sinsim.studies.plots import plot_results

    out = _output_dir(args.out, create=False) if args.out else None  # plot_results makes it
    try:
        paths = plot_results(args.results, out, tuple(args.formats or ("png", "pdf")))
    except (FileNotFoundError, ValueError) as e:  # no tables, unreadable tables, bad --format
        raise InputError(str(e)) from None
    for p in paths:
        print(p)
    return EXIT_OK


def sweep_command(args: argparse.Namespace) -> int:
    """``sinsim sweep``: plan and run a sweep; exit 1 when any run failed."""
    from sinsim.sweep import plan_sweep, run_sweep

    if args.scheduler and args.executor == "local":
        raise InputError("--scheduler is for --executor dask, not local")
    from sinsim.bundled import resolve

    args.sweep = str(resolve(args.sweep, "sweeps"))
    plan = plan_sweep(args.sweep, executor=args.executor, workers=args.workers,
                      address=args.scheduler)
    portable = {r.resolved["training"]["portable"] for r in plan.runs}
    if len(portable) > 1:
        from sinsim.errors import ConfigError

        raise ConfigError("the runs of a sweep share their workers' environment: make every "
                          "run portable or none", file=args.sweep, key="training.portable")
    out = _output_dir(args.out or Path("results") / plan.name)
    # every run in a worker process started from here, which inherits the pins
    args.started = True
    with _environment(True in portable):
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


def print_markdown(make: Callable[[], str], out: str | None) -> int:
    """Print a summary of tables (``make`` reads them), and write it to ``out`` when given
    (checked first)."""
    path = _output_file(out) if out else None
    text = make()
    print(text)
    if path:
        path.write_text(text, encoding="utf-8")
    return EXIT_OK


def table1_command(args: argparse.Namespace) -> int:
    """``sinsim table1``: Table I as markdown (and its CSV and figure with ``--out``)."""
    from sinsim.studies.figures import check_formats
    from sinsim.studies.table1 import build

    out = _output_file(args.out) if args.out else None

    def beside(suffix: str) -> Path | None:
        if out is None:
            return None
        path = out.with_suffix(suffix)
        return path if path != out else out.with_name(out.name + suffix)

    csv = _output_file(args.csv, "--csv") if args.csv else beside(".csv")
    fig = _output_file(args.figure, "--figure") if args.figure else beside(".png")
    if fig is not None:
        try:
            check_formats([fig.suffix.lstrip(".")])
        except ValueError as e:
            raise OutputPathError(f"--figure {fig}: {e}") from None
    result = build(args.dirs, args.target)
    text = result.markdown()
    print(text)
    if out:
        out.write_text(text, encoding="utf-8")
    if csv:
        result.write_csv(csv)
    if fig:
        result.plot(fig)
    return EXIT_OK


def report_command(args: argparse.Namespace) -> int:
    """``sinsim report``: the markdown overview of sweeps."""
    from sinsim.studies.report import report

    return print_markdown(lambda: report(args.dirs), args.out)


def fidelity_command(args: argparse.Namespace) -> int:
    """``sinsim fidelity``: the SpaceDML fidelity ablation table."""
    from sinsim.studies.fidelity import markdown

    return print_markdown(lambda: markdown(args.dirs), args.out)


def view_command(args: argparse.Namespace) -> int:
    """``sinsim view``: one self-contained web page of a run."""
    from sinsim.studies.view import view_command as write_view

    return write_view(args.results, args.out)
