"""The cache's provenance and root attributes survive every trip: HDF5 attributes, a run's config.json, and back."""
from __future__ import annotations

import numpy as np

from sgmft_cache import CacheMeta, Provenance, legacy_placeholder, validate, write_split

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
