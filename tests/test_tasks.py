"""The task contract, held for every registered task (parametrized over the registry)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ALL_TASKS, run_cli
from suite.export import load_export
from tasks import TASKS


@pytest.mark.parametrize("name", list(TASKS))
def test_registry_names_match_modules(name):
    task = TASKS[name]
    assert task.name == name
    assert {"default", "smoke"} <= set(task.recipes)
    assert task.recipes["smoke"].epochs <= task.recipes["default"].epochs


@pytest.mark.parametrize("name", list(TASKS))
def test_generator_writes_a_layout_the_loader_reads(name, tmp_path):
    task = TASKS[name]
    task.make_data(tmp_path / "data", task.smoke_size, 3)
    data = task.load_data(tmp_path / "data", task.recipes["smoke"])
    assert data.report.skipped == []
    for split in ("train", "val", "test", "all"):
        assert len(data.splits[split]) > 0, split
    assert len(data.splits["all"]) >= task.smoke_size


@pytest.mark.parametrize("smoke", ALL_TASKS, indirect=True)
def test_cli_smoke_run_end_to_end(smoke):
    """data make -> train --recipe smoke -> evaluate -> export -> predict."""
    task, work = smoke["task"], smoke["work"]
    run = work / "run"
    for name in ("config.json", "history.csv", "best.keras", "last.keras", "metrics.json", "data_report.json"):
        assert (run / name).exists(), name
    config = json.loads((run / "config.json").read_text())
    assert config["versions"]["tensorflow"].startswith("2.")
    assert config["data_fingerprint"].startswith("blake2b:")
    assert config["recipe"]["epochs"] == task.recipes["smoke"].epochs
    assert not (run / "backup").exists()  # Removed once training completes.

    result = json.loads((run / "metrics.json").read_text())  # `suite evaluate` of the export is checked below.
    assert result[task.primary_metric] > task.smoke_floor

    export = smoke["export"]
    for name in ("saved_model.pb", "labels.txt", "model_card.md", "suite.json"):
        assert (export / name).exists(), name
    assert not list((work / "exports").glob(".tmp*"))

    # The shipped graph scores like the checkpoint it came from.
    out = run_cli("evaluate", task.name, "--model", str(export), "--data", "data", "--json", cwd=work)
    shipped = json.loads(out.stdout.strip().splitlines()[-1])
    assert shipped[task.primary_metric] == pytest.approx(result[task.primary_metric], abs=0.02)

    files = _sample_files(work / "data")
    out = run_cli("predict", task.name, *map(str, files), "--model", str(export), cwd=work)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == len(files)
    _, meta = load_export(export, task.name)
    assert all(any(c in line for c in meta["class_names"]) for line in lines)


@pytest.mark.parametrize("smoke", ALL_TASKS, indirect=True)
def test_list_shows_every_task(smoke):
    out = run_cli("list", cwd=smoke["work"])
    for name, task in TASKS.items():
        assert f"{name}: {task.summary}" in out.stdout
        assert task.primary_metric in out.stdout


@pytest.mark.parametrize("smoke", ALL_TASKS, indirect=True)
def test_export_versions_increment_and_stay_atomic(smoke):
    work, task = smoke["work"], smoke["task"]
    run_cli("export", task.name, "--run", "run", "--out", "exports", cwd=work)
    assert sorted(p.name for p in (work / "exports").iterdir()) == ["1", "2"]
    a, _ = load_export(work / "exports" / "1", task.name)
    b, _ = load_export(work / "exports" / "2", task.name)
    assert sorted(a.signatures) == sorted(b.signatures)
    files = _sample_files(work / "data")
    for name, fn in a.signatures.items():  # Same inputs, same outputs.
        _, specs = fn.structured_input_signature
        inputs = {k: _example(spec, files) for k, spec in specs.items()}
        out_a, out_b = fn(**inputs), b.signatures[name](**inputs)
        for key in out_a:
            np.testing.assert_array_equal(out_a[key].numpy(), out_b[key].numpy())


def _sample_files(data_dir):
    """Two media files of a task's sample data (images or audio)."""
    return sorted(p for p in data_dir.rglob("*") if p.suffix in (".ppm", ".png", ".jpg", ".wav")
                  and not p.parent.name.startswith("_"))[:2]


def _example(spec, files):
    """A small valid input for a signature input spec: real file bytes or values."""
    import tensorflow as tf

    if spec.dtype == tf.string:  # A batch of files, or one file for single-image endpoints.
        return tf.constant([f.read_bytes() for f in files] if spec.shape.rank else files[0].read_bytes())
    shape = [2 if d is None else d for d in spec.shape]
    if len(shape) >= 3 and spec.shape[-2] is None:  # Images: batched or single, of any size.
        shape[-3:-1] = [40, 40]
    values = np.random.default_rng(0).uniform(0, 255 if spec.dtype == tf.uint8 else 1, shape)
    return tf.constant(values.astype(spec.dtype.as_numpy_dtype))
