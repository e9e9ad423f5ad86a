"""One self-contained web page per run: the constellation moving over a map with the links that
are up and the transfers in flight, a per-round timeline of every selected client, accuracy
curves and the run's summary.

    python -m sinsim view results/leo_isl                 # results/leo_isl/view.html
    python -m sinsim view results/leo_isl --out run.html

The page embeds plotly.js and every datum (no request leaves it: no CDN, no map tiles, the
coastlines ship with sinsim) and opens offline in a browser; :func:`show` puts it inside a
Jupyter notebook. Needs the ``view`` extra (``pip install 'sinsim[view]'``: plotly).
"""

from __future__ import annotations

import html
import json
import warnings
from pathlib import Path

from sinsim.errors import InputError
from sinsim.studies.tables import results_path

__all__ = ["build_page", "write_page", "show", "view_command", "PAGE_NAME"]

PAGE_NAME = "view.html"


def _plotly():
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise InputError("the view needs plotly: pip install 'sinsim[view]' "
                         "(or pip install plotly)") from None


def _summary_html(run, sc) -> str:
    s = run.summary
    rows = [("results", str(run.path)), ("scenario", s.get("scenario", "?")),
            ("seed", s.get("seed", "?")), ("status", s.get("status", "(no summary.json)")),
            ("start", f"{run.start_utc:%Y-%m-%d %H:%M:%S} UTC"),
            ("page covers", f"{sc.times_s[-1] / 3600:.2f} h, a position every {sc.step_s:g} s"),
            ("nodes", ", ".join(f"{n} {k.replace('_', ' ')}s" for k, n in
                                run.nodes.kind.value_counts().sort_index().items()))]
    ds = s.get("dataset") or {}
    if ds:
        rows.append(("data set", f"{ds.get('name')} ({ds.get('source', '?')}; "
                                 f"{ds.get('n_train', '?')} train / {ds.get('n_test', '?')} test)"))
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in rows)
    algs = s.get("algorithms") or {}
    if algs:
        head = ("<tr><th>algorithm</th><th>final accuracy</th><th>rounds</th><th>bytes up</th>"
                "<th>bytes down</th><th>simulated time</th></tr>")
        lines = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{a.get('final_accuracy', float('nan')):.4f}"
            f"</td><td>{a.get('rounds_run', '?')}</td><td>{a.get('bytes_up_total', 0):,}</td>"
            f"<td>{a.get('bytes_down_total', 0):,}</td>"
            f"<td>{a.get('sim_time_s', 0) / 3600:.2f} h</td></tr>"
            for name, a in algs.items() if isinstance(a, dict))
        body += f"</table><table id='sinsim-algorithms'>{head}{lines}"
    return f"<table id='sinsim-summary'>{body}</table>"


# Plotly.animate rejects its promise, without a reason, when pause, a slider click or another
# frame interrupts a running animation; plotly's own buttons leave that promise unhandled, which
# the console reports as an error. Only those reasonless rejections are silenced.
_QUIET_INTERRUPTS = ("window.addEventListener('unhandledrejection', function (e) {"
                     " if (e.reason === undefined) { e.preventDefault(); } });")

_STYLE = """body{font-family:sans-serif;margin:16px;max-width:1400px}
table{border-collapse:collapse;margin:4px 16px 8px 0;display:inline-table;vertical-align:top}
th,td{border:1px solid #ddd;padding:2px 8px;font-size:13px;text-align:left}
.notes{color:#8a4b00}.missing{color:#777;font-style:italic}"""


def build_page(results_dir: str | Path, max_frames: int | None = None,
               max_satellites: int | None = None) -> str:
    """The page of the run in ``results_dir`` as one HTML string (plotly.js inline).
    :class:`~sinsim.studies.tables.MissingTable` (bad input) when it is not a run or has no
    contact plan or nodes."""
    _plotly()
    import plotly.io
    import plotly.offline

    from sinsim.studies import view_data
    from sinsim.studies.view_charts import (
        CURVES_DIV,
        TIMELINE_DIV,
        curves_figure,
        timeline_figure,
    )
    from sinsim.studies.view_map import MAP_DIV, map_figure

    run = view_data.load_run(results_dir)
    sc = view_data.scene(run, max_frames or view_data.MAX_FRAMES,
                         max_satellites or view_data.MAX_SATELLITES)
    config = {"displaylogo": False, "responsive": True}

    def div(fig, div_id: str) -> str:
        return plotly.io.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id,
                                 config=config, auto_play=False, validate=False)

    parts = [div(map_figure(run, sc), MAP_DIV)]
    t = run.tables
    if "rounds" in t and "transfers" in t and len(t["rounds"]):
        parts.append(div(timeline_figure(t["rounds"], t["transfers"], t.get("clients")),
                         TIMELINE_DIV))
    else:
        parts.append("<p class='missing' id='sinsim-no-timeline'>no rounds.csv / transfers.csv"
                     ": no timeline (a contacts-only export, or a run that finished no round)"
                     "</p>")
    if "rounds" in t and len(t["rounds"]):
        parts.append(div(curves_figure(t["rounds"]), CURVES_DIV))
    else:
        parts.append("<p class='missing' id='sinsim-no-curves'>no rounds: no accuracy curves"
                     "</p>")
    name = run.summary.get("scenario") or run.path.name
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in sc.notes)
    notes = f"<ul class='notes' id='sinsim-notes'>{notes}</ul>" if notes else ""
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>sinsim: {html.escape(str(name))}</title><style>{_STYLE}</style>"
        f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script>"
        f"<script type='text/javascript'>{_QUIET_INTERRUPTS}</script></head><body>"
        f"<h1>sinsim run: {html.escape(str(name))}</h1>{_summary_html(run, sc)}{notes}"
        + "".join(parts)
        + "<script type='application/json' id='sinsim-meta'>"
        + json.dumps({"frames": len(sc.times_s), "step_s": sc.step_s,
                      "satellites_drawn": len(sc.tracks),
                      "satellites": len(run.satellites)})
        + "</script></body></html>")


def write_page(results_dir: str | Path, out: str | Path | None = None, **kwargs) -> Path:
    """Write the page (default ``results_dir/view.html``) and return its path."""
    path = Path(out) if out else results_path(results_dir) / PAGE_NAME
    if path.is_dir():
        raise InputError(f"--out {path}: is a directory, not a file")
    if not path.parent.is_dir():
        raise InputError(f"--out {path}: no such directory {str(path.parent)!r}")
    page = build_page(results_dir, **kwargs)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def show(results_dir: str | Path, height_px: int = 1500):
    """The page inside a Jupyter notebook: an ``IPython.display.HTML`` holding it in an iframe
    (so its scripts run apart from the notebook's)."""
    from IPython.display import HTML

    page = build_page(results_dir)
    with warnings.catch_warnings():  # IPython suggests IFrame, which takes a URL, not a page
        warnings.filterwarnings("ignore", "Consider using IPython.display.IFrame")
        return HTML(f"<iframe srcdoc=\"{html.escape(page, quote=True)}\" width='100%' "
                    f"height='{int(height_px)}' style='border:none'></iframe>")


def view_command(results: str, out: str | None) -> int:
    """``python -m sinsim view RESULTS_DIR [--out FILE.html]``: write the page, print its path
    and size."""
    path = write_page(results, out)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
