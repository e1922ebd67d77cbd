"""`sgmft predict` under torchrun (gloo, 2 CPU processes): each rank encodes and scores its share, rank 0
writes one CSV in manifest order — the rows a single process writes, skipped posts included."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from extract_fixtures import broken_images, write_manifest
from pipeline.demo import write_sample
from pipeline.extract import ExtractConfig, extract
from pipeline.fit import FitConfig, fit
from pipeline.predict import PredictConfig, predict

SGMFT = Path(sys.executable).with_name("sgmft")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread):
    folder = tmp_path_factory.mktemp("predict-dist")
    manifest = write_sample(folder, 42, seed=2)
    cache = folder / "feats.h5"
    extract(ExtractConfig(manifest=str(manifest), cache=str(cache), model="tiny", workers=0, quiet=True))
    run = fit(FitConfig(cache=str(cache), variant="sgmft", out=str(folder / "run"), epochs=1, lr=1e-3, heads=4,
                        ffn_hidden=32, quiet=True)).run_dir
    rows = pd.read_csv(manifest, dtype=str, keep_default_na=False).to_dict("records")
    bad = broken_images(folder / "bad")
    for k, name in enumerate(bad):  # posts that cannot be encoded, spread over both ranks' shares
        rows.insert(3 * k + 1, {**rows[k], "id": f"bad-{k}", "image": f"bad/{name}"})
    new = write_manifest(folder / "new.csv", [{k: v for k, v in r.items() if k != "split"} for r in rows[::-1]])
    return dict(folder=folder, run=run, data=new, ids=[r["id"] for r in rows[::-1]])


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"id": str}, keep_default_na=False)


def test_torchrun_predict_writes_the_single_process_csv(trained, tmp_path):
    single = predict(PredictConfig(run=str(trained["run"]), data=str(trained["data"]), out=str(tmp_path / "one.csv"),
                                   cache=str(tmp_path / "one.h5"), workers=0, quiet=True))
    out = tmp_path / "two.csv"
    # "--": torchrun would take --run for an abbreviation of its own --run-path
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--no-python",
            str(SGMFT), "--", "predict", "--run", str(trained["run"]), "--data", str(trained["data"]), "--out", str(out),
            "--cache", str(tmp_path / "two.h5"), "--workers", "0", "-q"]
    env = {**os.environ, "SGMFT_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 1 of 2" in proc.stdout
    got, want = read(out), read(single.out)
    assert got["id"].tolist() == want["id"].tolist() == trained["ids"]  # manifest order, every post
    assert got["pred"].tolist() == want["pred"].tolist()
    assert got["skipped_reason"].tolist() == want["skipped_reason"].tolist()
    for column in ("modalities", "images_used", "dropped_images"):
        assert got[column].tolist() == want[column].tolist(), column
    bad = got[got["id"].str.startswith("bad-")]  # kept text-only with the picture's reason, or skipped
    assert len(bad) == 4 and ((bad["skipped_reason"] != "") | (bad["dropped_images"] != "")).all()
    probs = [c for c in want.columns if c.startswith("p_")]
    a = got[probs].replace("", np.nan).to_numpy(float)
    b = want[probs].replace("", np.nan).to_numpy(float)
    np.testing.assert_allclose(a, b, atol=2e-6)  # features encoded in other batches: float32 round-off
    assert not list(tmp_path.glob("two.csv.part-*")) and not list(tmp_path.glob("two.h5.shard-*"))
