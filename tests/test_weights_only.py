"""Weights are loaded weights-only whatever torch's default: a crafted pickle as cn_clip weights or as a run's
checkpoint.pt is refused in one line and its code never runs — also under torch < 2.6, whose default unpickled all."""
from __future__ import annotations

import os
import shutil

import pytest
import torch

from sgmft_cache import SgmftError
from pipeline.extract.encoders import build_encoder, resolve_weights
from pipeline.fit import FitConfig, fit, load_checkpoint
from pipeline.predict import load_trained_run
from pipeline.synthetic import make_synthetic_cache


class Payload:
    """Unpickling this makes a folder: the visible trace of code run from a file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.fixture
def old_torch_default(monkeypatch):
    """torch.load as torch 2.1-2.5 had it: weights_only=False unless the caller says otherwise."""
    real = torch.load

    def load(*args, weights_only=False, **kwargs):
        return real(*args, weights_only=weights_only, **kwargs)

    monkeypatch.setattr(torch, "load", load)


def test_cn_clip_weights_are_never_unpickled(tmp_path, old_torch_default, monkeypatch):
    monkeypatch.setenv("SGMFT_HOME", str(tmp_path / "home"))
    marker = tmp_path / "ran"
    evil = tmp_path / "clip_cn_rn50.pt"
    torch.save({"state_dict": {}, "extra": Payload(str(marker))}, evil)
    weights = resolve_weights("RN50", checkpoint=str(evil))
    with pytest.raises(SgmftError, match="never unpickles") as refused:
        build_encoder(weights, device="cpu")
    assert "\n" not in str(refused.value)
    assert not marker.exists()


def test_a_run_checkpoint_is_never_unpickled(tmp_path, old_torch_default, one_thread):
    cache = tmp_path / "feats.h5"
    make_synthetic_cache(cache, sizes={"train": 40, "test": 14}, dim=8)
    run = fit(FitConfig(cache=str(cache), out=str(tmp_path / "run"), epochs=1, heads=2, ffn_hidden=8, quiet=True)).run_dir
    saved = torch.load(run / "checkpoint.pt", weights_only=True)
    marker = tmp_path / "ran"
    torch.save({**saved, "note": Payload(str(marker))}, run / "checkpoint.pt")  # a run directory from someone else
    with pytest.raises(SgmftError, match="not a readable sgmft checkpoint"):
        load_checkpoint(run)
    with pytest.raises(SgmftError, match="not a readable sgmft checkpoint"):
        load_trained_run(run)
    assert not marker.exists()
    shutil.rmtree(run)
