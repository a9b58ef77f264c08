"""Exports appear atomically: a failed export leaves nothing behind."""

from __future__ import annotations

import types

import keras
import pytest
import tensorflow as tf

from suite import export as export_lib


def _tiny():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))

    def endpoints(model, recipe, class_names):
        def serve(x):
            return {"probabilities": model(x)}

        return {"serve": (serve, [tf.TensorSpec([None, 4], tf.float32, name="x")])}

    task = types.SimpleNamespace(name="tiny", summary="s", model_summary="m", export_endpoints=endpoints)
    return task, model


def test_failed_export_leaves_no_version(tmp_path, monkeypatch):
    task, model = _tiny()
    archive_cls = type(keras.export.ExportArchive())  # The backend's subclass.
    real_write = archive_cls.write_out

    def broken(self, path, **kwargs):
        real_write(self, path, **kwargs)  # Half the work is on disk ...
        raise OSError("disk full")  # ... when the export fails.

    monkeypatch.setattr(archive_cls, "write_out", broken)
    with pytest.raises(OSError, match="disk full"):
        export_lib.export(task, model, types.SimpleNamespace(), ["a", "b"], tmp_path, {})
    assert list(tmp_path.iterdir()) == []


def test_export_writes_a_complete_version(tmp_path):
    task, model = _tiny()
    import dataclasses

    @dataclasses.dataclass
    class R:
        epochs: int = 1

    target = export_lib.export(task, model, R(), ["a", "b"], tmp_path, {"metrics": {"accuracy": 0.5}})
    assert target == tmp_path / "1"
    assert (target / "labels.txt").read_text() == "a\nb\n"
    assert "| accuracy | 0.5 |" in (target / "model_card.md").read_text()
    loaded, meta = export_lib.load_export(target, "tiny")
    assert meta["class_names"] == ["a", "b"]
    x = tf.ones([3, 4])
    assert float(tf.reduce_max(tf.abs(loaded.serve(x)["probabilities"] - model(x)))) < 1e-6
    assert export_lib.latest_export(tmp_path) == target


def _recipe():
    import dataclasses

    @dataclasses.dataclass
    class R:
        epochs: int = 1

    return R()


def test_an_export_that_loses_the_race_for_a_version_takes_the_next(tmp_path, monkeypatch):
    """Another export renames its folder into `1` between this one reading the next number and
    renaming: this one becomes `2`, complete (card included, with its own number), and `1` is untouched."""
    import os

    task, model = _tiny()
    real_rename = os.rename
    raced = []

    def rival_first(src, dst):
        if not raced:  # The rival wins the first rename.
            raced.append(dst)
            os.makedirs(dst)
            (tmp_path / "1" / "saved_model.pb").write_text("the rival's")
        return real_rename(src, dst)

    monkeypatch.setattr(export_lib.os, "rename", rival_first)
    target = export_lib.export(task, model, _recipe(), ["a", "b"], tmp_path, {})
    assert raced == [tmp_path / "1"] and target == tmp_path / "2"
    assert (tmp_path / "1" / "saved_model.pb").read_text() == "the rival's"
    assert "version 2" in (target / "model_card.md").read_text()
    assert {"saved_model.pb", "model.keras", "labels.txt", "suite.json", "model_card.md"} <= {
        p.name for p in target.iterdir()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2"]  # No temporary folder left.


def test_two_exports_at_the_same_moment_get_two_complete_versions(tmp_path):
    """Real concurrency: two processes export into the same folder at once."""
    import subprocess
    import sys
    import textwrap

    from conftest import ROOT

    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT / 'tests')!r})
        from test_export import _tiny, _recipe
        from suite import export as export_lib
        task, model = _tiny()
        while time.time() < float(sys.argv[1]):  # Both start the export at the same instant.
            time.sleep(0.001)
        print(export_lib.export(task, model, _recipe(), ["a", "b"], {str(tmp_path)!r}, {{}}).name)
    """)
    import time

    start = str(time.time() + 8)  # Time for both interpreters to import TensorFlow.
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", script, start], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    names = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert names == ["1", "2"], [p.returncode for p in procs]
    for name in names:
        assert f"version {name}" in (tmp_path / name / "model_card.md").read_text()
        loaded, _ = export_lib.load_export(tmp_path / name, "tiny")
        assert loaded.serve(tf.ones([1, 4]))["probabilities"].shape == (1, 2)
