"""The report's tables on hand-made runs: mean ± sample std over seeds, row keys, best row by validation, cells."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

from pipeline.report.runs import Run
from pipeline.report.tables import Stat, aggregate, best_row, comparison_tables
from pipeline.rundir import METRICS, RunMetrics


def run(tmp_path, name, variant, seed, acc, f1, val, mtime=1_000_000, **settings) -> Run:
    folder = tmp_path / name
    folder.mkdir()
    (folder / METRICS).write_text("{}")
    os.utime(folder / METRICS, (mtime, mtime))
    metrics = RunMetrics(variant=variant, seed=seed, scores={"test_accuracy": acc, "test_macro_f1": f1, "test_loss": 1.0},
                         val_accuracy=val, chosen="epoch 1", selection={}, cache="c.h5", cache_fingerprint="fp",
                         encoder="tiny", encoder_note="", placeholder_encoder=False, labels=("a", "b"), val_source="",
                         train_size=1, val_size=1, test_size=1, device="cpu")
    return Run(folder, metrics, settings)


def test_stat_is_mean_and_sample_std():
    s = Stat.of([0.80, 0.90, 0.85])
    assert s.mean == pytest.approx(0.85) and s.std == pytest.approx(0.05) and s.n == 3  # ddof 1
    assert s.pct() == "85.00 ± 5.00" and s.shown() == "0.85 ± 0.05"
    one = Stat.of([0.5])
    assert math.isnan(one.std) and one.pct() == "50.00 ± —" and one.n == 1


def test_aggregate_groups_seeds_of_a_variant_and_keeps_the_newest_of_a_seed(tmp_path):
    runs = [run(tmp_path, "a0", "sgmft", 0, 0.8, 0.7, 0.6), run(tmp_path, "a1", "sgmft", 1, 0.9, 0.8, 0.7),
            run(tmp_path, "old", "sgmft", 1, 0.1, 0.1, 0.1, mtime=10), run(tmp_path, "t0", "text-only", 0, 0.5, 0.4, 0.3)]
    rows, notes = aggregate(runs)
    assert [r.key for r in rows] == ["sgmft", "text-only"]
    full = rows[0]
    assert full.seeds == [0, 1] and [r.path.name for r in full.runs] == ["a0", "a1"]
    assert full.test_accuracy.mean == pytest.approx(0.85) and full.test_accuracy.std == pytest.approx(math.sqrt(0.005))
    assert full.scores["test_macro_f1"].mean == pytest.approx(0.75) and full.val_accuracy.mean == pytest.approx(0.65)
    assert "test_loss" not in full.scores  # not a column of the tables
    assert len(notes) == 1 and "old" in notes[0] and "superseded by the newer" in notes[0] and "a1" in notes[0]


def test_runs_of_a_variant_with_other_settings_are_other_rows(tmp_path):
    runs = [run(tmp_path, "x", "sgmft", 0, 0.8, 0.7, 0.6, lr=1e-5, epochs=30),
            run(tmp_path, "y", "sgmft", 0, 0.9, 0.8, 0.7, lr=1e-3, epochs=30)]
    rows, notes = aggregate(runs)
    assert [r.key for r in rows] == ["sgmft (lr=0.001)", "sgmft (lr=1e-05)"] and not notes
    assert all(r.variant == "sgmft" for r in rows)


def test_best_row_is_chosen_by_validation_then_seeds_then_name_never_by_test(tmp_path):
    rows, _ = aggregate([run(tmp_path, "a", "sgmft", 0, 0.99, 0.9, 0.5), run(tmp_path, "b", "text-only", 0, 0.1, 0.1, 0.6),
                         run(tmp_path, "c", "image-only", 0, 0.2, 0.2, 0.6), run(tmp_path, "d", "image-only", 1, 0.2, 0.2, 0.6)])
    assert best_row(rows).key == "image-only"  # 0.6 like text-only, but two seeds
    rows, _ = aggregate([run(tmp_path, "e", "sum-fusion", 0, 0.1, 0.1, 0.6), run(tmp_path, "f", "concat-mlp", 0, 0.9, 0.9, 0.6)])
    assert best_row(rows).key == "concat-mlp"  # a tie broken by name


def test_representative_run_is_the_best_validation_seed_lowest_seed_on_ties(tmp_path):
    rows, _ = aggregate([run(tmp_path, "s2", "sgmft", 2, 0.1, 0.1, 0.7), run(tmp_path, "s0", "sgmft", 0, 0.9, 0.9, 0.5),
                         run(tmp_path, "s1", "sgmft", 1, 0.2, 0.2, 0.7)])
    assert rows[0].representative().seed == 1
    assert rows[0].scores_in_words() == "test accuracy 40.00 ± 43.59 %, macro-F1 40.00 ± 43.59 %"


def test_comparison_tables_put_our_numbers_beside_the_papers(tmp_path):
    rows, _ = aggregate([run(tmp_path, "a", "sgmft", 0, 0.8, 0.7, 0.6), run(tmp_path, "b", "sgmft", 1, 0.9, 0.8, 0.7),
                         run(tmp_path, "c", "sgmft-tau", 0, 0.5, 0.4, 0.3)])
    text = comparison_tables(rows)
    line = next(x for x in text.splitlines() if x.startswith("| + CLIP + SIM + SFM (full) |"))
    assert line == "| + CLIP + SIM + SFM (full) | sgmft | 85.00 ± 7.07 | 75.00 ± 7.07 | 2 | 65.00 ± 7.07 | 87.29 |"
    assert "| Co-attention | co-attention | — | — | 0 | — | 86.47 |" in text  # a paper row we have no run of
    assert "### Other variants and settings (ours)" in text
    other = next(x for x in text.splitlines() if x.startswith("| — | sgmft-tau |"))
    assert other == "| — | sgmft-tau | 50.00 ± — | 40.00 ± — | 1 | 30.00 ± — | — |"
    assert "| mPLUG | — (not reproducible on these features) |" in text
    header = next(x for x in text.splitlines() if x.startswith("| paper's row"))
    assert header.count("|") == 8 and "macro-F1 %" in header
    assert text.index("Table 2") < text.index("Table 3") < text.index("Table 4") < text.index("Table 1")
    only_paper, _ = aggregate([run(tmp_path, "d", "sgmft", 0, 0.8, 0.7, 0.6)])
    assert "Other variants" not in comparison_tables(only_paper)
    assert np.isfinite(rows[0].test_accuracy.std)


def test_stat_of_one_seed_computes_no_spread():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns on a sample std of one value: it must not be asked
        assert math.isnan(Stat.of([0.5]).std)


def test_row_key_names_every_setting_that_differs(tmp_path):
    runs = [run(tmp_path, "x", "sgmft", 0, 0.8, 0.7, 0.6, lr=1e-5, epochs=30, heads=8),
            run(tmp_path, "y", "sgmft", 0, 0.9, 0.8, 0.7, lr=1e-3, epochs=5, heads=8)]
    rows, _ = aggregate(runs)
    assert [r.key for r in rows] == ["sgmft (epochs=30, lr=1e-05)", "sgmft (epochs=5, lr=0.001)"]


def test_tables_are_markdown_blocks_apart(tmp_path):
    rows, _ = aggregate([run(tmp_path, "a", "sgmft", 0, 0.8, 0.7, 0.6), run(tmp_path, "c", "sgmft-tau", 0, 0.5, 0.4, 0.3)])
    text = comparison_tables(rows)
    assert text.startswith("### Table 2 — ablation\n\n| paper's row | our variant |")
    assert "have no run.\n\n### Table 3" in text and "\n\n### Other variants and settings (ours)\n\n| paper's row" in text


def test_per_class_table_exact_and_of_a_record_without_counted():
    from pipeline.report.tables import per_class_table

    scores = dict(precision=np.array([0.5, 1.0]), recall=np.array([0.25, 0.0]), f1=np.array([1 / 3, 0.0]),
                  support=np.array([4, 0]))
    assert per_class_table(["home", "work"], scores, 3) == (
        "| class | precision % | recall % | F1 % | test posts |\n|---|---:|---:|---:|---:|\n"
        "| home | 50.00 | 25.00 | 33.33 | 4 |\n| work | 100.00 | 0.00 | 0.00 | 0 |\n\n(mean over 3 seed(s); "
        "macro-F1 is the mean F1 of the classes that count: a test label or a prediction; — marks the others)")
