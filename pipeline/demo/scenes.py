"""Pictures for the built-in demo, drawn with PIL: one scene per class, jittered per image.

Each class has its own palette and shapes (a blackboard and desks for school, a bright screen over
rows of seats for cinema, ...); positions, sizes, counts and colours vary with the seed and pixel
noise is added, so images of a class share a look without being copies. They are cartoons, not
photographs: enough for image features to carry some class signal, nothing more.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

SIZE = 128  # pixels a side; the encoder's transform resizes to its own resolution anyway
Colour = tuple[int, int, int]


def _jitter(rng: np.random.Generator, colour: Colour, spread: int = 25) -> Colour:
    return tuple(int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in colour)


def _vivid(rng: np.random.Generator) -> Colour:
    """A saturated colour (shop shelves, screens, food)."""
    channels = rng.permutation([int(rng.integers(200, 256)), int(rng.integers(0, 90)), int(rng.integers(0, 256))])
    return tuple(int(c) for c in channels)


def _home(d: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    d.rectangle([0, 0, SIZE, SIZE], fill=_jitter(rng, (232, 212, 182)))  # warm wall
    floor = int(rng.integers(80, 100))
    d.rectangle([0, floor, SIZE, SIZE], fill=_jitter(rng, (140, 95, 60)))  # wooden floor
    x, y = int(rng.integers(8, 60)), int(rng.integers(12, 30))
    d.rectangle([x, y, x + 40, y + 34], fill=_jitter(rng, (170, 210, 240)), outline=(250, 250, 250), width=3)
    d.line([x + 20, y, x + 20, y + 34], fill=(250, 250, 250), width=2)  # window cross
    sx = int(rng.integers(0, 50))
    d.rounded_rectangle([sx, floor - 24, sx + 70, floor + 10], radius=8, fill=_jitter(rng, (120, 90, 110), 40))  # sofa
    lx = int(rng.integers(90, 118))
    d.ellipse([lx - 8, 20, lx + 8, 36], fill=_jitter(rng, (250, 220, 120)))  # lamp


def _school(d: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    d.rectangle([0, 0, SIZE, SIZE], fill=_jitter(rng, (222, 226, 210)))
    top, width = int(rng.integers(6, 18)), int(rng.integers(80, 112))
    left = (SIZE - width) // 2
    d.rectangle([left, top, left + width, top + 40], fill=_jitter(rng, (30, 80, 50), 15), outline=(120, 90, 60), width=3)
    for _ in range(int(rng.integers(2, 5))):  # chalk writing
        y = int(rng.integers(top + 6, top + 36))
        x0 = int(rng.integers(left + 4, left + width // 2))
        d.line([x0, y, x0 + int(rng.integers(15, width // 2)), y], fill=(235, 235, 235), width=2)
    for row in range(3):  # desks
        for col in range(int(rng.integers(3, 5))):
            x, y = 8 + col * 30 + int(rng.integers(-3, 4)), 66 + row * 20
            d.rectangle([x, y, x + 22, y + 9], fill=_jitter(rng, (180, 140, 90)))


def _work(d: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    d.rectangle([0, 0, SIZE, SIZE], fill=_jitter(rng, (196, 202, 214), 15))
    for x in range(0, SIZE, int(rng.integers(28, 40))):  # ceiling lights
        d.rectangle([x + 4, 2, x + 22, 6], fill=(250, 250, 250))
    for row in range(2):  # desks with monitors
        for col in range(int(rng.integers(3, 5))):
            x, y = 6 + col * 30, 30 + row * 44 + int(rng.integers(-4, 5))
            d.rectangle([x, y, x + 24, y + 16], fill=(30, 30, 35))
            d.rectangle([x + 2, y + 2, x + 22, y + 14], fill=_jitter(rng, (70, 130, 200), 30))
            d.rectangle([x - 2, y + 20, x + 27, y + 26], fill=_jitter(rng, (120, 120, 125), 15))


def _shopping_center(d: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    d.rectangle([0, 0, SIZE, SIZE], fill=_jitter(rng, (245, 245, 240), 10))
    shelf_gap = int(rng.integers(24, 34))
    for y in range(8, SIZE - 10, shelf_gap):
        d.rectangle([0, y + shelf_gap - 6, SIZE, y + shelf_gap - 3], fill=(150, 150, 155))  # shelf board
        x = int(rng.integers(0, 6))
        while x < SIZE:  # products
            w = int(rng.integers(5, 12))
            d.rectangle([x, y + int(rng.integers(0, 8)), x + w, y + shelf_gap - 7], fill=_vivid(rng))
            x += w + int(rng.integers(1, 4))


def _cinema(d: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    d.rectangle([0, 0, SIZE, SIZE], fill=_jitter(rng, (18, 14, 22), 10))
    top, margin = int(rng.integers(6, 20)), int(rng.integers(6, 20))
    d.rectangle([margin, top, SIZE - margin, top + 44], fill=_vivid(rng))  # the lit screen
    d.ellipse([margin + 20, top + 10, margin + 50, top + 40], fill=_jitter(rng, (240, 240, 220), 15))
    for row in range(4):  # seats
        y = 76 + row * 13
        for x in range(int(rng.integers(-6, 2)), SIZE, 14):
            d.rounded_rectangle([x, y, x + 11, y + 9], radius=3, fill=_jitter(rng, (130, 20, 30), 20))


def _travel(d: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    sky = _jitter(rng, (110, 180, 235))
    for y in range(SIZE):  # sky gradient
        d.line([0, y, SIZE, y], fill=tuple(min(255, c + y // 2) for c in sky))
    sx, sy = int(rng.integers(10, 110)), int(rng.integers(8, 30))
    d.ellipse([sx - 10, sy - 10, sx + 10, sy + 10], fill=(255, 225, 90))  # sun
    for _ in range(int(rng.integers(2, 4))):  # mountains
        peak, base = int(rng.integers(0, SIZE)), int(rng.integers(45, 80))
        d.polygon([(peak - 60, 100), (peak, base - 30), (peak + 60, 100)], fill=_jitter(rng, (70, 120, 80), 30))
    d.rectangle([0, 100, SIZE, SIZE], fill=_jitter(rng, (40, 110, 170), 25))  # sea or lake


def _restaurant(d: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    d.rectangle([0, 0, SIZE, SIZE], fill=_jitter(rng, (170, 60, 40), 25))
    for x in range(int(rng.integers(8, 20)), SIZE, int(rng.integers(28, 40))):  # lanterns
        d.ellipse([x - 7, 4, x + 7, 20], fill=_jitter(rng, (230, 40, 30), 20))
    for _ in range(int(rng.integers(2, 4))):  # round tables with plates of food
        cx, cy = int(rng.integers(25, 103)), int(rng.integers(55, 105))
        d.ellipse([cx - 24, cy - 14, cx + 24, cy + 14], fill=_jitter(rng, (120, 70, 40), 20))
        for k in range(int(rng.integers(2, 4))):
            px = cx - 14 + 12 * k
            d.ellipse([px - 6, cy - 5, px + 6, cy + 5], fill=(245, 245, 240))
            d.ellipse([px - 3, cy - 2, px + 3, cy + 2], fill=_vivid(rng))


SCENES: dict[str, Callable[[ImageDraw.ImageDraw, np.random.Generator], None]] = {
    "home": _home, "school": _school, "work": _work, "shopping_center": _shopping_center,
    "cinema": _cinema, "travel": _travel, "restaurant": _restaurant,
}


def draw_scene(label: str, rng: np.random.Generator, noise: float = 10.0) -> Image.Image:
    """A SIZE x SIZE RGB picture of class `label`, drawn with `rng`; `noise` is the pixel noise's std."""
    img = Image.new("RGB", (SIZE, SIZE))
    SCENES[label](ImageDraw.Draw(img), rng)
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    pixels = np.asarray(img, dtype=np.float32) + rng.normal(0.0, noise, (SIZE, SIZE, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
