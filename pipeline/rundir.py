"""The run directory of `sgmft fit`: its file names, typed records of config.json and metrics.json, writing and reading.

fit and the probe write through `RunDir`; report and predict read through it. config.json is
written first (how the run is made), metrics.json last: its presence marks a finished run. A folder
holding another run's files is refused (or emptied of them on request), and every file a run writes
carries its `run_id`, so a folder is never read as one run when it holds pieces of two.
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import time
import uuid
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Mapping

import numpy as np

from sgmft_cache import DEFAULT_CACHE, SgmftError, legacy_placeholder
from pipeline import variants
from pipeline.metrics import TEST_ACCURACY, TEST_METRICS, softmax

CONFIG, METRICS, EPOCHS = "config.json", "metrics.json", "epochs.csv"
CHECKPOINT, PROBE_WEIGHTS, C_SEARCH = "checkpoint.pt", "probe.npz", "c_search.csv"
PREDICTIONS, TEST_OUTPUTS = "predictions.csv", "test_outputs.npz"
GUIDANCE = "guidance.json"  # a head run's similarity diagnostics (pipeline/head/diagnostics.py)
RUNS = "runs"  # fit's default runs folder, beside the cache
# The train figures are running means over the epoch of each batch's loss and accuracy taken before that
# batch's update (what training saw), not a pass of the epoch's final weights over train: hence "running".
EPOCH_FIELDS = ("epoch", "running_train_loss", "running_train_accuracy", "val_loss", "val_accuracy", "seconds")
LEGACY_EPOCH_FIELDS = {"train_loss": "running_train_loss", "train_accuracy": "running_train_accuracy"}  # before 11
DEFAULT_RUNS = str(Path(DEFAULT_CACHE).parent / RUNS)  # where report looks when given nothing
RUN_FILES = (CONFIG, METRICS, EPOCHS, CHECKPOINT, PROBE_WEIGHTS, C_SEARCH, PREDICTIONS, TEST_OUTPUTS, GUIDANCE)


@dataclass(frozen=True)
class RunConfig:
    """config.json: how a run was made — its fit settings, trainer settings and the cache's provenance."""

    fit: Mapping  # FitConfig.to_dict()
    labels: tuple[str, ...]  # class names of the cache; position = class id
    fingerprint: str  # of the cache
    extraction: Mapping  # CacheMeta.record() of the cache: how its features were made ({} in older runs)
    val_source: str  # where the validation rows came from
    device: str
    trainer: Mapping = field(default_factory=dict)  # the trainer's own settings (HeadConfig, the probe's grid)
    torch: str = ""  # torch version
    run_id: str = ""  # the run's own id, also in metrics.json and the checkpoint ("" in older runs)
    cache_content: str = ""  # sgmft_cache.content_identity of the cache: its labels and posts ("" in older runs)

    @classmethod
    def of(cls, fit: Mapping, meta, **kw) -> "RunConfig":
        """The config of a run on the cache described by `meta` (a sgmft_cache.CacheMeta)."""
        return cls(fit=fit, labels=tuple(meta.labels), fingerprint=meta.fingerprint, extraction=meta.record(), **kw)

    @property
    def variant(self) -> str:
        return str(self.fit.get("variant", "?"))

    @property
    def kind(self) -> str:
        """The trainer kind of the variant: its key in config.json ("head", "probe")."""
        known = variants.VARIANTS.get(self.variant)
        return known.trainer if known else "head"

    def to_json(self) -> dict:
        return {"fit": dict(self.fit), self.kind: dict(self.trainer), "device": self.device,
                "val_source": self.val_source, "cache_fingerprint": self.fingerprint,
                "encoder": self.extraction.get("model"), "labels": list(self.labels), "torch": self.torch,
                "extraction": dict(self.extraction), "run_id": self.run_id,
                "cache_content": self.cache_content}

    @classmethod
    def from_json(cls, d: Mapping) -> "RunConfig":
        fit = d.get("fit", {})
        known = variants.VARIANTS.get(str(fit.get("variant")))
        return cls(fit=fit, labels=tuple(d.get("labels", ())), fingerprint=str(d.get("cache_fingerprint", "")),
                   extraction=d.get("extraction", {}), val_source=str(d.get("val_source", "")),
                   device=str(d.get("device", "")), trainer=d.get(known.trainer if known else "head", {}) or {},
                   torch=str(d.get("torch", "")), run_id=str(d.get("run_id", "")),
                   cache_content=str(d.get("cache_content", "")))


@dataclass(frozen=True)
class RunMetrics:
    """metrics.json: what a finished run measured. Flat keys, as outside tools read them."""

    variant: str
    seed: int
    scores: Mapping[str, float]  # test_<metric> for each metric of pipeline.metrics.TEST_METRICS
    val_accuracy: float  # of the chosen checkpoint
    chosen: str  # how it was chosen, in words: "epoch 8", "C=1"
    selection: Mapping  # the trainer's own record of the choice: best_epoch and epochs, probe_C, ...
    cache: str
    cache_fingerprint: str
    encoder: str
    encoder_note: str
    placeholder_encoder: bool  # random or synthetic weights: the numbers mean nothing about SG-MFT
    labels: tuple[str, ...]
    val_source: str
    train_size: int | None  # posts; None in runs that did not record it
    val_size: int | None
    test_size: int | None
    device: str
    run_id: str = ""  # the same as config.json's ("" in older runs)
    cache_content: str = ""  # the cache's content identity: which posts, which labels ("" in older runs)
    by_kind: Mapping | None = None  # {kind: {posts, accuracy, macro_f1}} of the test posts (metrics.POST_KINDS); None in older runs

    def to_json(self) -> dict:
        flat = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("scores", "selection")}
        flat["labels"] = list(self.labels)
        return {**flat, **dict(self.scores), **dict(self.selection)}

    @classmethod
    def from_json(cls, d: Mapping) -> "RunMetrics":
        """Raises KeyError naming the first missing key; keys of older runs that are absent read as unknown."""
        missing = [k for k in REQUIRED if k not in d]
        if missing:
            raise KeyError(", ".join(missing))
        own = {f.name for f in fields(cls)}
        scores = {m.key: float(d[m.key]) for m in TEST_METRICS if m.key in d}
        values = {f.name: _typed(f.type, d.get(f.name)) for f in fields(cls) if f.name not in ("scores", "selection")}
        values["labels"] = tuple(values["labels"])
        metrics = cls(scores=scores, selection={k: v for k, v in d.items() if k not in own and k not in scores}, **values)
        if d.get("placeholder_encoder") is None:  # runs made before the flag
            metrics = replace(metrics, placeholder_encoder=legacy_placeholder(metrics.encoder, metrics.encoder_note))
        return metrics

    @property
    def test_accuracy(self) -> float:
        return self.scores[TEST_ACCURACY.key]


def _typed(annotation: str, value):
    """A metrics.json value as its field's type (str, int, float, bool); absent strings read as empty."""
    kinds = {"str": str, "int": int, "float": float, "bool": bool}
    if annotation in kinds:
        return kinds[annotation](value if value is not None else kinds[annotation]())
    return value


@dataclass(frozen=True)
class Guidance:
    """guidance.json: is the similarity guidance of a head run active? Measured at the end of training.

    Entropies near 1, peaks near 1 and dependence ratios near 0 say the SIM ignored the similarity.
    Every measured number is NaN (null in the file) where the head has no SIM.
    """

    sim: bool  # the head has a SIM (eqs. 1-16)
    split: str  # whose posts were measured
    posts: int  # how many of them
    dim: int  # D
    gate: str  # "softmax" (paper) or "sigmoid"
    tau_m: float  # τ on S^m at the end (1: none, the paper)
    tau_e: float  # τ on S^e at the end
    p_m_entropy: float  # H(P^m/ΣP^m) / log D, mean over posts: 1 = uniform, 0 = one channel
    p_m_peak: float  # max_i (P^m_i/ΣP^m)·D, mean over posts: 1 = uniform, D = one channel
    p_m_mean: float  # mean entry of P^m: CA's weight in eq. 12 (softmax: 1/D whatever the features)
    p_e_entropy: float  # the same for the rows of P^e of the guided FFN, mean over rows and posts
    p_e_peak: float
    text_on_image_grad: float  # ‖∂F_text^S/∂v‖·‖v‖ / (‖∂F_text^S/∂t‖·‖t‖), Frobenius, over posts
    image_on_text_grad: float  # ‖∂F_image^S/∂t‖·‖t‖ / (‖∂F_image^S/∂v‖·‖v‖)
    text_on_image_swap: float  # mean ‖ΔF_text^S‖ when v is another post's / when t is another post's
    image_on_text_swap: float  # mean ‖ΔF_image^S‖ when t is another post's / when v is another post's

    def to_json(self) -> dict:
        return {f.name: _null_if_nan(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def without_sim(cls, split: str, dim: int, gate: str) -> "Guidance":
        """The record of a head without a SIM: nothing to measure."""
        nan = {f.name: float("nan") for f in fields(cls) if f.type == "float"}
        return cls(sim=False, split=split, posts=0, dim=dim, gate=gate, **nan)

    @classmethod
    def from_json(cls, d: Mapping) -> "Guidance":
        """null and absent numbers read as NaN."""
        return cls(**{f.name: _float(d.get(f.name)) if f.type == "float" else d.get(f.name) for f in fields(cls)})


def _null_if_nan(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def _float(value) -> float:
    return float("nan") if value is None else float(value)


REQUIRED = ("variant", "seed", "val_accuracy", "cache_fingerprint", "labels",
            *(m.key for m in TEST_METRICS if m.in_tables))


class EpochLog:
    """epochs.csv, one row per finished epoch, flushed as it goes."""

    def __init__(self, path: Path):
        self.path = path
        with naming(path), path.open("w", newline="") as f:
            csv.writer(f).writerow(EPOCH_FIELDS)

    def append(self, row: Mapping) -> None:
        with naming(self.path), self.path.open("a", newline="") as f:
            csv.writer(f).writerow([_fmt(row[k]) for k in EPOCH_FIELDS])


def _fmt(x) -> str:
    return f"{x:.6g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class RunDir:
    """One run's folder and every file in it; `run_id` is set when fit creates it, "" when read."""

    path: Path
    run_id: str = ""

    @classmethod
    def create(cls, out: str | None, cache: str, variant: str, seed: int, overwrite: bool = False) -> "RunDir":
        """`out` if given (refused while it holds a run's files, unless `overwrite` deletes them first), else a fresh
        <cache folder>/runs/<time>-<variant>-seed<seed>."""
        if out:
            path = Path(out)
            claim_folder(path, overwrite)
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            base = Path(cache).parent / RUNS / f"{stamp}-{variant}-seed{seed}"
            path, k = base, 1
            while path.exists():
                k += 1
                path = base.with_name(f"{base.name}-{k}")
        path.mkdir(parents=True, exist_ok=True)
        return cls(path, uuid.uuid4().hex)

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoint(self) -> Path:
        return self.file(CHECKPOINT)

    @property
    def finished(self) -> bool:
        return self.file(METRICS).exists()

    @staticmethod
    def looks_like_run(path: Path) -> bool:
        return any((path / name).exists() for name in (METRICS, CONFIG, EPOCHS))

    # writing, in the order a run writes
    def write_config(self, config: RunConfig) -> None:
        write_json(self.file(CONFIG), replace(config, run_id=self.run_id or config.run_id).to_json())

    def epoch_log(self) -> EpochLog:
        return EpochLog(self.file(EPOCHS))

    def write_test_outputs(self, ids: list[str], y_true: np.ndarray, scores: np.ndarray, fusion: np.ndarray,
                           labels: list[str]) -> np.ndarray:
        """predictions.csv (id,label,pred as class names) and test_outputs.npz (probabilities, M_fuse) from the
        test posts' class scores (logits or log-probabilities); returns the predicted class ids."""
        pred = scores.argmax(axis=1)
        with naming(self.file(PREDICTIONS)), self.file(PREDICTIONS).open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["id", "label", "pred"])
            for i, t, p in zip(ids, y_true, pred):
                w.writerow([spreadsheet_safe(i), labels[t], labels[p]])
        with naming(self.file(TEST_OUTPUTS)):
            self._write_outputs(ids, y_true, pred, scores, fusion, labels)
        return pred

    def _write_outputs(self, ids, y_true, pred, scores, fusion, labels) -> None:
        np.savez_compressed(
            self.file(TEST_OUTPUTS), ids=np.asarray(ids, dtype=str), label=y_true, pred=pred,
            probs=softmax(scores).astype(np.float32), fusion=fusion.astype(np.float32),
            labels=np.asarray(labels, dtype=str),
        )

    def write_guidance(self, guidance: Guidance) -> None:
        write_json(self.file(GUIDANCE), guidance.to_json())

    def write_metrics(self, metrics: RunMetrics) -> None:
        """Written last: its presence marks a finished run."""
        write_json(self.file(METRICS), replace(metrics, run_id=self.run_id or metrics.run_id).to_json())

    # reading
    def read_config(self) -> RunConfig:
        return RunConfig.from_json(read_json(self.file(CONFIG)))

    def read_metrics(self) -> RunMetrics:
        return RunMetrics.from_json(read_json(self.file(METRICS)))

    def check_trained(self, labels, fingerprint: str, run_id: str, what: str) -> None:
        """Refuse trained weights (`what`: the checkpoint, the probe's file) not made by the run config.json describes."""
        why = disagreement(self.read_config(), labels, fingerprint, run_id, what)
        if why:
            raise SgmftError(f"{self.path}: {why}: the folder mixes two runs; fit it again (--overwrite)")

    def check_finished(self) -> None:
        """Refuse a metrics.json not written by the run config.json describes."""
        m = self.read_metrics()
        why = disagreement(self.read_config(), m.labels, m.cache_fingerprint, m.run_id)
        if why:
            raise SgmftError(f"{self.path}: {why}: the folder mixes two runs; fit it again (--overwrite)")

    def read_guidance(self) -> Guidance | None:
        """guidance.json, or None where the run has none (the probe; runs made before it existed)."""
        path = self.file(GUIDANCE)
        return Guidance.from_json(read_json(path)) if path.exists() else None

    def read_epochs(self):
        """epochs.csv as a pandas table, or None where the run has none (the logistic-regression probe).
        Raises ValueError for a file that is not a table of numbers with an epoch column."""
        import pandas as pd

        path = self.file(EPOCHS)
        if not path.exists():
            return None
        table = pd.read_csv(path).rename(columns=LEGACY_EPOCH_FIELDS)
        if "epoch" not in table or not all(pd.api.types.is_numeric_dtype(t) for t in table.dtypes):
            raise ValueError(f"{EPOCHS} is not a table of numbers with an epoch column")
        return table if len(table) else None

    def read_outputs(self) -> dict[str, np.ndarray] | None:
        """test_outputs.npz (label, pred, probs, fusion = M_fuse, ...), or None where it is missing."""
        path = self.file(TEST_OUTPUTS)
        if not path.exists():
            return None
        with np.load(path) as z:
            return {k: z[k] for k in z.files}


def claim_folder(path: Path, overwrite: bool) -> None:
    """Refuse a folder holding a run's files, so that a new run never lies beside an old one's; `overwrite`
    deletes those files first (other files are left alone)."""
    if path.exists() and not path.is_dir():
        raise SgmftError(f"--out {path}: is a file, not a folder")
    held = [name for name in RUN_FILES if (path / name).exists()]
    if held and not overwrite:
        raise SgmftError(f"--out {path}: already holds a run ({', '.join(held)}); pass --overwrite to empty it, "
                         "or choose another --out")
    for name in held:
        (path / name).unlink()


def disagreement(config: RunConfig, labels, fingerprint: str, run_id: str = "", what: str = METRICS) -> str | None:
    """Why `what` (metrics.json, the checkpoint) is not from the run config.json describes, or None."""
    if run_id and config.run_id and run_id != config.run_id:
        return f"{what} is from another run than {CONFIG} (run_id {run_id} vs {config.run_id})"
    if tuple(labels) != tuple(config.labels):
        return f"{what} has labels {list(labels)}, {CONFIG} {list(config.labels)}"
    if fingerprint != config.fingerprint:
        return f"{what} is for cache fingerprint {fingerprint}, {CONFIG} {config.fingerprint}"
    return None


def write_json(path: Path, obj: Mapping) -> None:
    """Write JSON under a temporary name and rename, so a reader never sees half a file."""
    write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as the start of a formula


def spreadsheet_safe(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: one starting like a formula gets a leading ' (OWASP's advice)."""
    return f"'{text}" if str(text).startswith(FORMULA_STARTS) else str(text)


@contextlib.contextmanager
def naming(path: Path):
    """An OSError raised inside (a write to a full disk names no file) is raised again naming `path`."""
    try:
        yield
    except OSError as e:
        if e.filename:
            raise
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None


def write_bytes(path: Path, data: bytes) -> None:
    """`data` as `path`, complete or not at all: written aside, synced, renamed; a failed write (disk full) raises
    OSError and leaves neither a truncated file nor its temporary behind."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with naming(path), tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: Path) -> dict:
    """Raises OSError or ValueError as json and the file system do."""
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"{path.name} holds {type(value).__name__}, not an object")
    return value

