"""`sgmft report`: honest tables beside the paper's, one part per cache, real figures, notes on what it skipped."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import app
from pipeline.fit import FitConfig, fit
from pipeline.fit.sweeps import sweep
from pipeline.report import load_runs, report
from sgmft_cache.provenance import legacy_placeholder
from pipeline.report.paper import PAPER_LABEL
from pipeline.report.tables import aggregate
from pipeline.synthetic import make_synthetic_cache

pytestmark = pytest.mark.usefixtures("one_thread")

FUSED = ("sgmft", "clip-only", "concat-mlp", "logreg-probe")
QUICK = dict(epochs=4, lr=1e-3, heads=4, quiet=True)


@pytest.fixture(scope="module")
def runs_root(one_thread, synthetic_cache, tmp_path_factory) -> Path:
    """Cache A (split signal, D=32): 6 variants x 2 seeds; cache B (another fingerprint): 2 variants x 1 seed,
    one of them fitted twice; plus an unfinished and a corrupt run directory."""
    root = tmp_path_factory.mktemp("runs")
    a = FitConfig(cache=str(synthetic_cache), ffn_hidden=32, out=str(root / "a"), **QUICK)
    sweep(a, [*FUSED, "text-only", "image-only"], [0, 1])
    cache_b = root.parent / "b.h5"
    make_synthetic_cache(cache_b, sizes={"train": 84, "test": 28}, dim=16, seed=7)
    b = FitConfig(cache=str(cache_b), ffn_hidden=16, out=str(root / "b"), **QUICK)
    sweep(b, ["sgmft", "text-only"], [0])
    fit(FitConfig(cache=str(cache_b), variant="text-only", ffn_hidden=16, out=str(root / "b-again"), **QUICK))
    (root / "unfinished").mkdir()
    (root / "unfinished" / "config.json").write_text("{}")
    (root / "corrupt").mkdir()
    (root / "corrupt" / "metrics.json").write_text("{not json")
    return root


@pytest.fixture(scope="module")
def summary(runs_root, tmp_path_factory):
    return report([runs_root], tmp_path_factory.mktemp("report") / "out")


def section(summary, fingerprint_start: str):
    (s,) = [s for s in summary.sections if s.fingerprint.startswith(fingerprint_start)]
    return s


def part(summary, fingerprint: str) -> str:
    """The report.md text of one cache's part."""
    chunks = summary.markdown.split("\n## ")
    (text,) = [c for c in chunks if c.startswith(f"Cache `{fingerprint}`")]
    return text


def cells(text: str, variant: str) -> list[list[str]]:
    """The table lines whose 'our variant' cell is `variant`, as lists of cells."""
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("|")]
    return [r for r in rows if len(r) > 1 and r[1] == variant]


def test_fused_variants_beat_each_modality_alone(summary):
    s = section(summary, "synthetic-d32")
    acc = {r.key: r.test_accuracy.mean for r in s.rows}
    alone = max(acc["text-only"], acc["image-only"])
    for v in FUSED:
        assert acc[v] > alone + 0.2, acc
    text = part(summary, s.fingerprint)
    shown = {v: float(cells(text, v)[0][2].split("±")[0]) for v in (*FUSED, "text-only", "image-only")}
    assert min(shown[v] for v in FUSED) > max(shown["text-only"], shown["image-only"]), shown


def test_rows_show_mean_std_and_number_of_seeds(summary):
    a = part(summary, section(summary, "synthetic-d32").fingerprint)
    row = cells(a, "sgmft")[0]
    assert "±" in row[2] and "±" in row[3] and row[4] == "2" and "±" in row[5]
    b = part(summary, section(summary, "synthetic-d16").fingerprint)
    assert cells(b, "sgmft")[0][4] == "1" and cells(b, "sgmft")[0][2].endswith("± —")
    assert "mean ± sample std over the seeds" in a and "10% of train, stratified, seed = the run's seed" in a


def test_paper_numbers_are_beside_ours_and_labelled(summary):
    text = part(summary, section(summary, "synthetic-d32").fingerprint)
    for title in ("Table 1", "Table 2", "Table 3", "Table 4"):
        assert title in text
    for number in ("87.29", "84.91", "85.74", "86.94", "86.32", "86.35", "86.47", "86.88", "78.23"):
        assert number in text
    assert PAPER_LABEL in text and "paper acc % †" in text
    assert cells(text, "clip-only")[0][0] == "+ CLIP features (classifier only)" and cells(text, "clip-only")[0][6] == "84.91"


def test_two_caches_never_share_a_table(summary):
    a, b = section(summary, "synthetic-d32"), section(summary, "synthetic-d16")
    assert {r.key for r in b.rows} == {"sgmft", "text-only"}
    assert all(r.cache_key == b.fingerprint for r in b.runs) and all(r.cache_key == a.fingerprint for r in a.runs)
    assert len(a.runs) == 12 and len(b.runs) == 3
    text_b = part(summary, b.fingerprint)
    assert cells(text_b, "text-only")[0][4] == "1"  # its second fit supersedes the first, nothing from cache A
    assert "superseded by the newer" in text_b
    assert a.folder != b.folder and "2 feature cache(s)" in summary.markdown


def test_figures_are_real_non_trivial_images(summary):
    for s in summary.sections:
        names = {p.name.split("_")[0].removesuffix(".png") for p in s.figures.values()}
        assert names >= {"accuracy", "confusion", "learning", "tsne"}, names
        for caption, path in s.figures.items():
            assert path.exists() and path.stat().st_size > 5_000, path
            assert f"]({path.relative_to(summary.out_dir).as_posix()})" in summary.markdown
            pixels = np.asarray(Image.open(path).convert("L"), dtype=float)
            assert pixels.shape[0] >= 250 and pixels.shape[1] >= 400, (path, pixels.shape)
            assert pixels.std() > 10 and (pixels < 200).mean() > 0.01, path  # not a blank canvas


def guidance_cells(text: str, variant: str) -> list[str]:
    """The cells of `variant`'s line in the section "Is the similarity guidance active?"."""
    section_text = text[text.index("### Is the similarity guidance active?"):]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section_text.splitlines() if line.startswith("|")]
    (row,) = [r for r in rows if r[0] == variant]
    return row


def test_similarity_guidance_section_shows_each_rows_saved_numbers(summary):
    s = section(summary, "synthetic-d32")
    text = part(summary, s.fingerprint)
    rows = {g.key: g for g in s.guidance}
    saved = [run.guidance() for run in s.runs if run.variant == "sgmft"]
    assert rows["sgmft"].seeds == 2 and rows["sgmft"].mean["p_m_peak"] == pytest.approx(np.mean([g.p_m_peak for g in saved]))
    assert rows["sgmft"].mean["text_on_image_grad"] == pytest.approx(np.mean([g.text_on_image_grad for g in saved]))
    sgmft = guidance_cells(text, "sgmft")
    assert sgmft[1] == "2" and sgmft[2] == "1.00, 1.00"  # the paper: no temperature
    assert sgmft[-1].startswith("**no**")  # l2 features: each modality deaf to the other (ratios ~1e-3 at D = 32)
    for no_sim in ("clip-only", "concat-mlp", "text-only", "logreg-probe"):
        assert rows[no_sim].state == "no SIM" and guidance_cells(text, no_sim)[-1] == "no SIM"
    figure = s.guidance_figure
    assert figure.exists() and f"]({figure.relative_to(summary.out_dir).as_posix()})" in text
    pixels = np.asarray(Image.open(figure).convert("L"), dtype=float)
    assert pixels.shape[1] >= 800 and pixels.std() > 10
    assert "Our reading of `clip-only`" in text and "*sum* F_text ⊕ F_image" in text and "`concat-mlp`" in text
    assert "Our reading of the SFM" in text and "LayerNorm(x + CA(x, other))" in text


def test_a_head_run_without_guidance_json_reads_as_not_measured(runs_root, tmp_path):
    shutil.copytree(runs_root / "a" / "sgmft-seed0", tmp_path / "old")
    (tmp_path / "old" / "guidance.json").unlink()  # a run made before fit measured it
    summary = report([tmp_path / "old"], tmp_path / "out", tsne=False)
    assert [g.state for g in summary.sections[0].guidance] == ["not measured"]
    assert summary.sections[0].guidance_figure is None and guidance_cells(summary.markdown, "sgmft")[-1] == "not measured"


def test_unfinished_and_corrupt_run_dirs_are_skipped_with_a_note(summary, runs_root):
    notes = "\n".join(summary.skipped)
    assert f"{runs_root / 'unfinished'}: no metrics.json" in notes and f"{runs_root / 'corrupt'}: metrics.json unreadable" in notes
    assert "## Run directories left out" in summary.markdown and "unfinished" in summary.markdown


def test_best_variant_is_chosen_on_validation_not_test(summary):
    for s in summary.sections:
        assert s.best.val_accuracy.mean == max(r.val_accuracy.mean for r in s.rows)
        assert f"Best variant: `{s.best.key}` — chosen by mean **validation** accuracy" in part(summary, s.fingerprint)
        assert s.per_class is not None and len(s.per_class["f1"]) == 7


def test_loud_banner_for_placeholder_encoders_only(summary, runs_root, tmp_path):
    assert "PLACEHOLDER ENCODER" in summary.markdown and "encoder `synthetic`" in summary.markdown
    # runs and caches made before the explicit flag: the test encoders' names and stage one's note
    assert legacy_placeholder("tiny", "") and legacy_placeholder("ViT-H-14", "RANDOM WEIGHTS (ViT-H-14, seed 0): ...")
    assert not legacy_placeholder("ViT-H-14", "Chinese-CLIP ViT-H-14, weights clip_cn_vit-h-14.pt")
    real = tmp_path / "real-run"
    shutil.copytree(runs_root / "a" / "sgmft-seed0", real)
    m = json.loads((real / "metrics.json").read_text())
    m.update(encoder="ViT-H-14", encoder_note="", cache_fingerprint="vit-h-14-abc", placeholder_encoder=False)
    (real / "metrics.json").write_text(json.dumps(m))
    cfg = json.loads((real / "config.json").read_text())
    cfg["cache_fingerprint"] = "vit-h-14-abc"  # the run's own record agrees (a mismatch is refused)
    (real / "config.json").write_text(json.dumps(cfg))
    text = report([real], tmp_path / "out", tsne=False).markdown
    assert "PLACEHOLDER" not in text and "encoder `ViT-H-14`" in text


def test_rows_split_where_fit_settings_differ(runs_root, tmp_path):
    for seed in (0, 1):
        shutil.copytree(runs_root / "a" / f"clip-only-seed{seed}", tmp_path / f"c{seed}")
    cfg = json.loads((tmp_path / "c1" / "config.json").read_text())
    cfg["fit"]["lr"] = 0.5
    (tmp_path / "c1" / "config.json").write_text(json.dumps(cfg))
    rows, _ = aggregate(load_runs([tmp_path]).runs)
    assert sorted(r.key for r in rows) == ["clip-only (lr=0.001)", "clip-only (lr=0.5)"]


def test_probe_only_report_says_why_it_has_no_learning_curves(runs_root, tmp_path):
    dirs = [runs_root / "a" / f"logreg-probe-seed{s}" for s in (0, 1)]
    s = report(dirs, tmp_path / "out", tsne=False).sections[0]
    assert "no run logged epochs, so no learning curves" in s.notes
    assert any(p.name.startswith("confusion") for p in s.figures.values())


def test_cli_report_prints_the_tables_and_fails_cleanly_without_runs(runs_root, tmp_path):
    result = CliRunner().invoke(app, ["report", "--runs", str(runs_root), "--out", str(tmp_path / "r"), "--no-tsne"])
    assert result.exit_code == 0, result.output
    assert "### Table 2 — ablation" in result.stdout and f"report written to {tmp_path / 'r' / 'report.md'}" in result.stdout
    assert "skipped" in result.stderr and (tmp_path / "r" / "report.md").exists()
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["report", "--runs", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "no finished runs" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_fit_and_sweep_never_import_matplotlib():
    code = ("import sys, cli, pipeline.fit, pipeline.fit.sweeps, pipeline.report; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
