"""The task contract, held for every registered task (parametrized over the registry)."""

from __future__ import annotations

import csv
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

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
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))
    report = json.loads((run / "data_report.json").read_text())
    assert report["read"] >= task.smoke_size and report["skipped"] == 0 and report["files"] == []
    assert len((run / "history.csv").read_text().splitlines()) >= 2

    result = json.loads((run / "metrics.json").read_text())
    for metric, floor in task.smoke_floors.items():
        assert result[metric] > floor, (metric, result[metric], floor)
    if task.primary_metric == "accuracy":  # Classifiers leave their confusion matrix and plots in the run.
        rows = list(csv.reader((run / "confusion_matrix.csv").open()))
        assert rows[0][1:] == config["class_names"]
        counts = np.array([[int(v) for v in r[1:]] for r in rows[1:]])
        assert counts.sum() == result["n"] and np.trace(counts) == round(result["accuracy"] * result["n"])
        for name in ("confusion_matrix.png", "calibration.png", "pr_curves.png"):
            assert (run / name).stat().st_size > 0, name
    if "ap50" in result:  # Detectors say how their AP was scored: the COCO convention, not the serving threshold.
        recipe = task.recipes["smoke"]
        assert result["detections_scored"].startswith(f"COCO convention: detections above confidence "
                                                      f"{recipe.eval_confidence_threshold:g}, up to 100 per image")

    export = smoke["export"]
    for name in ("saved_model.pb", "labels.txt", "model_card.md", "suite.json"):
        assert (export / name).exists(), name
    assert not list((work / "exports").glob(".tmp*"))

    # The shipped graph scores like the checkpoint it came from: the same weights, so every
    # metric within one example of it (and above the floors in its own right).
    out = run_cli("evaluate", task.name, "--model", str(export), "--data", "data", "--json", cwd=work)
    shipped = json.loads(out.stdout.strip().splitlines()[-1])
    assert shipped["n"] == result["n"]
    for metric, floor in task.smoke_floors.items():
        assert shipped[metric] == pytest.approx(result[metric], abs=1 / result["n"]), metric
        assert shipped[metric] > floor, (metric, shipped[metric], floor)

    # `suite predict` says what the export says for each file, and skips a bad one with the reason.
    files = _sample_files(work / "data")
    bad = work / f"not_media{files[0].suffix}"
    bad.write_bytes(b"this is not a media file")
    out = run_cli("predict", task.name, *map(str, files), str(bad), "--model", str(export), cwd=work)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == len(files) + 1
    loaded, meta = load_export(export, task.name)
    for file, line in zip(files, lines):
        said, own = _predicted(task.name, line, file, loaded, meta)
        assert said == own, (line, own)
    assert lines[-1].startswith(f"{bad}: skipped (") and "expected" in lines[-1]


def _serve_file(loaded, file):
    """The export's default signature on one file's bytes (batched when the endpoint takes a batch)."""
    fn = loaded.signatures["serving_default"]
    (key, spec), = fn.structured_input_signature[1].items()
    data = file.read_bytes()
    return fn(**{key: tf.constant([data] if spec.shape.rank else data)})


def _predicted(name, line, file, loaded, meta):
    """What a `suite predict` line says about `file`, and what the export itself gives for it."""
    out = _serve_file(loaded, file)
    prefix = re.escape(f"{file}: ")
    if name in ("traffic_signs", "speech_commands"):
        label, class_id, p = re.match(prefix + r"(.+) \(class (\d+)\) ([\d.]+)  \| next: ", line).groups()
        probs = out["probabilities"].numpy()[0]
        return (label, int(class_id), round(float(p), 3)), \
            (meta["class_names"][probs.argmax()], int(probs.argmax()), round(float(probs.max()), 3))
    if name == "cell_microscopy":
        return int(re.match(prefix + r"(\d+) nuclei \(", line).group(1)), int(out["num_nuclei"])
    if name == "pedestrians":
        shown, threshold = re.match(prefix + r"(\d+) person box\(es\) at score >= ([\d.]+) ", line).groups()
        scores = out["scores"].numpy()[: int(out["num_detections"])]
        return int(shown), int((scores >= float(threshold)).sum())
    if name == "machinery_proximity":
        return re.match(prefix + r"(SAFE|WARNING|DANGER) \(", line).group(1), out["hazard"].numpy().decode().upper()
    if name == "voice_commands":
        return re.match(prefix + r'"(.*)" \(confidence ', line).group(1), out["text"].numpy()[0].decode()
    raise AssertionError(f"Expected a parser for {name}'s `suite predict` line in this test. Received: {line!r}")


def test_list_shows_every_task_and_what_exists(tmp_path):
    """`suite list`: each task's summary and metric; its data, newest run and newest export when they
    exist (the newest by time and by version), and how to make them when they do not."""
    (tmp_path / "datasets" / "traffic_signs").mkdir(parents=True)
    (tmp_path / "datasets" / "traffic_signs" / "x.ppm").write_bytes(b"P6")
    for when, run in enumerate(("20260102-000000", "20260101-000000")):  # The newest is the last written.
        (tmp_path / "runs" / "pedestrians" / run).mkdir(parents=True)
        (tmp_path / "runs" / "pedestrians" / run / "best.keras").write_bytes(b"")
        os.utime(tmp_path / "runs" / "pedestrians" / run / "best.keras", (1e9 + when, 1e9 + when))
    for version in ("2", "10"):
        (tmp_path / "saved_models" / "speech_commands" / version).mkdir(parents=True)
    out = run_cli("list", cwd=tmp_path).stdout
    blocks = {b.split(":")[0]: b for b in re.split(r"\n(?=\S)", out.strip())}
    assert list(blocks) == list(TASKS)
    for name, task in TASKS.items():
        block = blocks[name]
        assert block.startswith(f"{name}: {task.summary}") and task.primary_metric in block
        data = "datasets/traffic_signs" if name == "traffic_signs" else f"none (suite data make {name})"
        run = "runs/pedestrians/20260101-000000" if name == "pedestrians" else "none"
        export = "saved_models/speech_commands/10" if name == "speech_commands" else "none"
        assert re.search(rf"\n  data: +{re.escape(data)}\n", block), block
        assert re.search(rf"\n  trained run: +{re.escape(run)}\n", block), block
        assert re.search(rf"\n  export: +{re.escape(export)}(\n|$)", block), block
        for source in task.sources:
            assert f"  source {source.name}: {source.title} (`suite data fetch {name} --source {source.name}" in block


# The detectors' smoke tests export their run a second time already (tests/test_export_recipe.py, with recipe
# values changed that leave the boxes as they are, and compared box for box); a third export costs ~20 s each.
_EXPORTED_AGAIN = ("pedestrians", "machinery_proximity")


@pytest.mark.parametrize("smoke", [n for n in ALL_TASKS if n not in _EXPORTED_AGAIN], indirect=True)
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
