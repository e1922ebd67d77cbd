"""fit's batching: per-batch image sets and masks from the packed images, stored dtype kept, modality dropout."""
from __future__ import annotations

import torch

from pipeline.fit.batches import Batches, drop_modalities

D = 4


def packed(counts: list[int], dtype=torch.float16) -> Batches:
    """Post i has counts[i] images, image j of post i filled with the value 10·i + j."""
    offsets = torch.tensor([0, *torch.tensor(counts).cumsum(0).tolist()])
    values = [10 * i + j for i, n in enumerate(counts) for j in range(n)]
    images = torch.tensor(values, dtype=dtype)[:, None].expand(-1, D).contiguous()
    n = len(counts)
    has_image = torch.tensor(counts) > 0
    first = torch.where(has_image[:, None], images[offsets[:-1].clamp(max=len(images) - 1)], torch.zeros((), dtype=dtype))
    return Batches(torch.ones(n, D, dtype=dtype), first, torch.arange(n), torch.ones(n, dtype=torch.bool), has_image,
                   images, offsets, max_images=3)


def test_image_sets_are_the_batchs_posts_padded_to_its_most_images_capped():
    data = packed([2, 0, 5, 1])
    x = data.inputs(torch.tensor([0, 1, 3]))
    assert x["images"].shape == (3, 2, D) and x["images"].dtype == torch.float32  # K = 2: the most in this batch
    assert x["image_mask"].tolist() == [[True, True], [False, False], [True, False]]
    assert x["images"][0, :, 0].tolist() == [0, 1] and x["images"][2, 0, 0] == 30
    assert x["has_image"].tolist() == [True, False, True]
    capped = data.inputs(torch.tensor([2]))
    assert capped["images"][0, :, 0].tolist() == [20, 21, 22] and capped["image_mask"].all()  # max_images = 3
    assert data.text.dtype == torch.float16 and x["t"].dtype == torch.float32  # cast per batch, stored as it was


def test_a_split_without_images_gives_masked_sets():
    data = Batches(torch.ones(2, D), torch.zeros(2, D), torch.arange(2), None, torch.zeros(2, dtype=torch.bool),
                   torch.zeros(0, D), torch.zeros(3, dtype=torch.long))
    x = data.inputs(torch.arange(2))
    assert x["images"].shape == (2, 1, D) and not x["image_mask"].any()


def test_first_image_heads_get_no_image_sets_and_v1_splits_no_masks():
    data = Batches(torch.ones(3, D), torch.ones(3, D), torch.arange(3))
    assert set(data.inputs(torch.arange(3))) == {"t", "v"}
    has_text, has_image = data.masks(torch.arange(3))
    assert has_text.all() and has_image.all()


def test_modality_dropout_drops_one_of_two_never_both_never_a_lone_modality():
    n = 20000
    has_text = torch.arange(n) % 4 != 1  # 1/4 image only
    has_image = torch.arange(n) % 4 != 2  # 1/4 text only
    g = torch.Generator().manual_seed(0)
    t, v = drop_modalities(has_text, has_image, 0.3, g)
    assert (t | v).all()  # never both
    assert (t[~has_image]).all() and (v[~has_text]).all()  # a post with one modality keeps it
    assert not (t & ~has_text).any() and not (v & ~has_image).any()  # nothing comes back
    both = has_text & has_image
    dropped = both & ~(t & v)
    assert abs(float(dropped.sum() / both.sum()) - 0.3) < 0.02
    assert abs(float((dropped & ~v).sum() / dropped.sum()) - 0.5) < 0.03  # text or image, evenly
    again = drop_modalities(has_text, has_image, 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], t) and torch.equal(again[1], v)  # seeded


def test_batches_of_a_split_keep_its_masks_and_cap_its_image_sets():
    from sgmft_cache import SplitData

    counts = [2, 0, 3, 1]
    offsets = torch.tensor([0, 2, 2, 5, 6])
    images = torch.arange(6, dtype=torch.float32)[:, None].expand(-1, D).contiguous()
    has_text = torch.tensor([True, True, False, True])
    split = SplitData(ids=list("abcd"), text=torch.ones(4, D), image=torch.zeros(4, D), label=torch.arange(4),
                      text_clean=[""] * 4, has_text=has_text, has_image=torch.tensor(counts) > 0, images=images,
                      image_offsets=offsets)
    data = Batches.of(split, torch.device("cpu"), image_sets=True, max_images=2)
    idx = torch.tensor([3, 1, 2])
    t, v = data.masks(idx)
    assert t.tolist() == [True, True, False] and v.tolist() == [True, False, True]
    x = data.inputs(idx)
    assert x["has_text"].tolist() == [True, True, False] and x["has_image"].tolist() == [True, False, True]
    assert x["images"].shape == (3, 2, D) and x["images"][2, :, 0].tolist() == [2.0, 3.0]  # capped at 2
    assert "images" not in Batches.of(split, torch.device("cpu")).inputs(idx)  # a first-image head: no sets
    v1 = SplitData(ids=list("ab"), text=torch.ones(2, D), image=torch.ones(2, D), label=torch.arange(2),
                   text_clean=["", ""])
    t, v = Batches.of(v1, torch.device("cpu")).masks(torch.tensor([1, 0]))
    assert t.dtype == v.dtype == torch.bool and t.tolist() == v.tolist() == [True, True]  # every post has both
