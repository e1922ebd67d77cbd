"""fit's checks before any training: settings refused with what to do, caches it cannot fit, checkpoints it cannot read."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.fit import FitConfig, load_cached_splits, load_checkpoint
from pipeline.fit.data import prepare
from pipeline.fit.head_trainer import head_config
from sgmft_cache import CacheError, CacheMeta, SgmftError, write_split

META = CacheMeta("synthetic", 8, ("a", "b", "c"), "fp")


@pytest.mark.parametrize("setting, message", [
    (dict(epochs=0), "--epochs 0: must be 1 or more"), (dict(lr=-1.0), "--lr -1.0: must not be negative"),
    (dict(batch_size=0), "--batch-size 0: must be 1 or more"), (dict(heads=0), "--heads 0: must be 1 or more"),
    (dict(ffn_hidden=0), "--ffn-hidden 0: must be 1 or more"), (dict(input_norm="unit"), "--input-norm unit: choose l2 or none"),
    (dict(val_fraction=1.0), "--val-fraction 1.0: must lie between 0 and 1"),
    (dict(val_fraction=0.0), "--val-fraction 0.0: must lie between 0 and 1"),
    (dict(variant="nope"), "unknown variant 'nope'; choose from "),
])
def test_bad_settings_are_refused_with_the_flag_named(setting, message):
    with pytest.raises(SgmftError) as error:
        FitConfig(**setting)
    assert str(error.value).startswith(message)


def test_edge_settings_are_accepted():
    FitConfig(epochs=1, lr=0.0, batch_size=1, heads=1, ffn_hidden=1, val_fraction=0.01, input_norm="none",
              max_images=1, modality_dropout=0.0, max_memory="1")


def test_an_unknown_variant_is_refused_listing_every_name():
    from pipeline import variants

    with pytest.raises(SgmftError, match=r"^unknown variant 'sgmft-xl'; choose from ") as e:
        FitConfig(variant="sgmft-xl")
    assert str(e.value).endswith(", ".join(variants.names()))


def test_measured_settings_leave_out_paths_device_and_seed():
    saved = FitConfig(lr=1e-3).to_dict()
    measured = FitConfig.measured(saved)
    assert measured["lr"] == 1e-3 and measured["epochs"] == 30 and measured["betas"] == (0.9, 0.99)
    assert not {"cache", "out", "device", "seed", "quiet"} & set(measured)


def test_head_config_follows_the_fit_settings_and_the_variant():
    cfg = head_config(FitConfig(variant="co-attention", heads=4, ffn_hidden=12, input_norm="none"), 16, 5)
    assert (cfg.embed_dim, cfg.num_classes, cfg.heads, cfg.ffn_hidden, cfg.input_norm, cfg.fusion) == (
        16, 5, 4, 12, "none", "co-attention")
    with pytest.raises(SgmftError, match="--heads 3 does not divide the cache's embed_dim 16"):
        head_config(FitConfig(heads=3), 16, 5)


def cache(tmp_path, train_labels, test_labels, val_labels=None):
    path = tmp_path / "feats.h5"
    rng = np.random.default_rng(0)
    for split, labels in (("train", train_labels), ("test", test_labels), ("val", val_labels)):
        if labels is not None:
            n = len(labels)
            write_split(path, split, META, ids=[f"{split}{i}" for i in range(n)], text=rng.standard_normal((n, 8)),
                        image=rng.standard_normal((n, 8)), label=labels)
    return load_cached_splits(str(path))


def test_prepare_carves_a_stratified_val_from_labelled_train(tmp_path):
    splits = cache(tmp_path, [0] * 10 + [1] * 10 + [-1] * 4, [0, 1, -1])
    data = prepare(splits, 0.2, seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (16, 4, 2)
    assert sorted(data.val.label.tolist()) == [0, 0, 1, 1] and (data.test.label >= 0).all()
    assert data.val_source == "20% of train, stratified, seed 0"
    assert not set(data.train.ids) & set(data.val.ids)
    assert prepare(splits, 0.2, seed=1).val.ids != data.val.ids


def test_prepare_uses_the_caches_val_split_unless_it_has_no_labels(tmp_path):
    data = prepare(cache(tmp_path / "a", [0, 1, 0, 1], [0, 1], [1, -1]), 0.5, 0)
    assert data.val_source == "the cache's val split" and data.val.ids == ["val0"] and len(data.train) == 4
    carved = prepare(cache(tmp_path / "b", [0, 1, 0, 1], [0, 1], [-1, -1]), 0.5, 0)
    assert carved.val_source.startswith("50% of train") and len(carved.val) == 2


@pytest.mark.parametrize("train, test, message", [
    ([0, 0, -1], [0], "/train has labelled rows of 1 class(es) ['a']; fit needs at least two"),
    ([0, 1, 0, 1], [-1, -1], "/test has no labelled rows, so there is nothing to evaluate on"),
    ([0, 1], [0], "/train has too few rows (2) to hold out a validation set"),
])
def test_caches_fit_cannot_use_are_refused_naming_the_file(tmp_path, train, test, message):
    with pytest.raises(CacheError) as error:
        prepare(cache(tmp_path, train, test), 0.1, 0)
    assert str(error.value) == f"{tmp_path / 'feats.h5'}: {message}"


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(SgmftError, match="no checkpoint here"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(SgmftError, match=r"no checkpoint here \(a run directory of `sgmft fit` holds checkpoint.pt\)"):
        load_checkpoint(tmp_path)  # a folder: its checkpoint.pt
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SgmftError, match="bad.pt: not a readable sgmft checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"nothing": 1}, tmp_path / "foreign.pt")
    with pytest.raises((SgmftError, KeyError)):
        load_checkpoint(tmp_path / "foreign.pt")


def test_checkpoint_errors_name_what_went_wrong(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SgmftError, match=r"bad.pt: not a readable sgmft checkpoint \((?!NoneType)\w+: "):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"nothing": 1}, tmp_path / "foreign.pt")
    with pytest.raises(SgmftError, match=r"foreign.pt: not a checkpoint sgmft wrote \(KeyError: 'head_config'\)$"):
        load_checkpoint(tmp_path / "foreign.pt")
    from pipeline.fit.checkpoint import save_checkpoint
    from pipeline.head import HeadConfig, SGMFTHead

    head = SGMFTHead(HeadConfig(embed_dim=8, heads=2, ffn_hidden=8, classifier_hidden=(4,)))
    state = {k: v for k, v in head.state_dict().items() if not k.startswith("classifier")}
    save_checkpoint(tmp_path / "partial.pt", head, state, {})
    with pytest.raises(SgmftError, match=rf"^{tmp_path / 'partial.pt'}: the checkpoint does not fit its own head "
                                         r"config \(missing \['classifier"):
        load_checkpoint(tmp_path / "partial.pt")
