"""Run directories: `runs/<task>/<run-id>/`, newest last."""

from __future__ import annotations

import time
from pathlib import Path


def new_run_dir(root: Path) -> Path:
    """Creates and returns `root/<YYYYmmdd-HHMMSS>` (with a suffix if taken)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        path = root / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"Could not create a run directory under {root}")


def latest_run(root: Path, need: str = "best.keras") -> Path | None:
    """The newest run under `root` holding `need`, or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    runs = sorted(
        (p for p in root.iterdir() if (p / need).exists()), key=lambda p: (p / need).stat().st_mtime
    )
    return runs[-1] if runs else None
