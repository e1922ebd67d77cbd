"""benchmarks/bench_similarity.py end to end at toy size: every (condition, variant, seed) is a real fit, read back."""
from __future__ import annotations

import json

import pytest

from benchmarks import bench_similarity

pytestmark = pytest.mark.usefixtures("one_thread")


def test_bench_similarity_writes_runs_summary_and_table(tmp_path, capsys):
    out = tmp_path / "similarity.json"
    bench_similarity.main(["--dim", "16", "--train", "70", "--test", "35", "--epochs", "1", "--seeds", "0,1",
                           "--variants", "sgmft,clip-only", "--keep", str(tmp_path / "runs"), "--out", str(out)])
    result = json.loads(out.read_text())
    agreement = result["conditions"]["agreement"]
    assert [(r["variant"], r["seed"]) for r in agreement["runs"]] == [("sgmft", 0), ("sgmft", 1), ("clip-only", 0),
                                                                     ("clip-only", 1)]
    assert agreement["chance"] == pytest.approx(1 / 7) and 0 <= agreement["rule_accuracy"] <= 1
    sgmft, clip = result["summary"]["sgmft"]["control"], result["summary"]["clip-only"]["control"]
    accuracies = [r["test_accuracy"] for r in result["conditions"]["control"]["runs"] if r["variant"] == "sgmft"]
    assert sgmft["n"] == 2 and sgmft["mean"] == pytest.approx(sum(accuracies) / 2)
    assert sgmft["guidance"]["tau_m"] == 1.0 and clip["guidance"] is None  # no SIM: no diagnostics
    assert (tmp_path / "runs" / "control-sgmft-seed1" / "guidance.json").exists()
    table = capsys.readouterr().out
    assert "| `clip-only` |" in table and "no SIM" in table and "| chance | 14.3 | 14.3 |" in table
