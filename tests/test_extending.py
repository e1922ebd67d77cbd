"""The README's "Extending sgmft" examples, applied to a copy of the code: a new variant and a new metric are one
entry each, and reach the CLI, the sweep groups, fit, metrics.json, a run's terminal line and the report."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANCHORS = {  # README marker -> (file, the line the entry goes after)
    "variant": ("pipeline/variants.py", "VARIANTS: dict[str, Variant] = _registry(\n"),
    "metric": ("pipeline/metrics.py", "    TEST_ACCURACY,\n"),
}


def readme_example(marker: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- extending:{marker} -->\n```python\n(.*?)```", text, re.S)
    assert match, f"README has no extending:{marker} example"
    return match.group(1)


def patched_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "sgmft"
    for name in ("pipeline", "sgmft_cache"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "cli.py", copy / "cli.py")
    for marker, (file, anchor) in ANCHORS.items():
        path = copy / file
        source = path.read_text(encoding="utf-8")
        assert source.count(anchor) == 1, (file, anchor)
        path.write_text(source.replace(anchor, anchor + readme_example(marker)), encoding="utf-8")
    return copy


SCRIPT = """
import json, sys
from typer.testing import CliRunner
import cli
from pipeline.fit import FitConfig, describe, expand_variants, fit
from pipeline.report import report
from pipeline.synthetic import make_synthetic_cache

out = {"ours": expand_variants("ours"), "all": expand_variants("all")}
out["fit_help"] = CliRunner().invoke(cli.app, ["fit", "--help"], terminal_width=400).output
make_synthetic_cache("c.h5", sizes={"train": 84, "test": 28}, dim=16)
result = fit(FitConfig(cache="c.h5", variant="sim-concat", epochs=1, heads=2, ffn_hidden=16, out="run", quiet=True))
out["line"] = describe(result.metrics)
out["report"] = report(["run"], "report", tsne=False).markdown
print(json.dumps(out))
"""


def test_readme_examples_reach_every_place(tmp_path):
    copy = patched_copy(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(copy), "COLUMNS": "400"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=copy, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "sim-concat" in out["ours"] and "sim-concat" in out["all"]
    assert "sim-concat" in out["fit_help"]
    metrics = json.loads((copy / "run" / "metrics.json").read_text())
    assert metrics["variant"] == "sim-concat" and 0.0 <= metrics["test_balanced_accuracy"] <= 1.0
    assert "balanced accuracy" in out["line"]
    header = next(line for line in out["report"].splitlines() if line.startswith("| paper's row"))
    assert "balanced acc %" in header
    assert any(line.startswith("| — | sim-concat |") for line in out["report"].splitlines())
    config = json.loads((copy / "run" / "config.json").read_text())
    assert config["head"]["fusion"] == "concat" and config["head"]["sim"] is True
