"""Mutated inputs for the exports and the loaders, and a reference verdict on each.

`mutate` makes the inputs a stranger or a messy disk can produce from a real
file: truncations, flipped bits, wrong magic, header sizes set to zero or to
huge values, empty files, text files with an image or WAV name, random bytes.
`valid` is an independent verdict (Pillow, Python's `wave`) on whether an
input is a usable example under the suite's limits: an export or loader that
accepts what `valid` rejects accepted garbage silently.

Run as a script, it serves every input to one export endpoint in its own
process (so a crash cannot take pytest down with it) and writes a JSON line
per input: `python tests/fuzzing.py EXPORT ENDPOINT KIND SEED_FILE COUNT SEED OUT`.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import time
import wave
from pathlib import Path

import numpy as np

MAX_PIXELS = 50_000_000  # The recipes' default max_image_pixels.
MAX_SECONDS = 60.0  # The recipes' default max_audio_seconds.

# Offsets of the size fields each format keeps in its header: (offset, bytes, byte order).
SIZE_FIELDS = {
    b"\x89PNG": [(16, 4, ">"), (20, 4, ">")],
    b"\xff\xd8": [],  # JPEG's SOF marker moves; the bit flips and truncations reach it.
    b"BM": [(18, 4, "<"), (22, 4, "<"), (2, 4, "<")],
    b"GIF8": [(6, 2, "<"), (8, 2, "<")],
    b"RIFF": [(4, 4, "<"), (22, 2, "<"), (24, 4, "<"), (28, 4, "<"), (34, 2, "<"), (40, 4, "<")],
}
MUTATORS = ("truncate", "flip_bits", "wrong_magic", "zero_size", "huge_size", "empty", "text", "random_bytes",
            "ppm_header", "splice")


def _size_fields(data: bytes) -> list[tuple[int, int, str]]:
    for magic, fields in SIZE_FIELDS.items():
        if data.startswith(magic):
            return fields
    return []


def mutate(data: bytes, rng: np.random.Generator, how: str) -> bytes:
    """One mutation of `data` (a whole image or WAV file) by `how` (see MUTATORS)."""
    if how == "truncate":
        return data[: int(rng.integers(0, len(data)))]
    if how == "flip_bits":
        out = bytearray(data)
        for _ in range(int(rng.integers(1, 9))):
            # Half the flips in the first 64 bytes, where headers live.
            i = int(rng.integers(0, min(64, len(out)))) if rng.random() < 0.5 else int(rng.integers(0, len(out)))
            out[i] ^= 1 << int(rng.integers(0, 8))
        return bytes(out)
    if how == "wrong_magic":
        return bytes(rng.integers(0, 256, 4, dtype=np.uint8)) + data[4:]
    if how in ("zero_size", "huge_size"):
        fields = _size_fields(data)
        if not fields:
            return mutate(data, rng, "flip_bits")
        out = bytearray(data)
        offset, n, order = fields[int(rng.integers(0, len(fields)))]
        value = 0 if how == "zero_size" else [60_000, 2 ** (8 * n - 1) - 1, 2 ** (8 * n) - 1][int(rng.integers(0, 3))]
        out[offset : offset + n] = value.to_bytes(n, "big" if order == ">" else "little")
        return bytes(out)
    if how == "empty":
        return b""
    if how == "text":
        return b"This is not an image or a WAV file, whatever its name says.\n" * int(rng.integers(1, 50))
    if how == "random_bytes":
        return bytes(rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8))
    if how == "ppm_header":  # A PPM that declares a size its bytes do not have, or a huge one.
        w, h = [(60_000, 60_000), (0, 10), (10, 0), (8, 8), (-3, 4)][int(rng.integers(0, 5))]
        return f"P6\n{w} {h}\n255\n".encode() + bytes(rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8))
    if how == "splice":  # The header of the file with random bytes after it.
        cut = int(rng.integers(8, max(9, min(len(data), 200))))
        return data[:cut] + bytes(rng.integers(0, 256, int(rng.integers(0, 5000)), dtype=np.uint8))
    raise ValueError(f"Expected a mutator in {MUTATORS}. Received: {how!r}")


def inputs(seed_files: list[Path], count: int, seed: int) -> list[tuple[str, bytes]]:
    """`count` mutated inputs, cycling through MUTATORS and the seed files, with a fixed seed."""
    rng = np.random.default_rng(seed)
    originals = [Path(f).read_bytes() for f in seed_files]
    return [(MUTATORS[i % len(MUTATORS)], mutate(originals[i % len(originals)], rng, MUTATORS[i % len(MUTATORS)]))
            for i in range(count)]


def valid(data: bytes, kind: str) -> bool:
    """The reference verdict: a complete image (Pillow decodes every pixel) within
    MAX_PIXELS, or a 16-bit PCM WAV of at least 1000 Hz, with all its frames,
    of at most MAX_SECONDS."""
    if kind == "image":
        from PIL import Image

        if not data.startswith((b"P6", b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"GIF8", b"BM")):
            return False  # Pillow reads more formats (TGA, ICO ...) than the suite's exports take.

        if data[:2] == b"P6":
            from suite.data import parse_ppm_header

            try:
                w, h, maxval, offset = parse_ppm_header(data)
            except ValueError:
                return False
            return maxval == 255 and 0 < w * h <= MAX_PIXELS and w > 0 and h > 0 and len(data) - offset >= w * h * 3
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in ("PNG", "JPEG", "BMP", "GIF") or not 0 < image.size[0] * image.size[1] <= MAX_PIXELS:
                    return False
                image.load()
            return True
        except Exception:  # Pillow raises many types for bad files.
            return False
    if data[:4] == b"RIFF" and len(data) >= 8:
        # Streaming writers leave the RIFF size 0 or 0xFFFFFFFF (unknown when they start); decoders ignore it.
        data = data[:4] + struct.pack("<I", len(data) - 8) + data[8:]
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            frames, width, channels, rate = w.getnframes(), w.getsampwidth(), w.getnchannels(), w.getframerate()
            got = len(w.readframes(frames))
    except Exception:  # `wave` raises wave.Error, EOFError, struct.error, even RuntimeError on bad chunks.
        return False
    return (width == 2 and frames > 0 and rate >= 1000 and got >= frames * width * channels
            and frames / rate <= MAX_SECONDS)


def serve_all(export: Path, endpoint: str, kind: str, seed_file: Path, count: int, seed: int, out: Path) -> None:
    """Sends every input to `endpoint` of the export; one JSON line per input to `out`."""
    import tensorflow as tf

    from suite.errors import graph_error_cause

    import tensorflow_text  # noqa: F401 - as a server would have them: voice_commands' graph uses its ops.

    loaded = tf.saved_model.load(str(export))  # Kept: the endpoint's variables live in it.
    fn = getattr(loaded, endpoint)
    batched = fn.input_signature[0].shape.rank == 1  # `serve_bytes` of traffic_signs, `serve_wav`: a batch.
    with Path(out).open("w") as f:
        for i, (how, data) in enumerate(inputs([seed_file], count, seed)):
            start = time.perf_counter()
            try:
                fn(tf.constant([data] if batched else data))
                verdict, message = "accepted", ""
            except tf.errors.InvalidArgumentError as e:
                verdict, message = "refused", graph_error_cause(e.message or "")
            except Exception as e:  # Anything else is reported; the test fails on it.
                verdict, message = f"error:{type(e).__name__}", graph_error_cause(str(e))
            f.write(json.dumps({"i": i, "how": how, "bytes": len(data), "verdict": verdict, "message": message[:300],
                                "valid": valid(data, kind), "seconds": time.perf_counter() - start}) + "\n")
            f.flush()


if __name__ == "__main__":
    export, endpoint, kind, seed_file, count, seed, out = sys.argv[1:8]
    serve_all(Path(export), endpoint, kind, Path(seed_file), int(count), int(seed), Path(out))
