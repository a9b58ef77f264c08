"""Sample data for cell_microscopy: fluorescence, brightfield and stained-tissue nuclei.

Written in the DSB 2018 / BBBC038 layout (`<id>/images/<id>.png`, one mask PNG per nucleus),
with `nucleus_classes.csv` marking atypical nuclei.

`tasks/cell_microscopy.py` calls `make_data` lazily, so the drawing code loads only
when data is made.
"""

from __future__ import annotations

import csv
import dataclasses
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from suite.data import progress
from tasks.cell_microscopy import CLASS_NAMES, CLASSES_CSV

MODES = ("fluorescence", "tissue", "brightfield")


@dataclasses.dataclass(frozen=True)
class Look:
    """What the sample looks like; each value was set against the real DSB 2018 images
    (docs/benchmarks.md has the ablation, one change at a time, on real validation images)."""

    mode_shares: tuple[float, float, float] = (0.7, 0.18, 0.12)  # DSB 2018 stage 1: ~85% fluorescence.
    blue_share: float = 0.1  # Share of fluorescence drawn blue (DAPI false colour); DSB's are grey.
    dim: tuple[float, float] = (0.12, 1.0)  # Fluorescence signal gain: DSB nuclei are often 20-40/255 over black.
    scales: tuple[float, float] = (0.7, 3.2)  # Magnification: DSB nuclei are 9-50 px wide.
    # Gain and magnification log-uniform, texture grain growing with magnification. Off: the old draws (gain
    # uniform; magnification uniform below 1 or above, equally often) and a fixed grain.
    log_draws: bool = True
    hematoxylin: bool = True  # Stained tissue: purple nuclei on lavender or grey-blue, as DSB's are (not pink).
    brightness: tuple[float, float] = (0.3, 1.0)  # Per-nucleus brightness of normal nuclei.
    spindles: float = 0.12  # Share of normal nuclei drawn long and thin (x3 in stained tissue).


# Before the looks were compared with DSB 2018 (`suite data make cell_microscopy --style baseline`).
BASELINE = Look(mode_shares=(0.55, 0.3, 0.15), blue_share=0.4, dim=(0.5, 1.0), scales=(0.7, 1.8), log_draws=False,
                hematoxylin=False, brightness=(0.45, 0.75), spindles=0.0)
STYLES = {"baseline": BASELINE, "realistic": Look()}


def _nucleus(rng: np.random.Generator, atypical: bool, mitotic: bool, scale: float,
             grain: float = 1.0, spindle: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A nucleus shape (bool mask) and its chromatin texture (0-1), in a local box."""
    from scipy import ndimage

    if mitotic:  # A metaphase plate: a dense, thin bar of chromatin.
        r, elong, thin = rng.uniform(6, 9), rng.uniform(1.8, 2.6), 0.4
    elif spindle:  # Fibroblast-like: long and thin, common in DSB's stained tissue.
        r, elong, thin = rng.uniform(5.5, 8.5), rng.uniform(1.8, 3.0), rng.uniform(0.55, 0.8)
    else:  # Atypical nuclei are enlarged.
        r, elong, thin = (rng.uniform(10, 16) if atypical else rng.uniform(5.5, 8.5)), rng.uniform(1.0, 1.35), 1.0
    r = min(r * scale, 30.0)  # Magnification; atypical nuclei at the highest stay under ~60 px, as DSB's largest.
    half = int(np.ceil(r * elong * 1.3)) + 2
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    u = (xx * np.cos(angle) + yy * np.sin(angle)) / elong
    v = (-xx * np.sin(angle) + yy * np.cos(angle)) / thin
    theta, dist = np.arctan2(v, u), np.hypot(u, v)
    # Contour: smooth for normal nuclei, irregular (lobed, notched) for atypical ones.
    amp = rng.uniform(0.12, 0.25) if atypical else rng.uniform(0.0, 0.05)
    edge = np.ones_like(theta)
    for k in range(2, 7):
        edge += amp / k**0.5 * rng.normal() * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    shape = dist < r * edge
    noise = rng.normal(size=shape.shape)
    if atypical:  # Coarse, clumped chromatin.
        texture = 0.55 + 0.45 * np.tanh(1.8 * ndimage.gaussian_filter(noise, 1.6 * grain) / (0.25 / grain))
    else:  # Fine, even chromatin.
        texture = 0.8 + 0.1 * ndimage.gaussian_filter(noise, 0.7 * grain) / (0.3 / grain)
    return shape, np.clip(texture, 0, 1.2)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def render_image(rng: np.random.Generator, size: tuple[int, int],
                 look: Look = Look()) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """One sample image: RGB uint8, instance map and class per instance (1-based)."""
    from scipy import ndimage

    h, w = size
    style = MODES[int(rng.choice(3, p=list(look.mode_shares)))]
    density = rng.uniform(0.4, 1.6)
    low, high = look.scales
    if look.log_draws:
        scale = _log_uniform(rng, low, high)  # Magnification.
    else:
        scale = float(rng.choice([rng.uniform(low, 1.0), rng.uniform(1.0, high)]))
    # Texture grain in pixels grows with magnification (smoothly, as out-of-focus light does).
    grain = max(1.0, scale) ** 0.5 if look.log_draws else 1.0
    n = int(rng.integers(10, 60) * density * h * w / 256**2 / scale**2) + 3
    atypical_share = float(rng.choice([0.0, rng.uniform(0.05, 0.5)], p=[0.3, 0.7]))
    instances = np.zeros((h, w), np.int32)
    intensity = np.zeros((h, w), np.float32)
    kinds: list[int] = []
    cluster = rng.uniform([0, 0], [h, w])  # Atypical cells tend to cluster.
    for _ in range(n * 3):
        if len(kinds) >= n:
            break
        atypical = rng.random() < atypical_share
        mitotic = atypical and rng.random() < 0.15
        spindle = bool(look.spindles) and not atypical and rng.random() < look.spindles * (3 if style == "tissue" else 1)
        shape, texture = _nucleus(rng, atypical, mitotic, scale, grain, spindle)
        half = shape.shape[0] // 2
        cy, cx = (cluster + rng.normal(0, 35, 2)) if atypical and rng.random() < 0.6 else rng.uniform([0, 0], [h, w])
        cy, cx = int(np.clip(cy, 0, h - 1)), int(np.clip(cx, 0, w - 1))
        y0, x0 = cy - half, cx - half
        ys, xs = slice(max(0, y0), min(h, y0 + shape.shape[0])), slice(max(0, x0), min(w, x0 + shape.shape[1]))
        local = shape[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
        if local.sum() < 15:
            continue
        overlap = (instances[ys, xs] > 0) & local
        if overlap.sum() > 0.12 * local.sum():  # Touching is common; stacking is not.
            continue
        local = local & ~overlap
        kinds.append(2 if atypical else 1)
        instances[ys, xs][local] = len(kinds)
        brightness = (rng.uniform(0.75, 1.0) if atypical else rng.uniform(*look.brightness))
        intensity[ys, xs][local] = (brightness * texture[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0])[local]
    intensity = ndimage.gaussian_filter(intensity, rng.uniform(0.3, 1.3))  # Optics blur.
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = 1 + rng.uniform(-0.35, 0.35) * (yy - 0.5) + rng.uniform(-0.35, 0.35) * (xx - 0.5)
    texture_bg = ndimage.gaussian_filter(rng.normal(size=(h, w)), 3) * 2.5
    if style == "fluorescence":
        base = rng.uniform(0.01, 0.08) + 0.02 * texture_bg
        gain = _log_uniform(rng, *look.dim) if look.log_draws else rng.uniform(*look.dim)
        signal = (base + intensity * gain) * light
        color = np.array([1, 1, 1]) if rng.random() < 1 - look.blue_share else np.array([0.25, 0.35, 1.0])
        rgb = signal[..., None] * color
        photons = rng.uniform(80, 400)
    else:
        if style == "tissue" and look.hematoxylin:  # DSB's: lavender or grey-blue paper, nuclei 130/80/185.
            paper = np.array([0.69, 0.61, 0.81]) if rng.random() < 0.6 else np.array([0.79, 0.79, 0.83])
            paper = paper * rng.uniform(0.92, 1.08, 3)
            stain = np.array([0.38, 0.85, 0.13]) * rng.uniform(0.8, 1.25, 3)
        elif style == "tissue":
            paper, stain = np.array([0.93, 0.78, 0.86]), np.array([0.55, 0.75, 0.35])
        else:
            paper, stain = np.array([0.82, 0.82, 0.80]), np.array([0.55, 0.55, 0.5])
        eosin = (0.12 * (texture_bg > 0.4)) if style == "tissue" else 0.0  # Fibres and cytoplasm.
        absorb = intensity * rng.uniform(0.9, 1.3) + eosin * 0.5
        rgb = paper * np.exp(-absorb[..., None] * stain * 2.2) * light[..., None]
        photons = rng.uniform(150, 600)
    rgb = rng.poisson(np.clip(rgb, 0, 1) * photons) / photons  # Shot noise.
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8), instances, kinds


def make_data(out_dir: Path, size: int, seed: int, look: Look = Look()) -> None:
    """Writes `size` images in the DSB 2018 layout, with `nucleus_classes.csv`.

    Images are RGBA PNGs like DSB's (alpha 255), mostly 256x256 with some
    320x256 and 256x384, so loaders and models meet mixed sizes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in progress(range(size), desc="cell_microscopy sample", unit="image"):
        shape = [(256, 256), (256, 320), (384, 256)][int(rng.choice(3, p=[0.7, 0.15, 0.15]))]
        rgb, instances, kinds = render_image(rng, shape, look)
        image_id = f"{zlib.crc32(f'{seed}/{i}'.encode()):08x}{i:05d}"
        folder = out_dir / image_id
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "masks").mkdir(exist_ok=True)
        rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], -1)
        Image.fromarray(rgba, "RGBA").save(folder / "images" / f"{image_id}.png")
        for k, kind in enumerate(kinds, start=1):
            mask_id = f"{image_id}_{k:03d}"
            # Fastest zlib level: one PNG per nucleus is most of the writing, and the pixels are the same.
            Image.fromarray(((instances == k) * 255).astype(np.uint8), "L").save(folder / "masks" / f"{mask_id}.png",
                                                                                  compress_level=1)
            rows.append((image_id, mask_id, CLASS_NAMES[kind - 1]))
    with (out_dir / CLASSES_CSV).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ImageId", "MaskId", "Class"])
        writer.writerows(rows)
