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
