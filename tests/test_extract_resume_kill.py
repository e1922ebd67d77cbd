"""A run killed with SIGKILL mid-way and restarted ends with the same cache as an uninterrupted run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from extract_fixtures import NOTHING_LEFT, post_rows, write_manifest
from sgmft_cache import load_skipped, load_split, staging_dir
from pipeline.extract import ExtractConfig, extract

REPO = Path(__file__).resolve().parents[1]


def start(manifest: Path, cache: Path, env: dict) -> subprocess.Popen:
    args = [sys.executable, "-m", "cli", "extract", "--manifest", str(manifest), "--cache", str(cache), "--split", "train",
            "--model", "tiny", "--batch-size", "4", "--chunk-rows", "4", "--workers", "1", "-q"]
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_after_chunks(proc: subprocess.Popen, cache: Path, more: int) -> int:
    """SIGKILL `proc` once `more` new chunk files are staged; return how many were staged then."""
    chunks = staging_dir(cache) / "train"
    before = len(list(chunks.glob("chunk-*.h5"))) if chunks.exists() else 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        staged = len(list(chunks.glob("chunk-*.h5"))) if chunks.exists() else 0
        if staged >= before + more:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return staged
        time.sleep(0.002)
    raise AssertionError(f"the run ended before it could be killed: {proc.communicate()}")


def test_sigkilled_runs_resume_to_the_uninterrupted_result(tmp_path):
    rows = post_rows(tmp_path, 160)
    for row in rows[::40]:
        row["image"], row["text"] = "images/absent.jpg", NOTHING_LEFT  # a few skips, so the skip lists are compared too
    for row in rows:
        row["split"] = "train"
    manifest = write_manifest(tmp_path / "posts.csv", rows)
    env = {**os.environ, "SGMFT_HOME": str(tmp_path / "home")}
    cache = tmp_path / "killed.h5"

    for more in (3, 4):  # killed twice, each time after a few more chunks
        proc = start(manifest, cache, env)
        staged = kill_after_chunks(proc, cache, more)
        assert proc.returncode == -signal.SIGKILL and staged >= more
    assert not cache.exists()  # nothing committed yet: all the work so far is in staged chunks
    reference = ExtractConfig(manifest=str(manifest), cache=str(tmp_path / "whole.h5"), model="tiny", batch_size=4,
                              chunk_rows=4, workers=1, quiet=True)
    resumed = extract(replace(reference, cache=str(cache)))  # the same stage function the CLI calls
    assert resumed.splits[0].already >= 7 * 4 and resumed.splits[0].stats.written < 156
    assert not staging_dir(cache).exists()
    extract(reference)
    got, want = load_split(cache, "train"), load_split(reference.cache, "train")
    assert got.ids == want.ids and len(got.ids) == 156
    assert got.text_clean == want.text_clean and torch.equal(got.label, want.label)
    torch.testing.assert_close(got.text, want.text, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got.image, want.image, rtol=1e-4, atol=1e-5)
    assert load_skipped(cache, "train") == load_skipped(reference.cache, "train") and len(load_skipped(cache, "train")) == 4
