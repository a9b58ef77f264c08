"""Data helpers shared by tasks: a skip report, image decoding and tf.data pipelines."""

from __future__ import annotations

import collections
import dataclasses
import functools
import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
IMAGE_SUFFIXES = (".ppm", ".png", ".jpg", ".jpeg", ".bmp", ".gif")
# Served exports refuse images whose header declares more pixels than this (a 16,000 x 16,000 PNG of 746 KB
# decodes to 768 MB and took a serving process from 0.8 to 4.7 GB); recipes carry it as `max_image_pixels`.
# Loaders skip such files too.
MAX_IMAGE_PIXELS = 50_000_000
# What `decode_image` reads, by the bytes each format starts with.
IMAGE_SIGNATURES = (b"P6", b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"GIF8", b"BM")


@dataclasses.dataclass
class DataReport:
    """Counts the files a loader read and lists those it skipped, with reasons.

    A corrupt file never stops a run: it is skipped, counted here, and the
    report is printed and saved in the run directory.
    """

    read: int = 0
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    noted: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    # What a loader found besides images (`label files`, say), for errors and the report.
    counts: dict[str, int] = dataclasses.field(default_factory=dict)

    def skip(self, path: Path | str, reason: str) -> None:
        self.skipped.append((str(path), reason))

    def note(self, path: Path | str, issue: str) -> None:
        """Records a problem that was repaired rather than skipped (an overlap, say)."""
        self.noted.append((str(path), issue))

    def summary(self) -> str:
        """Returns one line such as `read 990 files, skipped 2 (truncated: 2)`."""
        line = f"read {self.read} files, skipped {len(self.skipped)}"
        if self.skipped:
            reasons = collections.Counter(r.split(":")[0] for _, r in self.skipped)
            line += " (" + ", ".join(f"{r}: {n}" for r, n in reasons.most_common()) + ")"
        if self.noted:
            issues = collections.Counter(r.split(":")[0] for _, r in self.noted)
            line += f", repaired {len(self.noted)} (" + ", ".join(f"{r}: {n}" for r, n in issues.most_common()) + ")"
        return line

    def to_dict(self) -> dict:
        return {
            "read": self.read,
            "skipped": len(self.skipped),
            "files": [{"path": p, "reason": r} for p, r in self.skipped],
            "repaired": [{"path": p, "issue": r} for p, r in self.noted],
            **({"counts": self.counts} if self.counts else {}),
        }


def progress(iterable: Any = None, total: int | None = None, desc: str = "", unit: str = "it") -> Any:
    """A tqdm bar (count, rate, ETA) over `iterable` on a terminal, silent in
    logs; `SUITE_PROGRESS=1` forces it on (and `0` off) wherever stderr goes.
    With `iterable` None, call `.update(n)` on the bar yourself."""
    import os
    import sys

    from tqdm import tqdm

    forced = os.environ.get("SUITE_PROGRESS", "")
    disable = forced == "0" or (forced != "1" and not sys.stderr.isatty())
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, mininterval=0.5, leave=False,
                dynamic_ncols=True)


def take(examples: Any, index: Sequence[int] | np.ndarray) -> Any:
    """Rows `index` of a task's examples dataclass, whose fields are per-example
    lists or arrays (empty fields stay empty)."""
    index = list(index)

    def rows(values):
        if isinstance(values, np.ndarray):
            return values[np.asarray(index, int)] if len(values) else values
        return [values[i] for i in index] if values else values

    return dataclasses.replace(examples, **{f.name: rows(getattr(examples, f.name))
                                            for f in dataclasses.fields(examples)})


def concat(parts: Sequence[Any]) -> Any:
    """One examples dataclass of the same type from several, field by field (arrays
    concatenated, lists joined)."""
    first = parts[0]

    def joined(name):
        values = [getattr(p, name) for p in parts]
        if isinstance(values[0], np.ndarray):
            filled = [v for v in values if len(v)]
            return np.concatenate(filled) if filled else values[0]
        if any(values) and not all(len(v) == len(p) for v, p in zip(values, parts)):
            raise ValueError(f"Expected field {name!r} filled for every example of every part or of none. "
                             f"Received lengths {[len(v) for v in values]} for {[len(p) for p in parts]} examples")
        return [x for v in values for x in v]

    return dataclasses.replace(first, **{f.name: joined(f.name) for f in dataclasses.fields(first)})


def mix_in(own: Any, extra: Any, share: float | None, seed: int) -> Any:
    """Training examples `own` with `extra` (another dataset's training split) mixed in.

    Args:
        own: the examples trained on (real ones, say).
        extra: examples of the same task and classes (a generated sample, say).
        share: the fraction of the mixed set drawn from `extra`, or None for all of
            `extra` once beside all of `own`. The mixed set keeps the size
            `len(own) + len(extra)` (so an epoch is as long whatever the share):
            the side with too few examples repeats them (every one as often as
            the others, give or take one), the other is drawn without replacement.
        seed: seeds the draw.

    Returns:
        The mixed examples, in no particular order (the task's dataset shuffles).
    """
    if share is None:
        return concat([own, extra])
    if not 0 < share < 1:
        raise ValueError(f"Expected a mix share strictly between 0 and 1. Received: {share}")
    total = len(own) + len(extra)
    rng = np.random.default_rng(seed)
    n_extra = int(round(share * total))

    def draw(n_have: int, n_want: int) -> np.ndarray:
        whole, rest = divmod(n_want, n_have)
        return np.concatenate([np.tile(np.arange(n_have), whole), rng.choice(n_have, rest, replace=False)])

    return concat([take(own, draw(len(own), total - n_extra)), take(extra, draw(len(extra), n_extra))])


def hash_split(keys: list[str], val_percent: int, test_percent: int) -> list[str]:
    """`"train"`, `"val"` or `"test"` per key from a CRC32 of it: stable across
    runs and machines, and equal keys (one image id, one file stem) never straddle splits."""
    import zlib

    buckets = [zlib.crc32(k.encode()) % 100 for k in keys]
    return ["val" if b < val_percent else "test" if b < val_percent + test_percent else "train" for b in buckets]


# --- Images -------------------------------------------------------------------


def check_image_file(path: Path) -> str | None:
    """Returns why an image file is unusable, or None when it decodes.

    PPM (P6) headers are checked against the file length without decoding, so
    checking a whole GTSRB-sized set stays cheap; other formats go through
    Pillow's verify.
    """
    return read_image_file(path, None)[1]


def read_image_file(path: Path, mode: str | None = "RGB") -> tuple[np.ndarray | None, str | None]:
    """An image file's pixels converted to a Pillow `mode`, or None and why the file is unusable
    (`check_image_file`'s reasons).

    Args:
        path: the file.
        mode: Pillow mode of the pixels (`"RGB"`, `"L"` ...); None only checks
            the file. Defaults to `"RGB"`.

    Returns:
        `(pixels, None)`, or `(None, problem)`. The file is decoded once, by
        the same load that checks its pixel data (a mask-per-nucleus set reads
        thousands of small PNGs).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return None, f"unreadable: {e.strerror}"
    if not data:
        return None, "empty: 0 bytes"
    if not data.startswith(IMAGE_SIGNATURES):  # Pillow also reads formats (TGA, ICO ...) the graph decoder does not.
        return None, f"not an image the suite decodes: {len(data)} bytes that start with none of the PPM (P6), PNG, " \
                     "JPEG, BMP or GIF signatures"
    if data[:2] == b"P6":
        try:
            width, height, maxval, offset = parse_ppm_header(data)
        except ValueError as e:
            return None, f"bad PPM header: {e}"
        if maxval != 255:
            return None, f"unsupported PPM: maxval {maxval}, expected 255"
        if width * height > MAX_IMAGE_PIXELS or width < 1 or height < 1:
            return None, f"bad size: declares {width} x {height}, expected 1 to {MAX_IMAGE_PIXELS} pixels"
        if len(data) - offset < width * height * 3:
            return None, f"truncated: {len(data) - offset} pixel bytes, expected {width * height * 3}"
        if mode is None:
            return None, None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.size[0] * image.size[1] > MAX_IMAGE_PIXELS:  # Before decoding: a small file can declare a bomb.
                return None, (f"too large: declares {image.size[0]} x {image.size[1]}, more than "
                              f"{MAX_IMAGE_PIXELS} pixels")
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # verify() misses truncated pixel data.
            return (None if mode is None else np.asarray(image.convert(mode))), None
    except Exception as e:  # Pillow raises many types for bad files.
        return None, f"undecodable: {type(e).__name__}: {e}"


def usable_images(folder: Path | Sequence[Path], report: DataReport) -> Iterator[tuple[Path, int, int]]:
    """`(path, width, height)` of each image in `folder` (sorted by name; or of each
    file in a list, in its order) that decodes; the rest are counted and skipped in `report`."""
    from PIL import Image

    if isinstance(folder, (str, Path)):
        files: Sequence[Path] = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        files = folder
    for path in files:
        report.read += 1
        problem = check_image_file(path)  # A listed file that is gone: "unreadable: No such file ...".
        if problem:
            report.skip(path, problem)
            continue
        with Image.open(path) as im:
            yield path, im.size[0], im.size[1]


def parse_ppm_header(data: bytes) -> tuple[int, int, int, int]:
    """Parses a binary PPM (P6) header.

    Returns:
        `(width, height, maxval, pixel_offset)`.

    Raises:
        ValueError: when the header is not `P6 <w> <h> <maxval>` followed by
            one whitespace byte.
    """
    tokens: list[bytes] = []
    pos = 0
    while len(tokens) < 4:
        while pos < len(data) and (data[pos : pos + 1].isspace() or data[pos : pos + 1] == b"#"):
            if data[pos : pos + 1] == b"#":  # A comment runs to the end of its line.
                while pos < len(data) and data[pos : pos + 1] not in (b"\n", b"\r"):
                    pos += 1
            pos += 1
        start = pos
        while pos < len(data) and not data[pos : pos + 1].isspace():
            pos += 1
        if pos >= min(len(data), 1024):  # The graph decoder reads the header from the first 1024 bytes.
            raise ValueError("header ends early" if pos >= len(data) else "header longer than 1024 bytes")
        tokens.append(data[start:pos])
    if tokens[0] != b"P6" or not all(t.isdigit() for t in tokens[1:]):
        raise ValueError(f"expected 'P6 <width> <height> <maxval>', received {b' '.join(tokens)!r}")
    width, height, maxval = (int(t) for t in tokens[1:])
    return width, height, maxval, pos + 1


def _ppm_header(data: tf.Tensor) -> tf.Tensor:
    """`(width, height, maxval, pixel offset)` of binary PPM (P6) bytes, int32, parsed in the graph.

    Header comments (`# ...` up to the end of the line, as IrfanView writes
    into some GTSRB files) count as white space.
    """
    head = tf.cast(tf.io.decode_raw(tf.strings.substr(data, 0, 1024), tf.uint8), tf.int32)
    newline = (head == 10) | (head == 13)
    # A byte is in a comment when a '#' precedes it on its line: number the
    # lines, find each line's first '#', compare positions.
    line = tf.cumsum(tf.cast(newline, tf.int32))
    index = tf.range(tf.size(head))
    first_hash = tf.math.unsorted_segment_min(
        tf.where(head == 35, index, tf.size(head)), line, tf.size(head) + 1
    )
    comment = tf.gather(first_hash, line) <= index
    # White space as `parse_ppm_header` (Python's bytes.isspace) has it: space, tab, LF, VT, FF, CR.
    space = tf.cast((head == 32) | ((head >= 9) & (head <= 13)) | comment, tf.int32)
    prev_space = tf.concat([[1], space[:-1]], 0)
    # Padded, so a header with too few fields reaches the assertion below rather than an index error.
    starts = tf.concat([tf.cast(tf.where((1 - space) * prev_space > 0)[:, 0], tf.int32), tf.zeros([4], tf.int32)], 0)
    ends = tf.cast(tf.where(space * (1 - prev_space) > 0)[:, 0], tf.int32)
    fields = tf.size(ends)
    ends = tf.concat([ends, tf.zeros([4], tf.int32)], 0)
    texts = tf.strings.substr(data, starts[:4], tf.maximum(ends[:4] - starts[:4], 0))
    numbers = tf.strings.regex_full_match(texts[1:], "[0-9]{1,9}")
    ok = tf.debugging.Assert((fields >= 4) & tf.reduce_all(numbers), [
        "Expected a PPM header `P6 <width> <height> <maxval>` (decimal numbers) in the first 1024 bytes. "
        "Received: a header without them."])
    with tf.control_dependencies([ok]):
        # Only digits reach the conversion: its error would quote the raw bytes.
        values = tf.strings.to_number(tf.where(numbers, texts[1:], "0"), tf.int32)
        return tf.reshape(tf.concat([values, ends[3:4] + 1], 0), [4])


def _decode_ppm(data: tf.Tensor) -> tf.Tensor:
    """Decodes binary PPM (P6, maxval 255) bytes in the graph; TF has no PPM op."""
    width, height, maxval, offset = tf.unstack(_ppm_header(data))
    check = tf.debugging.assert_equal(
        maxval, 255, message="Expected an 8-bit PPM (maxval 255)."
    )
    size = width * height * 3
    whole = tf.debugging.Assert(tf.strings.length(data) >= offset + size, [tf.strings.format(
        "Expected {} pixel bytes after the PPM header ({} x {} x 3). Received: {}.",
        (size, width, height, tf.strings.length(data) - offset))])
    with tf.control_dependencies([check, whole]):
        pixels = tf.io.decode_raw(tf.strings.substr(data, offset, size), tf.uint8)
    return tf.reshape(pixels, [height, width, 3])


def bytes_at(data: tf.Tensor, pos: tf.Tensor | int, n: int) -> tf.Tensor:
    """`n` bytes of `data` from `pos` as int64 `[n]`, zero-padded past the end:
    header fields of possibly truncated files, read in the graph without an out-of-range error."""
    pos = tf.minimum(tf.cast(pos, tf.int32), tf.strings.length(data))
    chunk = tf.strings.substr(tf.strings.join([tf.strings.substr(data, pos, n), "\0" * n]), 0, n)
    return tf.cast(tf.io.decode_raw(chunk, tf.uint8), tf.int64)


def _starts(head: tf.Tensor, magic: bytes) -> tf.Tensor:
    return tf.reduce_all(tf.equal(head[: len(magic)], tf.constant(list(magic), tf.int64)))


def declared_image_size(data: tf.Tensor) -> tf.Tensor:
    """The `(height, width)` an image's header declares, read in the graph
    before anything is decoded: PNG (IHDR), JPEG (`tf.image.extract_jpeg_shape`,
    which reads markers only), GIF (logical screen), BMP (info header) and
    PPM (its text header). `(-1, -1)` for bytes of no known format.
    """
    head = bytes_at(data, 0, 32)

    def be32(i):
        return head[i] * 2**24 + head[i + 1] * 2**16 + head[i + 2] * 2**8 + head[i + 3]

    def le(i, n):
        return tf.add_n([head[i + k] * 256**k for k in range(n)])

    def bmp():
        h = le(22, 4)
        return tf.stack([tf.where(h >= 2**31, 2**32 - h, h), le(18, 4)])  # Negative height: top-down rows.

    return tf.case([
        (_starts(head, b"\x89PNG\r\n\x1a\n"), lambda: tf.stack([be32(20), be32(16)])),
        (_starts(head, b"\xff\xd8"), lambda: tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64)),
        (_starts(head, b"GIF8"), lambda: tf.stack([le(8, 2), le(6, 2)])),
        (_starts(head, b"BM"), bmp),
        (_starts(head, b"P6"), lambda: tf.cast(_ppm_header(data)[1::-1], tf.int64)),
    ], default=lambda: tf.constant([-1, -1], tf.int64), exclusive=True)


def checked_image_bytes(data: tf.Tensor, max_pixels: int = MAX_IMAGE_PIXELS) -> tf.Tensor:
    """`data`, once its format is known and its declared size is within
    `max_pixels`; otherwise the graph stops with an error saying both.

    Raises (when run):
        InvalidArgumentError: `Expected PPM (P6), PNG, JPEG, BMP or GIF
            bytes ...` or `Expected an image of 1 to N pixels ...`.
    """
    hw = declared_image_size(data)
    known = hw[0] >= 0
    size = tf.strings.length(data)
    format_ok = tf.debugging.Assert(known, [tf.strings.format(
        "Expected PPM (P6), PNG, JPEG, BMP or GIF bytes. Received: {} bytes that start with none of their "
        "signatures.", size)])
    with tf.control_dependencies([format_ok]):
        pixels = hw[0] * hw[1]
    size_ok = tf.debugging.Assert((pixels <= max_pixels) & (hw[0] > 0) & (hw[1] > 0), [tf.strings.format(
        "Expected an image of 1 to {} pixels (the export's max_image_pixels). Received: a header declaring "
        "{} x {} (width x height).", (max_pixels, hw[1], hw[0]))])
    with tf.control_dependencies([size_ok]):
        return tf.identity(data)


def decode_image(data: tf.Tensor, max_pixels: int | None = MAX_IMAGE_PIXELS) -> tf.Tensor:
    """Decodes encoded image bytes to `uint8 [height, width, 3]`.

    Args:
        data: a scalar string tensor holding PPM (P6), PNG, JPEG, BMP or GIF
            bytes. Grey and RGBA images become RGB.
        max_pixels: refuse (an `InvalidArgumentError` naming the limit and
            the declared size) images whose header declares more pixels,
            before decoding; None decodes anything. Defaults to
            `MAX_IMAGE_PIXELS`.

    Returns:
        A `uint8` tensor of shape `[height, width, 3]`.
    """
    return _image_decoder(max_pixels)(data)


@functools.lru_cache(maxsize=None)
def _image_decoder(max_pixels: int | None) -> Callable:
    """`decode_image`'s graph, traced once per process and limit. Its format and size checks take ~0.3 s
    to trace, which every input pipeline (`Dataset.map` traces anew), evaluation and export would pay."""
    return tf.function(lambda data: _decode_image(data, max_pixels), input_signature=[tf.TensorSpec([], tf.string)],
                       autograph=False)


def _decode_image(data: tf.Tensor, max_pixels: int | None) -> tf.Tensor:
    if max_pixels is not None:
        data = checked_image_bytes(data, max_pixels)
    is_ppm = tf.equal(tf.strings.substr(data, 0, 2), "P6")
    image = tf.cond(
        is_ppm,
        lambda: _decode_ppm(data),
        lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
    )
    return tf.ensure_shape(image, [None, None, 3])


def resize(image: tf.Tensor, size: int) -> tf.Tensor:
    """Resizes to `size x size` float32 in [0, 255]; the one resize used everywhere.

    Training, evaluation and every export endpoint call this, so the model
    sees identical pixels whichever way an image arrives.
    """
    image = tf.image.resize(tf.cast(image, tf.float32), [size, size], antialias=True)
    return tf.clip_by_value(image, 0.0, 255.0)


# --- Pipelines ----------------------------------------------------------------


def pipeline(
    ds: tf.data.Dataset,
    decode: Callable,
    *,
    training: bool,
    batch_size: int,
    seed: int,
    augment: Callable | None = None,
) -> tf.data.Dataset:
    """The input pipeline every task uses.

    Parallel decode, cache after decode (decoding happens once), shuffle,
    batch, augment after the cache (fresh randomness every epoch, vectorised
    over the batch), prefetch.

    Args:
        ds: a dataset of per-example records (paths, labels, boxes ...).
        decode: record -> (inputs, targets), decoded and resized.
        training: shuffle and augment when True.
        batch_size: the global batch size.
        seed: shuffle seed.
        augment: optional batched (inputs, targets) -> (inputs, targets).

    Returns:
        A batched, prefetched `tf.data.Dataset`.
    """
    n = int(ds.cardinality())
    ds = ds.map(decode, num_parallel_calls=AUTOTUNE, deterministic=True).cache()
    if training:
        ds = ds.shuffle(max(1, min(n, 50_000)), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training and augment is not None:
        ds = ds.map(augment, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def single_image_endpoints(fn: Callable, max_pixels: int = MAX_IMAGE_PIXELS) -> dict:
    """Export endpoints for tasks that take one image of any size per call.

    Args:
        fn: uint8 `[h, w, 3]` -> dict of outputs.
        max_pixels: `serve_bytes` refuses images whose header declares more
            (the recipe's `max_image_pixels`). Defaults to `MAX_IMAGE_PIXELS`.

    Returns:
        `serve_bytes` (default: one encoded PPM/PNG/JPEG/BMP, RGBA and grey
        accepted) and `serve_pixels` (uint8 `[h, w, 3]`), as the `Task`
        contract's `export_endpoints` expects.
    """

    # One traced function that both endpoints call: the model's graph is traced and stored once, not per endpoint.
    one = tf.function(fn, input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])

    def serve_bytes(image):
        return one(decode_image(image, max_pixels))

    def serve_pixels(pixels):
        return one(pixels)

    return {
        "serve_bytes": (serve_bytes, [tf.TensorSpec([], tf.string, name="image")]),
        "serve_pixels": (serve_pixels, [tf.TensorSpec([None, None, 3], tf.uint8, name="pixels")]),
    }


# --- Generated or real ---------------------------------------------------------------

MARKER = ".suite-sample"  # A hidden file: no loader's glob (`*.png`, `*.json`, ...) picks it up.


def mark_generated(folder: Path, how: str) -> None:
    """Marks `folder` as a generated sample (`how`: which generator and values), so reports
    such as `suite matrix` can tell generated data from real data."""
    (Path(folder) / MARKER).write_text(how + "\n")


def generated_by(folder: Path) -> str:
    """How `folder` was generated (`mark_generated`), or "" for data the suite did not make."""
    marker = Path(folder) / MARKER
    return marker.read_text().strip() if marker.is_file() else ""
