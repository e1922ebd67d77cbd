"""What the demo says: the loud encoder banner, the note it adds to the report, its closing summary."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from sgmft_cache import load_split
from pipeline.demo.config import number
from pipeline.fit import FitConfig, SweepRun
from pipeline.predict import PredictSummary
from pipeline.report import RULE, ReportSummary

PAPER_SCHEDULE = f"the paper's {FitConfig.epochs} epochs at lr {number(FitConfig.lr)}"
TINY_WHY = ("that schedule suits 1024-wide Chinese-CLIP features; the tiny encoder's 64-wide random features "
            "need a larger step to learn anything within a few CPU minutes")


@dataclass(frozen=True)
class Schedule:
    epochs: int
    lr: float
    paper: bool  # the paper's schedule (FitConfig's defaults)

    def words(self) -> str:
        own = f"{self.epochs} epochs at lr {self.lr:g}"
        return own if self.paper else f"{own}, not {PAPER_SCHEDULE}: {TINY_WHY}"


def encoder_banner(model: str, why: str) -> str:
    """Printed first and last: which encoder the demo used and what its numbers are worth."""
    if model == "tiny":
        lines = [f"!!  sgmft demo, encoder: tiny ({why})",
                 "!!  tiny = cn_clip's CLIP at toy size with RANDOM weights. Every accuracy of this demo says",
                 "!!  NOTHING about SG-MFT; it only shows that extract -> fit -> report -> predict run end to end."]
    else:
        lines = [f"!!  sgmft demo, encoder: {model} (Chinese-CLIP; {why})",
                 "!!  The posts are generated cartoons and phrase lists, not real Weibo posts: the accuracies",
                 "!!  say nothing about SG-MFT on the paper's data."]
    return "\n".join([RULE, *lines, RULE])


def feature_spread(cache: Path) -> dict[str, float]:
    """Per modality, the train posts' mean cosine similarity to their mean vector: 1 = every post the same
    (over the posts that have that modality)."""
    train = load_split(cache, "train")
    spread = {}
    for name, has in (("text", train.has_text), ("image", train.has_image)):
        x = torch.nn.functional.normalize(getattr(train, name)[has], dim=1)
        spread[name] = float((x @ torch.nn.functional.normalize(x.mean(0), dim=0)).mean())
    return spread


def about_this_demo(report_path: Path, posts: int, model: str, why: str, schedule: Schedule,
                    spread: dict[str, float]) -> None:
    """Put a section on what the demo did between the report's banner and its tables."""
    encoder = (f"`tiny`, cn_clip's CLIP at toy size with **random weights** ({why}). **Its accuracies say nothing "
               f"about SG-MFT**" if model == "tiny" else f"`{model}`, Chinese-CLIP ({why})")
    section = "\n".join([
        "## About this demo",
        "",
        f"- Made by `sgmft demo` on {posts} posts it generated itself: cartoon scenes drawn with PIL and Chinese "
        "texts from per-class phrase lists with Weibo noise (links, @mentions, [emoticons], //@ reposts, "
        "#hashtags#). They are not real posts; no accuracy here describes real data.",
        f"- **Encoder**: {encoder}.",
        f"- **Schedule**: {schedule.words()}.",
        f"- **How much the features differ between posts** (mean cosine of each train post's vector to the mean "
        f"vector; 1 = all posts alike): text {spread['text']:.5f}, image {spread['image']:.5f}. A modality whose "
        "vectors barely differ leaves a head little to learn from: with random weights the text tower can be one, "
        "and `text-only` then stays near chance.",
    ])
    head, mark, rest = report_path.read_text(encoding="utf-8").partition("\n## ")  # after the banner, before the tables
    report_path.write_text(f"{head}\n{section}\n\n{mark.lstrip()}{rest}", encoding="utf-8")


@dataclass(frozen=True)
class DemoSummary:
    out: Path
    model: str
    why: str  # why this encoder
    schedule: Schedule
    runs: list[SweepRun]  # the finished fits
    report: ReportSummary
    predicted: PredictSummary
    agreement: tuple[int, int]  # fresh posts whose prediction is the class they were drawn as, of those predicted
    seconds: dict[str, float]  # per phase

    def lines(self) -> list[str]:
        phases = ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())
        best = self.report.sections[0].best.key
        test_size = self.runs[0].metrics["test_size"]
        lines = [f"sgmft demo done in {sum(self.seconds.values()):.0f} s ({phases})",
                 f"test accuracy on {test_size} generated posts, encoder {self.model}, {self.schedule.epochs} epochs "
                 f"at lr {self.schedule.lr:g}:"]
        for run in self.runs:
            m = run.metrics
            lines.append(f"  {run.variant:<14} {100 * m['test_accuracy']:6.2f} %   macro-F1 {100 * m['test_macro_f1']:6.2f} %"
                         f"   (val {100 * m['val_accuracy']:6.2f} %)")
        agree, done = self.agreement
        lines += [f"best by validation accuracy: {best}; it predicted {done} fresh posts ({agree} as the class they "
                  f"were drawn as) -> {self.predicted.out}",
                  f"report: {self.report.report_path} (figures beside it)",
                  f"everything is under {self.out}"]
        return lines

    def text(self) -> str:
        """The closing summary, ending with the encoder banner again."""
        return "\n".join([*self.lines(), encoder_banner(self.model, self.why)])
