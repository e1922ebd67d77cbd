"""Hostile inputs to stage one: only regular files are read as images (a FIFO, /dev/zero and folders are refused
with a reason, without hanging), files over the byte cap are refused unread, and a 50 MB text cell is cut before
cleaning. Each case runs in a subprocess whose timeout is the hang guard."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from extract_fixtures import post_rows, write_manifest
from sgmft_cache import load_dropped_images, load_skipped, load_split

REPO = Path(__file__).resolve().parents[1]
READ = textwrap.dedent("""
    import json, sys
    from pipeline.extract.images import ImageProblem, read_image
    reasons = {}
    for path in sys.argv[1:]:
        try:
            read_image(path, 10**9)
            reasons[path] = None
        except ImageProblem as e:
            reasons[path] = str(e)
    # VmHWM is this process's own peak; ru_maxrss would carry over the forking pytest's peak across exec
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    reasons["peak_rss_mb"] = int(hwm.split()[1]) / 1024
    print(json.dumps(reasons))
""")


def _hostile(tmp_path: Path) -> dict[str, str]:
    fifo, sparse, folder = tmp_path / "fifo.jpg", tmp_path / "sparse.jpg", tmp_path / "folder.jpg"
    os.mkfifo(fifo)
    with open(sparse, "wb") as f:
        f.truncate(2 * 1024**3)  # 2 GB of holes: no disk used
    folder.mkdir()
    return {"fifo": str(fifo), "sparse": str(sparse), "zero": "/dev/zero", "folder": str(folder)}


def test_only_regular_files_under_the_byte_cap_are_read(tmp_path):
    paths = _hostile(tmp_path)
    done = subprocess.run([sys.executable, "-c", READ, *paths.values()], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got[paths["fifo"]].startswith("not a regular file:") and "FIFO" in got[paths["fifo"]]
    assert got["/dev/zero"].startswith("not a regular file:") and "character device" in got["/dev/zero"]
    assert got[paths["folder"]].startswith("image path is a directory:")
    sparse = got[paths["sparse"]]
    assert sparse.startswith("image file too large:") and "2,147,483,648 bytes" in sparse and "--max-image-bytes" in sparse
    assert got["peak_rss_mb"] < 1024  # the 2 GB file was never read into memory


def test_extract_skips_hostile_images_and_cuts_a_huge_text(tmp_path):
    rows = post_rows(tmp_path, 6)
    for row, (name, path) in zip(rows, _hostile(tmp_path).items()):
        row["image"], row["id"] = path, f"hostile-{name}"
    rows[4]["text"] = "学校 食堂 " + "好" * 50_000_000  # a 50 MB cell
    rows[4]["id"] = "huge-text"
    for row in rows:
        row["split"] = "train"
    manifest = write_manifest(tmp_path / "posts.jsonl", rows)
    cache = tmp_path / "feats.h5"
    done = subprocess.run([sys.executable, "-m", "cli", "extract", "--manifest", str(manifest), "--cache", str(cache),
                           "--model", "tiny", "--workers", "0", "--split", "train", "-q"], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "SGMFT_HOME": str(tmp_path / "home")})
    assert done.returncode == 0, done.stderr
    assert not load_skipped(cache, "train")  # each post keeps its text (SPEC §7); the pictures are noted
    dropped = load_dropped_images(cache, "train")
    assert {k: v.split(":")[0] for k, v in dropped.items()} == {
        "hostile-fifo": "not a regular file", "hostile-zero": "not a regular file",
        "hostile-folder": "image path is a directory", "hostile-sparse": "image file too large"}
    data = load_split(cache, "train")
    assert not data.has_image[[data.ids.index(i) for i in dropped]].any()
    huge = data.text_clean[data.ids.index("huge-text")]
    assert huge.startswith("学校 食堂") and len(huge) < 30_000
