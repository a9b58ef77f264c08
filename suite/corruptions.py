"""Input corruptions for the evaluation matrix, at severities 0 (none) to 3.

Image corruptions take uint8 pixels `[h, w, 3]` or `[b, h, w, 3]`; audio
corruptions take float waveforms `[b, samples]` in -1..1. Severity 0 returns
the input unchanged, so a matrix cell at severity 0 must equal the clean one.
Each corruption is deterministic for a given `rng`.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import Protocol, cast

import numpy as np
from PIL import Image
from scipy import ndimage

SEVERITIES = (1, 2, 3)


class Corruption(Protocol):
    """A corruption: `(inputs, severity, rng) -> corrupted inputs`, and the kind of input it takes."""

    kind: str  # "image" or "audio".
    __name__: str

    def __call__(self, x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray: ...


def _images(fn: Callable) -> Corruption:
    """Applies `fn(float32 [b, h, w, 3] in 0-255, severity, rng)` to uint8 pixels of either rank."""

    @functools.wraps(fn)
    def apply(pixels: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        if severity == 0:
            return pixels
        x = np.asarray(pixels)
        batched = x.ndim == 4
        out = fn(x[None] if not batched else x, severity, rng)
        out = np.clip(np.round(out), 0, 255).astype(np.uint8)
        return out if batched else out[0]

    corruption = cast(Corruption, apply)
    corruption.kind = "image"
    return corruption


@_images
def gaussian_noise(x, s, rng):
    return x.astype(np.float32) + rng.normal(0, (8, 16, 32)[s - 1], x.shape)


@_images
def motion_blur(x, s, rng):
    """Horizontal camera shake: a box kernel 3-12% of the image width long."""
    length = max(2 * s + 1, int(round((0.03, 0.06, 0.12)[s - 1] * x.shape[2])))
    return ndimage.uniform_filter1d(x.astype(np.float32), length, axis=2, mode="nearest")


@_images
def darken(x, s, rng):
    return x.astype(np.float32) * (0.6, 0.35, 0.15)[s - 1]


@_images
def overexpose(x, s, rng):
    return x.astype(np.float32) * (1.6, 2.2, 3.0)[s - 1] + (10, 30, 60)[s - 1]


@_images
def low_contrast(x, s, rng):
    x = x.astype(np.float32)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return mean + (x - mean) * (0.5, 0.3, 0.15)[s - 1]


@_images
def jpeg(x, s, rng):
    quality = (40, 20, 8)[s - 1]
    out = []
    for image in x.astype(np.uint8):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(buffer).convert("RGB")))
    return np.stack(out).astype(np.float32)


@_images
def occlusion(x, s, rng):
    """A grey square 15/30/45% of the shorter side, at a random place in each image."""
    x = x.astype(np.float32).copy()
    h, w = x.shape[1:3]
    side = max(1, int(round((0.15, 0.3, 0.45)[s - 1] * min(h, w))))
    for image in x:
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        image[top : top + side, left : left + side] = 128.0
    return x


def _audio(fn: Callable) -> Corruption:
    @functools.wraps(fn)
    def apply(waveforms: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        if severity == 0:
            return waveforms
        return np.clip(fn(np.asarray(waveforms, np.float32), severity, rng), -1.0, 1.0).astype(np.float32)

    corruption = cast(Corruption, apply)
    corruption.kind = "audio"
    return corruption


def _at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Adds `noise` scaled to `snr_db` below each clip's power (silent clips: below -30 dBFS)."""
    signal = np.maximum((clean**2).mean(axis=1, keepdims=True), 1e-3)
    power = np.maximum((noise**2).mean(axis=1, keepdims=True), 1e-12)
    return clean + noise * np.sqrt(signal / power / 10 ** (snr_db / 10))


@_audio
def white_noise(x, s, rng):
    return _at_snr(x, rng.normal(0, 1, x.shape).astype(np.float32), (20, 10, 0)[s - 1])


@_audio
def babble_noise(x, s, rng):
    """Five other utterances of the batch at once (the same clip reversed and
    shifted when the batch has one), at 20/10/0 dB SNR."""
    babble = np.zeros_like(x)
    for k in range(1, 6):
        other = np.roll(x, k, axis=0) if len(x) > 1 else x[:, ::-1]
        babble += np.roll(other, int(rng.integers(x.shape[1])), axis=1)
    return _at_snr(x, babble, (20, 10, 0)[s - 1])


@_audio
def gain(x, s, rng):
    """Quieter by 10/20/30 dB (a far or muted microphone)."""
    return x * 10 ** (-(10, 20, 30)[s - 1] / 20)


@_audio
def time_shift(x, s, rng):
    """Later by 10/20/30% of the clip, zeros in front; the word's end may fall off."""
    shift = int((0.1, 0.2, 0.3)[s - 1] * x.shape[1])
    return np.concatenate([np.zeros_like(x[:, :shift]), x[:, : x.shape[1] - shift]], axis=1)


IMAGE: dict[str, Corruption] = {f.__name__: f for f in (gaussian_noise, motion_blur, darken, overexpose, low_contrast, jpeg, occlusion)}
AUDIO: dict[str, Corruption] = {f.__name__: f for f in (white_noise, babble_noise, gain, time_shift)}
ALL: dict[str, Corruption] = {**IMAGE, **AUDIO}
