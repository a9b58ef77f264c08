"""Sample data for pedestrians: street scenes in the Penn-Fudan layout.

Drawn people (see `tasks/samples/people.py`) walk in front of buildings; severely occluded
people are not annotated, as in Penn-Fudan. Images, instance masks and PASCAL v1.00 notes.

`tasks/pedestrians.py` calls `make_data` lazily, so the drawing code loads only
when data is made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from suite.data import progress
from tasks.samples.people import draw_person


def _street(rng: np.random.Generator, w: int, h: int, horizon: int) -> Image.Image:
    img = Image.new("RGB", (w, h))
    d = ImageDraw.Draw(img)
    sky = rng.integers(120, 255, 3)
    for yy in range(horizon):
        d.line([(0, yy), (w, yy)], fill=tuple(int(v) for v in sky * (0.75 + 0.25 * yy / max(horizon, 1))))
    x = 0
    while x < w:  # Buildings with windows.
        bw, bh = int(rng.integers(40, 140)), int(rng.integers(horizon // 2, horizon + h // 4))
        color = tuple(int(v) for v in rng.integers(60, 230, 3))
        top = max(0, horizon + h // 8 - bh)
        d.rectangle([x, top, x + bw, horizon + h // 8], fill=color)
        win = tuple(int(v) for v in rng.integers(20, 120, 3))
        for wy in range(top + 8, horizon, 18):
            for wx in range(x + 6, x + bw - 8, 16):
                d.rectangle([wx, wy, wx + 7, wy + 9], fill=win)
        x += bw
    ground = tuple(int(v) for v in rng.integers(70, 180, 3))
    d.rectangle([0, horizon + h // 8, w, h], fill=ground)
    d.rectangle([0, horizon + h // 8, w, horizon + h // 8 + 4], fill=tuple(int(v * 0.7) for v in ground))
    return img


def render_scene(rng: np.random.Generator) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """A street image, its instance mask (1..n) and the annotated boxes (xyxy, 0-based)."""
    w = int(rng.integers(300, 480))
    h = int(w * rng.uniform(0.7, 1.05))
    horizon = int(h * rng.uniform(0.3, 0.5))
    img = _street(rng, w, h, horizon)
    ground = horizon + h // 8
    people = []
    for _ in range(int(rng.integers(1, 6))):
        fy = float(rng.uniform(ground + 10, h + h * 0.05))
        height = (fy - horizon) * rng.uniform(1.1, 1.5)
        if height < 24:
            continue
        people.append((fy, float(rng.uniform(-0.05 * w, 1.05 * w)), height))
    people.sort()  # Far (small foot y) first, so near people occlude them.
    instances = np.zeros((h, w), np.uint8)
    full = []
    for k, (fy, fx, height) in enumerate(people, 1):
        layer, mask = draw_person(rng, (w, h), (fx, fy), height)
        img.paste(layer, (0, 0), layer)
        on = np.asarray(mask) > 0
        instances[on] = k
        full.append(on.sum())
    if rng.random() < 0.4:  # An occluder in front: a pole, a car or a bin.
        d = ImageDraw.Draw(img)
        color = tuple(int(v) for v in rng.integers(0, 255, 3))
        x0 = int(rng.integers(0, w))
        if rng.random() < 0.5:
            box = [x0, int(ground - h * 0.1), x0 + int(rng.integers(6, 16)), h]
        else:
            box = [x0, int(h - rng.uniform(0.15, 0.35) * h), x0 + int(rng.integers(w // 5, w // 2)), h]
        d.rectangle(box, fill=color)
        instances[box[1] : box[3] + 1, box[0] : box[2] + 1] = 0
    boxes = []
    for k in range(1, len(people) + 1):
        ys, xs = np.nonzero(instances == k)
        if len(ys) < 0.3 * full[k - 1] or len(ys) < 60:  # Severely occluded: not annotated (as Penn-Fudan).
            instances[instances == k] = 0
            continue
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    # Renumber the annotated people 1..n in annotation order.
    ids = np.zeros(256, np.uint8)
    kept = [k for k in range(1, len(people) + 1) if (instances == k).any()]
    ids[kept] = np.arange(1, len(kept) + 1)
    instances = ids[instances]
    gain = rng.uniform(0.6, 1.3)
    arr = np.asarray(img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.0)))).astype(np.float32) * gain
    arr += rng.normal(0, rng.uniform(2, 8), arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), instances, np.array(boxes, np.float32).reshape(-1, 4)


def _annotation(name: str, size: tuple[int, int], boxes: np.ndarray) -> str:
    w, h = size
    lines = ["# Compatible with PASCAL Annotation Version 1.00",
             f'Image filename : "PennFudanPed/PNGImages/{name}.png"',
             f"Image size (X x Y x C) : {w} x {h} x 3",
             'Database : "The Penn-Fudan-Pedestrian Database"',
             f"Objects with ground truth : {len(boxes)} {{ " + " ".join('"PASpersonWalking"' for _ in boxes) + " }",
             "# Top left pixel co-ordinates : (1, 1)"]
    for k, (x1, y1, x2, y2) in enumerate(boxes.astype(int), 1):
        lines += [f'# Details for pedestrian {k} ("PASpersonWalking")',
                  f'Original label for object {k} "PASpersonWalking" : "PennFudanPed"',
                  f'Bounding box for object {k} "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : '
                  f"({x1 + 1}, {y1 + 1}) - ({x2}, {y2})",
                  f'Pixel mask for object {k} "PASpersonWalking" : "PennFudanPed/PedMasks/{name}_mask.png"', ""]
    return "\n".join(lines) + "\n"


def make_data(out_dir: Path, size: int, seed: int) -> None:
    """Writes `size` street scenes in the Penn-Fudan layout (images, instance masks, annotations)."""
    out_dir = Path(out_dir)
    for sub in ("PNGImages", "PedMasks", "Annotation"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in progress(range(size), desc="pedestrians sample", unit="image"):
        image, instances, boxes = render_scene(rng)
        name = f"GenPed{i + 1:05d}"
        image.save(out_dir / "PNGImages" / f"{name}.png")
        Image.fromarray(instances, "L").save(out_dir / "PedMasks" / f"{name}_mask.png")
        (out_dir / "Annotation" / f"{name}.txt").write_text(_annotation(name, image.size, boxes))
