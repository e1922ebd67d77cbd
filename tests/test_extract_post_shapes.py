"""Every kind of post through stage one (SPEC §7): several images, text only, image only, bad pictures among good."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from extract_fixtures import NOTHING_LEFT, broken_images, photo, write_manifest
from sgmft_cache import load_skipped, load_split, validate
from pipeline.extract import ExtractConfig, extract, read_manifest
from pipeline.extract.encoders import load_encoder, token_ids
from pipeline.extract.images import read_image
from pipeline.extract.textprep import TextCleaner, load_stopwords


@pytest.fixture(autouse=True)
def private_hash_memo(tmp_path, monkeypatch):
    monkeypatch.setenv("SGMFT_HOME", str(tmp_path / "sgmft-home"))


def shapes_posts(folder):
    """(manifest rows, per id: (has_text, the image files it must keep, in order) or None when it is skipped)."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    good = []
    for k in range(6):
        good.append(f"img/g{k}.jpg")
        photo(300 + k).save(folder / good[-1])
    bad = {name: str(path.relative_to(folder)) for name, path in broken_images(folder / "bad").items()}
    g, text = good, "在家里做饭 好开心"
    rows = [  # (id, text, image, images)
        ("both", text, g[0], ""),
        ("text-only", "学校 上课", "", ""),
        ("image-only", NOTHING_LEFT, g[1], ""),
        ("several", "公司 开会", "", "|".join(g[1:4])),
        ("first-and-more", "商场 买衣服", g[0], "|".join([g[0], g[4]])),  # image repeated in images: used once
        ("bad-among-good", "餐厅 火锅", g[2], "|".join([bad["missing.jpg"], g[5], bad["truncated.jpg"]])),
        ("all-bad-text-kept", "电影院 看电影", bad["not_an_image.jpg"], bad["empty.png"]),
        ("all-bad-nothing", NOTHING_LEFT, bad["missing.jpg"], bad["not_an_image.jpg"]),
        ("nothing", NOTHING_LEFT, "", ""),
        ("same-bytes-twice", "旅游 拍照", g[3], "copy-of-g3.jpg"),  # identical files: one image
        ("over-cap", "家 周末", "", "|".join(g[:5])),
    ]
    (folder / "copy-of-g3.jpg").write_bytes((folder / g[3]).read_bytes())
    expect = {"both": (True, g[:1]), "text-only": (True, []), "image-only": (False, g[1:2]),
              "several": (True, g[1:4]), "first-and-more": (True, [g[0], g[4]]),
              "bad-among-good": (True, [g[2], g[5]]), "all-bad-text-kept": (True, []), "all-bad-nothing": None,
              "nothing": None, "same-bytes-twice": (True, [g[3]]), "over-cap": (True, g[:4])}
    table = [dict(id=i, text=t, image=im, images=ims, label=("home", "work")[k % 2], split=("train", "test")[k % 2])
             for k, (i, t, im, ims) in enumerate(rows)]
    return table, expect


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes")
    rows, expect = shapes_posts(folder)
    cfg = ExtractConfig(manifest=str(write_manifest(folder / "posts.csv", rows)), cache=str(folder / "f.h5"),
                        model="tiny", workers=0, batch_size=3, chunk_rows=4, max_images=4, quiet=True)
    return dict(folder=folder, rows=rows, expect=expect, cfg=cfg, summary=extract(cfg))


def kept(cache) -> dict:
    """id -> (has_text, its image rows [k, D], text row, text_clean, dropped-images note) over both splits."""
    import h5py

    out = {}
    for split in ("train", "test"):
        data = load_split(cache, split)
        with h5py.File(cache, "r") as f:
            notes = f[f"{split}/dropped_images"].asstr()[...] if "dropped_images" in f[split] else [""] * len(data)
        off = data.image_offsets.tolist()
        for k, i in enumerate(data.ids):
            out[i] = (bool(data.has_text[k]), data.images[off[k]:off[k + 1]], data.text[k], data.text_clean[k], notes[k])
            assert bool(data.has_image[k]) == (off[k + 1] > off[k])
            assert torch.equal(data.image[k], data.images[off[k]] if off[k + 1] > off[k] else torch.zeros_like(data.image[k]))
    return out


def test_only_posts_with_nothing_usable_are_skipped(shapes):
    have, expect = kept(shapes["cfg"].cache), shapes["expect"]
    skipped = {**load_skipped(shapes["cfg"].cache, "train"), **load_skipped(shapes["cfg"].cache, "test")}
    assert set(have) == {i for i, e in expect.items() if e} and set(skipped) == {i for i, e in expect.items() if not e}
    assert skipped["nothing"].startswith("no image path") and "empty text after cleaning" in skipped["nothing"]
    assert skipped["all-bad-nothing"].startswith("missing image file") and "not an image" in skipped["all-bad-nothing"]
    for id_, (has_text, images) in ((i, e) for i, e in expect.items() if e):
        assert have[id_][0] == has_text and len(have[id_][1]) == len(images), id_


def test_stored_images_and_texts_equal_direct_encoder_calls(shapes):
    encoder, clean = load_encoder("tiny", device="cpu"), TextCleaner(load_stopwords())
    transform, folder = encoder.transform(), shapes["folder"]
    rows = {r["id"]: r for r in shapes["rows"]}
    for id_, (has_text, images, text, text_clean, _) in kept(shapes["cfg"].cache).items():
        files = shapes["expect"][id_][1]
        if files:
            want = encoder.encode_images(torch.stack([transform(read_image(str(folder / f), 10**9)[0]) for f in files]))
            torch.testing.assert_close(images, want, rtol=1e-4, atol=1e-5)
        assert text_clean == clean(rows[id_]["text"])
        want_text = encoder.encode_texts([token_ids(text_clean, 52)], 1)[0] if has_text else torch.zeros_like(text)
        torch.testing.assert_close(text, want_text, rtol=1e-4, atol=1e-5)


def test_left_out_pictures_are_noted_with_their_reasons(shapes):
    have = kept(shapes["cfg"].cache)
    note = have["bad-among-good"][4]
    assert "missing image file" in note and "truncated or corrupt image" in note and "g5" not in note
    assert "not an image" in have["all-bad-text-kept"][4] and "empty image file" in have["all-bad-text-kept"][4]
    assert "beyond --max-images: 1 more picture(s)" in have["over-cap"][4]
    assert have["both"][4] == have["several"][4] == ""
    stats = [s.stats for s in shapes["summary"].splits]
    kinds = sum((s.kinds for s in stats), start=type(stats[0].kinds)())
    assert (kinds["text+image"], kinds["text only"], kinds["image only"], kinds["several images"]) == (6, 2, 1, 4)
    text = shapes["summary"].text()
    assert "train: 6 posts: 5 encoded now, 0 already in the cache, 1 skipped (1 no image path)" in text
    assert "  encoded now: 3 text+image, 1 text only, 1 image only, 2 several images" in text
    assert "  pictures left out of kept posts: 2 (1 missing image file, 1 truncated or corrupt image)" in text


def test_distinct_pictures_are_encoded_once(shapes):
    stats = [s.stats for s in shapes["summary"].splits]
    assert sum(s.images_encoded for s in stats) == 6  # g0..g5; copy-of-g3 has g3's bytes
    assert sum(s.images_used for s in stats) == 1 + 1 + 3 + 2 + 2 + 1 + 4


def test_second_run_keeps_everything_and_a_resumed_run_equals_one_run(shapes, tmp_path):
    again = extract(shapes["cfg"])
    assert sum(s.stats.written for s in again.splits) == 0
    part_rows = [r for r in shapes["rows"] if r["id"] in ("several", "bad-among-good", "image-only")]
    part = replace(shapes["cfg"], manifest=str(write_manifest(shapes["folder"] / "part.csv", part_rows)),
                   cache=str(tmp_path / "r.h5"))
    extract(part)
    resumed = extract(replace(shapes["cfg"], cache=part.cache, batch_size=5))
    assert sum(s.already for s in resumed.splits) == 3
    one, two = kept(shapes["cfg"].cache), kept(part.cache)
    assert list(one) != [] and set(one) == set(two)
    for i in one:
        torch.testing.assert_close(one[i][1], two[i][1], rtol=1e-4, atol=1e-5)
        assert one[i][0] == two[i][0] and one[i][4] == two[i][4]
    for split in ("train", "test"):
        assert load_split(shapes["cfg"].cache, split).ids == load_split(part.cache, split).ids  # manifest order


def test_max_images_enters_the_fingerprint_and_one_keeps_the_old_settings(shapes, tmp_path):
    meta = validate(shapes["cfg"].cache)
    assert meta.provenance.preprocessing["image"]["max_images"] == 4
    assert meta.provenance.extract_config["max_images"] == 4
    one = replace(shapes["cfg"], cache=str(tmp_path / "one.h5"), max_images=1)
    extract(one)
    assert "max_images" not in validate(one.cache).provenance.preprocessing["image"]  # as before --max-images
    assert validate(one.cache).fingerprint != meta.fingerprint
    assert kept(one.cache)["several"][1].shape[0] == 1


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_images_column_in_every_format(tmp_path, suffix):
    listed = [["a.jpg", "b.jpg"], [], ["c.jpg"]]
    rows = [dict(id="p", text="x", image="a.jpg", images=listed[0]), dict(id="q", text="", image="", images=listed[1]),
            dict(id="r", text="y", image="", images=listed[2])]
    if suffix in (".csv", ".tsv"):
        rows = [{**r, "images": "|".join(r["images"])} for r in rows]
    m = read_manifest(write_manifest(tmp_path / f"m{suffix}", rows))
    assert [tuple(p.rsplit("/", 1)[1] for p in post.images) for post in m.posts] == [("a.jpg", "b.jpg"), (), ("c.jpg",)]
    assert [post.image.rsplit("/", 1)[-1] for post in m.posts] == ["a.jpg", "", "c.jpg"]
    assert m.posts[1].text == ""


def test_max_images_caps_and_counts_the_rest(tmp_path):
    path = write_manifest(tmp_path / "m.csv", [dict(id="p", text="x", images="|".join(f"{k}.jpg" for k in range(12)))])
    default, capped = read_manifest(path).posts[0], read_manifest(path, max_images=2).posts[0]
    assert (len(default.images), default.beyond_cap) == (9, 3) and (len(capped.images), capped.beyond_cap) == (2, 10)
    assert ExtractConfig().max_images == 9


def test_real_weibo_posts_keep_every_picture_and_the_empty_text_post(shared_data, tmp_path):
    manifest = shared_data / "weibo_multimodal" / "posts.csv"
    frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    cfg = ExtractConfig(manifest=str(manifest), cache=str(tmp_path / "f.h5"), model="tiny", workers=0, quiet=True)
    summary = extract(cfg)
    have = {}
    for split in set(frame["split"]):
        data = load_split(cfg.cache, split)
        assert not load_skipped(cfg.cache, split)  # every real post has something usable
        have.update({i: (bool(data.has_text[k]), int(data.image_counts[k])) for k, i in enumerate(data.ids)})
    assert set(have) == set(frame["id"])
    listed = {i: len(dict.fromkeys(p for p in s.split("|") if p)) for i, s in zip(frame["id"], frame["images"])}
    assert {i: n for i, (_, n) in have.items()} == listed and sum(listed.values()) == 98  # 97 distinct files
    image_only = [i for i, (t, _) in have.items() if not t]
    assert len(image_only) == 1 and have[image_only[0]][1] >= 1  # empty text after cleaning: now image only
    assert sum(s.stats.kinds["several images"] for s in summary.splits) == sum(n > 1 for n in listed.values()) > 0
    assert sum(s.stats.images_encoded for s in summary.splits) <= 97
