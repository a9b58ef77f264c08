"""Drawn people for the sample generators: pedestrians' streets and machinery_proximity's worksites.

A person is drawn on a transparent layer with its mask (head, torso, arms, legs in a
walking pose), optionally in a high-visibility vest and a hard hat.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

SKIN = [(255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 58, 30)]


def _limb(d: ImageDraw.ImageDraw, m: ImageDraw.ImageDraw, a, angle: float, length: float, width: float, fill):
    b = (a[0] + length * np.sin(angle), a[1] + length * np.cos(angle))
    for draw, f in ((d, fill), (m, 255)):
        draw.line([a, b], fill=f, width=max(1, int(width)))
        draw.ellipse([b[0] - width / 2, b[1] - width / 2, b[0] + width / 2, b[1] + width / 2], fill=f)
    return b


def draw_person(rng: np.random.Generator, size: tuple[int, int], foot: tuple[float, float], height: float,
                vest: tuple[int, int, int] | None = None, hard_hat: tuple[int, int, int] | None = None):
    """One person on a transparent layer, and its mask: head, torso, arms, legs in a walking pose.

    Args:
        vest: colour of a high-visibility vest with reflective bands over the shirt.
        hard_hat: colour of a hard hat drawn instead of hair.
    """
    w, h = size
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    mask = Image.new("L", (w, h), 0)
    d, m = ImageDraw.Draw(layer), ImageDraw.Draw(mask)
    x, y = foot
    skin = SKIN[int(rng.integers(len(SKIN)))] + (255,)
    shirt = tuple(int(v) for v in rng.integers(0, 255, 3)) + (255,)
    legs = tuple(int(v) for v in rng.integers(0, 140, 3)) + (255,)
    r = height * 0.065
    hip = (x, y - height * 0.47)
    shoulder = (x, y - height + 2.6 * r)
    stride = rng.uniform(-0.45, 0.45)
    side = rng.random() < 0.6  # Side view: legs apart; front view: legs parallel.
    for sign in (-1, 1):
        start = (hip[0] + (0 if side else sign * height * 0.04), hip[1])
        _limb(d, m, start, sign * stride if side else sign * 0.03, height * 0.47, height * 0.075, legs)
    width = height * rng.uniform(0.17, 0.23)
    coat = rng.random() < 0.3
    bottom = hip[1] + (height * 0.15 if coat else height * 0.02)
    torso = [(shoulder[0] - width / 2, shoulder[1]), (shoulder[0] + width / 2, shoulder[1]),
             (hip[0] + width * 0.42, bottom), (hip[0] - width * 0.42, bottom)]
    for draw, f in ((d, shirt), (m, 255)):
        draw.polygon(torso, fill=f)
    if vest is not None:
        d.polygon(torso, fill=vest + (255,))
        for band in (0.45, 0.7):  # Reflective bands.
            yb = shoulder[1] + (bottom - shoulder[1]) * band
            d.line([(shoulder[0] - width * 0.45, yb), (shoulder[0] + width * 0.45, yb)], fill=(225, 225, 215, 255),
                   width=max(1, int(height * 0.02)))
    for sign in (-1, 1):
        start = (shoulder[0] + sign * width * (0.1 if side else 0.45), shoulder[1] + r * 0.3)
        hand = _limb(d, m, start, -sign * stride * 0.8 if side else sign * 0.12, height * 0.36, height * 0.06, shirt)
        for draw, f in ((d, skin), (m, 255)):
            draw.ellipse([hand[0] - r * 0.4, hand[1] - r * 0.4, hand[0] + r * 0.4, hand[1] + r * 0.4], fill=f)
    head = (shoulder[0], shoulder[1] - 1.4 * r)
    for draw, f in ((d, skin), (m, 255)):
        draw.ellipse([head[0] - r, head[1] - r * 1.2, head[0] + r, head[1] + r * 1.1], fill=f)
    hair = tuple(int(v) for v in rng.integers(0, 90, 3)) + (255,)
    if hard_hat is None:
        d.chord([head[0] - r, head[1] - r * 1.25, head[0] + r, head[1] + r * 0.6], 180, 360, fill=hair)
    else:
        for draw, f in ((d, hard_hat + (255,)), (m, 255)):
            draw.chord([head[0] - r * 1.15, head[1] - r * 1.55, head[0] + r * 1.15, head[1] + r * 0.5], 180, 360, fill=f)
            draw.rectangle([head[0] - r * 1.35, head[1] - r * 0.55, head[0] + r * 1.35, head[1] - r * 0.4], fill=f)
    if rng.random() < 0.25:  # A bag or backpack.
        bx = shoulder[0] + rng.choice([-1, 1]) * width * 0.55
        bag = [bx - width * 0.25, hip[1] - height * 0.12, bx + width * 0.25, hip[1] + height * 0.05]
        for draw, f in ((d, tuple(int(v) for v in rng.integers(0, 200, 3)) + (255,)), (m, 255)):
            draw.rectangle(bag, fill=f)
    return layer, mask
