"""Faults end in one line that says what and where: a full disk (a real file-size limit in a subprocess, and
ENOSPC raised where the OS would), a read-only or forbidden folder; nothing truncated is left as if it were whole;
predict checks its folders before encoding; report lists and skips runs it cannot read."""
from __future__ import annotations

import errno
import importlib
import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import cli
from extract_fixtures import post_rows, write_manifest
from sgmft_cache import load_split, validate
from pipeline.fit import FitConfig, fit
from pipeline.report import report
from pipeline.synthetic import make_synthetic_cache

REPO = Path(__file__).resolve().parents[1]
FIT = ["--epochs", "1", "--heads", "2", "--ffn-hidden", "8", "-q"]


def _limited(limit: int):
    """A child whose files cannot grow past `limit` bytes: writes fail with EFBIG, as on a full disk."""
    def start():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return start


def _sgmft(*args, limit: int | None = None, env=None):
    return subprocess.run([sys.executable, "-m", "cli", *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=300, preexec_fn=_limited(limit) if limit else None, env=env)


def _one_error_line(done, where: Path) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {where}") and "Traceback" not in done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("faults") / "feats.h5"
    make_synthetic_cache(path, sizes={"train": 120, "test": 40}, dim=32)
    return path


@pytest.mark.parametrize("limit", [1_000, 30_000])
def test_fit_on_a_full_disk_says_where_and_leaves_no_truncated_checkpoint(cache, tmp_path, limit):
    run = tmp_path / "run"
    line = _one_error_line(_sgmft("fit", "--cache", cache, "--out", run, *FIT, limit=limit), run)
    assert "File too large" in line
    assert not (run / "metrics.json").exists()
    if (run / "checkpoint.pt").exists():  # only ever a whole one
        torch.load(run / "checkpoint.pt", weights_only=True)
    assert not list(run.glob("*.tmp"))


def test_extract_on_a_full_disk_is_one_line_not_a_crash_and_resumes(tmp_path):
    manifest = write_manifest(tmp_path / "posts.csv", post_rows(tmp_path, 24, split=True))
    cache = tmp_path / "feats.h5"
    env = {**os.environ, "SGMFT_HOME": str(tmp_path / "home")}
    args = ["extract", "--manifest", manifest, "--cache", cache, "--model", "tiny", "--workers", "0", "--chunk-rows", "4",
            "-q"]
    for limit in (3_000, 20_000):  # the first chunk fails; the commit fails (the cache file, ~22 kB, is the largest)
        done = _sgmft(*args, limit=limit, env=env)
        assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "File too large" in done.stderr and str(tmp_path) in done.stderr
        if cache.exists():
            validate(cache)  # never a broken file
    assert _sgmft(*args, env=env).returncode == 0
    assert sum(len(load_split(cache, s)) for s in ("train", "val", "test")) == 24


def test_no_space_during_fit_names_the_file(cache, tmp_path, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write() does on a full disk: no file named

    monkeypatch.setattr(os, "fsync", no_space)
    result = CliRunner().invoke(cli.app, ["fit", "--cache", str(cache), "--out", str(tmp_path / "run"), *FIT])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"error: {tmp_path / 'run' / 'config.json'}: No space left on device (the disk is "
                                     "full: free space or write elsewhere)")


def test_a_read_only_cache_folder_stops_extract_in_one_line(tmp_path, monkeypatch):
    manifest = write_manifest(tmp_path / "posts.csv", post_rows(tmp_path, 4))
    opened = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return opened(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    result = CliRunner().invoke(cli.app, ["extract", "--manifest", str(manifest), "--cache", str(tmp_path / "c" / "f.h5"),
                                          "--model", "tiny", "--workers", "0", "-q"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "Read-only file system" in result.stderr and "f.h5.lock" in result.stderr


def test_a_read_only_report_folder_is_one_line(cache, tmp_path, monkeypatch):
    fit(FitConfig(cache=str(cache), out=str(tmp_path / "runs" / "a"), epochs=1, heads=2, ffn_hidden=8, quiet=True))
    mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if "report" in self.parts:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    result = CliRunner().invoke(cli.app, ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "report"), "--no-tsne"])
    assert result.exit_code == 1 and result.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'report'}")
    assert "Read-only file system (a read-only file system: write elsewhere)" in result.stderr


def test_predict_checks_its_folder_before_encoding(cache, tmp_path, monkeypatch):
    run = fit(FitConfig(cache=str(cache), out=str(tmp_path / "run"), epochs=1, heads=2, ffn_hidden=8, quiet=True)).run_dir
    posts = write_manifest(tmp_path / "new.csv", post_rows(tmp_path, 2))
    monkeypatch.setattr(importlib.import_module("pipeline.predict.run"), "encode_new_posts",
                        lambda *a: pytest.fail("encoded before checking --out"))
    import tempfile

    def forbidden(*args, dir=None, **kwargs):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(dir))

    monkeypatch.setattr(tempfile, "TemporaryFile", forbidden)
    result = CliRunner().invoke(cli.app, ["predict", "--run", str(run), "--data", str(posts), "--out",
                                          str(tmp_path / "out" / "p.csv"), "-q"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (f"error: {tmp_path / 'out'}: cannot write the predictions here (Permission denied);"
                                     " make it writable or pass --out elsewhere")


def test_report_lists_and_skips_runs_it_cannot_read(cache, tmp_path):
    runs = tmp_path / "runs"
    for name in ("good", "npz", "csv"):
        fit(FitConfig(cache=str(cache), out=str(runs / name), epochs=1, heads=2, ffn_hidden=8, quiet=True, seed=len(name)))
    npz = runs / "npz" / "test_outputs.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    (runs / "csv" / "epochs.csv").write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)))
    summary = report([runs], tmp_path / "report", tsne=False)
    assert [r.path.name for s in summary.sections for r in s.runs] == ["good"]
    skipped = sorted(summary.skipped)
    assert skipped[0].startswith(f"{runs / 'csv'}: epochs.csv unreadable")
    assert skipped[1].startswith(f"{runs / 'npz'}: test_outputs.npz unreadable")


SEGMENT = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    import numpy as np
    from sgmft_cache import CacheMeta, CacheWriter
    n, d = 2000, 64
    writer = CacheWriter(Path(sys.argv[1]), "train", CacheMeta(model="m", embed_dim=d, labels=("a", "b"),
                         fingerprint="f"), chunk_rows=50)
    for k in range(0, n, 50):  # 40 chunks of ~30 kB
        writer.add([f"p{i}" for i in range(k, k + 50)], np.ones((50, d)), np.ones((50, d)), np.arange(50) % 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (500_000, 500_000))  # the commit's 1 MB segment does not fit
    try:
        writer.commit()
    except OSError as e:
        print(e.filename, e.strerror, sep="|")
""")


def test_a_features_segment_that_meets_a_full_disk_fails_as_one_oserror_naming_it(tmp_path):
    cache = tmp_path / "feats.h5"
    done = subprocess.run([sys.executable, "-c", SEGMENT, str(cache)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    filename, strerror = done.stdout.strip().split("|")
    assert Path(filename).parent == tmp_path / "feats.h5.d" and filename.endswith(".h5.tmp")
    assert strerror == os.strerror(errno.EFBIG)
    assert not Path(filename).exists() and not cache.exists()  # no partial segment, no half cache


@pytest.mark.parametrize("fails", ["write", "open", "bare"])
def test_a_whole_file_write_that_fails_is_one_oserror_naming_the_file_and_leaves_nothing(tmp_path, monkeypatch, fails):
    """A failure without a file name (a full disk met in write(), fsync() or open()) is raised again with the
    file's name, its errno and its reason; the partial file is removed, and a file never made is no second error."""
    from sgmft_cache import diskfile

    target = tmp_path / "out.bin"

    class FullDisk:
        def __init__(self, path, mode):
            if fails == "open":
                raise OSError(errno.ENOSPC, "No space left on device")
            self.file = open(path, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            self.file.write(data[:3])
            raise OSError("the disk went away") if fails == "bare" else OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(diskfile, "open", FullDisk, raising=False)
    with pytest.raises(OSError) as caught:
        diskfile.write_whole(target, b"0123456789")
    e = caught.value
    expected = (None, "the disk went away") if fails == "bare" else (errno.ENOSPC, "No space left on device")
    assert (e.errno, e.strerror, e.filename) == (*expected, str(target))
    assert not target.exists()
    monkeypatch.undo()
    missing = tmp_path / "no-such-folder" / "x.bin"
    with pytest.raises(FileNotFoundError) as named:  # an error that names its file already is raised as it is
        diskfile.write_whole(missing, b"x")
    assert named.value.filename == str(missing)


def test_a_segment_write_that_fails_in_hdf5_is_one_oserror_naming_the_segment_and_leaves_the_cache(tmp_path,
                                                                                                     monkeypatch):
    """In-process (the RLIMIT_FSIZE test above runs in a child): h5py's RuntimeError with the errno in its
    message becomes an OSError with that errno naming the partial segment, which is removed; the cache as it was."""
    from sgmft_cache import CacheMeta, CacheWriter, segments

    meta = CacheMeta(model="m", embed_dim=4, labels=("a", "b"), fingerprint="f")
    cache = tmp_path / "feats.h5"

    def commit(ids):
        w = CacheWriter(cache, "train", meta)
        w.add(ids, np.ones((len(ids), 4)), np.ones((len(ids), 4)), [0] * len(ids))
        w.commit()

    commit(["p0", "p1"])
    real_gather = segments.gather

    def gather(*args, **kw):
        real_gather(*args, **kw)
        raise RuntimeError("Can't write data (file write failed: time = Tue, filename = 'x', errno = 28, "
                           "error message = 'No space left on device')")

    monkeypatch.setattr(segments, "gather", gather)
    with pytest.raises(OSError) as caught:
        commit(["p2"])
    e = caught.value
    assert (e.errno, e.strerror) == (errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert Path(e.filename).parent == tmp_path / "feats.h5.d" and e.filename.endswith(".h5.tmp")
    assert not Path(e.filename).exists()
    monkeypatch.undo()
    assert load_split(cache, "train").ids == ["p0", "p1"]
