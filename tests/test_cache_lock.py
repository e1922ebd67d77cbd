"""One writer per cache file, with real processes: a second writer (write_split, `sgmft extract`) is told in one
line who holds the lock, nothing is lost when two race, readers keep working, and a dead holder's lock is taken over."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from extract_fixtures import post_rows, write_manifest
from sgmft_cache import CacheError, CacheMeta, CacheWriter, list_splits, load_split, write_split
from sgmft_cache.lock import cache_lock, holder, lock_path

REPO = Path(__file__).resolve().parents[1]
META = CacheMeta(model="my-encoder", embed_dim=4, labels=("a", "b"), fingerprint="fp")
HOLD = textwrap.dedent("""
    import sys
    from sgmft_cache import CacheWriter, CacheMeta
    meta = CacheMeta(model="my-encoder", embed_dim=4, labels=("a", "b"), fingerprint="fp")
    writer = CacheWriter(sys.argv[1], "train", meta)
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or kills us)
    writer.add(["late"], [[1.0] * 4], [[1.0] * 4], [0])
    writer.commit()
""")


def _rows(n, seed=0):
    rng = np.random.default_rng(seed)
    return dict(ids=[f"{seed}-{i}" for i in range(n)], text=rng.standard_normal((n, 4)),
                image=rng.standard_normal((n, 4)), label=[i % 2 for i in range(n)])


def _holding(cache: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(cache)], cwd=REPO, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held", proc.stderr.read()
    return proc


def test_a_second_writer_is_told_who_holds_the_lock_and_readers_keep_working(tmp_path):
    cache = tmp_path / "feats.h5"
    write_split(cache, "test", META, **_rows(3))
    proc = _holding(cache)
    try:
        with pytest.raises(CacheError) as refused:
            write_split(cache, "val", META, **_rows(2, seed=1))
        message = str(refused.value)
        assert "another process is writing" in message and f"pid {proc.pid}" in message
        assert socket.gethostname() in message and "\n" not in message
        assert load_split(cache, "test").ids == ["0-0", "0-1", "0-2"]  # readers are not locked out
        assert holder(cache)["pid"] == proc.pid
    finally:
        proc.communicate("", timeout=120)  # let it commit
    assert proc.returncode == 0
    write_split(cache, "val", META, **_rows(2, seed=1))
    assert set(list_splits(cache)) == {"train", "test", "val"} and not lock_path(cache).exists()


def test_the_lock_of_a_killed_writer_is_taken_over(tmp_path):
    cache = tmp_path / "feats.h5"
    proc = _holding(cache)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=120)
    assert lock_path(cache).exists() and holder(cache)["pid"] == proc.pid  # left behind by the dead process
    writer = CacheWriter(cache, "train", META)
    assert holder(cache)["pid"] == os.getpid()
    writer.add(**{k: v for k, v in _rows(2).items()})
    writer.commit()
    assert load_split(cache, "train").ids == ["0-0", "0-1"] and not lock_path(cache).exists()


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    cache = tmp_path / "feats.h5"
    with cache_lock(cache):
        write_split(cache, "train", META, **_rows(2))  # the writer takes the lock this process holds
        assert lock_path(cache).exists()
    assert not lock_path(cache).exists()


def _race(cache: str, split: str, seed: int, barrier) -> None:
    """Write one split, retrying while the other process holds the lock; exit 0 once written."""
    barrier.wait()
    for _ in range(100_000):
        try:
            write_split(cache, split, META, **_rows(50, seed))
            sys.exit(0)
        except CacheError as e:
            if "another process is writing" not in str(e):
                raise
    sys.exit(3)


def test_two_concurrent_write_split_calls_lose_nothing(tmp_path):
    ctx = mp.get_context("spawn")
    for round_ in range(3):  # without the lock, one split silently vanished in some of these rounds
        cache = str(tmp_path / f"feats-{round_}.h5")
        barrier = ctx.Barrier(2)
        procs = [ctx.Process(target=_race, args=(cache, split, seed, barrier)) for split, seed in (("train", 1), ("test", 2))]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=300)
        assert [p.exitcode for p in procs] == [0, 0]
        with h5py.File(cache, "r") as f:
            assert sorted(f) == ["test", "train"] and len(f["train/id"]) == len(f["test/id"]) == 50


PAUSED_EXTRACT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import cli
    from pipeline.extract import run
    real, folder = run.extract_rows, Path(sys.argv[1])

    def paused(*args, **kwargs):
        (folder / "started").touch()
        while not (folder / "go").exists():
            time.sleep(0.05)
        return real(*args, **kwargs)

    run.extract_rows = paused
    cli.app(sys.argv[2:])
""")


def _extract_args(manifest, cache, split):
    return ["extract", "--manifest", str(manifest), "--cache", str(cache), "--split", split, "--model", "tiny",
            "--workers", "0", "-q"]


def test_a_second_extract_on_the_same_cache_is_refused_in_one_line(tmp_path):
    manifest = write_manifest(tmp_path / "posts.csv", post_rows(tmp_path, 12, split=True))
    cache = tmp_path / "feats.h5"
    env = {**os.environ, "SGMFT_HOME": str(tmp_path / "home")}
    first = subprocess.Popen([sys.executable, "-c", PAUSED_EXTRACT, str(tmp_path), *_extract_args(manifest, cache, "train")],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not (tmp_path / "started").exists():  # it holds the lock and is about to encode
            assert first.poll() is None, first.communicate()
            try:
                first.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
        second = subprocess.run([sys.executable, "-m", "cli", *_extract_args(manifest, cache, "test")], cwd=REPO,
                                env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "another process is writing" in lines[0] and f"pid {first.pid}" in lines[0]
        assert "--split train" in lines[0]  # the holder's command
    finally:
        (tmp_path / "go").touch()
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    again = subprocess.run([sys.executable, "-m", "cli", *_extract_args(manifest, cache, "test")], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert set(list_splits(cache)) == {"train", "test"}
    assert json.loads(json.dumps(holder(cache))) == {}  # no lock left behind
