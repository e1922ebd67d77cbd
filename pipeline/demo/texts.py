"""Texts for the built-in demo: short Chinese posts from per-class phrases, with the noise of real Weibo.

A post joins two or three phrases of its class with a neutral phrase, then gets some of what real
posts carry and preprocessing must remove: links, @mentions, [emoticons], //@ repost chains and
#hashtags# (whose words are kept). Some posts borrow a phrase of another class, and a few hold no
class phrase at all, so the text alone cannot always tell.
"""
from __future__ import annotations

import numpy as np

PHRASES: dict[str, tuple[str, ...]] = {
    "home": ("在家做饭", "窝在沙发上追剧", "卧室终于收拾干净了", "周末宅家", "妈妈做的红烧肉", "阳台上的花开了",
             "洗完衣服晒被子", "和猫一起睡午觉", "小区楼下散步", "客厅换了新窗帘"),
    "school": ("教室里好安静", "明天期末考试", "图书馆占座", "老师布置了好多作业", "和同学去食堂",
               "早上第一节课", "校园里的银杏黄了", "宿舍熄灯了还在复习", "开学第一天", "论文答辩"),
    "work": ("又在加班", "开了一下午的会", "办公室空调太冷", "老板催报告", "项目终于上线",
             "同事请喝咖啡", "工位上的绿植", "周一例会", "写不完的周报", "打卡上班"),
    "shopping_center": ("商场打折", "逛街买了新衣服", "试穿了好几双鞋", "专柜新品上市", "购物车满了",
                        "超市排队结账", "商场里人好多", "买到心仪的包", "会员日满减", "万达广场逛了一下午"),
    "cinema": ("看了一场电影", "电影院爆米花", "首映礼现场", "影厅里笑成一片", "3D效果太震撼",
               "IMAX巨幕", "电影票半价", "散场后还在回味剧情", "午夜场", "电影的结局哭了"),
    "travel": ("旅游第一天", "风景太美了", "机场候机", "酒店的海景房", "爬山看日出", "景点人山人海",
               "古镇的小巷", "海边吹风", "自驾去草原", "打卡网红景点"),
    "restaurant": ("这家火锅太好吃", "餐厅排队一小时", "点了一桌子菜", "服务员很热情", "甜点超赞",
                   "和朋友聚餐", "烤鸭外酥里嫩", "新开的日料店", "吃到撑", "招牌菜必点"),
}
NEUTRAL = ("今天", "心情不错", "好累", "和朋友一起", "终于", "周末", "开心", "有点冷", "下雨了", "记录一下")
EMOTICONS = ("[哈哈]", "[泪]", "[赞]", "[喵喵]", "[嘻嘻]", "[爱你]", "[衰]", "[doge]")
NAMES = ("小明", "阿May", "王小二", "一只喵", "Leo_88", "糖糖·酱")
TOPICS = ("周末愉快", "今日份快乐", "生活碎片", "随手拍")
JOINERS = ("，", "！", "。", " ", "～", "...")


def _pick(rng: np.random.Generator, items: tuple[str, ...]) -> str:
    return items[int(rng.integers(len(items)))]


def _phrases(label: str, rng: np.random.Generator, borrow: float, blank: float) -> list[str]:
    """The post's content: phrases of its class (or none), perhaps one of another class, a neutral one."""
    if rng.random() < blank:
        return [_pick(rng, NEUTRAL), _pick(rng, NEUTRAL)]
    own = list(rng.choice(PHRASES[label], size=int(rng.integers(1, 3)), replace=False))
    if rng.random() < borrow:
        other = _pick(rng, tuple(c for c in PHRASES if c != label))
        own[int(rng.integers(len(own)))] = _pick(rng, PHRASES[other])
    own.insert(int(rng.integers(len(own) + 1)), _pick(rng, NEUTRAL))
    return own


def _noisy(parts: list[str], label: str, rng: np.random.Generator) -> str:
    """Join the phrases and add Weibo noise: emoticons, a mention, a hashtag, a link, a repost chain."""
    text = "".join(p + _pick(rng, JOINERS) for p in parts)
    if rng.random() < 0.6:
        text += _pick(rng, EMOTICONS) * int(rng.integers(1, 3))
    if rng.random() < 0.3:
        text = f"和@{_pick(rng, NAMES)} " + text
    if rng.random() < 0.35:
        topic = _pick(rng, PHRASES[label]) if rng.random() < 0.5 else _pick(rng, TOPICS)
        text = f"#{topic}# " + text
    if rng.random() < 0.25:
        text += f" http://t.cn/{''.join(rng.choice(list('abcdefXYZ0123456789'), size=7))}"
    if rng.random() < 0.15:
        text += f"//@{_pick(rng, NAMES)}:{_pick(rng, EMOTICONS)}{_pick(rng, NEUTRAL)}"
    return text


def make_text(label: str, rng: np.random.Generator, borrow: float = 0.2, blank: float = 0.08) -> str:
    """One raw post of class `label`; `borrow`: chance a phrase comes from another class; `blank`: no class phrase."""
    return _noisy(_phrases(label, rng, borrow, blank), label, rng)
