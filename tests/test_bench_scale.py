"""The scale benchmark at toy size: every measurement of both implementations, the same rows, a table and a plot."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is a folder of scripts, not installed
from benchmarks import bench_scale, scale_worker  # noqa: E402
from benchmarks import reference_cache as ref  # noqa: E402


def rows_of(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as f:
        g = f["train"]
        return g["id"].asstr()[...].tolist(), g["text"][...], g["label"][...]


def test_benchmark_runs_both_implementations_on_the_same_rows(tmp_path, monkeypatch):
    kept = {}

    def in_process(spec: dict, memory_limit_gib=None) -> dict:  # the measurements, without a process per figure
        result = scale_worker.measure(spec)
        for name in ("ours.h5", "reference.h5", "ours-merged.h5", "reference-merged.h5"):
            if (Path(spec["dir"]) / name).exists() and spec["kind"] == "load":
                kept[name] = rows_of(Path(spec["dir"]) / name)
        if spec["kind"] == "merge":
            kept[spec["impl"] + "-merged"] = rows_of(Path(spec["dir"]) / f"{spec['impl']}-merged.h5")
        return result

    monkeypatch.setattr(bench_scale, "worker", in_process)
    out, png = tmp_path / "scale.json", tmp_path / "scale.png"
    rows = bench_scale.main(["--sizes", "700", "--dim", "8", "--chunk", "128", "--gather-batches", "10",
                             "--dir", str(tmp_path / "scratch"), "--out", str(out), "--plot", str(png)])
    done = {(r["impl"], r["kind"]) for r in rows if "error" not in r}
    for impl in bench_scale.IMPLS:
        assert {(impl, k) for k in ("commit", "merge", "load", "gather", "epoch")} <= done
    assert {("ours", "epoch_streamed"), ("ours", "prepare")} <= done
    prepared = next(r for r in rows if r["kind"] == "prepare")
    assert prepared["resident_feature_mib"] > 0 and prepared["growth_mib"] >= 0
    ids = [f"p{k:08d}" for k in range(700)]
    for name in ("ours.h5", "reference.h5", "ours-merged", "reference-merged"):
        got_ids, text, label = kept[name]
        assert got_ids == ids, name  # shards interleave k mod 2; the merge restores manifest order
        assert label.tolist() == [k % 7 for k in range(700)]
        np.testing.assert_array_equal(text, kept["reference.h5"][1])
    saved = json.loads(out.read_text())
    assert saved["rows"] == rows and png.stat().st_size > 0
    lines = bench_scale.table(rows)
    assert any(line.startswith("| 700 | commit seconds |") for line in lines)
    assert not (tmp_path / "scratch" / "n700").exists()
    printed = tmp_path / "run.log"  # a run cut short leaves only the JSON lines it printed
    printed.write_text("\n".join(json.dumps(r) for r in rows[:3]) + "\nnoise\n")
    joined = bench_scale.main(["--combine", str(out), str(printed), "--out", str(tmp_path / "j.json"),
                               "--plot", str(tmp_path / "j.png")])
    assert joined == rows + rows[:3]


def test_a_step_past_the_memory_cap_is_shown_as_out_of_memory():
    rows = [dict(n=10, impl="ours", kind="load", seconds=1.0),
            dict(n=10, impl="reference", kind="load", error="numpy._core._exceptions._ArrayMemoryError: Unable to allocate")]
    assert "| 10 | load seconds | 1.00 | out of memory | — |" in bench_scale.table(rows)
    rows[1]["error"] = "RuntimeError: DefaultCPUAllocator: can't allocate memory: ... (Cannot allocate memory)"  # torch's
    assert "| 10 | load seconds | 1.00 | out of memory | — |" in bench_scale.table(rows)
    rows[1]["error"] = "ImportError: libtorch_cpu.so: failed to map segment from shared object"
    assert "| 10 | load seconds | 1.00 | failed | — |" in bench_scale.table(rows)


def test_reference_commit_keeps_each_id_once_in_manifest_order(tmp_path):
    cache, meta = tmp_path / "c.h5", dict(embed_dim=4, labels=("a", "b"), fingerprint="f")
    spec = dict(n=10, dim=4, dtype="float32", chunk=4, seed=1)
    chunks = list(scale_worker.blocks(spec))
    for k, rows in enumerate(reversed(chunks), 1):  # staged out of order
        ref.stage_chunk(cache, "train", k, rows, meta)
    assert ref.commit(cache, "train", meta, order=scale_worker.row_ids(10)) == 10
    ref.stage_chunk(cache, "train", 9, chunks[0], meta)  # rows the cache holds already
    assert ref.commit(cache, "train", meta, order=scale_worker.row_ids(10)) == 10
    ids, text, _ = rows_of(cache)
    assert ids == scale_worker.row_ids(10)
    np.testing.assert_array_equal(text, np.concatenate([c["text"] for c in chunks]))
    data = ref.load(cache, "train")
    assert data["text"].dtype.is_floating_point and data["text"].element_size() == 4
