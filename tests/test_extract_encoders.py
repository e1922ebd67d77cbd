"""The cn_clip encoders: seeded random weights, checkpoints, missing weights, and length-bucketed texts."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cn_clip.clip import tokenize

from sgmft_cache import SgmftError
from pipeline.extract import encoders
from pipeline.extract.encoders import build_encoder, load_encoder, resolve_precision, resolve_weights, token_ids
from pipeline.extract.fingerprint import file_sha256, hash_memo_path

TEXTS = ["家", "今天 学校 食堂 吃饭", "公司 加班 十点 " * 30, "", "电影院 爆米花 好看", "movie cinema 3d imax",
         "旅游 拍照 " * 6, "火锅"]


@pytest.fixture(autouse=True)
def private_hash_memo(tmp_path, monkeypatch):
    monkeypatch.setenv("SGMFT_HOME", str(tmp_path / "sgmft-home"))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """RN50 on a shared 2-core box: one intra-op thread avoids stalls behind other processes' threads."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def rn50():
    return load_encoder("RN50", random_weights=True, device="cpu", seed=0)


@pytest.fixture(scope="module")
def tiny():
    return load_encoder("tiny", device="cpu")


def test_tiny_weights_are_the_seed_and_leave_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b = load_encoder("tiny", seed=0).model.state_dict(), load_encoder("tiny", seed=0).model.state_dict()
    c = load_encoder("tiny", seed=1).model.state_dict()
    assert torch.equal(torch.rand(1), expected_next)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["visual.conv1.weight"], c["visual.conv1.weight"])
    w = resolve_weights("tiny")
    assert w.identity.startswith("random:tiny:seed=0") and w.note.startswith("RANDOM WEIGHTS") and w.embed_dim == 64


def test_token_ids_are_cn_clips_tokenize_without_padding():
    for text in TEXTS:
        full = tokenize([text], context_length=52)[0]
        ids = token_ids(text, 52)
        assert full[: len(ids)].tolist() == ids and not full[len(ids):].any()
    assert len(token_ids(TEXTS[2], 52)) == 52 and len(token_ids(TEXTS[2], 20)) == 20


@pytest.mark.parametrize("which", ["tiny", "rn50"])
def test_length_bucketed_texts_equal_fixed_52_token_padding(request, which):
    enc = request.getfixturevalue(which)
    tokens = [token_ids(t, 52) for t in TEXTS]
    assert len({len(t) for t in tokens}) > 4  # lengths really differ, so padding really differs
    bucketed = enc.encode_texts(tokens, batch_size=3)
    with torch.inference_mode():
        fixed = enc.model.encode_text(tokenize(TEXTS, context_length=52)).float()
    assert bucketed.shape == (len(TEXTS), enc.embed_dim)
    torch.testing.assert_close(bucketed, fixed, rtol=1e-4, atol=1e-5)


def test_images_encode_as_cn_clips_encode_image(rn50):
    pixels = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        direct = rn50.model.encode_image(pixels)
    torch.testing.assert_close(rn50.encode_images(pixels), direct, rtol=1e-4, atol=1e-5)
    assert rn50.weights.note.startswith("RANDOM WEIGHTS") and "RN50@RBT3-chinese" in rn50.weights.note


def test_checkpoint_file_loads_through_cn_clip(tmp_path, rn50):
    state = {f"module.{k}": v for k, v in rn50.model.state_dict().items()}  # as cn_clip's DDP training saves
    path = tmp_path / "epoch_latest.pt"
    torch.save({"epoch": 3, "state_dict": state}, path)
    loaded = load_encoder("RN50", checkpoint=str(path), device="cpu")
    assert loaded.weights.identity == f"sha256:{file_sha256(path)}" and loaded.weights.path == path
    tokens = [token_ids(t, 52) for t in TEXTS[:3]]
    torch.testing.assert_close(loaded.encode_texts(tokens, 8), rn50.encode_texts(tokens, 8))
    pixels = torch.randn(1, 3, 224, 224)
    torch.testing.assert_close(loaded.encode_images(pixels), rn50.encode_images(pixels))


def test_a_checkpoint_of_another_architecture_is_a_clear_error(tmp_path, tiny):
    path = tmp_path / "tiny.pt"
    torch.save({"state_dict": tiny.model.state_dict()}, path)
    with pytest.raises(SgmftError, match=r"not a cn_clip checkpoint of RN50 .*pass the --model it was trained as"):
        load_encoder("RN50", checkpoint=str(path))
    torch.save({"weights": {}}, path)
    with pytest.raises(SgmftError, match="not a cn_clip checkpoint"):
        load_encoder("RN50", checkpoint=str(path))
    with pytest.raises(SgmftError, match="no such file"):
        resolve_weights("RN50", checkpoint=str(tmp_path / "absent.pt"))


def test_weights_absent_without_huggingface_hub_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # cn_clip's download cannot even start
    with pytest.raises(SgmftError) as e:
        resolve_weights("ViT-H-14", download_root=str(tmp_path))
    message = str(e.value)
    assert "clip_cn_vit-h-14.pt" in message and str(tmp_path) in message
    assert "--checkpoint PATH" in message and "huggingface.co/OFA-Sys/chinese-clip-vit-huge-patch14" in message
    assert not any(tmp_path.iterdir())


def test_weights_absent_offline_cli_says_how_to_provide_them(tmp_path):
    manifest = tmp_path / "p.csv"
    manifest.write_text("text,image\n你好,a.jpg\n", encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SGMFT_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "cli", "extract", "--manifest", str(manifest), "--model", "RN50",
                           "--download-root", str(tmp_path / "clip"), "--cache", str(tmp_path / "f.h5")],
                          capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "clip_cn_rn50.pt" in lines[0] and "could not be downloaded" in lines[0]


def test_downloaded_weights_in_the_cache_folder_are_found_without_download(tmp_path, monkeypatch):
    (tmp_path / "clip_cn_rn50.pt").write_bytes(b"stand-in")
    monkeypatch.setattr(encoders.cn_utils, "_download", lambda *a: pytest.fail("tried to download"))
    w = resolve_weights("RN50", download_root=str(tmp_path))
    assert w.path == tmp_path / "clip_cn_rn50.pt" and w.identity == f"sha256:{file_sha256(w.path)}"
    assert (w.arch, w.resolution, w.embed_dim) == ("RN50@RBT3-chinese", 224, 1024)


def test_file_hash_is_remembered_until_the_file_changes(tmp_path):
    path = tmp_path / "w.pt"
    path.write_bytes(b"x" * 1000)
    first = file_sha256(path)
    memo = hash_memo_path().read_text()
    hash_memo_path().write_text(memo.replace(first, "remembered"))
    assert file_sha256(path) == "remembered"  # not read again
    os.utime(path, ns=(1, 1))
    assert file_sha256(path) == first


def test_model_names_and_precision_rules():
    assert set(encoders.model_names()) == {"ViT-B-16", "ViT-L-14", "ViT-L-14-336", "ViT-H-14", "RN50", "tiny"}
    assert resolve_weights("ViT-L-14-336", random_weights=True).resolution == 336
    with pytest.raises(SgmftError, match="unknown; choose one of"):
        resolve_weights("ViT-Z-99")
    with pytest.raises(SgmftError, match="tiny always has seeded random weights"):
        resolve_weights("tiny", checkpoint="x.pt")
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"
    with pytest.raises(SgmftError, match="needs a CUDA device"):
        resolve_precision("bf16", torch.device("cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_on_cuda_stays_close_to_fp32(precision, rn50):
    half = build_encoder(rn50.weights, "cuda", precision)
    assert half.precision == precision
    tokens = [token_ids(t, 52) for t in TEXTS]
    ref, out = rn50.encode_texts(tokens, 4), half.encode_texts(tokens, 4)
    assert out.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(ref, out).min() > 0.99
    pixels = torch.randn(2, 3, 224, 224)
    assert torch.nn.functional.cosine_similarity(rn50.encode_images(pixels), half.encode_images(pixels)).min() > 0.99


def test_device_names_are_checked():
    assert encoders.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(SgmftError, match="not a device name"):
        encoders.resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(SgmftError, match="sees no CUDA device"):
            encoders.resolve_device("cuda:0")
