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

from suite.data import mark_generated
from suite.errors import UserError
from suite.task import MakeData


def writer(name: str) -> MakeData:
    """The `make_data` of `tasks/samples/<name>.py`, imported on first call.

    Args:
        name: the task's name (the generator module's name).

    Returns:
        A callable `(out_dir, size, seed, style="") -> None`. `style` names one of the generator's
        `STYLES` (a module-level dict of looks, where it has several); "" is its default sample.
    """

    def make_data(out_dir: Path, size: int, seed: int, style: str = "") -> None:
        module = importlib.import_module(f"tasks.samples.{name}")
        styles = getattr(module, "STYLES", {})
        if style and style not in styles:
            known = ", ".join(sorted(styles)) or f"none (the {name} sample has one look)"
            raise UserError(f"Expected a sample style of {name}: {known}. Received: --style {style}")
        module.make_data(Path(out_dir), size, seed, *([styles[style]] if style else []))
        mark_generated(Path(out_dir), f"tasks/samples/{name}.py size={size} seed={seed} style={style or 'default'}")

    make_data.__doc__ = f"Writes a sample dataset with `tasks/samples/{name}.py` (lazily imported)."
    return make_data
