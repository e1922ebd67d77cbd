"""Reading for fit at scale: features kept in their stored dtype, rows read by position, a train split streamed
in shuffled chunks (every row once per epoch, groups within the budget), memory budgets parsed."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sgmft_cache import CacheMeta, SgmftError, load_cache, load_rows, load_split, write_split
from pipeline.fit.stream import StreamedSplit, parse_memory, ram_bytes, streamed_epoch

D = 8
META = CacheMeta(model="m", embed_dim=D, labels=("a", "b", "c"), fingerprint="f")


@pytest.fixture
def cache(tmp_path):
    path, n = tmp_path / "c.h5", 1000
    ks = np.arange(n)
    write_split(path, "train", META, ids=[f"p{k:05d}" for k in ks], text=np.repeat(ks[:, None], D, 1),
                image=-np.repeat(ks[:, None], D, 1), label=ks % 3, dtype="float16", chunk_rows=256)
    return path


def test_features_can_stay_in_their_stored_dtype(cache):
    kept = load_cache(cache, required=["train"], keep_dtype=True)[1]["train"]
    assert kept.text.dtype == torch.float16 and kept.images.dtype == torch.float16
    assert torch.equal(kept.text.float(), load_split(cache, "train").text)


def test_rows_by_position_equal_the_loaded_split(cache):
    index = np.array([0, 1, 2, 500, 998, 999])
    check_rows(cache, index)
    check_rows(cache, np.arange(0, 1000, 3))  # scattered: one point selection
    check_rows(cache, np.concatenate([np.arange(10, 300), np.arange(400, 800)]))  # two runs, read in place


def check_rows(cache, index):
    got, whole = load_rows(cache, "train", index), load_split(cache, "train")
    assert got.ids == [whole.ids[k] for k in index]
    assert torch.equal(got.text.float(), whole.text[index]) and torch.equal(got.label, whole.label[index])
    assert torch.equal(got.images.float(), whole.image[index]) and got.image_offsets.tolist() == list(range(len(index) + 1))


def test_a_version_1_split_holds_its_image_rows_once(cache):
    """images is image there (one tensor), through a load, a read by position, a subset and a streamed group:
    a second copy would cost half the features' bytes again."""
    whole = load_cache(cache, required=["train"], keep_dtype=True)[1]["train"]
    some = load_rows(cache, "train", np.arange(100, 400))
    cut = whole.subset(np.array([5, 3, 900]))
    group = StreamedSplit.open(str(cache), "train", budget=10**6).load(np.arange(10))
    for data in (whole, some, cut, group):
        assert data.images is data.image
    assert torch.equal(cut.image.float(), whole.image[[5, 3, 900]].float()) and group.image.dtype == torch.float16


def test_a_streamed_epoch_reads_every_row_once_in_groups_within_the_budget(cache):
    row_bytes = 2 * D * 2  # text + image, float16
    split = StreamedSplit.open(str(cache), "train", budget=300 * row_bytes, chunk_rows=20)
    assert split.group_rows == 300
    sub = split.subset(np.arange(0, 1000, 2))  # e.g. train without the validation carve-out
    seen, sizes = [], []
    for data in sub.groups(torch.Generator().manual_seed(0)):
        sizes.append(len(data))
        seen += data.ids
        assert data.text.dtype == torch.float16
        assert torch.equal(data.text[:, 0].long(), torch.tensor([int(i[1:]) for i in data.ids]))
    assert sorted(seen) == [f"p{k:05d}" for k in range(0, 1000, 2)] and max(sizes) <= 300
    first = lambda seed: set(next(sub.groups(torch.Generator().manual_seed(seed))).ids)  # noqa: E731
    assert first(0) == first(0) != first(1)  # the chunk order follows the seed
    calls = []
    loss, acc = streamed_epoch(sub, lambda d: calls.append(len(d)) or (1.0 * len(d), 0.5), torch.Generator())
    assert sum(calls) == 500 and acc == pytest.approx(0.5)
    assert loss == pytest.approx(sum(n * n for n in calls) / 500)  # weighted by group size


@pytest.mark.parametrize("text, expected", [
    ("512MiB", 512 * 2**20), ("2GB", 2 * 10**9), ("1.5 GiB", 3 * 2**29), ("3KiB", 3072), ("4KB", 4000),
    ("7MB", 7 * 10**6), ("1TiB", 2**40), ("2TB", 2 * 10**12), ("10B", 10), ("4096", 4096), (" 8gib ", 8 * 2**30),
])
def test_memory_budget_units(text, expected):
    assert parse_memory(text) == expected


def test_memory_budgets():
    assert parse_memory("50%") == ram_bytes() // 2 or abs(parse_memory("50%") - ram_bytes() / 2) < 2
    assert parse_memory("25%") == int(0.25 * ram_bytes())
    assert parse_memory("1") == 1
    for bad in ("", "lots", "-1GiB", "0%", "nan%", "inf GiB", "-inf", "0", "1.5", "xGiB", "%"):
        with pytest.raises(SgmftError, match="--max-memory"):
            parse_memory(bad)


def test_fit_streams_a_train_split_larger_than_max_memory(tmp_path, one_thread):
    from pipeline.fit import FitConfig, fit
    from pipeline.synthetic import make_synthetic_cache

    cache = tmp_path / "s.h5"
    make_synthetic_cache(cache, sizes={"train": 600, "test": 150}, dim=16, dtype="float16")
    quick = dict(cache=str(cache), epochs=3, lr=1e-3, heads=4, ffn_hidden=16, quiet=True)
    streamed = fit(FitConfig(**quick, max_memory="8KiB", out=str(tmp_path / "streamed"))).metrics
    whole = fit(FitConfig(**quick, out=str(tmp_path / "whole"))).metrics
    assert streamed["train_size"] == whole["train_size"] and streamed["val_size"] == whole["val_size"]
    assert streamed["test_accuracy"] > 0.5  # it learned (7 classes: chance 0.14)
    with pytest.raises(SgmftError, match="--max-memory"):
        fit(FitConfig(**{**quick, "variant": "logreg-probe"}, max_memory="8KiB", out=str(tmp_path / "p")))


def test_fit_keeps_an_fp16_cache_in_fp16_and_trains_as_on_its_float32_values(tmp_path, one_thread, monkeypatch):
    from pipeline.fit import FitConfig, fit
    from pipeline.fit import data as fit_data
    from pipeline.synthetic import make_synthetic_cache

    cache = tmp_path / "h.h5"
    make_synthetic_cache(cache, sizes={"train": 300, "test": 100}, dim=16, dtype="float16")
    splits = fit_data.load_cached_splits(str(cache))
    assert splits.train.text.dtype == torch.float16 and splits.test.image.dtype == torch.float16
    quick = dict(cache=str(cache), epochs=2, lr=1e-3, heads=4, ffn_hidden=16, quiet=True)
    kept = fit(FitConfig(**quick, out=str(tmp_path / "kept"))).metrics
    as_float32 = fit_data.load_cache
    monkeypatch.setattr(fit_data, "load_cache", lambda *a, **k: as_float32(*a, **{**k, "keep_dtype": False}))
    widened = fit(FitConfig(**quick, out=str(tmp_path / "widened"))).metrics
    assert kept["test_accuracy"] == widened["test_accuracy"] and kept["test_macro_f1"] == widened["test_macro_f1"]
