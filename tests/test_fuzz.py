"""Hostile and broken inputs: every export endpoint that takes file bytes, and every
loader, fed mutated files (tests/fuzzing.py) with a fixed seed.

An export must refuse each bad input with a clear error (never crash the
process, hang or return outputs for garbage); a loader must skip and count
each bad file, and what it keeps must then decode in the task's own tf.data
pipeline. `make test` runs `SUITE_FUZZ_COUNT` (default 20) inputs per endpoint
and loader; `make fuzz` runs 1,000 each.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fuzzing
from conftest import ALL_TASKS, ROOT

COUNT = int(os.environ.get("SUITE_FUZZ_COUNT", "20"))
SECONDS_PER_INPUT = 10.0  # A served input that takes longer counts as a hang.
MEDIA = {".wav": "wav", ".ppm": "image", ".png": "image", ".jpg": "image", ".jpeg": "image", ".bmp": "image"}
ENDPOINTS = {"speech_commands": "serve_wav", "voice_commands": "serve_wav", "traffic_signs": "serve_bytes"}  # Others: serve_bytes.
# Files a loader does not read with the recipe fuzzed here (Penn-Fudan's instance masks: boxes come from Annotation/;
# masks are read, and a bad one noted, only with copy-paste on: tests/test_pedestrians.py), so not mutated.
NOT_READ = {"pedestrians": ("PedMasks",)}


def _media(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in MEDIA and p.is_file())


def _report(**facts) -> None:
    """One JSON line per endpoint or loader run to `SUITE_FUZZ_REPORT` (bench/run.py's reliability figures)."""
    print(f"[fuzz] {json.dumps(facts)}", flush=True)
    if os.environ.get("SUITE_FUZZ_REPORT"):
        with open(os.environ["SUITE_FUZZ_REPORT"], "a") as f:
            f.write(json.dumps(facts) + "\n")


@pytest.mark.parametrize("smoke", ALL_TASKS, indirect=True)
def test_export_refuses_mutated_files_clearly(smoke, tmp_path):
    task = smoke["task"]
    seed_file = _media(smoke["work"] / "data")[0]
    kind = MEDIA[seed_file.suffix.lower()]
    out = tmp_path / "fuzz.jsonl"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "fuzzing.py"), str(smoke["export"]), ENDPOINTS.get(task.name, "serve_bytes"),
         kind, str(seed_file), str(COUNT), "0", str(out)],
        capture_output=True, text=True, timeout=60 + COUNT * SECONDS_PER_INPUT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"})
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    assert proc.returncode == 0, f"the serving process died after {len(rows)} inputs:\n{proc.stderr[-2000:]}"
    assert len(rows) == COUNT
    _report(task=task.name, what=ENDPOINTS.get(task.name, "serve_bytes"), inputs=len(rows),
            verdicts=dict(collections.Counter(r["verdict"] for r in rows)),
            accepted_invalid=sum(r["verdict"] == "accepted" and not r["valid"] for r in rows),
            refused_valid=sum(r["verdict"] == "refused" and r["valid"] for r in rows),
            max_seconds=round(max(r["seconds"] for r in rows), 3), crashed=proc.returncode != 0)
    for r in rows:
        assert r["verdict"] in ("accepted", "refused"), r  # Python exceptions (UnicodeDecodeError ...) are bugs.
        assert r["verdict"] == "refused" or r["valid"], f"accepted an input no decoder accepts: {r}"
        assert r["verdict"] == "accepted" or len(r["message"]) > 10, r
        assert r["seconds"] < SECONDS_PER_INPUT, r
    refused = [r for r in rows if r["verdict"] == "refused"]
    assert len(refused) >= COUNT // 2  # Most mutations break a file: the fuzzer reaches the checks.
    if COUNT >= 20:
        mutators = {r["how"] for r in refused}
        assert {"empty", "text", "wrong_magic", "truncate"} <= mutators


@pytest.mark.parametrize("smoke", ALL_TASKS, indirect=True)
def test_loader_skips_and_counts_mutated_files(smoke, tmp_path):
    """Mutated copies of the smoke data set: each bad file is skipped and counted (or, if the mutation
    left it a valid file, kept), and every kept example goes through the task's pipeline."""
    task = smoke["task"]
    recipe = task.recipes["smoke"]
    rng = np.random.default_rng(0)
    done, rounds, invalid, skipped_total = 0, 0, 0, 0
    while done < COUNT:
        data = tmp_path / f"round{rounds}"
        shutil.copytree(smoke["work"] / "data", data)
        files = [f for f in _media(data) if not set(NOT_READ.get(task.name, ())) & set(f.relative_to(data).parts)]
        chosen = rng.choice(len(files), min(len(files) // 2, COUNT - done), replace=False)
        mutated = {}
        for i, k in enumerate(chosen):
            how = fuzzing.MUTATORS[(done + i) % len(fuzzing.MUTATORS)]
            path = files[k]
            path.write_bytes(fuzzing.mutate(path.read_bytes(), rng, how))
            mutated[path] = (how, fuzzing.valid(path.read_bytes(), MEDIA[path.suffix.lower()]))
        loaded = task.load_data(data, recipe)
        skipped = [Path(p) for p, _ in loaded.report.skipped]
        for path, (how, valid) in mutated.items():
            # Skipped itself, in a skipped folder, or in a skipped example's folder (a DSB mask of a bad image).
            counted = any(s == path or s in path.parents or (s.parent.parent.name == s.stem and s.parent.parent in
                                                              path.parents) for s in skipped)
            assert counted or valid, f"{task.name}: a {how} file was neither skipped nor valid: {path}"
        assert loaded.report.read >= len(mutated)
        # What was kept must decode in the pipeline training and evaluation use.
        for split in ("train", "val", "test"):
            for _ in task.dataset(loaded.splits[split], recipe, False, 16, loaded.class_names):
                pass
        bad = sum(1 for _, valid in mutated.values() if not valid)
        done, rounds, invalid, skipped_total = done + len(mutated), rounds + 1, invalid + bad, skipped_total + len(skipped)
        shutil.rmtree(data)
    _report(task=task.name, what="loader", inputs=done, invalid=invalid, skipped=skipped_total, crashed=False)
    assert invalid > done // 3  # The mutations do break files: the loader's checks were reached.
