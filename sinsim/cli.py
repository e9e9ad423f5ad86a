"""Command line: parse, load, run, write. No simulation logic lives here.

    python -m sinsim SCENARIO.yaml [--out DIR] [--set key.path=value ...] [--quiet]
    python -m sinsim run SCENARIO.yaml ...        # the same
    python -m sinsim contacts SCENARIO.yaml [--out DIR] [--set ...]
    python -m sinsim links SCENARIO.yaml [--range-km 550,1000,2000] [--set ...] [--out FILE.csv]
    python -m sinsim plot DIR [--out DIR] [--format EXT ...]
    python -m sinsim sweep SWEEP.yaml [--out DIR] [--workers N] [--executor local|dask]
                                      [--scheduler tcp://HOST:PORT] [--quiet]
    python -m sinsim table1 DIR... [--target 0.96] [--out FILE.md] [--csv FILE] [--figure FILE]
    python -m sinsim report DIR... [--out FILE]
    python -m sinsim fidelity DIR... [--out FILE]
    python -m sinsim view DIR [--out FILE.html]
    python -m sinsim data list | fetch NAME...
    python -m sinsim scenarios [show NAME]
    python -m sinsim --version

SCENARIO and SWEEP are files, or the names of bundled ones (``tiny``, ``leo_walker``).

Exit status: 0 success; 2 bad input (message names the file and key, no traceback);
1 a failure while running.
"""

from __future__ import annotations

import argparse
import math
import sys
import traceback
from collections.abc import Callable

from sinsim._version import __version__
from sinsim.cli_commands import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_OK,
    contacts_command,
    fidelity_command,
    links_command,
    plot_command,
    report_command,
    run_command,
    sweep_command,
    table1_command,
    view_command,
)
from sinsim.cli_more import (
    OUT_HELP,
    add_data_parser,
    add_scenarios_parser,
    missing_dependencies,
    unknown_command,
)
from sinsim.errors import InputError, WriteFailed
from sinsim.outpaths import OutputPathError, _output_dir, _output_file  # noqa: F401

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_OK", "PROG", "main", "parse_args"]

PROG = "python -m sinsim"
COMMANDS = ("run", "contacts", "links", "plot", "sweep", "table1", "report", "fidelity",
            "view", "data", "scenarios")


# --------------------------------------------------------------------------------- parsers
def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number > 0, got {text!r}")
    return n


def _ranges_km(text: str) -> list[float]:
    """``550,1000,2000``: comma-separated ranges in km, each a finite number > 0."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers > 0 (km), e.g. "
                                         f"550,1000,2000; got {text!r}")
    return values


def _parents() -> dict[str, argparse.ArgumentParser]:
    """The options that several commands share, each declared once."""
    scenario = argparse.ArgumentParser(add_help=False)
    scenario.add_argument("scenario", help="scenario YAML file, or a bundled scenario's name "
                          "(`sinsim scenarios` lists them)")
    scenario.add_argument("--set", dest="overrides", action="append", default=[],
                          metavar="KEY=VALUE", help="override a scenario key, e.g. --set "
                          "training.rounds=3 (repeatable)")
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("--quiet", action="store_true", help="no progress bar")
    dirs = argparse.ArgumentParser(add_help=False)
    dirs.add_argument("dirs", nargs="+", metavar="DIR",
                      help="sweep directories (runs.csv or runs.parquet), combined")
    return {"scenario": scenario, "quiet": quiet, "dirs": dirs}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Simulate federated learning over a Space Information Network. "
                    f"`{PROG} SCENARIO.yaml` is short for `{PROG} run SCENARIO.yaml`.",
        epilog="Exit status: 0 success, 2 bad input, 1 failure while running.")
    p.add_argument("--version", action="version", version=f"sinsim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parent = _parents()

    def command(name: str, run: Callable[[argparse.Namespace], int], parents: list[str],
                help: str, description: str | None = None) -> argparse.ArgumentParser:
        c = sub.add_parser(name, parents=[parent[k] for k in parents if k != "out"], help=help,
                           description=description or help)
        if "out" in parents:
            c.add_argument("--out", metavar="PATH", help=OUT_HELP[name])
        c.set_defaults(run=run)
        return c

    run = command("run", run_command, ["scenario", "out", "quiet"],
                  "run every algorithm of a scenario on the same network and seed",
                  "Run every algorithm a scenario lists on the same network and seed; write the "
                  "results directory (default: results/<scenario name>/).")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in the results directory from its last complete "
                          "round (same scenario only), to the tables an uninterrupted run gives")
    command("contacts", contacts_command, ["scenario", "out"],
            "compute only the contact plan and the nodes",
            "Compute only the contact plan of a scenario and the nodes it built: "
            "contacts.csv, nodes.csv, nodes.tle.")
    links = command(
        "links", links_command, ["scenario", "out"],
        "the rate of each link of a scenario at a few ranges (a CSV table)",
        "The link budget of each kind of link of a scenario (client -> server `up`, server -> "
        "client `down`, inter-satellite `cross`) at a few ranges, without a contact plan: "
        "elevation, SNR, MODCOD, rate, bandwidth, radio profile and C/N0 as CSV. Default "
        "ranges: for ground links the slant ranges at elevations 90-10 degrees and the station "
        "mask (median client altitude); between nodes in space 500-5000 km up to the maximum "
        "range. `links.model: fixed` links show their fixed rates.")
    links.add_argument("--range-km", dest="ranges_km", type=_ranges_km, metavar="KM[,KM...]",
                       help="ranges to evaluate every link at, comma-separated km (ranges a "
                            "ground link cannot have are left out, said on stderr)")
    plot = command(
        "plot", plot_command, ["out"], "draw the standard figures of a results or sweep directory",
        "Draw the standard figures of a results directory (accuracy, bytes, round time, "
        "contact timeline, ground tracks: whatever its tables allow) or of a sweep directory "
        "(one holding runs.csv: each metric against each swept key).")
    plot.add_argument("results", help="a results directory (rounds.csv, contacts.csv, ...) or "
                                      "a sweep directory (runs.csv)")
    plot.add_argument("--format", dest="formats", action="append", metavar="EXT",
                      help="file format, repeatable (default: png and pdf)")
    sweep = command(
        "sweep", sweep_command, ["out", "quiet"], "run a grid of scenarios (see sweeps/tiny.yaml)",
        "Run a study: a base scenario, a grid over scenario keys and repeats over seeds. Each "
        "run writes OUT/runs/<run_id>/; OUT/runs.csv (and runs.parquet) combines their rounds. "
        "Runs that already finished are skipped.")
    sweep.add_argument("sweep", help="sweep YAML file (e.g. sweeps/tiny.yaml), or a bundled "
                       "sweep's name (e.g. paper_table1)")
    sweep.add_argument("--workers", type=_positive_int, help="worker processes (default: the "
                       "sweep file's executor.workers, else one per core)")
    sweep.add_argument("--executor", choices=("local", "dask"),
                       help="local process pool or dask.distributed (default: the sweep file's)")
    sweep.add_argument("--scheduler", metavar="ADDRESS", help="run on the Dask cluster whose "
                       "scheduler is at ADDRESS (tcp://HOST:PORT); implies --executor dask")
    table1 = command("table1", table1_command, ["dirs", "out"],
                     "the seed paper's Table I beside sinsim's, from sweep (or run) directories",
                     "The seed paper's Table I beside sinsim's, per clients-per-round K and "
                     "algorithm: the paper's bit-width and accuracy; sinsim's mean bit-width and "
                     "mean accuracy over the seeds with a 95 % Student-t interval, rounds to the "
                     "target, bytes per device and round each way, the uplink ratio against "
                     "FedAvg. DIRs are sweep directories or single runs' results directories, "
                     "combined. Markdown on stdout (and --out); with --out, the CSV and the "
                     "figure (accuracy against cumulative bytes up) go beside it.")
    table1.add_argument("--target", type=float, default=0.96, help="target accuracy (0.96)")
    table1.add_argument("--csv", metavar="FILE", help="write the table as CSV (default with "
                        "--out: FILE.csv beside it)")
    table1.add_argument("--figure", metavar="FILE", help="write accuracy against cumulative "
                        "bytes up, every cell (default with --out: FILE.png beside it)")
    command("report", report_command, ["dirs", "out"], "a markdown overview of sweeps",
            "A markdown overview of each sweep: per swept value and algorithm, the final "
            "accuracy, the mean round duration, the share of clients averaged and the bytes.")
    command("fidelity", fidelity_command, ["dirs", "out"],
            "the SpaceDML fidelity ablation table of sweeps",
            "The SpaceDML fidelity ablation: per variant, the bit-width of every round (in the "
            "seed's band? declining?), the accuracy and the bytes per client each way.")
    view = command("view", view_command, ["out"], "one self-contained web page of a run (docs/view.md)")
    view.add_argument("results", help="a results directory (nodes.csv, contacts.csv, ...)")
    add_data_parser(sub, parent)
    add_scenarios_parser(sub)
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line, with ``SCENARIO.yaml ...`` (no command word) read as ``run``."""
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        wrong = unknown_command(argv[0], COMMANDS) if argv else None
        if wrong:
            _parser().error(wrong)
        argv = ["run", *argv]
    return _parser().parse_args(argv)


# ------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status."""
    missing = missing_dependencies()
    if missing:  # before anything else: one line that says what to install
        print(f"sinsim: error: missing dependencies: {', '.join(missing)} (pip install "
              f"{' '.join(missing)}; in the clone, `make setup` and .venv/bin/python)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    args.process_command_line = argv is None  # (portable mode may re-execute it)
    try:
        return args.run(args)
    except InputError as e:
        msg = str(e)
        source = getattr(args, "scenario", None)
        if (source and source not in msg and not isinstance(e, OutputPathError)
                and not msg.startswith("--set ")):
            msg = f"{source}: {msg}"
        print(f"sinsim: error: {msg}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"sinsim: interrupted{_on_disk(args)}", file=sys.stderr)
        return EXIT_FAILURE
    except WriteFailed as e:  # a full or read-only disk: one line, no traceback
        print(f"sinsim: run failed: {e}; the finished rounds are on disk: run again with "
              f"--resume once the disk is back", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as e:  # noqa: BLE001 - a failure while running: exit 1, keep the traceback
        traceback.print_exc()
        print(f"sinsim: run failed: {type(e).__name__}: {e}{_on_disk(args)}", file=sys.stderr)
        return EXIT_FAILURE


def _on_disk(args: argparse.Namespace) -> str:
    """What an interrupted or failed command left: only run and sweep write rounds as they go,
    and only once they started."""
    return ("; finished rounds are on disk" if getattr(args, "started", False) else "")



if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
