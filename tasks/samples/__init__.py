"""Sample-data generators, one module per task (plus shared drawing pieces).

Each `tasks/samples/<task>.py` writes a realistic sample in the real dataset's
own on-disk layout, so the task's loader reads it exactly as it reads the real
data. Task modules reach their generator through `writer`, which imports it
only when data is made: training, evaluating or serving never loads the
drawing and synthesis code.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from suite.task import MakeData


def writer(name: str) -> MakeData:
    """The `make_data` of `tasks/samples/<name>.py`, imported on first call.

    Args:
        name: the task's name (the generator module's name).

    Returns:
        A callable `(out_dir, size, seed) -> None`.
    """

    def make_data(out_dir: Path, size: int, seed: int) -> None:
        importlib.import_module(f"tasks.samples.{name}").make_data(Path(out_dir), size, seed)

    make_data.__doc__ = f"Writes a sample dataset with `tasks/samples/{name}.py` (lazily imported)."
    return make_data
