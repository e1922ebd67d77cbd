"""`sgmft extract` under PyTorch's own launcher (torchrun, gloo, 2 CPU processes): the shards merge into the
cache a single process makes, `fit` reads it, a killed run resumes per shard, a failing rank stops all,
and shards left on another node's disk merge by one plain run."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from extract_fixtures import messy_posts, post_rows, write_manifest
from sgmft_cache import load_skipped, load_split, staging_dir, validate
from pipeline.extract import ExtractConfig, Post, extract
from pipeline.extract.distributed import Ranks
from pipeline.extract.engine import select_rows
from pipeline.extract.shards import shard_files, shard_path

SGMFT = Path(sys.executable).with_name("sgmft")  # the console script of this environment
SPLITS = ("train", "val", "test")
OPTIONS = ["--model", "tiny", "--workers", "0", "--batch-size", "4", "--chunk-rows", "4", "--max-pixels", "200000",
           "-q", "--dist-timeout", "120"]


@pytest.fixture(scope="module")
def posts(tmp_path_factory):
    """A messy manifest (odd and broken images, duplicates, emoji-only text) plus plain posts and posts of
    every shape (several images, a bad one among them, text only): 125 rows."""
    folder = tmp_path_factory.mktemp("posts")
    rows, _ = messy_posts(folder)
    for k, row in enumerate(post_rows(folder / "more", 90)):
        rows.append({**row, "id": f"more-{k:03d}", "image": f"more/{row['image']}", "split": SPLITS[k % 3]})
    for k in range(6):
        several = "|".join(f"more/images/p{(k + j) % 90:03d}.jpg" for j in range(k % 3 + 1)) + "|bad/missing.jpg"
        rows.append(dict(id=f"shape-{k}", text=f"周末 逛街 {k}", image="", images=several if k % 3 else "",
                         label="home", split=SPLITS[k % 3]))
    manifest = write_manifest(folder / "posts.csv", rows)
    reference = ExtractConfig(manifest=str(manifest), cache=str(folder / "single.h5"), model="tiny", workers=0,
                              batch_size=4, chunk_rows=4, max_pixels=200_000, quiet=True)
    extract(reference)  # one process, no torchrun
    return dict(manifest=manifest, reference=reference.cache, rows=rows)


def env_for(tmp_path: Path) -> dict:
    return {**os.environ, "SGMFT_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}


def torchrun(*launcher: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *launcher, "--no-python", str(SGMFT), "extract"]


def run_torchrun(tmp_path: Path, manifest: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess:
    args = torchrun("--standalone", "--nproc-per-node", "2") + ["--manifest", str(manifest), "--cache", str(cache),
                                                                 *OPTIONS, *extra]
    return subprocess.run(args, env=env_for(tmp_path), capture_output=True, text=True, timeout=300)


def snapshot(cache) -> dict:
    """Per split: rows by id (text, image set, label, cleaned text and mask) in stored order, and the skip list."""
    out = {}
    for split in SPLITS:
        data = load_split(cache, split)
        off = data.image_offsets
        rows = {i: (data.text[k].numpy(), data.images[off[k]:off[k + 1]].numpy(), int(data.label[k]),
                    (data.text_clean[k], bool(data.has_text[k]))) for k, i in enumerate(data.ids)}
        out[split] = (rows, load_skipped(cache, split))
    return out


def assert_same_cache(got, want) -> None:
    """The same rows, ids in the same (manifest) order, the same labels, cleaned texts and skip reasons;
    features equal to float32 round-off (rows were batched differently)."""
    a, b = snapshot(got), snapshot(want)
    for split in SPLITS:
        (rows_a, skip_a), (rows_b, skip_b) = a[split], b[split]
        assert list(rows_a) == list(rows_b), split
        assert skip_a == skip_b and list(skip_a) == list(skip_b), split
        for i in rows_b:
            text_a, image_a, label_a, clean_a = rows_a[i]
            text_b, image_b, label_b, clean_b = rows_b[i]
            assert (label_a, clean_a) == (label_b, clean_b), i
            np.testing.assert_allclose(text_a, text_b, rtol=1e-5, atol=1e-6, err_msg=i)
            np.testing.assert_allclose(image_a, image_b, rtol=1e-5, atol=1e-6, err_msg=i)
    meta_a, meta_b = validate(got), validate(want)
    assert (meta_a.fingerprint, meta_a.labels, meta_a.model) == (meta_b.fingerprint, meta_b.labels, meta_b.model)


def no_leftovers(cache: Path) -> bool:
    return not shard_files(cache) and not list(cache.parent.glob("*.staging")) and not staging_dir(cache).exists()


def test_torchrun_two_ranks_make_the_single_process_cache_and_fit_reads_it(posts, tmp_path):
    cache = tmp_path / "feats.h5"
    proc = run_torchrun(tmp_path, posts["manifest"], cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0 of 2" in proc.stdout and "rank 1 of 2" in proc.stdout
    assert re.search(r"merged 2 shard file", proc.stdout)
    assert_same_cache(cache, posts["reference"])
    assert no_leftovers(cache)  # the shards are gone once merged
    run = tmp_path / "run"
    result = CliRunner().invoke(cli.app, ["fit", "--cache", str(cache), "--epochs", "1", "--out", str(run), "-q"])
    assert result.exit_code == 0, result.output
    assert (run / "metrics.json").is_file()


def staged_rows(cache: Path, rank: int) -> int:
    chunks = staging_dir(shard_path(cache, rank, 2))
    return len(list(chunks.glob("*/chunk-*.h5"))) if chunks.exists() else 0


def descendants(pid: int) -> list[int]:
    """Processes started, directly or not, by `pid` (from /proc)."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children += [int(c) for c in (task / "children").read_text().split()]
    return children + [d for c in children for d in descendants(c)]


def test_killed_torchrun_run_resumes_per_shard(posts, tmp_path):
    cache = tmp_path / "feats.h5"
    args = torchrun("--standalone", "--nproc-per-node", "2") + ["--manifest", str(posts["manifest"]),
                                                                 "--cache", str(cache), *OPTIONS]
    proc = subprocess.Popen(args, env=env_for(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while staged_rows(cache, 1) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    for pid in [proc.pid, *descendants(proc.pid)]:  # the launcher and both ranks (each in its own session), mid-way
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate()
    assert staged_rows(cache, 1) >= 3, f"the run ended before it could be killed: {out[-2000:]} {err[-2000:]}"
    assert not cache.exists()  # nothing merged: all the work so far lies in the shards

    resumed = run_torchrun(tmp_path, posts["manifest"], cache)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    already = sum(int(n) for n in re.findall(r"encoded now, (\d+) already in the cache", resumed.stdout))
    assert already >= 3 * 4  # at least rank 1's staged chunks were kept, not encoded again
    assert_same_cache(cache, posts["reference"])
    assert no_leftovers(cache)


def test_a_failing_rank_stops_every_rank_and_says_which(posts, tmp_path):
    cache = tmp_path / "feats.h5"
    staging_dir(shard_path(cache, 1, 2)).write_text("a file where rank 1's staging folder must go")
    proc = run_torchrun(tmp_path, posts["manifest"], cache)  # returns: no rank waits for the failed one
    assert proc.returncode != 0
    assert "rank 1 of 2 failed while extracting" in proc.stderr  # what rank 0 says
    assert not cache.exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shards_on_two_nodes_without_shared_disk_merge_by_one_plain_run(posts, tmp_path):
    """Two torchrun agents (node ranks 0 and 1), each writing into its own folder: rank 0 cannot see rank 1's
    shard and says so; once node 1's files are copied beside the cache, `sgmft extract` without torchrun
    merges them and encodes nothing again."""
    port, nodes = free_port(), [tmp_path / "node0", tmp_path / "node1"]
    launches = []
    for node, folder in enumerate(nodes):
        folder.mkdir()
        launcher = ["--nnodes", "2", "--node-rank", str(node), "--nproc-per-node", "1",
                    "--master-addr", "127.0.0.1", "--master-port", str(port)]
        args = torchrun(*launcher) + ["--manifest", str(posts["manifest"]), "--cache", "feats.h5", *OPTIONS]
        launches.append(subprocess.Popen(args, cwd=folder, env=env_for(tmp_path), stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=300) for p in launches]
    assert all(p.returncode != 0 for p in launches)
    assert "not visible to rank 0" in outputs[0][1] and "rank 0 of 2 failed while merging" in outputs[1][1]
    for path in nodes[1].iterdir():
        (shutil.copytree if path.is_dir() else shutil.copy)(path, nodes[0] / path.name)
    cache = nodes[0] / "feats.h5"
    summary = extract(ExtractConfig(manifest=str(posts["manifest"]), cache=str(cache), model="tiny", workers=0,
                                    batch_size=4, max_pixels=200_000, quiet=True))
    assert summary.folded >= 2 and sum(s.stats.written for s in summary.splits) == 0
    assert_same_cache(cache, posts["reference"])
    assert no_leftovers(cache)


def test_ranks_come_from_torchruns_environment_and_split_rows_stably():
    ranks = Ranks.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert (ranks.rank, ranks.world_size, ranks.local_rank, str(ranks)) == (3, 4, 1, "rank 3 of 4")
    assert Ranks.from_env({}) == Ranks() and not Ranks().sharded and Ranks().device("auto") == "auto"
    posts = [Post(id=str(i), text="", image="", label=None, split="train") for i in range(10)]
    shares = [[p.id for p in select_rows(posts, set(), r, 3)] for r in range(3)]
    assert sorted(sum(shares, []), key=int) == [p.id for p in posts]  # every row on exactly one rank
    assert shares[1] == ["1", "4", "7"]
    assert [p.id for p in select_rows(posts, {"1", "4", "5"}, 1, 3)] == ["7"]  # done rows leave the others alone
