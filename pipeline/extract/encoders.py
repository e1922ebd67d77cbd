"""The Chinese-CLIP encoders — the one module that imports cn_clip: weights, tokenizer, transform, encode.

Weights come from cn_clip's own download into its cache folder, from a cn_clip checkpoint file,
or (for tests, demos and benchmarks, and labelled so wherever the features go) from a seeded
random initialisation: `tiny` (cn_clip's CLIP class at a small size) or any real architecture.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from cn_clip.clip import _tokenizer, image_transform, tokenize
from cn_clip.clip import utils as cn_utils
from cn_clip.clip.model import CLIP, convert_weights

from sgmft_cache import SgmftError
from pipeline.device import AUTO, resolve_device
from pipeline.extract.fingerprint import file_sha256

TINY = "tiny"
TINY_CONFIG = dict(  # cn_clip's CLIP at a toy size: 2-layer ViT-B/32-shaped vision, 2-layer BERT, real vocab
    embed_dim=64, image_resolution=224, vision_layers=2, vision_width=64, vision_patch_size=32, vision_head_width=32,
    vocab_size=21128, text_hidden_size=64, text_num_hidden_layers=2, text_num_attention_heads=2,
    text_intermediate_size=128, text_max_position_embeddings=512, text_type_vocab_size=2, text_hidden_act="gelu",
    text_hidden_dropout_prob=0.1, text_attention_probs_dropout_prob=0.1, text_initializer_range=0.02,
)
RANDOM_NOTE = (
    "RANDOM WEIGHTS ({what}, seed {seed}): not Chinese-CLIP's trained encoders. These features mean nothing "
    "about posts, places or SG-MFT; they exist to test and time the pipeline. Never report accuracy on them."
)
PAD = _tokenizer.vocab["[PAD]"]
CPU_TEXT_TOKENS = 1024  # padded positions per text batch on the CPU (text_token_budget)
CN_CLIP_VERSION = importlib.metadata.version("cn_clip")


@dataclass(frozen=True)
class Weights:
    """Which encoder weights, resolved but not loaded: enough for the fingerprint and the cache attrs."""

    model: str  # "ViT-H-14", ..., or "tiny"
    arch: str  # cn_clip structure, e.g. "ViT-H-14@RoBERTa-wwm-ext-large-chinese"
    resolution: int  # image side the transform resizes to
    embed_dim: int  # D
    path: Path | None  # checkpoint file; None for seeded random weights
    identity: str  # "sha256:<file hash>" or "random:<arch>:seed=<n>:cn_clip=<version>"
    note: str  # what these weights are, in words (loud for random weights)
    seed: int = 0

    @property
    def random(self) -> bool:
        return self.path is None


def model_names() -> list[str]:
    return [*cn_utils.available_models(), TINY]


def resolve_weights(model: str, checkpoint: str | None = None, download_root: str | None = None,
                    random_weights: bool = False, seed: int = 0) -> Weights:
    """Find (or download, through cn_clip) the weights of `model` and name them; loads no model."""
    if model == TINY:
        if checkpoint:
            raise SgmftError("--model tiny always has seeded random weights; --checkpoint needs a cn_clip model name")
        return _random_weights(TINY, TINY, TINY_CONFIG["image_resolution"], TINY_CONFIG["embed_dim"], seed)
    if model not in cn_utils.available_models():
        raise SgmftError(f"--model {model}: unknown; choose one of {', '.join(model_names())}")
    info = cn_utils._MODEL_INFO[model]
    arch, resolution, embed_dim = info["struct"], info["input_resolution"], _embed_dim(info["struct"])
    if random_weights:
        return _random_weights(model, arch, resolution, embed_dim, seed)
    path = Path(checkpoint) if checkpoint else _download(model, download_root)
    if not path.is_file():
        raise SgmftError(f"--checkpoint {path}: no such file (a cn_clip checkpoint, e.g. clip_cn_vit-h-14.pt)")
    note = f"Chinese-CLIP {model} ({arch}), weights {path.name}"
    return Weights(model, arch, resolution, embed_dim, path, f"sha256:{file_sha256(path)}", note)


def _random_weights(model: str, arch: str, resolution: int, embed_dim: int, seed: int) -> Weights:
    what = "tiny test encoder, cn_clip's CLIP class at toy size" if model == TINY else f"{arch} architecture"
    identity = f"random:{arch}:seed={seed}:cn_clip={CN_CLIP_VERSION}"
    return Weights(model, arch, resolution, embed_dim, None, identity, RANDOM_NOTE.format(what=what, seed=seed), seed)


def _embed_dim(arch: str) -> int:
    vision = arch.split("@")[0]
    config = Path(cn_utils.__file__).parent / "model_configs" / f"{vision}.json"
    return int(json.loads(config.read_text())["embed_dim"])


def downloaded_weights(model: str, download_root: str | None = None) -> Path | None:
    """The weights file of cn_clip model `model` in its download folder, or None; never downloads."""
    if model not in cn_utils.available_models():
        return None
    path = Path(download_root or os.path.expanduser("~/.cache/clip")) / cn_utils._MODELS[model][1]
    return path if path.is_file() else None


def _download(model: str, download_root: str | None) -> Path:
    """cn_clip's own download into its cache folder; one clear error when that cannot happen."""
    root = download_root or os.path.expanduser("~/.cache/clip")
    repo, filename = cn_utils._MODELS[model]
    if downloaded_weights(model, root):
        return Path(root) / filename
    try:
        return Path(cn_utils._download(model, root))
    except Exception as e:  # no huggingface_hub, no network, refused: all end the same way for the user
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise SgmftError(
            f"weights of {model} ({filename}) are not in {root} and could not be downloaded ({why}). "
            f"Either download {filename} from https://huggingface.co/OFA-Sys/{repo} into {root} "
            f"(or pass --download-root DIR where it lies), or pass --checkpoint PATH to a cn_clip checkpoint; "
            f"cn_clip fetches it by itself when huggingface_hub is installed and huggingface.co is reachable"
        ) from None


def token_ids(text: str, context_length: int) -> list[int]:
    """cn_clip's tokenize of one text, without the padding: [CLS] ... [SEP], at most context_length ids."""
    row = tokenize([text], context_length=context_length)[0]
    return row[row.ne(PAD)].tolist()


@dataclass
class Encoder:
    """A frozen cn_clip model on a device, at a precision; returns raw encode_image / encode_text outputs."""

    weights: Weights
    model: CLIP
    device: torch.device
    precision: str  # "fp32", "fp16" (cn_clip's own half weights), "bf16" (autocast)

    @property
    def embed_dim(self) -> int:
        return self.weights.embed_dim

    def transform(self):
        """cn_clip's own image transform at the model's resolution (bicubic resize, no crop)."""
        return image_transform(self.weights.resolution)

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """[B, 3, R, R] transformed images -> [B, D] float32 on the CPU."""
        with self._autocast():
            out = self.model.encode_image(pixels.to(self.device, non_blocking=True))
        return out.float().cpu()

    @torch.inference_mode()
    def encode_texts(self, tokens: list[list[int]], batch_size: int) -> torch.Tensor:
        """Token-id lists -> [N, D] float32, in input order. Texts are sorted by length and each batch is
        padded only to its longest: masked [PAD] positions change nothing, so this equals cn_clip's
        fixed-length tokenize() batches while skipping most of their work."""
        out = torch.empty(len(tokens), self.embed_dim)
        for rows in text_batches([len(t) for t in tokens], batch_size, text_token_budget(self.device)):
            ids = torch.full((len(rows), max(len(tokens[i]) for i in rows)), PAD, dtype=torch.long)  # [b, longest]
            for k, i in enumerate(rows):
                ids[k, :len(tokens[i])] = torch.tensor(tokens[i])
            with self._autocast():
                out[rows] = self.model.encode_text(ids.to(self.device, non_blocking=True)).float().cpu()
        return out


def text_token_budget(device: torch.device) -> int | None:
    """Padded positions per text batch on `device`: on a CPU, batches of long texts are cut short, which
    measured 13 % faster on the real Weibo texts (BENCHMARKS.md); a GPU takes whole batches."""
    return CPU_TEXT_TOKENS if device.type == "cpu" else None


def text_batches(lengths: list[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Indices of texts sorted by length, cut into batches of at most `batch_size` texts and, when given,
    at most `max_tokens` padded positions (texts x the batch's longest)."""
    batches: list[list[int]] = [[]]
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        batch = batches[-1]
        full = len(batch) == batch_size or bool(max_tokens and (len(batch) + 1) * lengths[i] > max_tokens)
        if batch and full:
            batches.append([])
        batches[-1].append(i)
    return [b for b in batches if b]


def load_encoder(model: str, *, checkpoint: str | None = None, device: str = AUTO, precision: str = AUTO,
                 download_root: str | None = None, random_weights: bool = False, seed: int = 0) -> Encoder:
    """The encoder `model` with its weights, ready to encode (the entry point for extract and predict)."""
    return build_encoder(resolve_weights(model, checkpoint, download_root, random_weights, seed), device, precision)


def build_encoder(weights: Weights, device: str = AUTO, precision: str = AUTO) -> Encoder:
    dev = resolve_device(device)
    precision = resolve_precision(precision, dev)
    model = _random_model(weights) if weights.random else _checkpoint_model(weights)
    model.float()
    if precision == "fp16":
        convert_weights(model)  # cn_clip's own half precision: norms stay fp32
    return Encoder(weights, model.to(dev).eval(), dev, precision)


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision == AUTO:
        return "fp16" if device.type == "cuda" else "fp32"
    if precision not in ("fp32", "fp16", "bf16"):
        raise SgmftError(f"--precision {precision}: choose auto, fp32, fp16 or bf16")
    if precision != "fp32" and device.type != "cuda":
        raise SgmftError(f"--precision {precision} needs a CUDA device; on {device} use fp32 (or auto)")
    return precision


@contextlib.contextmanager
def _quiet_seeded(seed: int):
    """cn_clip prints its configs while building; the seed gives the same weights on any machine."""
    with torch.random.fork_rng(devices=[]), contextlib.redirect_stdout(io.StringIO()):
        torch.manual_seed(seed)
        yield


def _random_model(weights: Weights) -> CLIP:
    with _quiet_seeded(weights.seed):
        if weights.model == TINY:
            return CLIP(**TINY_CONFIG)
        return cn_utils.create_model(weights.arch)


def _checkpoint_model(weights: Weights) -> CLIP:
    """cn_clip's model from a checkpoint file, read weights-only whatever torch's default (cn_clip's own
    load_from_name unpickles it in full, which runs any code a crafted file holds)."""
    try:
        checkpoint = torch.load(weights.path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        why = (str(e).strip().splitlines() or [""])[0][:200]
        raise SgmftError(f"{weights.path}: holds Python objects besides tensors, which sgmft never unpickles (a pickle "
                         f"can run code): {why}; pass a cn_clip checkpoint ({{'state_dict': ...}})") from None
    except Exception as e:  # a truncated or foreign file
        raise SgmftError(f"{weights.path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    vision, text = weights.arch.split("@")
    try:
        if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
            raise KeyError("state_dict")
        with contextlib.redirect_stdout(io.StringIO()):
            model = cn_utils.create_model(weights.arch, checkpoint)
    except Exception as e:  # a missing "state_dict", mismatched keys or shapes
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise SgmftError(
            f"{weights.path}: not a cn_clip checkpoint of {weights.model} ({weights.arch}): {type(e).__name__}: {why}; "
            f"pass the --model it was trained as, or a checkpoint saved by cn_clip ({{'state_dict': ...}})"
        ) from None
    return model
