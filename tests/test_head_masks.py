"""Masks of the head: padded image positions and missing modalities change nothing else, and get no gradient."""
from __future__ import annotations

import pytest
import torch

from pipeline.head import INPUT_NORMS, VARIANTS, HeadConfig, SGMFTHead, variant_config
from pipeline.head.fusion import FUSIONS
from pipeline.head.pooling import ModalityInputs, masked_mean, unit

D, B, K = 16, 5, 4
IMAGE_SETS = ("sgmft-images", "sgmft-mean-images")


def build(variant: str, **kw) -> SGMFTHead:
    torch.manual_seed(0)
    cfg = variant_config(variant, HeadConfig(embed_dim=D, num_classes=7, heads=4, ffn_hidden=D, **kw))
    return SGMFTHead(cfg).eval()


def image_sets(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(text [B, D], images [B, K, D], mask [B, K]): posts with 4, 3, 2, 1 and 3 real images, real ones first."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.tensor([4, 3, 2, 1, 3])
    mask = torch.arange(K)[None, :] < counts[:, None]
    return torch.randn(B, D, generator=g), torch.randn(B, K, D, generator=g), mask


def garbage(shape, seed: int = 7) -> torch.Tensor:
    return 1e4 * torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("variant", IMAGE_SETS)
def test_permuting_a_posts_images_leaves_its_prediction(variant):
    head = build(variant)
    t, images, mask = image_sets()
    permuted = images.clone()
    for i, n in enumerate(mask.sum(1).tolist()):
        permuted[i, :n] = images[i, torch.randperm(n, generator=torch.Generator().manual_seed(i))]
    before = head(t, images[:, 0], images=images, image_mask=mask)
    after = head(t, permuted[:, 0], images=permuted, image_mask=mask)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    assert not torch.equal(permuted[0], images[0])  # the permutation moved something


@pytest.mark.parametrize("variant", IMAGE_SETS)
def test_padding_with_garbage_changes_nothing(variant):
    head = build(variant)
    t, images, mask = image_sets()
    padded = torch.cat([torch.where(mask[..., None], images, garbage(images.shape)), garbage((B, 3, D), 8)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(B, 3, dtype=torch.bool)], dim=1)
    padded[3, 1:] = float("nan")  # even NaN where nothing is
    out = head(t, images[:, 0], images=padded, image_mask=padded_mask)
    torch.testing.assert_close(out, head(t, images[:, 0], images=images, image_mask=mask), rtol=1e-5, atol=1e-5)
    single = head(t[3:4], images[3:4, 0], images=images[3:4, :1], image_mask=mask[3:4, :1])  # no padding at all
    torch.testing.assert_close(out[3:4], single, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("missing", ["text", "image"])
def test_a_missing_modality_has_no_influence(variant, missing):
    """A post's prediction with its image dropped is the same whatever the image holds (the text path), and
    likewise for a dropped text; the other posts of the batch are unchanged."""
    head = build(variant)
    t, images, mask = image_sets()
    has = torch.tensor([True, False, True, False, True])
    masks = dict(has_text=has) if missing == "text" else dict(has_image=has)
    a, b = (t, images[:, 0]), (t, images[:, 0])
    if missing == "text":
        b = (torch.where(has[:, None], t, garbage(t.shape)), b[1])
    else:
        b = (t, torch.where(has[:, None], b[1], garbage(t.shape)))
    sets_a = dict(images=images, image_mask=mask)
    sets_b = dict(images=images if missing == "text" else torch.where(has[:, None, None], images, garbage(images.shape)),
                  image_mask=mask)
    out_a, out_b = head(*a, **masks, **sets_a), head(*b, **masks, **sets_b)
    torch.testing.assert_close(out_a, out_b)
    full = head(t, images[:, 0], **sets_a)
    torch.testing.assert_close(out_a[has], full[has])  # the posts that keep both are untouched


def test_a_missing_image_is_the_learned_placeholder_after_normalisation():
    head = build("sgmft")
    t, v = torch.randn(3, D), torch.randn(3, D)
    has_image = torch.tensor([True, False, True])
    x = head.inputs(t, v, None, has_image)
    torch.testing.assert_close(x.v[1], head.inputs.image_placeholder.detach())  # not a normalised zero vector
    torch.testing.assert_close(x.v[0], v[0] / v[0].norm())
    with torch.no_grad():
        head.inputs.image_placeholder.add_(1.0)
    moved = head(t, v, has_image=has_image) - build("sgmft")(t, v, has_image=has_image)
    assert moved[1].abs().max() > 1e-4 and moved[[0, 2]].abs().max() == 0  # only the post without an image


@pytest.mark.parametrize("variant", ["sgmft", *IMAGE_SETS])
def test_no_gradient_flows_into_masked_values(variant):
    head = build(variant).train()
    t, images, mask = image_sets()
    has_text, has_image = torch.tensor([True, False, True, True, True]), torch.tensor([True, True, False, True, True])
    t, v, images = t.requires_grad_(), images[:, 0].clone().requires_grad_(), images.requires_grad_()
    logits = head(t, v, has_text, has_image, images=images, image_mask=mask)
    logits.square().sum().backward()
    assert t.grad[1].abs().max() == 0 and t.grad[0].abs().max() > 0
    if variant == "sgmft":
        assert v.grad[2].abs().max() == 0 and v.grad[0].abs().max() > 0
    else:
        real = mask & has_image[:, None]
        assert images.grad[~real].abs().max() == 0 and (images.grad[real].abs().amax(-1) > 0).all()


def test_image_set_attention_takes_the_general_path_over_several_images():
    """The one-key shortcut is exact for one key only; over K > 1 images both settings must agree."""
    fast, slow = build("sgmft-images"), build("sgmft-images", fast_path=False)
    t, images, mask = image_sets()
    torch.testing.assert_close(fast(t, images[:, 0], images=images, image_mask=mask),
                               slow(t, images[:, 0], images=images, image_mask=mask))
    fast.train()
    fast(t, images[:, 0], images=images, image_mask=mask).sum().backward()
    assert fast.sim.attention.image.k.weight.grad.abs().max() > 0  # keys matter over a real sequence


def test_one_image_sets_are_the_first_image_model():
    """With one image per post the image-set variants are the paper's model (same weights)."""
    t, images, _ = image_sets()
    full = build("sgmft")
    for variant in IMAGE_SETS:
        head = build(variant)
        head.load_state_dict(full.state_dict())
        torch.testing.assert_close(head(t, images[:, 0], images=images[:, :1]), full(t, images[:, 0]))


def test_masked_mean_ignores_masked_nans():
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [float("nan"), 0.0]]])
    torch.testing.assert_close(masked_mean(x, torch.tensor([[True, True, False]])), torch.tensor([[2.0, 3.0]]))
    torch.testing.assert_close(masked_mean(x, torch.tensor([[False, False, False]])), torch.zeros(1, 2))


def set_head(fusion: str, images: str, input_norm: str, ffn_guide: str = "text") -> SGMFTHead:
    torch.manual_seed(0)
    return SGMFTHead(HeadConfig(embed_dim=D, num_classes=7, heads=4, ffn_hidden=D, fusion=fusion, images=images,
                                input_norm=input_norm, ffn_guide=ffn_guide)).eval()


@pytest.mark.parametrize("input_norm", INPUT_NORMS)
@pytest.mark.parametrize("images", ["mean", "attend"])
@pytest.mark.parametrize("fusion, ffn_guide", [(name, "text") for name in sorted(FUSIONS)] + [("sfm", "image")])
def test_every_fusion_module_reads_only_a_posts_real_images(fusion, ffn_guide, images, input_norm):
    """Each post's logits in a padded batch are those of the post alone with only its real images, and garbage
    in the padding changes nothing: for every fusion module, image pooling, input scaling and FFN guide."""
    head = set_head(fusion, images, input_norm, ffn_guide)
    t, images_, mask = image_sets()
    padded = torch.where(mask[..., None], images_, garbage(images_.shape))
    out = head(t, images_[:, 0], images=padded, image_mask=mask)
    for i, n in enumerate(mask.sum(1).tolist()):
        alone = head(t[i:i + 1], images_[i:i + 1, 0], images=images_[i:i + 1, :n])
        torch.testing.assert_close(out[i:i + 1], alone, rtol=1e-4, atol=1e-5)
    two = head(t, images_[:, 0], images=torch.where(mask[..., None], images_, garbage(images_.shape, 9)),
               image_mask=mask)
    torch.testing.assert_close(out, two, rtol=1e-5, atol=1e-5)


def test_a_post_without_images_sees_the_placeholder_alone_at_the_first_position():
    head = build("sgmft-images")
    t, images, mask = image_sets()
    has_image = torch.tensor([True, False, True, True, True])
    x = head.inputs(t, images[:, 0], None, has_image, images, mask)
    placeholder = head.inputs.image_placeholder.detach()
    torch.testing.assert_close(x.images[1, 0], placeholder)
    assert x.image_mask[1].tolist() == [True, False, False, False]
    assert x.image_mask[0].tolist() == mask[0].tolist() and x.image_mask[2].tolist() == mask[2].tolist()
    torch.testing.assert_close(x.v[1], placeholder)


def test_a_post_whose_images_are_all_masked_has_no_image():
    """has_image true but no real position in its set: the same as has_image false (the placeholder)."""
    head = build("sgmft-images")
    t, images, mask = image_sets()
    empty = mask.clone()
    empty[2] = False
    claimed = head(t, images[:, 0], has_image=torch.ones(B, dtype=torch.bool), images=images, image_mask=empty)
    none = torch.tensor([True, True, False, True, True])
    torch.testing.assert_close(claimed, head(t, images[:, 0], has_image=none, images=images, image_mask=mask))


@pytest.mark.parametrize("variant", IMAGE_SETS)
def test_no_image_mask_means_every_image_is_real(variant):
    head = build(variant)
    t, images, _ = image_sets()
    every = torch.ones(B, K, dtype=torch.bool)
    has_image = torch.tensor([True, False, True, True, True])
    torch.testing.assert_close(head(t, images[:, 0], has_image=has_image, images=images),
                               head(t, images[:, 0], has_image=has_image, images=images, image_mask=every))


def test_unknown_image_pooling_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"^unknown image pooling 'max'; use one of first, mean, attend$"):
        ModalityInputs(D, "l2", "max")


def test_masked_mean_of_one_real_position_is_that_position():
    x = torch.tensor([[[1.0, 2.0], [5.0, 7.0]], [[3.0, -1.0], [9.0, 9.0]]])
    torch.testing.assert_close(masked_mean(x, torch.tensor([[True, False], [False, True]])),
                               torch.tensor([[1.0, 2.0], [9.0, 9.0]]))
    torch.testing.assert_close(masked_mean(x, None), x.mean(dim=1))


def test_unit_scales_each_row_by_its_own_largest_entry():
    """‖x‖² of 1e37 overflows float32 and 1e-30 underflows: each row is still its direction on the sphere."""
    x = torch.tensor([[3e37, 4e37], [3e-30, 4e-30], [0.0, -2.0]], dtype=torch.float32)
    torch.testing.assert_close(unit(x), torch.tensor([[0.6, 0.8], [0.6, 0.8], [0.0, -1.0]]))
