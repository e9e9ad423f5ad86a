"""The Table I builder reads a sweep table and derives the seed's columns and the missing ones."""

from __future__ import annotations

import pandas as pd
import pytest

from sinsim.cli import main as cli
from sinsim.studies.table1 import table1, to_markdown


def _runs() -> pd.DataFrame:
    rows = []
    for k in (3, 10):
        for alg, up, bits, accs in [("fedavg", 1_724_328, None, [0.90, 0.95]),
                                    ("spacedml-0.8", 27_415, 0.4, [0.93, 0.97])]:
            for r, acc in enumerate(accs, 1):
                rows.append({"run_id": f"k={k}", "seed": 0, "training.clients_per_round": k,
                             "algorithm": alg, "round": r, "selected": k, "completed": k - 1,
                             "bytes_up": up * (k - 1), "bytes_down": 374_685 * k,
                             "avg_bits": bits, "test_accuracy": acc, "sim_end_s": 10.0 * r})
    return pd.DataFrame(rows)


def test_table1_columns():
    t = table1(_runs()).set_index(["K", "algorithm"])
    sd = t.loc[(3, "spacedml-0.8")]
    # Assert
    assert sd.up_per_client == 27_415 and sd.down_per_client == 374_685
    assert sd.up_ratio_vs_fedavg == pytest.approx(1_724_328 / 27_415)
    assert sd.avg_bits == 0.4 and sd.accuracy == 0.97
    assert sd.round_at_target == 2 and sd.sim_s_to_target == 20.0
    assert t.loc[(3, "fedavg")].reached == 0


def test_markdown_and_command(tmp_path, capsys):
    _runs().to_csv(tmp_path / "runs.csv", index=False)
    # Act
    assert cli(["table1", str(tmp_path), "--out", str(tmp_path / "t.md")]) == 0
    md = (tmp_path / "t.md").read_text()
    # Assert
    assert "**K = 3 devices a round**" in md and "**K = 10 devices a round**" in md
    assert "| fedavg | 32 (fp32) |  | 95.00 |" in md
    assert "| spacedml-0.8 | 0.4000 | 0.40–0.40 | 97.00 |" in md
    assert "62.9×" in md and "not reached" in md
    assert md.strip() == to_markdown(table1(_runs())).strip()
    assert cli(["table1", str(tmp_path / "missing")]) == 2


def test_several_sweeps_combine_and_seeds_show_a_spread(tmp_path):
    a = _runs()
    b = a[a["training.clients_per_round"] == 10].copy()
    b["seed"] = 1
    b["test_accuracy"] -= 0.02
    a.to_csv(tmp_path / "runs.csv", index=False)
    (tmp_path / "s1").mkdir()
    b.to_csv(tmp_path / "s1" / "runs.csv", index=False)
    # Act
    assert cli(["table1", str(tmp_path), str(tmp_path / "s1"),
                "--out", str(tmp_path / "t.md")]) == 0
    md = (tmp_path / "t.md").read_text()
    # Assert: K = 10 rows average two seeds and give half their range
    assert "| spacedml-0.8 | 0.4000 | 0.40–0.40 | 96.00 ± 1.00 (2 seeds) |" in md
    assert "| fedavg | 32 (fp32) |  | 94.00 ± 1.00 (2 seeds) |" in md


def test_single_run_directories_combine_too(tmp_path):
    import json
    run = tmp_path / "run"
    run.mkdir()
    r = _runs()
    r = r[(r["training.clients_per_round"] == 3) & (r.algorithm == "spacedml-0.8")]
    r.drop(columns=["run_id", "seed", "training.clients_per_round"]).to_csv(run / "rounds.csv",
                                                                           index=False)
    (run / "summary.json").write_text(json.dumps(
        {"resolved_scenario": {"seed": 4, "training": {"clients_per_round": 3}}}))
    other = _runs()
    other = other[other.algorithm == "fedavg"]
    other.to_csv(tmp_path / "runs.csv", index=False)
    # Act
    assert cli(["table1", str(tmp_path), str(run), "--out", str(tmp_path / "t.md")]) == 0
    # Assert
    assert "| spacedml-0.8 | 0.4000 | 0.40–0.40 | 97.00 |" in (tmp_path / "t.md").read_text()
