"""Manifest reading (SPEC §1): four formats, relative paths, seeded stratified split, one-line errors."""
from __future__ import annotations

import os
from collections import Counter

import pytest
from typer.testing import CliRunner

import cli
from extract_fixtures import post_rows, write_manifest
from sgmft_cache import SgmftError
from pipeline.extract.manifest import read_manifest


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_every_format_reads_the_same_posts(tmp_path, suffix):
    rows = post_rows(tmp_path, 10, split=True)
    reference = read_manifest(write_manifest(tmp_path / "ref.csv", rows))
    m = read_manifest(write_manifest(tmp_path / f"posts{suffix}", rows))
    assert m.posts == reference.posts
    assert m.labels == ("home", "school", "work")
    assert [p.split for p in m.posts] == [r["split"] for r in rows]


def test_image_paths_are_relative_to_the_manifest_folder(tmp_path):
    sub = tmp_path / "data"
    sub.mkdir()
    rows = post_rows(sub, 2)
    rows[1]["image"] = str(sub / rows[1]["image"])  # absolute stays
    m = read_manifest(write_manifest(sub / "posts.csv", rows))
    assert all(os.path.isabs(p.image) and os.path.isfile(p.image) for p in m.posts)
    assert m.posts[0].image == str(sub / "images" / "p000.jpg")


def test_ids_default_to_row_numbers_and_long_ids_stay_exact(tmp_path):
    rows = [dict(text="a", image="x.jpg"), dict(text="b", image="y.jpg")]
    assert [p.id for p in read_manifest(write_manifest(tmp_path / "a.csv", rows)).posts] == ["0", "1"]
    rows = [dict(id=3914588972197302123, text="a", image="x.jpg")]
    assert read_manifest(write_manifest(tmp_path / "b.jsonl", rows)).posts[0].id == "3914588972197302123"
    assert read_manifest(write_manifest(tmp_path / "b.csv", rows)).posts[0].id == "3914588972197302123"


def test_empty_text_label_and_image_are_row_level(tmp_path):
    rows = [dict(id="a", text="", image="", label=""), dict(id="b", text="x", image="i.jpg", label="home")]
    m = read_manifest(write_manifest(tmp_path / "p.csv", rows))
    assert (m.posts[0].text, m.posts[0].image, m.posts[0].label) == ("", "", None)
    assert m.label_id(m.posts[0]) == -1 and m.label_id(m.posts[1]) == 0


def test_automatic_split_is_stratified_seeded_twenty_percent(tmp_path):
    rows = post_rows(tmp_path, 60)
    path = write_manifest(tmp_path / "p.csv", rows)
    m = read_manifest(path, seed=0)
    test = m.split("test")
    assert len(test) == 12 and Counter(p.label for p in test) == {"home": 4, "school": 4, "work": 4}
    assert m.split("val") == [] and set(m.splits()) == {"train", "test"}
    assert [p.id for p in read_manifest(path, seed=0).split("test")] == [p.id for p in test]
    assert [p.id for p in read_manifest(path, seed=1).split("test")] != [p.id for p in test]
    assert "seed 0" in m.split_source


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "absent.csv", "no such manifest file"),
    (lambda d: write_manifest(d / "p.xlsx.txt", [dict(text="a", image="b")]), "unknown manifest extension"),
    (lambda d: write_manifest(d / "p.csv", [dict(id="a", img="b")]), "none of the columns text, image, images"),
    (lambda d: write_manifest(d / "p.csv", [dict(id="a", text="x", image="b")] * 2), "id.*'a' 2 times"),
    (lambda d: write_manifest(d / "p.csv", [dict(id="a", text="x", image="b", split="dev")]), "split column holds 'dev'"),
    (lambda d: write_manifest(d / "p.csv", [dict(id="", text="x", image="b")]), "empty id"),
    (lambda d: (d / "p.parquet").write_bytes(b"\x00garbage" * 10) and d / "p.parquet", "cannot be read as Parquet"),
    (lambda d: (d / "p.csv").write_bytes(b"text,image\n\xff\xfe\xfa,x\n") and d / "p.csv", "cannot be read as CSV"),
])
def test_manifest_errors_are_one_clear_sgmft_error(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(SgmftError, match=message) as e:
        read_manifest(path)
    assert str(path) in str(e.value)


def test_cli_stops_on_manifest_error_before_any_model_loads(tmp_path, monkeypatch):
    from pipeline.extract import encoders

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded despite a broken manifest")

    monkeypatch.setattr(encoders, "resolve_weights", no_model)
    monkeypatch.setattr(encoders, "build_encoder", no_model)
    path = write_manifest(tmp_path / "p.csv", [dict(id="a", text="x", image="b")] * 2)
    result = CliRunner().invoke(cli.app, ["extract", "--manifest", str(path), "--cache", str(tmp_path / "f.h5")])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "appear more than once" in result.output
    assert not (tmp_path / "f.h5").exists()


def test_requesting_an_absent_split_is_an_error(tmp_path):
    from pipeline.extract import ExtractConfig, extract

    path = write_manifest(tmp_path / "p.csv", post_rows(tmp_path, 10))
    with pytest.raises(SgmftError, match="no rows in split 'val'"):
        extract(ExtractConfig(manifest=str(path), cache=str(tmp_path / "f.h5"), split="val", model="tiny"))
