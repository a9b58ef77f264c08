"""Typed recipes, `--set key=value` overrides, and what every run records."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from suite.errors import UserError, closest

R = TypeVar("R", bound="TrainRecipe")


@dataclasses.dataclass(frozen=True)
class TrainRecipe:
    """Values every task's recipe has; the shared trainer and the training
    approaches (`suite.approaches`) read only these.

    A task subclasses it with its own fields (each with a reason beside it).
    """

    epochs: int = 20  # Upper bound; early stopping usually ends sooner.
    batch_size: int = 64  # Per replica; global batch = batch_size x replicas.
    learning_rate: float = 2e-3  # Peak rate after warmup, for AdamW.
    warmup_epochs: int = 1  # Linear warmup avoids early divergence with BN.
    weight_decay: float = 1e-4  # Mild AdamW decay; dropout does the rest.
    early_stopping_patience: int = 6  # Epochs without val improvement.
    seed: int = 1337  # Seeds Python, NumPy, TF and the data pipeline.
    deterministic: bool = False  # Op determinism: reproducible but slower.
    clipnorm: float = 0.0  # Global gradient-norm clip; 0 = off. Detectors set it (early box losses spike).
    # Validate, checkpoint and ship an exponential moving average of the weights (Polyak averaging, as YOLO
    # trainers do), updated every step with this momentum; 0 = off (the raw weights, as before).
    ema_momentum: float = 0.0
    dropout: float = 0.2  # Before the classifier head (also a new transfer head); tasks set their own.
    # --approach transfer (see suite/approaches.py):
    head_epochs: int = 8  # Phase 1: only the new head trains, the body is frozen.
    finetune_lr_scale: float = 0.1  # Phase 2 rate = learning_rate x this: nudge learned features, do not erase them.
    finetune_bn: bool = False  # Keep the source's BatchNorm statistics: tiny sets give noisy batch statistics.
    # --approach transfer and features:
    feature_layer: str = ""  # Layer whose output are the features; "" = what the source's classifier reads.
    # --approach features:
    svm_kernel: str = "linear"  # "linear", or "rbf" via random Fourier features (both become layers).
    svm_c: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)  # C values tried; the best on val is kept.
    rff_components: int = 2048  # rbf only: random Fourier features approximating the kernel.
    # Exports served to strangers refuse, before decoding, what would exhaust a server:
    max_image_pixels: int = 50_000_000  # Declared in an image's header (a 746 KB PNG can declare 256 megapixels).
    max_audio_seconds: float = 60.0  # A WAV's frames / its rate; also bounds the resampled length.


def _parse(key: str, raw: str, kind: Any) -> Any:
    """Parses `raw` as `kind`, or raises a UserError saying what was expected."""
    origin = typing.get_origin(kind)
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is str:
            return raw
        if origin is tuple and Ellipsis in typing.get_args(kind) and raw.startswith("@"):  # A file: a value a line.
            try:
                lines = [line.strip() for line in Path(raw[1:]).read_text(encoding="utf-8").splitlines()]
            except (OSError, UnicodeDecodeError) as e:
                raise UserError(f"Expected `--set {key}=@FILE` with a readable UTF-8 file of one value per line. "
                                f"Received: {raw!r} ({e})") from e
            return tuple(_parse(key, line, typing.get_args(kind)[0]) for line in lines if line)
        if origin is tuple:
            inner, parts = typing.get_args(kind), raw.split(",")
            if Ellipsis not in inner and len(parts) != len(inner):  # tuple[float, float]: exactly two.
                raise ValueError(raw)
            return tuple(_parse(key, part, inner[0]) for part in parts)
    except ValueError:
        pass
    else:
        raise UserError(f"Recipe key '{key}' has unsupported type {kind}.")
    name = kind.__name__ if isinstance(kind, type) else str(kind)  # tuple[float, float], not "tuple".
    raise UserError(
        f"Expected `--set {key}=<{name}>`. Received: {key}={raw!r}, "
        f"which is not a valid {name}."
    )


def apply_overrides(recipe: R, pairs: Sequence[str]) -> R:
    """Returns `recipe` with `key=value` overrides applied.

    Args:
        recipe: a frozen recipe dataclass instance.
        pairs: strings of the form `key=value`.

    Returns:
        A new recipe of the same class.

    Raises:
        UserError: on a malformed pair, an unknown key (the valid keys are
            named) or a value of the wrong type.
    """
    hints = typing.get_type_hints(type(recipe))
    fields = {f.name for f in dataclasses.fields(recipe)}
    changes = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"Expected `--set key=value`. Received: {pair!r}")
        if key not in fields:
            raise UserError(
                f"Unknown recipe key '{key}'.{closest(key, fields)} "
                f"Expected one of: {', '.join(sorted(fields))}. "
                f"Received: {pair!r}"
            )
        changes[key] = _parse(key, raw, hints[key])
    return dataclasses.replace(recipe, **changes)


def recipe_from_dict(cls: type[R], values: dict) -> R:
    """Rebuilds a recipe saved by `dataclasses.asdict` (tuples come back as lists)."""
    hints = typing.get_type_hints(cls)
    fixed = {
        k: tuple(v) if typing.get_origin(hints.get(k)) is tuple else v
        for k, v in values.items()
        if k in hints
    }
    return cls(**fixed)  # type: ignore[arg-type]  # Values were checked when the recipe was saved.


# Where a run's inputs and outputs live, relative to the working directory (one name everywhere).
DATASETS, RUNS, SAVED_MODELS = Path("datasets"), Path("runs"), Path("saved_models")


def has_data(path: Path) -> bool:
    """True when `path` is a folder holding anything."""
    path = Path(path)
    return path.is_dir() and any(path.iterdir())


def worker_role() -> str:
    """`""` for the process that writes the run (no TF_CONFIG, the `chief`, or
    worker 0 of a cluster without one), else `worker-N`, the name of its scratch folder."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task, cluster = config.get("task", {}), config.get("cluster", {})
    if not task:
        return ""
    index = int(task.get("index", 0))
    if "chief" in cluster:
        return "" if task.get("type") == "chief" else f"{task.get('type', 'worker')}-{index}"
    return "" if task.get("type") == "worker" and index == 0 else f"{task.get('type', 'worker')}-{index}"


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide a run's numbers."""
    from importlib import metadata

    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for dist in ("suite", "tensorflow", "keras", "keras-cv", "tensorflow-text", "numpy", "pillow", "scikit-learn"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def fingerprint(root: Path, paths: Sequence[Path] | None = None) -> str:
    """A content hash of a dataset: relative paths and the bytes of every file.

    Args:
        root: the dataset folder.
        paths: files to hash; defaults to every file below `root`.

    Returns:
        `"blake2b:<hex>"`, equal for equal data wherever it lies.
    """
    root = Path(root)
    files = sorted(paths if paths is not None else (p for p in root.rglob("*") if p.is_file()))
    digest = hashlib.blake2b(digest_size=16)
    for path in files:
        digest.update(str(Path(path).relative_to(root)).encode())
        digest.update(Path(path).read_bytes())
    return f"blake2b:{digest.hexdigest()}"


def write_json(path: Path, obj: Any) -> None:
    """Writes JSON atomically (temp file, then rename), so readers never see half."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


def field_reasons(cls: type) -> dict[str, str]:
    """Each recipe field's reason: the comment beside it in the class that sets
    its default (the nearest in the class hierarchy), else the comment lines
    just above it. Read from the source, so `suite recipe` shows what the code says."""
    import inspect
    import io
    import tokenize

    reasons: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # Subclasses last: their comments win.
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        comments: dict[int, str] = {}
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
        lines = source.splitlines()
        for number, line in enumerate(lines, 1):
            name = line.strip().split(":", 1)[0]
            if not (line.startswith("    ") and not line.startswith("     ") and name.isidentifier()
                    and ":" in line and name in klass.__dict__.get("__annotations__", {})):
                continue
            text = comments.get(number, "")
            above: list[str] = []
            n = number - 1
            while not text and n in comments and lines[n - 1].strip().startswith("#"):
                above.insert(0, comments[n])
                n -= 1
            if text or above or name not in reasons:
                reasons[name] = text or " ".join(above)
    return reasons


def describe_recipe(recipe: Any, default: Any) -> list[dict]:
    """One row per field of `recipe`: name, type, value, the `default` recipe's
    value and the reason from the code (`field_reasons`)."""
    hints = typing.get_type_hints(type(recipe))
    reasons = field_reasons(type(recipe))
    return [{"key": f.name, "type": getattr(hints[f.name], "__name__", str(hints[f.name])),
             "value": getattr(recipe, f.name), "default": getattr(default, f.name), "reason": reasons.get(f.name, "")}
            for f in dataclasses.fields(recipe)]
