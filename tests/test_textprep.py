"""Text preprocessing (SPEC §2): each cleaning rule, the stop-word lists, and real noisy Weibo posts."""
from __future__ import annotations

import re
import unicodedata

import pandas as pd
import pytest
import stopwordsiso

from sgmft_cache import SgmftError
from pipeline.extract.textprep import TextCleaner, load_stopwords, shipped_stopwords, strip_noise

NOISE = re.compile(r"https?://|www\.|@|//|#|\[|\]")


@pytest.fixture(scope="module")
def clean() -> TextCleaner:
    return TextCleaner(load_stopwords())


def assert_clean(out: str, stopwords) -> None:
    assert out == out.strip() and "  " not in out
    assert not NOISE.search(out), out
    assert not any(unicodedata.category(ch)[0] in "PSC" for ch in out.replace(" ", "")), out
    assert not set(out.split()) & stopwords, out


@pytest.mark.parametrize("raw, gone", [
    ("看这里http://t.cn/zOXAaic 好地方", "t.cn"),
    ("@张晓鹏jonathan 土耳其的事要认真对待", "张晓鹏"),
    ("小学徒一枚//@爱在蔓延-JC:等着明天见您", "爱在蔓延"),
    ("今天好开心[喵喵][哈哈]", "喵喵"),
    ("梦想有多大，舞台就有多大！“真的”【转】", "，"),
])
def test_each_noise_rule_removes_its_noise(clean, raw, gone):
    assert gone not in clean(raw)
    assert_clean(clean(raw), clean.stopwords)


def test_hashtag_words_are_kept_without_marks(clean):
    assert clean("#北京美食# 好吃") == "北京 美食 好吃"
    assert strip_noise("#开学#").split() == ["开学"]


def test_known_sentences_clean_exactly(clean):
    assert clean("今天在学校的食堂吃饭[哈哈]") == "今天 学校 食堂 吃饭"
    assert clean("我在家里看电影，The movie was great!!! http://t.cn/zOXAaic") == "家里 电影 movie"
    assert clean("＃周末＃１２３") == "周末 123"  # full-width marks and digits are normalised first


@pytest.mark.parametrize("raw", ["😀😀👍🏻", "[哈哈][爱你]", "  ", "", "！！！", "@小明 http://t.cn/x"])
def test_texts_without_words_clean_to_empty(clean, raw):
    assert clean(raw) == ""


def test_shipped_stopwords_are_stopwordsiso_zh_and_en():
    words = shipped_stopwords()
    assert words == set(stopwordsiso.stopwords("zh")) | set(stopwordsiso.stopwords("en"))
    assert {"的", "在", "the", "is"} <= words and not {"家", "学校", "电影", "餐厅"} & words


def test_user_file_replaces_and_extra_file_extends(tmp_path, clean):
    mine = tmp_path / "mine.txt"
    mine.write_text("学校\n\n食堂\n", encoding="utf-8")
    replaced = TextCleaner(load_stopwords(replace=mine))
    assert replaced.stopwords == {"学校", "食堂"}
    assert replaced("在学校的食堂") == "在 的"
    extended = TextCleaner(load_stopwords(extra=mine))
    assert extended.stopwords == clean.stopwords | {"学校", "食堂"}
    assert extended("今天在学校的食堂吃饭") == "今天 吃饭"
    assert replaced.settings()["stopwords_sha256"] != clean.settings()["stopwords_sha256"]


def test_missing_stopword_file_is_a_clear_error(tmp_path):
    with pytest.raises(SgmftError, match="no such stop-word file"):
        load_stopwords(replace=tmp_path / "nope.txt")


def test_shipped_lists_match_the_stopwords_iso_files(shared_data):
    folder = shared_data / "stopwords"
    for lang in ("zh", "en"):
        file_words = {w.strip() for w in (folder / f"stopwords-{lang}.txt").read_text(encoding="utf-8").splitlines() if w.strip()}
        assert file_words == set(stopwordsiso.stopwords(lang)), lang


def test_real_weibo_posts_lose_all_noise(shared_data, clean):
    posts = pd.read_csv(shared_data / "weibo_text" / "weibo_senti_sample.csv")["review"].astype(str)
    cleaned = [clean(t) for t in posts]
    for out in cleaned:
        assert_clean(out, clean.stopwords)
    assert sum(bool(c) for c in cleaned) > 0.95 * len(cleaned)
    with_tags = [(raw, out) for raw, out in zip(posts, cleaned) if re.search(r"#[^#]+#", raw)]
    assert len(with_tags) > 20
    for raw, out in with_tags:  # hashtag words survive as tokens
        for tag in re.findall(r"#([^#\n]{1,60})#", raw):
            assert set(clean(tag).split()) <= set(out.split()), (raw, out)


def test_real_weibo_emoticons_and_mentions_leave_no_words(shared_data, clean):
    posts = pd.read_csv(shared_data / "weibo_text" / "weibo_senti_sample.csv")["review"].astype(str)
    only_emoticon = [t for t in posts if "[哈哈]" in t and "哈哈" not in t.replace("[哈哈]", "")]
    assert len(only_emoticon) > 20 and all("哈哈" not in clean(t) for t in only_emoticon)
    mentions = [(t, m) for t in posts for m in re.findall(r"@([\w\-·]{2,30})", t)]
    assert len(mentions) > 100
    assert sum(m in clean(t).replace(" ", "") for t, m in mentions) < 0.02 * len(mentions)


def test_real_multimodal_posts_clean(shared_data, clean):
    posts = pd.read_csv(shared_data / "weibo_multimodal" / "posts.csv", dtype=str)["text"].fillna("")
    for out in (clean(t) for t in posts):
        assert_clean(out, clean.stopwords)
