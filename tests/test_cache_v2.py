"""Cache version 2 (SPEC §3): modality masks and ragged per-post image sets through writer, merge, reader, validator."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from sgmft_cache import (CacheError, CacheMeta, CacheWriter, SplitData, load_split, merge_caches, staging_dir,
                         validate, write_split)
from sgmft_cache import layout as L

D = 8
META = CacheMeta(model="tiny", embed_dim=D, labels=("home", "work", "travel"), fingerprint="fp-1")


def _posts(counts, no_text=(), seed=0, prefix="p"):
    """Posts with `counts[i]` images each (0: text only) and no text at the indices `no_text`; and their image sets."""
    rng = np.random.default_rng(seed)
    n = len(counts)
    has_text = np.array([i not in no_text for i in range(n)])
    text = rng.standard_normal((n, D)) * has_text[:, None]
    sets = [rng.standard_normal((k, D)) for k in counts]
    return dict(ids=[f"{prefix}{i}" for i in range(n)], text=text, image=None, label=rng.integers(-1, 3, n),
                text_clean=["" if i in no_text else f"词 {i}" for i in range(n)], has_text=has_text,
                images=np.concatenate(sets), image_offsets=np.concatenate([[0], np.cumsum(counts)])), sets


def _sets(data: SplitData) -> list[np.ndarray]:
    off = data.image_offsets.tolist()
    return [data.images[off[i]:off[i + 1]].numpy() for i in range(len(data))]


def _assert_posts(data: SplitData, rows: dict, sets: list, order: list[int]) -> None:
    assert data.ids == [rows["ids"][i] for i in order]
    assert data.has_text.tolist() == [bool(rows["has_text"][i]) for i in order]
    assert data.has_image.tolist() == [len(sets[i]) > 0 for i in order]
    for got, i in zip(_sets(data), order):
        np.testing.assert_allclose(got, sets[i].astype(np.float32).reshape(-1, D), rtol=1e-6)
    first = [sets[i][0] if len(sets[i]) else np.zeros(D) for i in order]
    np.testing.assert_allclose(data.image.numpy(), np.array(first, dtype=np.float32), rtol=1e-6)
    np.testing.assert_allclose(data.text.numpy(), rows["text"][order].astype(np.float32), rtol=1e-6)


def test_ragged_image_sets_and_masks_round_trip(tmp_path):
    path = tmp_path / "feats.h5"
    rows, sets = _posts([2, 0, 3, 1, 9], no_text=(2,))
    write_split(path, "train", META, **rows, dropped_images=["", "", "", "2: b.jpg: unreadable", ""])
    with h5py.File(path, "r") as f:
        assert int(f.attrs["version"]) == 2
        g = f["train"]
        assert g["has_text"].dtype == np.bool_ and g["image_offsets"].dtype == np.int64
        assert g["images"].shape == (15, D) and g["image_offsets"][...].tolist() == [0, 2, 2, 5, 6, 15]
        assert not g["image"][1].any() and not g["text"][2].any()  # missing modality rows are zeros
    data = load_split(path, "train")
    _assert_posts(data, rows, sets, [0, 1, 2, 3, 4])
    assert data.image_counts.tolist() == [2, 0, 3, 1, 9]
    with h5py.File(path, "r") as f:
        assert f["train/dropped_images"].asstr()[3] == "2: b.jpg: unreadable"


def test_masked_rows_are_stored_as_zeros_whatever_was_passed(tmp_path):
    path = tmp_path / "feats.h5"
    rows, _ = _posts([1, 1, 1])
    rows["has_text"] = np.array([True, False, True])
    write_split(path, "train", META, **rows)
    data = load_split(path, "train")
    assert not data.text[1].any() and data.text[0].any()


def test_chunks_resume_and_order_keep_each_posts_images(tmp_path):
    path = tmp_path / "feats.h5"
    rows, sets = _posts([1, 0, 2, 3, 1, 0, 4], no_text=(3, 4))
    w = CacheWriter(path, "train", META, chunk_rows=2)
    pick = lambda a, b: {k: rows[k][a:b] for k in ("ids", "text", "label", "text_clean", "has_text")}  # noqa: E731
    for a, b in ((0, 3), (3, 5)):  # two chunks on disk, then the process "dies"
        off = rows["image_offsets"]
        w.add(**pick(a, b), image=None, images=rows["images"][off[a]:off[b]], image_offsets=off[a:b + 1] - off[a])
    del w
    w2 = CacheWriter(path, "train", META, chunk_rows=2)
    assert w2.done_ids() == set(rows["ids"][:5])
    off = rows["image_offsets"]
    w2.add(**pick(5, 7), image=None, images=rows["images"][off[5]:], image_offsets=off[5:] - off[5])
    w2.commit(order=list(reversed(rows["ids"])))
    assert not staging_dir(path).exists()
    _assert_posts(load_split(path, "train"), rows, sets, [6, 5, 4, 3, 2, 1, 0])


def test_torchrun_shards_merge_keeps_image_sets(tmp_path):
    rows, sets = _posts([2, 0, 1, 3, 1, 2], no_text=(2,))
    shards = []
    for rank in (0, 1):  # rank r takes every 2nd post, as extract's sharding does
        idx = list(range(rank, 6, 2))
        off = rows["image_offsets"]
        images = np.concatenate([rows["images"][off[i]:off[i + 1]] for i in idx])
        counts = [off[i + 1] - off[i] for i in idx]
        shard = tmp_path / f"rank{rank}.h5"
        write_split(shard, "train", META, ids=[rows["ids"][i] for i in idx], text=rows["text"][idx], image=None,
                    label=rows["label"][idx], has_text=rows["has_text"][idx], images=images,
                    image_offsets=np.concatenate([[0], np.cumsum(counts)]))
        shards.append(shard)
    v1 = tmp_path / "v1.h5"  # a version-1 shard (one image, a text per post) merges in with its meaning
    write_split(v1, "train", META, ids=["q0"], text=np.ones((1, D)), image=np.full((1, D), 2.0), label=[0])
    merge_caches([*shards, v1], tmp_path / "m.h5", order={"train": rows["ids"] + ["q0"]})
    data = load_split(tmp_path / "m.h5", "train")
    _assert_posts(data.subset(range(6)), rows, sets, list(range(6)))
    assert data.ids[6] == "q0" and data.image_counts[6] == 1 and bool(data.has_text[6] & data.has_image[6])
    np.testing.assert_array_equal(_sets(data)[6], np.full((1, D), 2.0))


def test_version1_cache_reads_as_version2(tmp_path):
    path = tmp_path / "feats.h5"
    rng = np.random.default_rng(0)
    image = rng.standard_normal((4, D))
    write_split(path, "train", META, ids=list("abcd"), text=rng.standard_normal((4, D)), image=image, label=[0] * 4)
    with h5py.File(path, "r") as f:  # nothing of version 2 is written for posts of the paper's shape
        assert int(f.attrs["version"]) == 1 and not any(name in f["train"] for name in L.V2_DATASETS)
    data = load_split(path, "train")
    assert data.has_text.all() and data.has_image.all()
    assert data.image_offsets.tolist() == [0, 1, 2, 3, 4]
    torch.testing.assert_close(data.images, data.image)


def test_split_data_defaults_and_subset_rebuild_image_sets():
    plain = SplitData(["a", "b"], torch.ones(2, D), torch.arange(2 * D, dtype=torch.float32).view(2, D),
                      torch.zeros(2, dtype=torch.long), ["x", "y"])
    assert plain.has_text.all() and plain.has_image.all() and plain.image_offsets.tolist() == [0, 1, 2]
    assert plain.has_text.dtype == plain.has_image.dtype == torch.bool and plain.image_offsets.dtype == torch.long
    torch.testing.assert_close(plain.images, plain.image)  # one image per post: the image rows
    masked = SplitData(["a", "b", "c"], torch.ones(3, D), torch.arange(3 * D, dtype=torch.float32).view(3, D),
                       torch.zeros(3, dtype=torch.long), list("xyz"), has_image=torch.tensor([True, False, True]))
    torch.testing.assert_close(masked.images, masked.image[[0, 2]])  # a post without an image has no image row
    assert masked.image_offsets.tolist() == [0, 1, 1, 2] and masked.image_counts.tolist() == [1, 0, 1]
    images = torch.arange(6 * D, dtype=torch.float32).view(6, D)
    data = SplitData(["a", "b", "c", "d"], torch.ones(4, D), torch.zeros(4, D), torch.arange(4), list("wxyz"),
                     has_text=torch.tensor([True, True, False, True]), images=images,
                     image_offsets=torch.tensor([0, 3, 3, 5, 6]))
    assert data.has_image.tolist() == [True, False, True, True]
    sub = data.subset([3, 0, 1, 0])
    assert sub.ids == ["d", "a", "b", "a"] and sub.image_offsets.tolist() == [0, 1, 4, 4, 7]
    assert sub.has_text.tolist() == [True, True, True, True] and sub.has_image.tolist() == [True, True, False, True]
    torch.testing.assert_close(sub.images, images[[5, 0, 1, 2, 0, 1, 2]])
    assert len(data.subset([1]).images) == 0


def test_writer_refuses_posts_with_nothing_or_a_wrong_first_image(tmp_path):
    rows, _ = _posts([1, 0])
    with pytest.raises(ValueError, match="'p1' has neither text nor image"):
        write_split(tmp_path / "a.h5", "train", META, **rows | {"has_text": np.array([True, False])})
    with pytest.raises(ValueError, match="first image"):
        write_split(tmp_path / "b.h5", "train", META, **rows | {"image": np.ones((2, D))})
    with pytest.raises(ValueError, match="image_offsets ends at 1, but there are 2 images"):
        write_split(tmp_path / "c.h5", "train", META, **rows | {"images": np.ones((2, D))})


def _swap(name, value):
    def damage(f):
        del f["train"][name]
        f["train"].create_dataset(name, data=value)
    return damage


@pytest.mark.parametrize("damage, message", [
    (_swap("image_offsets", np.array([1, 3, 3, 5, 6])), "image_offsets starts at 1, expected 0"),
    (_swap("image_offsets", np.array([0, 3, 2, 5, 6])), "image_offsets decreases at post 1"),
    (_swap("image_offsets", np.array([0, 3, 3, 5, 5])), "image_offsets ends at 5, but there are 6 images"),
    (_swap("image_offsets", np.array([0, 3, 3, 6])), r"image_offsets has shape \(4,\), expected \[5\]"),
    (_swap("has_image", np.array([True, True, True, True])), "'p1' has has_image=True but 0 image"),
    (_swap("has_text", np.array([True, False, False, True])), "'p1' has neither text nor image"),
    (_swap("has_text", np.array([1, 1, 0, 1], np.int8)), "has_text is int8"),
    (lambda f: f["train/text"].__setitem__(2, np.ones(D)), "text row of post 'p2' is not zero, but /has_text"),
    (lambda f: f["train/image"].__setitem__(1, np.ones(D)), "image row of post 'p1' is not zero, but /has_image"),
    (lambda f: f["train"].__delitem__("images"), "but not images"),
    (lambda f: f.attrs.__setitem__("version", 1), "version 1 but a split holds version-2 datasets"),
])
def test_validator_refuses_bad_offsets_and_masks(tmp_path, damage, message):
    path = tmp_path / "feats.h5"
    rows, _ = _posts([3, 0, 2, 1], no_text=(2,))
    write_split(path, "train", META, **rows)
    validate(path)
    with h5py.File(path, "a") as f:
        damage(f)
    with pytest.raises(CacheError, match=message) as e:
        validate(path)
    assert str(e.value).startswith(str(path))


def test_reader_names_the_post_with_a_nan_image(tmp_path):
    path = tmp_path / "feats.h5"
    rows, _ = _posts([1, 2, 3])
    rows["images"][4, 0] = np.nan  # the second picture of post p2
    write_split(path, "train", META, **rows)
    with pytest.raises(CacheError, match="/train/images holds NaN or Inf in 1 row.*'p2'"):
        load_split(path, "train")


def test_offsets_problems_name_the_post_and_the_count():
    from sgmft_cache.postshape import offsets_problem

    assert offsets_problem(np.array([0, 1, 1, 0, 2]), 4, 2) == "decreases at post 2"  # a zero step is fine
    assert offsets_problem(np.array([0, 2, 3, 5]), 3, 4) == "ends at 5, but there are 4 images"
    assert offsets_problem(np.array([1, 2]), 1, 2) == "starts at 1, expected 0"
    assert offsets_problem(np.array([0, 1, 1, 3]), 3, 3) is None


def test_the_first_nonzero_masked_row_is_found_in_any_block():
    from sgmft_cache.postshape import BLOCK_ROWS, first_nonzero_masked

    n = 2 * BLOCK_ROWS + 10
    features, mask = np.zeros((n, 2), np.float32), np.ones(n, bool)
    mask[[3, BLOCK_ROWS + 5, 2 * BLOCK_ROWS + 1]] = False  # masked, and zeros: fine
    assert first_nonzero_masked(features, mask) is None
    features[2 * BLOCK_ROWS + 1] = 1.0  # a masked row that is not zeros, in the third block only
    assert first_nonzero_masked(features, mask) == 2 * BLOCK_ROWS + 1
    features[0], mask[0] = 5.0, False
    assert first_nonzero_masked(features, mask) == 0
    mask[:BLOCK_ROWS + 1] = True  # a first block with no masked row at all is passed over, not the end
    features[BLOCK_ROWS + 5] = 2.0
    assert first_nonzero_masked(features, mask) == BLOCK_ROWS + 5


@pytest.mark.parametrize("where", ["first", "second block"])
def test_nan_features_are_refused_naming_the_first_post(tmp_path, where):
    path = tmp_path / "bad.h5"
    n = 8200
    text = np.zeros((n, D), np.float32)
    row = 0 if where == "first" else 8193
    text[row, 1], text[n - 1, 0] = np.nan, np.inf
    write_split(path, "train", META, ids=[f"p{i}" for i in range(n)], text=text, image=np.ones((n, D)), label=[0] * n)
    with pytest.raises(CacheError) as e:
        load_split(path, "train")
    assert str(e.value) == (f"{path}: /train/text holds NaN or Inf in 2 row(s), first id 'p{row}'; "
                            "re-extract those posts")


def test_a_nan_image_of_a_set_names_the_post_that_holds_it(tmp_path):
    path = tmp_path / "bad.h5"
    rows, sets = _posts([2, 1, 3, 0, 2])
    rows["images"][3] = np.nan  # the first image of post 2 (offsets 0, 2, 3, 6, 6, 8)
    write_split(path, "train", META, **rows)
    with pytest.raises(CacheError, match=r"/train/image holds NaN or Inf in 1 row\(s\), first id 'p2'"):
        load_split(path, "train")
    rows["images"][3] = 0.5
    rows["images"][4] = np.nan  # its second image: only in the image sets
    write_split(tmp_path / "b2.h5", "train", META, **rows)
    with pytest.raises(CacheError, match=r"/train/images holds NaN or Inf in 1 row\(s\), first id 'p2'"):
        load_split(tmp_path / "b2.h5", "train")


def test_a_loaded_split_is_float32_unless_asked_to_keep_its_stored_dtype(tmp_path):
    from sgmft_cache import load_cache

    path = tmp_path / "half.h5"
    rows, _ = _posts([1, 2, 0, 1])
    write_split(path, "train", META, **rows, dtype="float16")
    data = load_split(path, "train")
    assert data.text.dtype == data.image.dtype == data.images.dtype == torch.float32
    assert data.has_image.tolist() == [True, True, False, True]
    kept = load_cache(path, required=["train"], keep_dtype=True)[1]["train"]
    assert kept.text.dtype == kept.images.dtype == torch.float16
    v1 = tmp_path / "v1.h5"
    write_split(v1, "train", META, ids=["a", "b"], text=np.ones((2, D)), image=np.ones((2, D)), label=[0, 1])
    one = load_split(v1, "train")
    assert one.images.data_ptr() == one.image.data_ptr()  # a version-1 split's image sets are its image rows


def test_merge_refusals_name_the_files_and_what_differs(tmp_path):
    from dataclasses import replace

    a, b, c = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"
    for path, meta, prefix in ((a, META, "a"), (b, META, "b"), (c, replace(META, fingerprint="fp-2"), "c")):
        write_split(path, "train", meta, ids=[f"{prefix}{i}" for i in range(3)], text=np.ones((3, D)),
                    image=np.ones((3, D)), label=[0, 1, 2])
    differs = r"fingerprint fp-1 \(model tiny\) differs from fp-2 \(model tiny\)$"
    with pytest.raises(CacheError, match=rf"^{c}: cannot be merged with {a}: " + differs):
        merge_caches([a, b, c], tmp_path / "m.h5")
    with pytest.raises(CacheError, match=rf"^{a}: cannot be merged with {c}: fingerprint fp-2"):
        merge_caches([c, a, b], tmp_path / "m.h5")  # every source against the first, not against the second
    with pytest.raises(CacheError, match=rf"^{tmp_path / 'm.h5'}: the merged rows were made differently from its "
                                         "attributes: fingerprint fp-9 \\(model tiny\\) differs from fp-1 \\(model tiny\\)$"):
        merge_caches([a, b], tmp_path / "m.h5", meta=replace(META, fingerprint="fp-9"))
    with pytest.raises(CacheError, match=rf"^{tmp_path / 'm.h5'}: nothing to merge$"):
        merge_caches([], tmp_path / "m.h5")
    given = replace(META, model="tiny-renamed")
    assert merge_caches([a, b], tmp_path / "m.h5", meta=given).model == "tiny-renamed"
    assert validate(tmp_path / "m.h5").model == "tiny-renamed"  # the given attributes, not the first source's
    renamed = tmp_path / "r.h5"
    write_split(renamed, "train", given, ids=["r0"], text=np.ones((1, D)), image=np.ones((1, D)), label=[0])
    assert merge_caches([a, renamed], tmp_path / "m2.h5").model == "tiny"  # by default the first source's
    assert validate(tmp_path / "m2.h5").model == "tiny"


def test_a_merge_keeps_version_1_splits_version_1_and_orders_skips_by_the_manifest(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for path, ids, skips in ((a, ["p1", "p3"], ["p4", "p0"]), (b, ["p2", "p5"], ["p6", "p3"])):
        w = CacheWriter(path, "train", META)
        w.add(ids, np.ones((2, D)), np.ones((2, D)), [0, 1])
        w.skip(skips, [f"why {s}" for s in skips])
        w.commit()
    order = {"train": [f"p{i}" for i in range(7)]}
    merge_caches([a, b], tmp_path / "m.h5", order=order)
    from sgmft_cache import load_skipped

    data = load_split(tmp_path / "m.h5", "train")
    assert data.ids == ["p1", "p2", "p3", "p5"]
    assert list(load_skipped(tmp_path / "m.h5", "train")) == ["p0", "p4", "p6"]  # p3 has features: not skipped
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert L.IMAGES not in f["train"] and L.IMAGE_OFFSETS not in f["train"]


@pytest.mark.parametrize("version", [1, 2])
def test_load_rows_gives_every_field_of_the_rows_asked_for(tmp_path, version):
    """Field by field what a load gives at those positions: masks (True for a version-1 split, which stores
    none), int64 labels, the first row's image set, bool masks; a NaN named with the cache and the split."""
    from sgmft_cache import load_dropped_images, load_rows

    path = tmp_path / "c.h5"
    rows, _ = _posts([2, 0, 3, 1], no_text=(3,))
    if version == 1:
        rows = dict(ids=rows["ids"], text=rows["text"], image=np.arange(4 * D).reshape(4, D), label=[2, 0, -1, 1])
    write_split(path, "train", META, **rows)
    whole = load_split(path, "train")
    assert whole.has_text.tolist() == ([True] * 4 if version == 1 else [True, True, True, False])
    for index in ([0, 1, 2, 3], [0, 2], [1, 3], [0]):
        got = load_rows(path, "train", index)
        assert got.ids == [whole.ids[i] for i in index]
        assert got.label.dtype == torch.int64 and got.label.tolist() == whole.label[index].tolist()
        for mask in ("has_text", "has_image"):
            assert getattr(got, mask).dtype == torch.bool
            assert getattr(got, mask).tolist() == getattr(whole, mask)[index].tolist()
        torch.testing.assert_close(got.text.float(), whole.text[index])
        torch.testing.assert_close(got.image.float(), whole.image[index])
        for a, b in zip(_sets(got), [_sets(whole)[i] for i in index], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-3)
    bad = tmp_path / "bad.h5"
    rows["text"] = np.array(rows["text"], dtype=np.float32)
    rows["text"][2, 0] = np.nan
    write_split(bad, "train", META, **rows)
    with pytest.raises(CacheError, match=rf"^{bad}: /train/text holds NaN or Inf in 1 row\(s\), first id 'p2'"):
        load_rows(bad, "train", [1, 2])
    with pytest.raises(CacheError, match=r"split 'val' is missing \(splits present: train\)"):
        load_dropped_images(path, "val")
