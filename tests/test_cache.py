"""The cache contract (SPEC §3): layout, writer (chunks, resume, order, skips), reader, validator."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from sgmft_cache import (CacheError, CacheMeta, CacheWriter, Provenance, load_cache, load_split, merge_caches, staging_dir,
                         validate, write_split)

META = CacheMeta(model="tiny", embed_dim=8, labels=("home", "work", "travel"), fingerprint="fp-1",
                 provenance=Provenance(precision="fp32"))


def _rows(n, seed=0, prefix="p"):
    rng = np.random.default_rng(seed)
    return dict(ids=[f"{prefix}{i}" for i in range(n)], text=rng.standard_normal((n, 8)),
                image=rng.standard_normal((n, 8)), label=rng.integers(-1, 3, n),
                text_clean=[f"词 {i}" for i in range(n)])


def test_layout_names_dtypes_and_attributes(tmp_path):
    path = tmp_path / "feats.h5"
    rows = _rows(5)
    write_split(path, "train", META, **rows)
    write_split(path, "test", META, **_rows(3, seed=1, prefix="q"), dtype="float16")
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "sgmft-cache" and int(f.attrs["version"]) == 1
        assert f.attrs["model"] == "tiny" and int(f.attrs["embed_dim"]) == 8
        assert json.loads(f.attrs["labels"]) == ["home", "work", "travel"]
        assert f.attrs["fingerprint"] == "fp-1" and f.attrs["precision"] == "fp32"
        g = f["train"]
        assert g["id"].asstr()[...].tolist() == rows["ids"]
        assert g["text"].dtype == np.float32 and g["text"].shape == (5, 8)
        assert g["label"].dtype == np.int64 and g["label"][...].tolist() == rows["label"].tolist()
        assert g["text_clean"].asstr()[...].tolist() == rows["text_clean"]
        np.testing.assert_allclose(g["image"][...], rows["image"], rtol=1e-6)
        assert f["test/text"].dtype == np.float16  # the train split is kept when test is added
    assert validate(path, require_splits=["train", "test"]).labels == META.labels


def test_reader_loads_tensors_in_stored_order(tmp_path):
    path = tmp_path / "feats.h5"
    rows = _rows(4)
    write_split(path, "val", META, **rows, dtype="float16")
    data = load_split(path, "val")
    assert data.ids == rows["ids"] and data.text.dtype == torch.float32 and data.label.dtype == torch.int64
    np.testing.assert_allclose(data.text.numpy(), rows["text"].astype(np.float16).astype(np.float32))
    assert data.text_clean == rows["text_clean"]


def test_writer_flushes_chunks_and_resumes_from_them(tmp_path):
    path = tmp_path / "feats.h5"
    rows = _rows(10)
    w = CacheWriter(path, "train", META, chunk_rows=4)
    w.add(rows["ids"][:6], rows["text"][:6], rows["image"][:6], rows["label"][:6])
    assert len(list((staging_dir(path) / "train").glob("chunk-*.h5"))) == 1  # 6 >= 4: one chunk on disk
    del w  # the process "dies": no commit, the buffered rows were flushed as one chunk
    w2 = CacheWriter(path, "train", META, chunk_rows=4)
    assert w2.done_ids() == set(rows["ids"][:6])
    w2.add(rows["ids"][6:], rows["text"][6:], rows["image"][6:], rows["label"][6:])
    w2.skip(["bad-1"], ["image file not found: x.jpg"])
    summary = w2.commit(order=list(reversed(rows["ids"])) + ["bad-1"])
    assert (summary.rows, summary.skipped) == (10, 1)
    assert not staging_dir(path).exists()
    data = load_split(path, "train")
    assert data.ids == list(reversed(rows["ids"]))
    np.testing.assert_allclose(data.text.numpy(), rows["text"][::-1].astype(np.float32))
    with h5py.File(path, "r") as f:
        assert f["train/skipped_id"].asstr()[...].tolist() == ["bad-1"]
        assert "not found" in f["train/skipped_reason"].asstr()[0]


def test_retried_skip_is_replaced_by_its_row_and_first_row_wins(tmp_path):
    path = tmp_path / "feats.h5"
    w = CacheWriter(path, "train", META)
    w.skip(["a"], ["unreadable image"])
    w.commit()
    w = CacheWriter(path, "train", META)
    assert w.done_ids() == set()  # a skipped row is retried
    w.add(["a", "b"], np.ones((2, 8)), np.ones((2, 8)), [0, 1])
    w.add(["a"], np.zeros((1, 8)), np.zeros((1, 8)), [2])  # a duplicate id: the first one stays
    w.commit()
    data = load_split(path, "train")
    assert data.ids == ["a", "b"] and data.label.tolist() == [0, 1] and float(data.text[0, 0]) == 1.0
    with h5py.File(path, "r") as f:
        assert f["train/skipped_id"].shape == (0,)


def test_writer_refuses_another_fingerprint_unless_overwrite(tmp_path):
    path = tmp_path / "feats.h5"
    write_split(path, "train", META, **_rows(3))
    other = CacheMeta(model="ViT-H-14", embed_dim=8, labels=META.labels, fingerprint="fp-2")
    with pytest.raises(CacheError, match="fingerprint fp-1.*differs.*--overwrite"):
        CacheWriter(path, "test", other)
    with pytest.raises(CacheError, match="labels"):
        CacheWriter(path, "test", CacheMeta("tiny", 8, ("a", "b"), "fp-1"))
    write_split(path, "test", other, **_rows(2), overwrite=True)
    assert validate(path).fingerprint == "fp-2"
    with h5py.File(path, "r") as f:
        assert list(f) == ["test"]  # overwrite replaced the whole file


def test_merge_caches_keys_rows_by_id(tmp_path):
    rows = _rows(6)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    pick = lambda idx: {k: [v[i] for i in idx] if isinstance(v, list) else v[idx] for k, v in rows.items()}  # noqa: E731
    write_split(a, "train", META, **pick([0, 2, 4]))
    write_split(b, "train", META, **pick([1, 3, 5]))
    merge_caches([a, b], tmp_path / "m.h5", order={"train": rows["ids"]})
    data = load_split(tmp_path / "m.h5", "train")
    assert data.ids == rows["ids"]
    np.testing.assert_allclose(data.image.numpy(), rows["image"].astype(np.float32))


def _corrupt(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)


def _refusal(tmp_path, damage) -> tuple[Path, str]:
    """A three-post cache damaged by `damage`, and what validate says of it."""
    path = tmp_path / "feats.h5"
    write_split(path, "train", META, **_rows(3))
    _corrupt(path, damage)
    with pytest.raises(CacheError) as e:
        validate(path)
    return path, str(e.value)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: f.attrs.__delitem__("fingerprint"), "missing root attribute.*fingerprint"),
        (lambda f: f.attrs.__setitem__("format", "other"), "format attribute"),
        (lambda f: f.attrs.__setitem__("version", 7), "cache version 7"),
        (lambda f: f.attrs.__setitem__("labels", "not json"), "labels attribute"),
        (lambda f: f["train"].__delitem__("image"), "/train/image is missing"),
        (lambda f: (f["train"].__delitem__("label"), f["train"].create_dataset("label", data=np.zeros(2, np.int64))),
         "row counts differ"),
        (lambda f: (f["train"].__delitem__("text"), f["train"].create_dataset("text", data=np.zeros((3, 5), np.float32))),
         r"shape \(3, 5\)"),
        (lambda f: f["train/label"].__setitem__(0, 9), "outside -1..2"),
        (lambda f: f["train/id"].__setitem__(1, "p0"), "repeats id 'p0'"),
    ],
)
def test_validator_names_the_problem(tmp_path, damage, message):
    path, refusal = _refusal(tmp_path, damage)
    assert re.search(message, refusal) and refusal.startswith(str(path))


def test_validator_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(CacheError, match="no such file"):
        validate(tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_text("id,text\n1,hello\n")
    with pytest.raises(CacheError, match="not an HDF5 file"):
        validate(junk)
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = [1, 2]
    with pytest.raises(CacheError, match="missing root attribute"):
        validate(tmp_path / "plain.h5")


def test_reader_refuses_nan_features_naming_the_row(tmp_path):
    path = tmp_path / "feats.h5"
    rows = _rows(4)
    rows["image"][2, 3] = np.nan
    write_split(path, "train", META, **rows)
    with pytest.raises(CacheError, match="/train/image holds NaN or Inf in 1 row.*'p2'"):
        load_split(path, "train")


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_reader_refuses_non_finite_features_of_either_stored_dtype(tmp_path, dtype, bad):
    path = tmp_path / "feats.h5"
    rows = _rows(9000)  # more than one 8,192-row block of the check
    rows["text"][8500, 0] = bad
    write_split(path, "train", META, **rows, dtype=dtype)
    with pytest.raises(CacheError, match="/train/text holds NaN or Inf in 1 row.*'p8500'"):
        load_cache(path, required=["train"], keep_dtype=True)


def test_writer_removes_copies_left_by_a_commit_killed_mid_way(tmp_path):
    path = tmp_path / "feats.h5"
    write_split(path, "train", META, **_rows(2))
    dead = subprocess_pid_that_exited()
    stale, live = tmp_path / f".feats.h5.tmp-{dead}", tmp_path / f".feats.h5.tmp-{os.getpid()}"
    stale.write_bytes(b"half a file")
    live.write_bytes(b"another process is writing this one")
    CacheWriter(path, "test", META)
    assert not stale.exists() and live.exists()


def subprocess_pid_that_exited() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_post_lives_in_one_split_only(tmp_path):
    path = tmp_path / "feats.h5"
    write_split(path, "train", META, **_rows(4))
    with pytest.raises(CacheError, match=r"1 id\(s\) are in both /train and /test, e.g. 'p3'"):
        write_split(path, "test", META, **_rows(1, prefix="p3-") | {"ids": ["p3"]})
    assert list(load_split(path, "train").ids) == ["p0", "p1", "p2", "p3"]  # nothing was written
    with h5py.File(path, "a") as f:  # a file made by another tool with the leak is refused on read
        f.copy(f["train"], f, name="val")
    with pytest.raises(CacheError, match="in both /train and /val"):
        validate(path)


def _v2(path, n=3):
    rows = _rows(n)
    counts = [1, 0, 2][:n]
    rows.update(image=None, images=np.ones((sum(counts), 8)), image_offsets=np.concatenate([[0], np.cumsum(counts)]))
    write_split(path, "train", META, **rows)


@pytest.mark.parametrize("bad, shown", [(np.zeros((3, 8), np.float64), "float64 (3, 8)"),
                                        (np.zeros((3, 9), np.float32), "float32 (3, 9)"),
                                        (np.zeros(3, np.float32), "float32 (3,)")])
def test_image_sets_of_the_wrong_width_or_dtype_are_refused(tmp_path, bad, shown):
    path = tmp_path / "c.h5"
    _v2(path)
    with h5py.File(path, "a") as f:
        del f["train/images"]
        f["train/images"] = bad
    with pytest.raises(CacheError) as e:
        validate(path)
    assert str(e.value).endswith(f"/train/images is {shown}, expected float [M, 8]")


def test_a_split_with_only_some_version_2_datasets_names_the_missing_ones(tmp_path):
    path = tmp_path / "c.h5"
    _v2(path)
    with h5py.File(path, "a") as f:
        del f["train/has_text"], f["train/image_offsets"]
    with pytest.raises(CacheError, match="has some version-2 datasets but not has_text, image_offsets$"):
        validate(path)


def test_write_split_keeps_the_posts_without_an_image(tmp_path):
    path = tmp_path / "c.h5"
    rows = _rows(3)
    rows["image"][1] = 0
    write_split(path, "train", META, **rows, has_image=[True, False, True])
    data = load_split(path, "train")
    assert data.has_image.tolist() == [True, False, True] and data.image_offsets.tolist() == [0, 1, 1, 2]


def test_optional_splits_are_read_when_present_and_required_ones_are_checked(tmp_path):
    path = tmp_path / "c.h5"
    write_split(path, "train", META, **_rows(4))
    write_split(path, "val", META, **_rows(2, prefix="v"))
    meta, splits = load_cache(path, required=["train"], optional=["val", "test"])
    assert sorted(splits) == ["train", "val"] and splits["val"].ids == ["v0", "v1"]
    with pytest.raises(CacheError, match="test"):
        load_cache(path, required=["test"])
    from sgmft_cache import load_skipped

    with pytest.raises(CacheError, match="test"):
        load_skipped(path, "test")


def test_skipped_posts_read_back_with_their_reasons(tmp_path):
    from sgmft_cache import load_skipped

    path = tmp_path / "c.h5"
    w = CacheWriter(path, "train", META)
    w.add(*[_rows(2)[k] for k in ("ids", "text", "image", "label")])
    w.skip(["gone", "broken"], ["missing image file", "unreadable: truncated"])
    w.commit()
    assert load_skipped(path, "train") == {"gone": "missing image file", "broken": "unreadable: truncated"}


def test_remove_cache_deletes_file_segments_and_staging_and_tolerates_a_missing_cache(tmp_path):
    from sgmft_cache import remove_cache, segment_dir

    path = tmp_path / "c.h5"
    write_split(path, "train", META, **_rows(3))
    staging_dir(path).mkdir(parents=True, exist_ok=True)
    remove_cache(path)
    assert not path.exists() and not segment_dir(path).exists() and not staging_dir(path).exists()
    remove_cache(path)  # nothing there: nothing to do


def test_an_unknown_name_of_the_package_is_an_attribute_error_naming_it():
    import sgmft_cache

    with pytest.raises(AttributeError, match=r"^module 'sgmft_cache' has no attribute 'nothing_here'$"):
        sgmft_cache.nothing_here


def test_a_cache_with_only_the_contracts_five_datasets_reads_as_posts_of_the_papers_shape(tmp_path):
    """SPEC §3: an outside tool may write id, text, image, label and the root attributes only; everything
    else reads with its version-1 meaning (no cleaned text, every mask true, one image per post, no skips)."""
    from sgmft_cache import load_dropped_images, load_rows, load_skipped

    path = tmp_path / "outside.h5"
    rng = np.random.default_rng(0)
    text, image = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float16)
    with h5py.File(path, "w") as f:
        f.attrs.update(format="sgmft-cache", version=1, model="other-tool", embed_dim=4, labels='["a", "b"]',
                       fingerprint="theirs")
        g = f.create_group("train")
        g["id"] = np.array(["x", "y", "z"], dtype=h5py.string_dtype())
        g["text"], g["image"], g["label"] = text, image, np.array([1, -1, 0], np.int64)
    validate(path, require_splits=["train"])
    for data in (load_split(path, "train"), load_rows(path, "train", [0, 1, 2])):
        assert data.ids == ["x", "y", "z"] and data.text_clean == ["", "", ""] and data.label.tolist() == [1, -1, 0]
        assert data.has_text.tolist() == data.has_image.tolist() == [True] * 3
        assert data.image_offsets.tolist() == [0, 1, 2, 3]
        np.testing.assert_array_equal(data.text.float().numpy(), text)
        np.testing.assert_array_equal(data.images.float().numpy(), image.astype(np.float32))
    assert load_skipped(path, "train") == {} and load_dropped_images(path, "train") == {}


def test_the_writers_refusals_say_what_was_wrong(tmp_path):
    from dataclasses import replace

    path = tmp_path / "c.h5"
    with pytest.raises(ValueError, match=r"^feature dtype must be float32 or float16, not float64$"):
        CacheWriter(path, "train", META, dtype="float64")
    w = CacheWriter(path, "train", META)
    r = _rows(3)
    sets, offsets = np.ones((4, 8)), [0, 1, 3, 4]
    cases = [
        (dict(images=sets), "add() needs images and image_offsets together"),
        (dict(image_offsets=offsets), "add() needs images and image_offsets together"),
        (dict(images=np.ones((4, 5)), image_offsets=offsets), "add(): images must be [M, 8], got (4, 5)"),
        (dict(images=np.ones((4, 8, 1)), image_offsets=offsets), "add(): images must be [M, 8], got (4, 8, 1)"),
        (dict(images=sets, image_offsets=[0, 1, 3, 5]), "add(): image_offsets "),
    ]
    for kw, message in cases:
        with pytest.raises(ValueError, match="^" + re.escape(message)):
            w.add(r["ids"], r["text"], None if "images" in kw else r["image"], r["label"], **kw)
    for text, image, label, got in ((r["text"], r["image"], r["label"][:2], "(3, 8), (3, 8), (2,)"),
                                    (r["text"], r["image"][:, :5], r["label"], "(3, 8), (3, 5), (3,)"),
                                    (r["text"][:2], r["image"], r["label"], "(2, 8), (3, 8), (3,)")):
        with pytest.raises(ValueError, match=re.escape(f"add() expects text/image [3, 8] and 3 labels; got {got}")):
            w.add(r["ids"], text, image, label)
    for kw, message in ((dict(has_text=[True, False]), "add(): a mask has 2 entries for 3 rows"),
                        (dict(dropped_images=["", ""]), "add(): dropped_images has 2 entries for 3 rows"),
                        (dict(images=sets, image_offsets=offsets),
                         "add(): image must be each post's first image in images (or None to take it from there)")):
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            w.add(r["ids"], r["text"], r["image"], r["label"], **kw)
    w.add(r["ids"], r["text"], r["image"], r["label"])
    w.flush()
    w.close()  # a writer that died: its chunk stays staged
    other = replace(META, fingerprint="fp-2")
    with pytest.raises(CacheError, match=rf"^{path}: holds features made differently \(fingerprint fp-1 .* differs "
                                         r"from fp-2 .*\); overwrite it \(sgmft extract --overwrite\) or write to "
                                         r"another cache file$"):
        CacheWriter(path, "test", other)


def test_a_resumed_writer_numbers_its_chunks_after_the_staged_ones_and_drops_a_half_written_one(tmp_path):
    path = tmp_path / "c.h5"
    w = CacheWriter(path, "train", META, chunk_rows=2)
    r = _rows(4)
    for half in (slice(0, 2), slice(2, 4)):  # two chunks
        w.add(r["ids"][half], r["text"][half], r["image"][half], r["label"][half])
    (w.chunks / "chunk-000003.tmp").write_bytes(b"half")  # the one being written when the process died
    w.close()
    again = CacheWriter(path, "train", META, chunk_rows=2)
    assert again.chunks == tmp_path / "c.h5.staging" / "train"  # beside the cache, where a user finds it
    assert sorted(p.name for p in again.chunks.iterdir()) == ["chunk-000001.h5", "chunk-000002.h5"]
    more = _rows(2, seed=1, prefix="q")
    again.add(more["ids"], more["text"], more["image"], more["label"])
    assert sorted(p.name for p in again.chunks.iterdir())[-1] == "chunk-000003.h5"
    again.commit()
    assert load_split(path, "train").ids == r["ids"] + more["ids"]


def test_a_writer_takes_torch_tensors_as_the_encoders_give_them(tmp_path):
    """bfloat16 and still attached to a graph (numpy takes neither), masks as bool tensors."""
    r = _rows(3)
    text = torch.tensor(r["text"], dtype=torch.bfloat16, requires_grad=True) * 1.0
    w = CacheWriter(tmp_path / "c.h5", "train", META)
    w.add(r["ids"], text, torch.tensor(r["image"]), torch.tensor(r["label"]), has_text=torch.tensor([True, False, True]))
    w.commit()
    data = load_split(tmp_path / "c.h5", "train")
    expected = text.detach().float().numpy() * np.array([1, 0, 1])[:, None]
    np.testing.assert_array_equal(data.text.numpy(), expected)
    np.testing.assert_array_equal(data.image.numpy(), r["image"].astype(np.float32))
    assert data.has_text.tolist() == [True, False, True] and data.label.tolist() == r["label"].tolist()


def _replace(name, data):
    def damage(f):
        del f["train"][name]
        f["train"].create_dataset(name, data=data)
    return damage


@pytest.mark.parametrize(
    "damage, message",
    [
        (_replace("id", np.array([["a", "b", "c"]], dtype=h5py.string_dtype())), "/train/id must be one-dimensional"),
        (_replace("id", np.arange(3)), "/train/id has dtype int64, expected utf-8 strings (write ids as text)"),
        (_replace("text", np.zeros((3, 8), np.float64)), "/train/text has dtype float64, expected float32 or float16"),
        (_replace("label", np.zeros(3, np.float64)), "/train/label has dtype float64, expected int64"),
        (lambda f: f["train/label"].__setitem__(2, 3), "/train/label holds 3, outside -1..2"),
        (lambda f: f["train/id"].__setitem__(0, "p2"), "/train/id repeats id 'p2'"),
        (lambda f: f["train"].__delitem__("skipped_reason"), "/train/skipped_id and /train/skipped_reason do not match"),
        (_replace("skipped_reason", np.array(["a", "b"], dtype=h5py.string_dtype())),
         "/train/skipped_id and /train/skipped_reason do not match"),
        (lambda f: f["train"].create_dataset("dropped_images", data=np.array(["", ""], dtype=h5py.string_dtype())),
         "/train/dropped_images has shape (2,), expected [3]"),
    ],
)
def test_validator_refusals_word_for_word(tmp_path, damage, message):
    path, refusal = _refusal(tmp_path, damage)
    assert refusal.startswith(f"{path}: {message}"), refusal


def test_root_attributes_of_other_tools_are_kept_apart_from_the_provenance(tmp_path):
    path = tmp_path / "feats.h5"
    write_split(path, "train", META, **_rows(3))
    with h5py.File(path, "a") as f:
        f.attrs["their_tool"] = "v3"
        f.attrs["model"] = "tiny"  # an older cache of the test encoder, from before the placeholder flag
        del f.attrs["placeholder_weights"]
    meta = validate(path)
    assert set(meta.extra) == {"their_tool", "content_id"}  # provenance keys and the contract's are not extras
    assert meta.extra["their_tool"] == "v3"
    assert meta.provenance.precision == "fp32" and meta.placeholder  # the legacy rule reads the model name


def _attr(name, value):
    return lambda f: f.attrs.__setitem__(name, value)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: [f.attrs.__delitem__(a) for a in ("model", "labels")],
         "missing root attribute(s) model, labels: not written by sgmft"),
        (_attr("embed_dim", "8"), "root attribute embed_dim is '8' (str), expected an integer"),
        (_attr("version", True), "root attribute version is np.True_ (bool), expected an integer"),
        (_attr("embed_dim", 0), "embed_dim must be a positive integer"),
        (_attr("labels", "home, work"), "labels attribute is not a JSON list"),
        (_attr("labels", "[1, 2, 3]"), "labels attribute must be a JSON list of class names"),
        (_attr("labels", '{"a": 1}'), "labels attribute must be a JSON list of class names"),
        (_attr("labels", '["home", "home", "work"]'), "labels attribute repeats a class name"),
        (lambda f: f["train"].create_dataset("has_text", data=np.ones(3, bool)),
         "version 1 but a split holds version-2 datasets (has_text, images, ...): set version=2"),
    ],
)
def test_root_refusals_word_for_word(tmp_path, damage, message):
    path, refusal = _refusal(tmp_path, damage)
    assert refusal == f"{path}: {message}"


def test_files_that_are_no_cache_and_caches_at_the_edges(tmp_path):
    with pytest.raises(CacheError) as e:
        validate(tmp_path)
    assert str(e.value) == f"{tmp_path}: is a directory, not a feature cache file"
    broken = tmp_path / "broken.h5"
    write_split(broken, "train", META, **_rows(3))
    broken.write_bytes(broken.read_bytes()[:3000])  # an HDF5 signature, a truncated body
    with pytest.raises(CacheError, match=rf"^{broken}: cannot be read as HDF5 \(.+\)$"):
        validate(broken)
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.attrs.update(format="sgmft-cache", version=1, model="m", embed_dim=1, fingerprint="fp",
                       labels=np.bytes_('["家", "工作"]'.encode("utf-8")))  # attributes as bytes: read as UTF-8
    assert validate(empty).labels == ("家", "工作") and validate(empty).embed_dim == 1  # one dimension is fine
    with pytest.raises(CacheError) as e:
        validate(empty, require_splits=["train"])
    assert str(e.value) == (f"{empty}: split 'train' is missing (splits present: none); "
                            "write it with `sgmft extract --split train`")
