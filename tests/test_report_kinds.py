"""`sgmft report` by post kind: a table and a figure from each run's by_kind, '—' where a kind has no test posts."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pipeline.fit import FitConfig
from pipeline.fit.sweeps import sweep
from pipeline.metrics import POST_KINDS, TEXT_ONLY
from pipeline.report import report
from pipeline.synthetic import make_missing_image_cache

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def reported(one_thread, tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    make_missing_image_cache(root / "feats.h5", sizes={"train": 140, "test": 70}, dim=16, seed=3)
    cfg = FitConfig(cache=str(root / "feats.h5"), epochs=3, lr=1e-3, heads=4, ffn_hidden=16, quiet=True,
                    out=str(root / "runs"))
    done = sweep(cfg, ["sgmft", "clip-only"], [0, 1])
    old = root / "runs" / "clip-only-seed1" / "metrics.json"  # as a run made before by_kind was recorded
    metrics = json.loads(old.read_text())
    del metrics["by_kind"]
    old.write_text(json.dumps(metrics))
    return done, report([root / "runs"], root / "report", tsne=False)


def table(markdown: str) -> list[list[str]]:
    part = markdown.split("### By post kind")[1].split("\n### ")[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in part.splitlines() if line.startswith("|")]


def test_by_kind_table_shows_each_rows_mean_and_a_dash_for_kinds_without_posts(reported):
    done, summary = reported
    rows = {r[0]: r for r in table(summary.markdown)}
    header = rows["variant"]
    assert header[2:] == [f"{k}: acc %, macro-F1 %" for k in POST_KINDS]
    sgmft = rows["sgmft"]
    assert sgmft[1] == "2"
    runs = [r.metrics["by_kind"] for r in done if r.variant == "sgmft"]
    text_only = np.mean([100 * m[TEXT_ONLY]["accuracy"] for m in runs])
    assert sgmft[2 + POST_KINDS.index(TEXT_ONLY)].startswith(f"{text_only:.2f} ± ")
    assert sgmft[2 + POST_KINDS.index("image only")] == "—" and sgmft[2 + POST_KINDS.index("several images")] == "—"
    assert rows["clip-only"][1] == "1"  # the run without by_kind counts for nothing here
    posts = rows["test posts"]
    assert posts[2 + POST_KINDS.index("image only")] == "0"
    assert int(posts[2]) + int(posts[3]) == 70  # text+image and text only split the test posts


def test_by_kind_figure_is_drawn(reported):
    _, summary = reported
    (s,) = summary.sections
    assert s.kinds_figure is not None and s.kinds_figure.exists()
    with Image.open(s.kinds_figure) as im:
        assert im.size[0] > 300
    assert "by_kind.png" in summary.markdown
