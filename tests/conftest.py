"""Shared fixtures: synthetic caches built at test time, and the real-data folder (when present)."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.synthetic import make_synthetic_cache

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (real-data tests run only beside it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory) -> Path:
    """A small split-signal cache (D=32, 7 classes, train 420 / test 140); never modified by tests."""
    path = tmp_path_factory.mktemp("synthetic") / "feats.h5"
    make_synthetic_cache(path, sizes={"train": 420, "test": 140}, dim=32, noise=0.6, seed=3)
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one intra-op thread for a module's tiny heads: threads gain nothing at D=16-32 and, on a
    shared 2-core machine, their spin-waits made these fits several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def double_precision():
    """Equation and wiring checks at double precision, so tolerances stay tight; seed 0; restored after each test."""
    import torch

    torch.manual_seed(0)
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)
