"""The ablation table: bits per round, the band check and the trend."""

from __future__ import annotations

import pandas as pd

from sinsim.cli import main as cli
from sinsim.studies.fidelity import ablation, to_markdown


def _runs() -> pd.DataFrame:
    rows = []
    for alg, bits in [("fedavg", [None, None, None]), ("steady", [0.6, 0.55, 0.58]),
                      ("falling", [0.5, 0.3, 0.2])]:
        for r, b in enumerate(bits, 1):
            rows.append({"run_id": alg, "seed": 0, "algorithm": alg, "round": r, "selected": 3,
                         "completed": 3, "bytes_up": 3000, "bytes_down": 9000, "avg_bits": b,
                         "test_accuracy": 0.8 + 0.05 * r})
    return pd.DataFrame(rows)


def test_band_and_trend(tmp_path, capsys):
    t = ablation(_runs()).set_index("algorithm")
    # Assert
    assert bool(t.loc["steady"].in_band) and not bool(t.loc["falling"].in_band)
    assert abs(t.loc["falling"].bits_trend + 0.3) < 1e-9
    assert t.loc["fedavg"].bits_per_round is None
    assert abs(t.loc["steady"].last_accuracy - 0.9) < 1e-9
    md = to_markdown(ablation(_runs()))
    assert "| steady | 0.60 0.55 0.58 | yes | -0.02 | 95.00 | 90.00 | 1,000 | 3,000 |" in md
    _runs().to_csv(tmp_path / "runs.csv", index=False)
    assert cli(["fidelity", str(tmp_path)]) == 0
    assert cli(["fidelity", str(tmp_path / "none")]) == 2
