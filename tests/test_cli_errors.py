"""Every user error gets one clear message, exit status 2 and no traceback."""

from __future__ import annotations

import pytest

from suite.cli import main


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Nothing lands in the checkout.


def _error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_unknown_task_lists_tasks_and_suggests(capsys):
    err = _error(capsys, "train", "trafic_signs")
    assert "Unknown task 'trafic_signs'" in err
    assert "Did you mean 'traffic_signs'?" in err
    assert "Expected one of: traffic_signs" in err


def test_unknown_set_key_names_valid_keys(capsys, tmp_path):
    err = _error(capsys, "train", "traffic_signs", "--data", str(tmp_path), "--set", "epoch=3")
    assert "Unknown recipe key 'epoch'" in err and "epochs" in err and "learning_rate" in err


def test_wrong_set_type(capsys, tmp_path):
    err = _error(capsys, "train", "traffic_signs", "--data", str(tmp_path), "--set", "epochs=many")
    assert "Expected `--set epochs=<int>`. Received: epochs='many'" in err


def test_unknown_recipe(capsys):
    err = _error(capsys, "train", "traffic_signs", "--recipe", "fast")
    assert "Unknown recipe 'fast'" in err and "default, smoke" in err


def test_missing_data_says_what_layout_and_how_to_get_it(capsys, tmp_path):
    err = _error(capsys, "train", "traffic_signs", "--data", str(tmp_path / "nope"))
    assert "Final_Training/Images/000NN/*.ppm" in err
    assert "Received:" in err and "no such folder" in err
    assert "suite data make traffic_signs" in err


def test_malformed_data_is_described(capsys, tmp_path):
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "a.jpg").write_bytes(b"x")
    err = _error(capsys, "evaluate", "traffic_signs", "--data", str(tmp_path), "--model", str(tmp_path))
    assert "Expected a run directory" in err
    err = _error(capsys, "train", "traffic_signs", "--data", str(tmp_path))
    assert "Expected the GTSRB layout" in err and "'pictures'" in err


def test_bad_gt_csv_columns(capsys, tmp_path):
    class_dir = tmp_path / "Final_Training" / "Images" / "00000"
    class_dir.mkdir(parents=True)
    (class_dir / "GT-00000.csv").write_text("Filename;ClassId\r\na.ppm;0\r\n")
    err = _error(capsys, "train", "traffic_signs", "--data", str(tmp_path))
    assert "Expected GT csv columns Filename;Width;Height;Roi.X1" in err and "missing" in err


def test_evaluate_and_predict_without_models(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _error(capsys, "evaluate", "traffic_signs")
    assert "Expected a trained run under runs/traffic_signs/" in err and "suite train traffic_signs" in err
    (tmp_path / "x.ppm").write_bytes(b"P6")
    err = _error(capsys, "predict", "traffic_signs", "x.ppm")
    assert "Expected an export under saved_models/traffic_signs/" in err
    err = _error(capsys, "predict", "traffic_signs", "missing.ppm", "--model", str(tmp_path))
    assert "Expected a readable file. Received: missing.ppm" in err


def test_data_make_refuses_to_overwrite(capsys, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    err = _error(capsys, "data", "make", "traffic_signs", "--out", str(tmp_path))
    assert "Use --force" in err
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_resume_rejects_overrides(capsys, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    err = _error(capsys, "train", "traffic_signs", "--run-dir", str(tmp_path), "--resume", "--set", "epochs=2")
    assert "Expected no --set with --resume" in err
