"""The cache's provenance and root attributes survive every trip: HDF5 attributes, a run's config.json, and back."""
from __future__ import annotations

import json
import os

import numpy as np

from sgmft_cache import CacheMeta, Provenance, Rows, legacy_placeholder, validate, write_split
from sgmft_cache.lock import _describe, holder, lock_path

FULL = Provenance(encoder_note="real weights", weights="sha256:abc", arch="ViT-H-14@RoBERTa", precision="fp16,fp32",
                  preprocessing={"max_len": 52, "jieba": True}, extract_config={"batch": 64}, split_source="given",
                  versions={"torch": "2.14"}, placeholder=False)
META = CacheMeta(model="ViT-H-14", embed_dim=4, labels=("home", "work"), fingerprint="fp-9", provenance=FULL)


def test_provenance_round_trips_through_attributes_and_records():
    attrs = FULL.to_attrs()
    assert attrs["placeholder_weights"] == "false" and attrs["precision"] == "fp16,fp32"
    assert attrs["preprocessing"] == '{"jieba": true, "max_len": 52}'
    assert Provenance.from_attrs(attrs) == FULL
    assert Provenance.from_record(FULL.record()) == FULL
    assert FULL.precisions == {"fp16", "fp32"} and Provenance().precisions == set()
    assert Provenance().to_attrs() == {"placeholder_weights": "false"}  # empty values are left out


def test_cache_meta_record_round_trips_for_a_runs_config():
    record = META.record()
    assert record["model"] == "ViT-H-14" and record["embed_dim"] == 4 and record["labels"] == ["home", "work"]
    assert record["fingerprint"] == "fp-9" and record["versions"] == {"torch": "2.14"}
    back = CacheMeta.from_record(record)
    assert back == META and back.labels == ("home", "work")
    empty = CacheMeta.from_record({})
    assert (empty.model, empty.embed_dim, empty.labels, empty.fingerprint) == ("", 0, (), "")


def test_a_written_cache_reads_its_provenance_back(tmp_path):
    path = tmp_path / "feats.h5"
    write_split(path, "train", META, ids=["a", "b"], text=np.ones((2, 4)), image=np.ones((2, 4)), label=[0, 1])
    read = validate(path)
    assert read.provenance == FULL and read.model == "ViT-H-14" and read.labels == ("home", "work")
    assert not read.placeholder


def test_placeholder_flag_and_its_legacy_rule():
    assert Provenance.from_attrs({"placeholder_weights": "TRUE"}).placeholder
    assert not Provenance.from_attrs({"placeholder_weights": "false"}, model="tiny").placeholder  # the flag wins
    assert Provenance.from_attrs({}, model="tiny").placeholder and Provenance.from_attrs({}, "synthetic").placeholder
    assert Provenance.from_attrs({"encoder_note": "RANDOM WEIGHTS: x"}, "ViT-H-14").placeholder
    assert not Provenance.from_attrs({"encoder_note": "real"}, "ViT-H-14").placeholder
    assert legacy_placeholder("tiny", "") and not legacy_placeholder("ViT-H-14", "random weights")
    for flag, expected in ((True, True), ("true", True), (False, False), ("yes", False)):
        assert Provenance.from_record({"placeholder_weights": flag}, "ViT-H-14").placeholder is expected
    assert Provenance.from_record({}, "tiny").placeholder


def test_json_attributes_that_are_not_objects_read_as_empty():
    p = Provenance.from_attrs({"preprocessing": "not json", "versions": "[1, 2]", "extract_config": '{"a": 1}'})
    assert p.preprocessing == {} and p.versions == {} and p.extract_config == {"a": 1}
    assert Provenance.from_record({"preprocessing": '{"b": 2}', "versions": {"c": "3"}}).versions == {"c": "3"}
    assert Provenance.from_record({"preprocessing": '{"b": 2}'}).preprocessing == {"b": 2}
    assert isinstance(FULL.record()["preprocessing"], dict)


def test_a_record_from_before_the_flag_takes_the_placeholder_rule_from_its_model():
    assert CacheMeta.from_record({"model": "tiny", "embed_dim": 4}).placeholder
    assert not CacheMeta.from_record({"model": "ViT-H-14", "encoder_note": "real"}).placeholder
    assert CacheMeta.from_record({"model": "ViT-H-14", "encoder_note": "RANDOM WEIGHTS: test"}).placeholder


def test_an_empty_block_of_rows_has_no_rows_in_every_field_and_the_features_dtype():
    for dtype in (np.float16, np.float32):
        rows = Rows.empty(6, dtype)
        assert len(rows) == 0 and rows.text.shape == rows.image.shape == rows.images.shape == (0, 6)
        assert rows.text.dtype == rows.image.dtype == dtype and rows.label.dtype == np.int64
        for name in ("ids", "text_clean", "skipped_id", "skipped_reason", "dropped_images"):
            assert getattr(rows, name).shape == (0,) and getattr(rows, name).dtype == object, name
        assert rows.has_text.shape == rows.has_image.shape == (0,) and rows.image_offsets.tolist() == [0]


def test_the_lock_holder_is_described_in_one_line(tmp_path):
    info = dict(pid=41, host="gpu-3", since="2026-12-02 10:00:00 UTC", command="sgmft extract --cache 特征.h5")
    assert _describe(info) == "pid 41 on gpu-3 since 2026-12-02 10:00:00 UTC: sgmft extract --cache 特征.h5"
    assert _describe({"pid": 7, "host": "h", "since": "s"}) == "pid 7 on h since s: "
    assert _describe({}) == "holder unknown"
    cache = tmp_path / "c.h5"
    lock_path(cache).write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
    assert holder(cache) == info
    for text in ("[1, 2]", '"a string"', "not json", "3"):
        lock_path(cache).write_text(text, encoding="utf-8")
        assert holder(cache) == {}, text
    lock_path(cache).unlink()
    assert holder(cache) == {}


def test_a_provenance_record_is_a_copy_that_leaves_the_provenance_as_it_was():
    """A run's config.json is built from record(); what is done to that dict must not reach the cache's meta."""
    made = Provenance(preprocessing={"max_text_len": 52}, extract_config={"batch_size": 32}, versions={"torch": "2"})
    record = made.record()
    for key in ("preprocessing", "extract_config", "versions"):
        assert isinstance(record[key], dict)
        record[key]["changed"] = True
    assert made.preprocessing == {"max_text_len": 52} and made.extract_config == {"batch_size": 32}
    assert made.versions == {"torch": "2"}


def test_root_attributes_keep_class_names_readable_and_refuse_extras_that_shadow_the_contract(tmp_path):
    import h5py
    import pytest

    meta = CacheMeta(model="m", embed_dim=2, labels=("家", "工作"), fingerprint="fp", extra={"note": "kept"})
    path = tmp_path / "c.h5"
    write_split(path, "train", meta, ids=["a"], text=np.ones((1, 2)), image=np.ones((1, 2)), label=[1])
    with h5py.File(path, "r") as f:  # what h5dump and other tools show: the names, not \\u escapes
        assert f.attrs["labels"] == '["家", "工作"]' and f.attrs["note"] == "kept" and int(f.attrs["version"]) == 1
    shadowing = CacheMeta(model="m", embed_dim=2, labels=("a", "b"), fingerprint="fp", extra={"model": "other"})
    with pytest.raises(ValueError, match=r"^extra attribute 'model' would shadow a required one$"):
        write_split(tmp_path / "d.h5", "train", shadowing, ids=["a"], text=np.ones((1, 2)), image=np.ones((1, 2)),
                    label=[1])


def test_a_placeholder_flag_and_provenance_json_survive_the_file(tmp_path):
    """placeholder=True written and read back True (a model name that is not a placeholder's, no note);
    the JSON attributes keep non-ASCII readable."""
    import h5py

    made = Provenance(weights="random:ViT-H-14:seed=0", preprocessing={"stopwords": "哈工大停用词表"}, placeholder=True)
    meta = CacheMeta(model="ViT-H-14", embed_dim=2, labels=("a", "b"), fingerprint="fp", provenance=made)
    path = tmp_path / "c.h5"
    write_split(path, "train", meta, ids=["a"], text=np.ones((1, 2)), image=np.ones((1, 2)), label=[1])
    read = validate(path)
    assert read.placeholder and read.provenance == made
    with h5py.File(path, "r") as f:
        assert f.attrs["placeholder_weights"] == "true"
        assert f.attrs["preprocessing"] == '{"stopwords": "哈工大停用词表"}'


def test_the_lock_file_signs_its_holder_and_a_lock_file_deleted_under_us_is_made_again(tmp_path, monkeypatch):
    import re
    import socket
    import sys

    from sgmft_cache import lock

    cache = tmp_path / "c.h5"
    monkeypatch.setattr(sys, "argv", ["sgmft", "extract", "--note", "two\nlines", "x" * 400])
    lock.release(cache)  # never taken: nothing to undo
    real_flock, calls = lock.fcntl.flock, []

    def flock(fd, op):  # the first time, the holder deletes the file just as we lock it
        real_flock(fd, op)
        calls.append(fd)
        if len(calls) == 1:
            lock_path(cache).unlink()

    monkeypatch.setattr(lock.fcntl, "flock", flock)
    with lock.cache_lock(cache):
        assert len(calls) == 2 and lock_path(cache).exists()  # the deleted one left, a new one locked and signed
        info = holder(cache)
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        assert info["command"] == ("sgmft extract --note two lines " + "x" * 400)[:300]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", info["since"])
        assert _describe(info) == f"pid {os.getpid()} on {socket.gethostname()} since {info['since']}: {info['command']}"
    assert not lock_path(cache).exists()
