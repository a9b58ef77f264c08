"""Inputs that would exhaust a server are refused in the graph, before decoding: images whose
header declares too many pixels (each format), WAVs that are too long, too slow or lie about
their chunks. Each refusal says what was expected and what was received."""

from __future__ import annotations

import io
import struct
import time
import wave

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from suite.audio import decode_wav
from suite.data import decode_image, declared_image_size
from suite.errors import graph_error_cause


def _encoded(fmt: str, w: int = 37, h: int = 21) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(out, fmt)
    return out.getvalue()


def _declaring(fmt: str, w: int, h: int) -> bytes:
    """A small valid file of `fmt` whose header is edited to declare `w x h`."""
    data = bytearray(_encoded(fmt))
    if fmt == "PNG":
        data[16:24] = struct.pack(">II", w, h)
    elif fmt == "BMP":
        data[18:26] = struct.pack("<ii", w, h)
    elif fmt == "GIF":
        data[6:10] = struct.pack("<HH", w, h)
    elif fmt == "JPEG":  # The baseline frame header: FFC0, length, precision, height, width.
        at = bytes(data).index(b"\xff\xc0") + 5
        data[at : at + 4] = struct.pack(">HH", h, w)
    elif fmt == "PPM":
        return f"P6\n{w} {h}\n255\n".encode() + bytes(data[bytes(data).index(b"255\n") + 4:])
    return bytes(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "PPM"])
def test_each_format_declaring_a_huge_image_is_refused_before_decoding(fmt):
    assert declared_image_size(tf.constant(_encoded(fmt))).numpy().tolist() == [21, 37]
    assert decode_image(tf.constant(_encoded(fmt))).shape == (21, 37, 3)
    bomb = tf.constant(_declaring(fmt, 60_000, 60_000))
    assert declared_image_size(bomb).numpy().tolist() == [60_000, 60_000]
    start = time.perf_counter()
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        decode_image(bomb)
    assert time.perf_counter() - start < 1.0  # Refused from the header, not after decoding 3.6 billion pixels.
    message = graph_error_cause(e.value.message)
    assert "Expected an image of 1 to 50000000 pixels" in message and "60000 x 60000" in message, message
    # The limit is a value, not a constant: a recipe's max_image_pixels reaches the graph.
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most|1 to 500 pixels"):
        decode_image(tf.constant(_encoded(fmt)), max_pixels=500)
    assert decode_image(tf.constant(_encoded(fmt)), max_pixels=37 * 21).shape == (21, 37, 3)


def test_bytes_of_no_image_format_are_refused_clearly():
    for data in (b"", b"hello, I am a text file named photo.png\n", bytes(100)):
        with pytest.raises(tf.errors.InvalidArgumentError) as e:
            decode_image(tf.constant(data))
        assert graph_error_cause(e.value.message).startswith("Expected PPM (P6), PNG, JPEG, BMP or GIF bytes")


def _wav(seconds: float, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.zeros(int(seconds * rate), "<i2").tobytes())
    return out.getvalue()


def test_wavs_too_long_too_slow_or_lying_are_refused():
    assert decode_wav(tf.constant(_wav(2.0)), length=None).shape == (32000,)  # 2 s at 8 kHz, resampled to 16 kHz.
    cases = {
        "at most 60 s": _wav(61.0),
        "at most 1.5 s": None,  # The limit as a value.
        "at least 1000 Hz": _wav(0.5, rate=500),
        "non-empty `data` chunk": _wav(1.0)[:40] + struct.pack("<I", 2**30) + _wav(1.0)[44:],  # Claims 1 GB.
        "RIFF/WAVE": b"RIFX" + _wav(1.0)[4:],
    }
    for expected, data in cases.items():
        with pytest.raises(tf.errors.InvalidArgumentError) as e:
            if data is None:
                decode_wav(tf.constant(_wav(2.0)), max_seconds=1.5)
            else:
                decode_wav(tf.constant(data))
        assert expected in graph_error_cause(e.value.message), (expected, e.value.message[-300:])
    # A header that says the data chunk is empty: refused, not decoded as silence.
    empty = _wav(1.0)[:40] + struct.pack("<I", 0) + _wav(1.0)[44:]
    with pytest.raises(tf.errors.InvalidArgumentError, match="non-empty"):
        decode_wav(tf.constant(empty))


@pytest.mark.parametrize("smoke", ["traffic_signs"], indirect=True)
def test_a_served_export_refuses_a_declared_huge_png_quickly(smoke):
    """The issue's request: a 16,000 x 16,000 PNG sent to `serve_bytes` (peak memory: docs/benchmarks.md)."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    rows = zlib.compress(bytes(16_001) * 16_000, 9)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16_000, 16_000, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    loaded = tf.saved_model.load(str(smoke["export"]))
    start = time.perf_counter()
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        loaded.serve_bytes(tf.constant([png]))
    assert time.perf_counter() - start < 2.0
    assert "16000 x 16000" in graph_error_cause(e.value.message)
    assert loaded.serve_bytes(tf.constant([_encoded("PNG")]))["probabilities"].shape == (1, 43)
