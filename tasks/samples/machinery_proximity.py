"""Sample data for machinery_proximity: worksite scenes through a pinhole camera.

Machines, vehicles and people stand on a flat ground plane seen by a level camera 3-7 m high,
so every person-machine pair has a true ground distance. Written as a YOLO/Roboflow set with
`pairs.csv` (true distances) and `hazards.csv` (each scene's nearest distance and level).

`tasks/machinery_proximity.py` calls `make_data` lazily, so the drawing code loads only
when data is made.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from suite.data import hash_split, progress
from tasks.machinery_proximity import CLASS_NAMES, LEVELS, RECIPES, level_of
from tasks.samples.people import draw_person

# Side-view parts in metres: (shape, colour role, coordinates along the machine u and up v).
# "rect": u0, v0, u1, v1; "wheel": u, v, r; "line": u0, v0, u1, v1, width; "poly": [(u, v), ...].
MACHINES: dict[str, tuple[Any, ...]] = {
    "excavator": ("machinery", 8.0, 3.0, (0.0, 4.5), [
        ("rect", "dark", 0.0, 0.0, 4.5, 1.0), ("rect", "body", 0.2, 1.0, 4.3, 2.3), ("rect", "body", 2.9, 2.3, 4.2, 3.2),
        ("rect", "glass", 3.1, 2.4, 4.0, 3.0), ("line", "body", 3.8, 2.0, 6.0, 4.3, 0.55),
        ("line", "body", 6.0, 4.3, 7.4, "reach", 0.4), ("poly", "dark", "bucket")]),
    "wheel_loader": ("machinery", 7.2, 2.6, (0.0, 7.2), [
        ("rect", "body", 0.0, 0.8, 3.6, 2.2), ("rect", "body", 1.4, 2.2, 3.0, 3.3), ("rect", "glass", 1.6, 2.3, 2.8, 3.1),
        ("rect", "body", 3.6, 0.8, 5.4, 1.6), ("line", "body", 4.4, 1.6, 6.3, 1.1, 0.35),
        ("poly", "dark", [(5.8, 0.1), (7.2, 0.1), (7.2, 1.6), (6.3, 1.4)]),
        ("wheel", "tyre", 1.3, 0.8, 0.8), ("wheel", "tyre", 4.8, 0.8, 0.8)]),
    "bulldozer": ("machinery", 5.6, 3.2, (0.0, 5.6), [
        ("rect", "dark", 0.3, 0.0, 4.5, 1.0), ("rect", "body", 0.5, 1.0, 4.3, 2.2), ("rect", "body", 0.8, 2.2, 2.4, 3.2),
        ("rect", "glass", 1.0, 2.3, 2.2, 3.0), ("line", "body", 3.8, 0.8, 4.9, 0.9, 0.3),
        ("rect", "body", 4.9, 0.0, 5.6, 1.6)]),
    "crane": ("machinery", 10.0, 2.8, (0.0, 10.0), [
        ("rect", "body", 0.0, 0.9, 10.0, 2.0), ("rect", "body", 8.3, 2.0, 10.0, 3.2), ("rect", "glass", 8.5, 2.2, 9.8, 3.0),
        ("rect", "body", 2.0, 2.0, 5.6, 3.0), ("line", "body", 3.0, 3.0, "boom_u", "boom_v", 0.5),
        ("wheel", "tyre", 1.5, 0.6, 0.6), ("wheel", "tyre", 3.0, 0.6, 0.6), ("wheel", "tyre", 7.0, 0.6, 0.6),
        ("wheel", "tyre", 8.6, 0.6, 0.6)]),
    "forklift": ("machinery", 3.2, 1.3, (0.0, 3.2), [
        ("rect", "body", 0.0, 0.3, 2.2, 1.3), ("line", "dark", 0.7, 1.3, 0.7, 2.2, 0.08),
        ("line", "dark", 1.9, 1.3, 1.9, 2.2, 0.08), ("rect", "dark", 0.6, 2.15, 2.0, 2.25),
        ("rect", "dark", 2.2, 0.0, 2.4, 2.6), ("rect", "dark", 2.4, 0.1, 3.2, 0.2),
        ("wheel", "tyre", 0.5, 0.35, 0.35), ("wheel", "tyre", 1.9, 0.35, 0.35)]),
    "dump_truck": ("vehicle", 8.0, 2.5, (0.0, 8.0), [
        ("rect", "dark", 0.0, 0.6, 8.0, 1.1), ("rect", "body", 6.4, 1.1, 8.0, 3.0), ("rect", "glass", 6.7, 2.1, 7.8, 2.8),
        ("poly", "bed", [(0.2, 1.1), (6.2, 1.1), (6.2, 3.0), (0.0, 3.1)]),
        ("wheel", "tyre", 1.2, 0.6, 0.6), ("wheel", "tyre", 2.6, 0.6, 0.6), ("wheel", "tyre", 6.8, 0.6, 0.6)]),
    "pickup": ("vehicle", 5.3, 1.9, (0.0, 5.3), [
        ("rect", "body", 0.0, 0.35, 5.3, 1.1), ("rect", "body", 2.2, 1.1, 4.2, 1.85),
        ("rect", "glass", 2.4, 1.15, 4.0, 1.75), ("wheel", "tyre", 1.0, 0.38, 0.38), ("wheel", "tyre", 4.3, 0.38, 0.38)]),
}
MACHINE_COLOURS = [(232, 180, 20), (240, 130, 20), (230, 200, 60), (200, 60, 40), (90, 140, 60), (235, 235, 230)]
VEHICLE_COLOURS = [(240, 240, 240), (60, 70, 160), (180, 30, 30), (120, 120, 125), (30, 30, 30), (220, 200, 40)]
VESTS = [(255, 140, 0), (210, 255, 40), (255, 90, 20)]
HATS = [(250, 250, 245), (255, 210, 0), (255, 120, 0), (40, 90, 200), (220, 30, 30)]


@dataclasses.dataclass
class Camera:
    """A level pinhole camera `height_m` above flat ground; the horizon is image row `horizon`."""

    width: int
    height: int
    focal: float
    height_m: float
    horizon: float

    def ground(self, x_m: float, z_m: float) -> tuple[float, float]:
        """Image point of the ground point `x_m` sideways and `z_m` ahead."""
        return self.width / 2 + self.focal * x_m / z_m, self.horizon + self.focal * self.height_m / z_m

    def scale(self, z_m: float) -> float:
        """Pixels per metre at depth `z_m`."""
        return self.focal / z_m


def _machine_parts(kind: str, rng: np.random.Generator) -> list:
    """The kind's parts with its random pose (excavator arm, crane boom) filled in."""
    parts = []
    for part in MACHINES[kind][4]:
        if part[0] == "line" and part[5] == "reach":
            v_end = float(rng.uniform(0.4, 2.6))
            part = (*part[:5], v_end, part[6])
            parts.append(part)
            parts.append(("poly", "dark", [(7.0, v_end), (8.0, v_end - 0.3), (7.9, v_end - 1.1), (7.1, v_end - 0.9)]))
            continue
        if part[0] == "poly" and part[2] == "bucket":
            continue
        if part[0] == "line" and part[4] == "boom_u":
            angle, length = math.radians(rng.uniform(25, 65)), float(rng.uniform(7, 13))
            part = (*part[:4], 3.0 + length * math.cos(angle), 3.0 + length * math.sin(angle), part[6])
        parts.append(part)
    return parts


def _draw_machine(d: ImageDraw.ImageDraw, m: ImageDraw.ImageDraw, parts: list, colours: dict, origin, scale: float,
                  length: float, facing: int, shade: float = 1.0) -> None:
    """Draws the side-view `parts` with the machine's rear-left ground point at `origin` (pixels)."""

    def pt(u, v):
        u = u if facing > 0 else length - u
        return origin[0] + u * scale, origin[1] - v * scale

    for shape, role, *c in parts:
        fill = tuple(int(v * shade) for v in colours[role]) + (255,)
        for draw, f in ((d, fill), (m, 255)):
            if shape == "rect":
                (xa, ya), (xb, yb) = pt(c[0], c[1]), pt(c[2], c[3])
                draw.rectangle([min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)], fill=f)
            elif shape == "wheel":
                (x, y), r = pt(c[0], c[1]), c[2] * scale
                draw.ellipse([x - r, y - r, x + r, y + r], fill=f)
            elif shape == "line":
                draw.line([pt(c[0], c[1]), pt(c[2], c[3])], fill=f, width=max(1, int(c[4] * scale)))
            else:
                draw.polygon([pt(u, v) for u, v in c[0]], fill=f)


def _background(rng: np.random.Generator, cam: Camera) -> Image.Image:
    w, h, hz = cam.width, cam.height, int(cam.horizon)
    arr = np.zeros((h, w, 3), np.float32)
    sky = rng.uniform(140, 250, 3)
    arr[:hz] = sky * np.linspace(0.8, 1.0, max(hz, 1))[:, None, None]
    grey = rng.uniform(85, 185)  # Dirt, gravel, dry clay, mud: greys and browns.
    soil = grey + np.array([rng.uniform(0, 35), rng.uniform(-5, 15), -rng.uniform(0, 35)])
    rows = np.linspace(0.85, 1.1, h - hz)[:, None, None]
    arr[hz:] = soil * rows
    blotches = np.asarray(Image.fromarray(rng.integers(0, 255, (h // 16 + 1, w // 16 + 1), np.uint8)).resize((w, h)))
    arr[hz:] *= (0.85 + 0.3 * blotches[hz:, :, None] / 255.0)
    arr += rng.normal(0, 6, arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    x = 0
    while x < w:  # A far skyline of trees, sheds and site offices.
        bw, bh = int(rng.integers(10, 60)), int(rng.integers(3, max(4, h // 10)))
        colour = tuple(int(v) for v in rng.integers(40, 170, 3))
        d.rectangle([x, hz - bh, x + bw, hz], fill=colour)
        x += bw
    for _ in range(int(rng.integers(0, 4))):  # Tyre tracks converging to the horizon.
        x0 = float(rng.uniform(-0.3, 1.3) * w)
        d.line([(x0, h), (w / 2 + (x0 - w / 2) * 0.1, hz)], fill=tuple(int(v * 0.75) for v in soil),
               width=int(rng.integers(3, 10)))
    return img


def _clutter(rng: np.random.Generator, cam: Camera, z_range: tuple[float, float]) -> list:
    """Things that are neither people nor machines: cones, barriers, piles, containers."""
    items = []
    for _ in range(int(rng.integers(1, 7))):
        z = float(rng.uniform(*z_range))
        x = float((rng.uniform(0.0, 1.0) - 0.5) * cam.width * z / cam.focal)
        items.append((z, x, str(rng.choice(["cone", "barrier", "pile", "container", "pallet"]))))
    return items


def _draw_clutter(img: Image.Image, rng: np.random.Generator, cam: Camera, item) -> None:
    z, x, kind = item
    d = ImageDraw.Draw(img)
    (px, py), s = cam.ground(x, z), cam.scale(z)
    if kind == "cone":
        d.polygon([(px - 0.2 * s, py), (px + 0.2 * s, py), (px, py - 0.7 * s)], fill=(250, 110, 20))
        d.line([(px - 0.1 * s, py - 0.35 * s), (px + 0.1 * s, py - 0.35 * s)], fill=(245, 245, 245), width=max(1, int(0.08 * s)))
    elif kind == "barrier":
        for k in range(6):
            d.rectangle([px + k * 0.4 * s, py - 1.0 * s, px + (k + 1) * 0.4 * s, py - 0.7 * s],
                        fill=(220, 30, 30) if k % 2 else (245, 245, 245))
        d.line([(px, py), (px, py - 1.0 * s)], fill=(60, 60, 60), width=max(1, int(0.06 * s)))
    elif kind == "pile":
        r = float(rng.uniform(1.0, 2.5)) * s
        d.chord([px - 1.6 * r, py - r, px + 1.6 * r, py + r], 180, 360, fill=tuple(int(v) for v in rng.integers(80, 170, 3)))
    elif kind == "container":
        colour = tuple(int(v) for v in rng.integers(40, 200, 3))
        d.rectangle([px, py - 2.6 * s, px + 6.0 * s, py], fill=colour)
        for k in range(1, 12):
            d.line([(px + k * 0.5 * s, py - 2.6 * s), (px + k * 0.5 * s, py)], fill=tuple(int(v * 0.8) for v in colour))
    else:
        d.rectangle([px, py - 0.3 * s, px + 1.2 * s, py], fill=(170, 130, 80))


def _footprint_distance(x: float, z: float, box: tuple[float, float, float, float]) -> float:
    """Ground distance from point (x, z) to the footprint rectangle `(x0, z0, x1, z1)`."""
    dx = max(box[0] - x, 0.0, x - box[2])
    dz = max(box[1] - z, 0.0, z - box[3])
    return math.hypot(dx, dz)


def render_scene(rng: np.random.Generator) -> tuple[Image.Image, list[dict], Camera]:
    """A worksite image and its annotated objects.

    Returns:
        The image, one dict per annotated object (`cls`, `box` xyxy pixels,
        and `ground`: the person's feet `(x, z)` or the machine's footprint
        `(x0, z0, x1, z1)` in metres), and the camera.
    """
    w = int(rng.integers(400, 561))
    cam = Camera(w, int(w * rng.uniform(0.7, 0.8)), 0.0, float(rng.uniform(3.0, 7.0)), 0.0)
    cam.focal = w / 2 / math.tan(math.radians(rng.uniform(55, 75)) / 2)
    cam.horizon = cam.height * float(rng.uniform(0.18, 0.36))
    z_near = cam.focal * cam.height_m / (cam.height - cam.horizon) * 1.03  # Feet at the bottom row.
    z_far = max(z_near * 1.6, cam.focal * 1.7 / 60)  # People at least ~60 px tall (~30 px letterboxed).

    def x_at(z, lo=0.05, hi=0.95):
        return float((rng.uniform(lo, hi) - 0.5) * cam.width * z / cam.focal)

    machines: list[tuple] = []  # (kind, footprint, facing, length)
    for _ in range(int(rng.choice([0, 1, 1, 2, 2, 3], p=[0.06, 0.3, 0.14, 0.25, 0.15, 0.1]))):
        kind = str(rng.choice(list(MACHINES), p=[0.22, 0.18, 0.12, 0.08, 0.14, 0.14, 0.12]))
        _, length, depth, (f0, f1), _ = MACHINES[kind]
        for _ in range(20):
            z = float(rng.uniform(z_near * 1.05, z_far * 1.3))
            xc = x_at(z, 0.1, 0.9)
            facing = int(rng.choice([-1, 1]))
            foot = (xc - length / 2 + (f0 if facing > 0 else length - f1), z,
                    xc - length / 2 + (f1 if facing > 0 else length - f0), z + depth)
            if all(_footprint_distance((o[1][0] + o[1][2]) / 2, (o[1][1] + o[1][3]) / 2, foot) > 4 for o in machines):
                machines.append((kind, foot, facing, length, xc))
                break
    people: list[tuple] = []  # (x, z, height_m)
    wanted = int(rng.choice([0, 1, 2, 3, 4, 5], p=[0.04, 0.3, 0.26, 0.2, 0.12, 0.08]))
    for k in range(wanted * 30):
        if len(people) >= wanted:
            break
        mode = rng.random()
        if machines and mode < (0.45 if not people else 0.2):  # Near a machine: danger or warning.
            foot = machines[int(rng.integers(len(machines)))][1]
            reach = float(rng.uniform(0.2, 3.0)) if rng.random() < 0.7 else float(rng.uniform(3.0, 8.0))
            x = float(rng.uniform(foot[0] - reach, foot[2] + reach))
            z = float(rng.uniform(foot[1] - reach, foot[3] + reach))
        else:
            z = float(rng.uniform(z_near, z_far))
            x = x_at(z, 0.03, 0.97)
        px, _ = cam.ground(x, z)
        if not (z_near <= z <= z_far * 1.2 and 0.03 * w < px < 0.97 * w):
            continue
        if any(_footprint_distance(x, z, m[1]) < 0.3 for m in machines) or \
                any(math.hypot(x - p[0], z - p[1]) < 0.6 for p in people):
            continue
        people.append((x, z, float(rng.uniform(1.6, 1.9))))

    img = _background(rng, cam)
    for z, x, kind in sorted(_clutter(rng, cam, (z_near, z_far * 1.5)), reverse=True):
        if kind in ("pile", "container"):  # Large clutter sits behind the action.
            _draw_clutter(img, rng, cam, (z + (z_far - z) * 0.6, x, kind))
    # Far to near, so nearer things occlude.
    things: list[tuple[float, str, Any]] = [(m[1][1], "machine", m) for m in machines] + [(p[1], "person", p) for p in people]
    masks: list[np.ndarray] = []
    full: list[int] = []
    objects: list[dict] = []
    for z, what, thing in sorted(things, key=lambda t: -t[0]):
        layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
        mask = Image.new("L", img.size, 0)
        if what == "person":
            x, z, height = thing
            layer, mask = draw_person(
                rng, img.size, cam.ground(x, z), height * cam.scale(z),
                vest=VESTS[int(rng.integers(len(VESTS)))] if rng.random() < 0.6 else None,
                hard_hat=HATS[int(rng.integers(len(HATS)))] if rng.random() < 0.6 else None)
            objects.append({"cls": 0, "ground": (x, z)})
        else:
            kind, foot, facing, length, xc = thing
            cls = CLASS_NAMES.index(MACHINES[kind][0])
            palette = MACHINE_COLOURS if cls == 1 else VEHICLE_COLOURS
            body = palette[int(rng.integers(len(palette)))]
            colours = {"body": body, "bed": tuple(int(v * 0.85) for v in body), "dark": (45, 45, 48),
                       "tyre": (25, 25, 25), "glass": (110, 150, 180)}
            parts = _machine_parts(kind, rng)
            d, m = ImageDraw.Draw(layer), ImageDraw.Draw(mask)
            ground = ImageDraw.Draw(img)  # The footprint's shadow on the ground.
            corners = [cam.ground(foot[0], foot[1]), cam.ground(foot[2], foot[1]), cam.ground(foot[2], foot[3]),
                       cam.ground(foot[0], foot[3])]
            at = (min(max(int(corners[0][0]), 0), img.width - 1), min(max(int(corners[0][1]), 0), img.height - 1))
            ground.polygon(corners, fill=tuple(int(v * 0.55) for v in cast(tuple, img.getpixel(at))))
            z0, z1 = foot[1], foot[3]
            for zz, shade in ((z1, 0.7), (z0, 1.0)):  # Far side first, then the near side.
                origin = cam.ground(xc - length / 2, zz)
                _draw_machine(d, m, parts, colours, origin, cam.scale(zz), length, facing, shade)
            objects.append({"cls": cls, "ground": foot})
        img.paste(layer, (0, 0), layer)
        on = np.asarray(mask) > 0
        for earlier in masks:
            earlier &= ~on
        masks.append(on)
        full.append(on.sum())
    for z, x, kind in _clutter(rng, cam, (z_near, z_far)):
        if kind in ("cone", "barrier", "pallet"):
            _draw_clutter(img, rng, cam, (z, x, kind))
    annotated = []
    for obj, on, total in zip(objects, masks, full):
        ys, xs = np.nonzero(on)
        if len(ys) < max(40, (0.5 if obj["cls"] == 0 else 0.3) * total):  # Mostly hidden: not annotated.
            continue
        annotated.append({**obj, "box": [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]})
    # Lighting, dust haze thicker with distance, sensor noise.
    arr = np.asarray(img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.9)))).astype(np.float32)
    arr *= rng.uniform(0.55, 1.25) * rng.uniform(0.92, 1.08, 3)
    dust = float(rng.uniform(0.0, 0.45)) if rng.random() < 0.6 else 0.0
    rows = np.arange(cam.height, dtype=np.float32)
    haze = dust * np.clip(1.2 - (rows - cam.horizon) / (cam.height - cam.horizon), 0.2, 1.0)[:, None, None]
    arr = arr * (1 - haze) + np.array([205, 185, 150], np.float32) * haze
    arr += rng.normal(0, rng.uniform(2, 7), arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), annotated, cam


def scene_pairs(objects: list[dict]) -> list[dict]:
    """True ground distance of every (person, machine or vehicle) pair, by annotation index."""
    return [{"person": i, "machine": j, "machine_class": CLASS_NAMES[o["cls"]],
             "distance_m": _footprint_distance(p["ground"][0], p["ground"][1], o["ground"])}
            for i, p in enumerate(objects) if p["cls"] == 0
            for j, o in enumerate(objects) if o["cls"] != 0]


def make_data(out_dir: Path, size: int, seed: int) -> None:
    """Writes `size` worksite scenes as a YOLO/Roboflow set (70/15/15 train/valid/test),
    with `pairs.csv` (true person-machine ground distances) and `hazards.csv`."""
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    recipe = RECIPES["default"]
    names = [f"GenSite{i + 1:05d}" for i in range(size)]
    splits = hash_split(names, 15, 15)
    folders = {"train": "train", "val": "valid", "test": "test"}
    for f in folders.values():
        (out_dir / f / "images").mkdir(parents=True, exist_ok=True)
        (out_dir / f / "labels").mkdir(parents=True, exist_ok=True)
    (out_dir / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\n"
        f"nc: {len(CLASS_NAMES)}\nnames: [{', '.join(CLASS_NAMES)}]\n")
    pair_rows, hazard_rows = [], []
    for name, split in progress(zip(names, splits), total=size, desc="machinery_proximity sample", unit="image"):
        image, objects, cam = render_scene(rng)
        rel = f"{folders[split]}/images/{name}.jpg"
        image.save(out_dir / rel, quality=90)
        w, h = image.size
        (out_dir / folders[split] / "labels" / f"{name}.txt").write_text("".join(
            f"{o['cls']} {(o['box'][0] + o['box'][2]) / 2 / w:.6f} {(o['box'][1] + o['box'][3]) / 2 / h:.6f} "
            f"{(o['box'][2] - o['box'][0]) / w:.6f} {(o['box'][3] - o['box'][1]) / h:.6f}\n" for o in objects))
        pairs = scene_pairs(objects)
        pair_rows += [{"image": rel, **p, "distance_m": f"{p['distance_m']:.3f}"} for p in pairs] or \
            [{"image": rel, "person": "", "machine": "", "machine_class": "", "distance_m": ""}]
        nearest = min((p["distance_m"] for p in pairs), default=float("inf"))
        hazard_rows.append({"image": rel, "hazard": LEVELS[level_of(nearest, recipe)],
                            "min_distance_m": f"{nearest:.3f}" if pairs else "",
                            "people": sum(o["cls"] == 0 for o in objects),
                            "machines": sum(o["cls"] != 0 for o in objects),
                            "camera_height_m": f"{cam.height_m:.2f}", "focal_px": f"{cam.focal:.1f}",
                            "horizon_px": f"{cam.horizon:.1f}"})
    for file, rows in (("pairs.csv", pair_rows), ("hazards.csv", hazard_rows)):
        with (out_dir / file).open("w", newline="") as table:
            writer = csv.DictWriter(table, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
