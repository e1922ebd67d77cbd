"""fit on version-2 caches of real post shapes: several images, image-less posts, modality dropout, by-kind metrics."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pipeline.fit import FitConfig, fit, load_cached_splits
from pipeline.fit.run import load_scorer
from pipeline.metrics import IMAGE_ONLY, POST_KINDS, SEVERAL_IMAGES, TEXT_AND_IMAGE, TEXT_ONLY
from pipeline.synthetic import make_image_set_cache, make_missing_image_cache, make_one_modality_cache

pytestmark = pytest.mark.usefixtures("one_thread")

D = 16
SIZES = {"train": 420, "test": 140}  # 7 classes: chance 14 %


@pytest.fixture(scope="module")
def image_set_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("sets") / "feats.h5"
    make_image_set_cache(path, sizes=SIZES, dim=D, seed=0)
    return str(path)


@pytest.fixture(scope="module")
def missing_image_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("missing") / "feats.h5"
    make_missing_image_cache(path, sizes=SIZES, dim=D, seed=0)
    return str(path)


def run(cache: str, variant: str, out, **kw):
    settings = dict(epochs=10, lr=1e-3, heads=4, ffn_hidden=D, quiet=True)
    cfg = FitConfig(cache=cache, variant=variant, out=str(out), **{**settings, **kw})
    return fit(cfg, load_cached_splits(cache))


@pytest.fixture(scope="module")
def image_set_runs(one_thread, image_set_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("set-runs")
    return {v: run(image_set_cache, v, out / v) for v in ("sgmft", "sgmft-images", "sgmft-mean-images")}


def test_the_class_in_a_second_or_third_image_is_learned_by_the_image_set_variants_only(image_set_runs):
    acc = {v: r.metrics["test_accuracy"] for v, r in image_set_runs.items()}
    assert acc["sgmft"] < 0.3  # the first image and the text are noise: chance (14 %) for the paper's model
    assert acc["sgmft-images"] > 0.6 and acc["sgmft-mean-images"] > 0.45, acc
    kinds = image_set_runs["sgmft-images"].metrics["by_kind"]
    assert kinds[SEVERAL_IMAGES]["posts"] == kinds[TEXT_AND_IMAGE]["posts"] == SIZES["test"]
    assert kinds[SEVERAL_IMAGES]["accuracy"] == pytest.approx(acc["sgmft-images"])


def test_a_saved_image_set_run_scores_its_test_posts_again(image_set_runs, image_set_cache):
    """predict's path: the checkpoint's scorer batches the image sets itself and gives the run's accuracy."""
    result = image_set_runs["sgmft-images"]
    test = load_cached_splits(image_set_cache).test
    scores = load_scorer(result.run_dir, torch.device("cpu"))(test)
    assert np.mean(scores.argmax(1) == test.label.numpy()) == pytest.approx(result.metrics["test_accuracy"])


@pytest.mark.parametrize("variant", ["sgmft", "logreg-probe"])
def test_the_class_in_the_text_of_image_less_posts_is_learned(missing_image_cache, tmp_path, variant):
    m = run(missing_image_cache, variant, tmp_path / variant).metrics
    kinds = m["by_kind"]
    assert set(kinds) == set(POST_KINDS)
    assert kinds[TEXT_ONLY]["posts"] > 30 and kinds[TEXT_ONLY]["accuracy"] > 0.8, kinds
    assert kinds[TEXT_ONLY]["posts"] + kinds[TEXT_AND_IMAGE]["posts"] == SIZES["test"]
    assert kinds[IMAGE_ONLY] == {"posts": 0, "accuracy": None, "macro_f1": None}  # no posts: unknown, not 0
    saved = json.loads((tmp_path / variant / "metrics.json").read_text())["by_kind"]
    assert saved == kinds


def test_modality_dropout_is_recorded_seeded_and_changes_training(missing_image_cache, tmp_path):
    a = run(missing_image_cache, "sgmft", tmp_path / "a", modality_dropout=0.5, epochs=2)
    b = run(missing_image_cache, "sgmft", tmp_path / "b", modality_dropout=0.5, epochs=2)
    c = run(missing_image_cache, "sgmft", tmp_path / "c", epochs=2)
    config = json.loads((a.run_dir / "config.json").read_text())
    assert config["fit"]["modality_dropout"] == 0.5
    log = lambda r: (r.run_dir / "epochs.csv").read_text().splitlines()[1].split(",")[1:3]  # noqa: E731
    assert log(a) == log(b) and log(a) != log(c)


def test_modality_dropout_trains_one_head_for_posts_that_lack_a_modality(tmp_path):
    """Train has only posts with both (the class in each); 60 % of the test posts lack one of them. Dropout is
    what shows the head a lone modality — and its placeholder — before test."""
    make_one_modality_cache(tmp_path / "feats.h5", sizes={"train": 420, "test": 210}, dim=D, seed=0)
    cache = str(tmp_path / "feats.h5")
    alone = lambda r: np.mean([r.metrics["by_kind"][k]["accuracy"] for k in (TEXT_ONLY, IMAGE_ONLY)])  # noqa: E731
    without = run(cache, "sgmft", tmp_path / "p0")
    dropout = run(cache, "sgmft", tmp_path / "p5", modality_dropout=0.5)
    kinds = dropout.metrics["by_kind"]
    assert kinds[TEXT_ONLY]["posts"] > 40 and kinds[IMAGE_ONLY]["posts"] > 40
    assert alone(dropout) > 0.7 and alone(dropout) > alone(without) + 0.1, (alone(dropout), alone(without))
    assert kinds[TEXT_AND_IMAGE]["accuracy"] > 0.85  # the posts with both stay well read


def test_bad_modality_dropout_and_max_images_are_refused():
    from sgmft_cache import SgmftError

    with pytest.raises(SgmftError, match="--modality-dropout"):
        FitConfig(modality_dropout=1.0)
    with pytest.raises(SgmftError, match="--max-images"):
        FitConfig(max_images=0)


def test_a_checkpoint_from_before_the_placeholders_still_loads(image_set_runs, tmp_path):
    from pipeline.fit import load_checkpoint
    from sgmft_cache import SgmftError

    saved = torch.load(image_set_runs["sgmft"].run_dir / "checkpoint.pt", weights_only=True)
    old = {**saved, "state_dict": {k: v for k, v in saved["state_dict"].items() if not k.startswith("inputs.")}}
    torch.save(old, tmp_path / "old.pt")
    head, info = load_checkpoint(tmp_path / "old.pt")
    assert info["variant"] == "sgmft" and head.inputs.text_placeholder.shape == (D,)
    broken = {**saved, "state_dict": {k: v for k, v in saved["state_dict"].items() if not k.startswith("classifier.")}}
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(SgmftError, match="does not fit its own head config"):
        load_checkpoint(tmp_path / "broken.pt")
