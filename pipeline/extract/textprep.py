"""Text preprocessing of the paper (§4.2, SPEC §2): strip noise, segment with jieba, drop stop words.

Order: NFKC (full-width letters and digits to ASCII), then URLs, `@user` mentions, `//` repost
markers and `[emoticons]` are removed, hashtags lose their `#` marks but keep their words, and
punctuation, symbols (emoji included) and invisible format characters become spaces. jieba
(precise mode, HMM on) segments the rest; tokens in the stop-word list are dropped, compared
lower-cased; the remaining tokens, lower-cased, joined by single spaces are T_user. A text is first cut to
MAX_CHARS characters: cn_clip reads 52 tokens, and cleaning a 50 MB cell whole would stall the run.
"""
from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from pathlib import Path
from typing import Iterable

import jieba

from sgmft_cache import SgmftError

RULES_VERSION = "sgmft-text-1"  # bump whenever a rule below changes what T_user is
JIEBA_MODE = "precise,hmm"

URL = re.compile(r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
MENTION = re.compile(r"@[\w\-·]{1,30}")  # Weibo names: letters, CJK, digits, _ - ·; ends at space or punctuation
REPOST = re.compile(r"//")
EMOTICON = re.compile(r"\[[^\[\]\s]{1,10}\]")  # [哈哈], [喵喵], [good]
HASHTAG = re.compile(r"#([^#\n]{1,60})#")
DROPPED_CATEGORIES = ("P", "S", "C")  # punctuation, symbols (emoji), control/format (zero-width joiner, BOM)
VARIATION_SELECTORS = range(0xFE00, 0xFE10)  # emoji presentation marks, left behind when their symbol goes
MAX_CHARS = 20_000  # characters kept: far more than 52 tokens need, even behind long runs of links and mentions


def strip_noise(text: str) -> str:
    """Step 1: the raw post without URLs, mentions, repost markers, emoticons, hashtag marks, punctuation."""
    text = unicodedata.normalize("NFKC", text)
    text = URL.sub(" ", text)
    text = MENTION.sub(" ", text)
    text = REPOST.sub(" ", text)
    text = EMOTICON.sub(" ", text)
    text = HASHTAG.sub(r" \1 ", text)
    return "".join(" " if _dropped(ch) else ch for ch in text)


def _dropped(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] in DROPPED_CATEGORIES or category == "Me" or ord(ch) in VARIATION_SELECTORS


class TextCleaner:
    """raw post text -> T_user, with a fixed stop-word list."""

    def __init__(self, stopwords: Iterable[str]):
        self.stopwords = frozenset(w.lower() for w in stopwords)
        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()  # load the dictionary once here, so forked workers inherit it

    def __call__(self, text: str) -> str:
        tokens = (t.strip().lower() for t in jieba.lcut(strip_noise(text[:MAX_CHARS]), cut_all=False, HMM=True))
        return " ".join(t for t in tokens if t and t not in self.stopwords)

    def settings(self) -> dict:
        """What decides T_user, for the cache fingerprint."""
        return {
            "rules": RULES_VERSION,
            "jieba": f"{jieba.__version__} {JIEBA_MODE}",
            "stopwords_sha256": stopwords_digest(self.stopwords),
            "stopwords_count": len(self.stopwords),
        }


def stopwords_digest(words: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(words)).encode("utf-8")).hexdigest()


def shipped_stopwords() -> frozenset[str]:
    """The default list: stopwords-iso Chinese + English, from the PyPI package `stopwordsiso`."""
    try:
        import stopwordsiso
    except ImportError:
        raise SgmftError(
            "the default stop words come from the package stopwordsiso: pip install stopwordsiso "
            "(or pass --stopwords FILE, one word a line)"
        ) from None
    return frozenset(stopwordsiso.stopwords(["zh", "en"]))


def read_word_file(path: str | Path) -> frozenset[str]:
    """One word a line (utf-8); blank lines ignored."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise SgmftError(f"{path}: no such stop-word file (one word a line, utf-8)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SgmftError(f"{path}: cannot read the stop-word file as utf-8 text ({e})") from None
    return frozenset(w.strip() for w in lines if w.strip())


def load_stopwords(replace: str | Path | None = None, extra: str | Path | None = None) -> frozenset[str]:
    """The shipped list, or the user's file instead of it; plus the user's extra words."""
    words = read_word_file(replace) if replace else shipped_stopwords()
    return words | read_word_file(extra) if extra else words
