"""Atomic SavedModel export in the TF Serving layout: `saved_models/<task>/<N>/`."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from suite.config import write_json
from suite.errors import UserError

if TYPE_CHECKING:
    from suite.config import TrainRecipe
    from suite.task import Task

CARD = """# Model card: {task}, version {version}

{summary}

- Model: {model_summary}
- Exported from run: `{run_dir}`
- Training data: `{data_dir}` (fingerprint `{fingerprint}`)
- Recipe: `{recipe_name}`

## Inputs and outputs
{signatures}

## Metrics on the test split
{metrics}

## Recipe
```json
{recipe}
```
"""


def versions(root: Path) -> list[int]:
    """The integer version folders under `root`, ascending."""
    root = Path(root)
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit()) if root.is_dir() else []


def latest_export(root: Path) -> Path | None:
    """The highest-numbered version folder under `root`, or None."""
    found = versions(root)
    return Path(root) / str(found[-1]) if found else None


def export(
    task: Task[Any, Any],
    model: keras.Model,
    recipe: TrainRecipe,
    class_names: Sequence[str],
    out_root: Path,
    card: dict,
) -> Path:
    """Exports `model` with the task's endpoints to `out_root/<N>/`, atomically.

    Everything (SavedModel, `model.keras`, `labels.txt`, `model_card.md`,
    `suite.json`) is written into a temporary folder beside the target and
    then renamed, so a version folder either appears complete or not at all.

    Args:
        task: the `suite.task.Task`.
        model: the trained Keras model.
        recipe: the recipe it was trained with.
        class_names: one name per class id.
        out_root: `saved_models/<task>`.
        card: facts for the model card: `run_dir`, `data_dir`,
            `fingerprint`, `recipe_name`, `metrics`.

    Returns:
        The new version folder.
    """
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    archive = keras.export.ExportArchive()
    archive.track(model)
    endpoints = task.export_endpoints(model, recipe, list(class_names))
    lines = []
    for name, (fn, signature) in endpoints.items():
        archive.add_endpoint(name, fn, signature)
        specs = ", ".join(f"`{s.name}` {s.dtype.name}{list(s.shape)}" for s in signature)
        lines.append(f"- `{name}`: {specs}")
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=out_root))
    try:
        # A served model is never differentiated: skipping the custom-gradient traces saves seconds per export.
        archive.write_out(str(tmp), options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
                          verbose=False)
        # The Keras model too, so `suite train --approach transfer --from` can
        # fine-tune what was shipped (a SavedModel alone cannot be retrained).
        model.save(tmp / "model.keras")
        (tmp / "labels.txt").write_text("\n".join(class_names) + "\n")
        meta = {
            "task": task.name,
            "recipe": dataclasses.asdict(recipe),
            "class_names": list(class_names),
            "endpoints": list(endpoints),
            **card,
        }
        write_json(tmp / "suite.json", meta)
        # Two exports at once read the same next number; the rename is the arbiter (it fails when the folder
        # exists), and the loser writes its card again with the next number and tries that.
        while True:
            version = (versions(out_root) or [0])[-1] + 1
            (tmp / "model_card.md").write_text(
                CARD.format(
                    task=task.name,
                    version=version,
                    summary=task.summary,
                    model_summary=task.model_summary,
                    signatures="\n".join(lines),
                    metrics=_metrics_table(card.get("metrics", {})),
                    recipe=json.dumps(meta["recipe"], indent=2),
                    **{k: card.get(k, "?") for k in ("run_dir", "data_dir", "fingerprint", "recipe_name")},
                )
            )
            target = out_root / str(version)
            try:
                os.rename(tmp, target)  # Atomic on one file system; fails if taken.
                break
            except OSError:
                if not target.exists():
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _metrics_table(metrics: dict) -> str:
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    if not scalars:
        return "(not evaluated)"
    rows = "\n".join(f"| {k} | {v:.4g} |" for k, v in sorted(scalars.items()))
    return "| metric | value |\n|---|---|\n" + rows


def load_export(path: Path, task_name: str) -> tuple[Any, dict]:
    """Loads an exported version folder and its `suite.json`.

    Raises:
        UserError: when `path` is not a suite export of `task_name`.
    """
    path = Path(path)
    meta_path = path / "suite.json"
    if not (path / "saved_model.pb").exists() or not meta_path.exists():
        raise UserError(
            f"Expected a suite SavedModel folder (saved_model.pb and suite.json). "
            f"Received: {path}"
        )
    meta = json.loads(meta_path.read_text())
    if meta["task"] != task_name:
        raise UserError(
            f"Expected an export of task '{task_name}'. Received: {path}, an export "
            f"of '{meta['task']}'."
        )
    try:
        return tf.saved_model.load(str(path)), meta
    # An op TensorFlow lacks: tensorflow-text's (normalisation, tokenizers). Graph ops raise NotFoundError,
    # ops inside restored functions (the word-piece detokenizer) RuntimeError.
    except (tf.errors.NotFoundError, RuntimeError) as e:
        if "Op type not registered" not in str(e):
            raise
        import tensorflow_text  # noqa: F401 - registers its ops with TensorFlow.

        return tf.saved_model.load(str(path)), meta
