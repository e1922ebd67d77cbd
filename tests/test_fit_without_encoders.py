"""Stage two must run where the encoders are not installed (SPEC: only stage one imports them)."""
from __future__ import annotations

import json
import subprocess
import sys

BLOCKED = ("cn_clip", "torchvision", "jieba", "PIL", "stopwordsiso")

# Runs in a fresh interpreter: make the encoder packages unimportable, then drive the real CLI.
SCRIPT = """
import importlib.abc, json, sys
BLOCKED = {blocked!r}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
        return None

sys.meta_path.insert(0, Block())
from pipeline.synthetic import make_synthetic_cache
make_synthetic_cache({cache!r}, sizes={{"train": 70, "test": 21}}, dim=16)
from cli import app
try:
    app(["fit", "--cache", {cache!r}, "--out", {out!r}, "--epochs", "2", "--heads", "4", "--ffn-hidden", "16", "-q"])
except SystemExit as e:
    assert e.code in (0, None), e.code
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps(loaded))
"""


def test_fit_runs_with_encoder_packages_unimportable(tmp_path):
    cache, out = str(tmp_path / "feats.h5"), str(tmp_path / "run")
    code = SCRIPT.format(blocked=BLOCKED, cache=cache, out=out)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
