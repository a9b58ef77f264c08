"""`suite data fetch`: every task's real sources, served from 127.0.0.1 as archives in the real layout.

No network is used: a loopback server (tests/loopback.py) serves archives the
test builds from each task's generator in the source's own layout; the source
keeps its real layout (`into`, `root`) and only its URL and checksum point at
the test archive.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import os
import tarfile
import time
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest

from suite import cli, fetch
from suite.errors import UserError
from suite.fetch import MANIFEST, Remote, Source
from tasks import TASKS
from tests.loopback import closed_port, serve

SOURCES = [(t.name, s.name) for t in TASKS.values() for s in t.sources]
QUIET = {"quiet": True, "backoff": 0.01, "log": lambda line: None}


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _targz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _pack(filename: str, members: dict[str, bytes]) -> bytes:
    return _zip(members) if filename.endswith(".zip") else _targz(members)


def _files(folder: Path, prefix: str = "") -> dict[str, bytes]:
    return {prefix + p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _wav(seconds: float, rate: int, freq: float) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes((0.3 * 32767 * np.sin(2 * math.pi * freq * t)).astype("<i2").tobytes())
    return buf.getvalue()


def build_archives(task_name: str, source: Source, tmp: Path) -> tuple[dict[str, bytes], Path | None]:
    """The source's archives, built from the task's generator in the source's own layout, and the
    sample folder they were built from (None where the layout is not the generator's)."""
    task = TASKS[task_name]
    if source.name == "fsdd":  # FSDD names the label in the file: {digit}_{speaker}_{n}.wav at 8 kHz.
        members = {f"free-spoken-digit-dataset-1.0.9/recordings/{d}_{spk}_{n}.wav": _wav(0.4, 8000, 200 + 60 * d)
                   for d in range(10) for spk in ("ann", "bob", "cy") for n in range(2)}
        return {source.files[0].filename: _pack(source.files[0].filename, members)}, None
    sample = tmp / "sample"
    task.make_data(sample, 40, 0)
    if source.name == "gtsrb":  # Three archives, as the host splits them.
        train = _files(sample / "Final_Training" / "Images", "GTSRB/Training/")
        test = {k: v for k, v in _files(sample / "Final_Test" / "Images", "GTSRB/Final_Test/Images/").items()
                if not k.endswith(".csv")}
        gt = {"GT-final_test.csv": (sample / "Final_Test" / "Images" / "GT-final_test.csv").read_bytes()}
        names = [r.filename for r in source.files]
        return {names[0]: _zip(train), names[1]: _zip(test), names[2]: _zip(gt)}, sample
    (remote,) = source.files
    prefix = os.path.relpath(source.root or ".", remote.into or ".")
    prefix = "" if prefix == "." else prefix + "/"
    return {remote.filename: _pack(remote.filename, _files(sample, prefix))}, sample


def loopback(source: Source, url: str, archives: dict[str, bytes]) -> Source:
    """The source as published, with URLs on the loopback server and checksums of the test archives
    (of the same kind as the real ones: sha256, md5 or none recorded)."""
    files = []
    for r in source.files:
        data = archives[r.filename]
        files.append(dataclasses.replace(
            r, url=url + r.filename, size=len(data) if r.size is not None else None,
            sha256=hashlib.sha256(data).hexdigest() if r.sha256 else None,
            md5=hashlib.md5(data).hexdigest() if r.md5 else None))
    return dataclasses.replace(source, files=tuple(files), manual="")


def _count(data) -> int:
    return sum(len(data.splits[k]) for k in ("train", "val", "test"))


@pytest.mark.parametrize("task_name,source_name", SOURCES)
def test_each_source_fetches_into_the_layout_its_loader_reads(task_name, source_name, tmp_path):
    task = TASKS[task_name]
    source = next(s for s in task.sources if s.name == source_name)
    archives, sample = build_archives(task_name, source, tmp_path)
    with serve(archives) as server:
        if source.manual:  # An account-only host: the user's file, never a download.
            path = tmp_path / source.files[0].filename
            path.write_bytes(archives[path.name])
            root = fetch.fetch(source, tmp_path / "out", archives=[path], cache=tmp_path / "cache", **QUIET)
            assert server.requests == []
        else:
            root = fetch.fetch(loopback(source, server.url, archives), tmp_path / "out", cache=tmp_path / "cache",
                               **QUIET)
            assert sorted(server.paths()) == sorted("/" + name for name in archives)
    assert root == (tmp_path / "out" / source.root if source.root else tmp_path / "out")
    assert (tmp_path / "out" / MANIFEST).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.fetch")]  # No temporary folder left.
    data = task.load_data(root, task.recipes["smoke"])
    assert data.report.skipped == []
    if sample is not None:  # Nothing lost between the generator's folder and the fetched copy.
        assert _count(data) == _count(task.load_data(sample, task.recipes["smoke"])) > 0
    else:
        assert _count(data) == 60 and set("0123456789") <= set(data.class_names)


def test_docs_table_matches_the_sources():
    """docs/datasets.md lists every file of every source with its checksum and record."""
    table = (Path(__file__).resolve().parents[1] / "docs" / "datasets.md").read_text()
    for task in TASKS.values():
        for source in task.sources:
            for r in source.files:
                row = next((line for line in table.splitlines() if f"({r.url})" in line), "")
                assert f"| {task.name} | `{source.name}` |" in row, r.url
                assert (r.sha256 or r.md5 or "none published") in row and r.record in row
                assert (f"{r.size:,}" if r.size else "not published") in row


def _one_zip_source(tmp_path: Path, payload: dict[str, bytes], **remote) -> tuple[Source, bytes]:
    data = _zip(payload)
    r = Remote("http://unused/a.zip", len(data), hashlib.sha256(data).hexdigest(), None, "test", **remote)
    return Source("demo", "a demo set", (r,)), data


def test_checksum_mismatch_deletes_the_file_and_names_both(tmp_path):
    source, data = _one_zip_source(tmp_path, {"x/a.txt": b"a" * 1000})
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    with serve({"a.zip": tampered}) as server:
        src = dataclasses.replace(source, files=(dataclasses.replace(source.files[0], url=server.url + "a.zip"),))
        with pytest.raises(UserError, match=rf"Expected a.zip with sha256 {source.files[0].sha256}, "
                                            rf"received {hashlib.sha256(tampered).hexdigest()}"):
            fetch.fetch(src, tmp_path / "out", cache=tmp_path / "cache", **QUIET)
    assert not (tmp_path / "cache" / "demo" / "a.zip").exists()
    assert not (tmp_path / "out").exists()
    (tmp_path / "a.zip").write_bytes(tampered)  # A file the user brings is held to the same checksum.
    with pytest.raises(UserError, match=rf"received {hashlib.sha256(tampered).hexdigest()}"):
        fetch.fetch(source, tmp_path / "out", archives=[tmp_path / "a.zip"], cache=tmp_path / "cache", **QUIET)
    assert not (tmp_path / "out").exists()


def test_dropped_connection_resumes_with_range_and_the_cache_answers_next_time(tmp_path):
    payload = {"x/big.bin": np.random.default_rng(0).bytes(3 << 20)}  # Incompressible: a 3 MB archive.
    source, data = _one_zip_source(tmp_path, payload)
    with serve({"a.zip": data}) as server:
        src = dataclasses.replace(source, files=(dataclasses.replace(source.files[0], url=server.url + "a.zip"),))
        server.drop_after = len(data) // 3
        root = fetch.fetch(src, tmp_path / "out", cache=tmp_path / "cache", **QUIET)
        (first, no_range), (second, resumed) = server.requests
        assert first == second == "/a.zip" and no_range is None
        # The second asks for the rest: from what arrived whole (block-aligned) up to the cut, never from 0.
        assert resumed.startswith("bytes=") and 0 < int(resumed[6:-1]) <= len(data) // 3
        assert (root / "x" / "big.bin").read_bytes() == payload["x/big.bin"]
        # Again, into another folder: verified from the cache, no request.
        fetch.fetch(src, tmp_path / "again", cache=tmp_path / "cache", **QUIET)
        # And the same folder: already there, nothing done.
        lines: list[str] = []
        fetch.fetch(src, tmp_path / "out", cache=tmp_path / "cache", quiet=True, log=lines.append)
        assert len(server.requests) == 2
    assert "already in" in lines[0]


def test_no_public_checksum_is_recorded_on_first_use_then_enforced(tmp_path):
    data = _zip({"a.txt": b"first"})
    r = Remote("http://unused/a.zip", None, None, None, "none published")
    with serve({"a.zip": data}) as server:
        src = Source("demo", "demo", (dataclasses.replace(r, url=server.url + "a.zip"),))
        fetch.fetch(src, tmp_path / "out", cache=tmp_path / "cache", **QUIET)
        recorded = fetch._recorded(tmp_path / "cache")[server.url + "a.zip"]
        assert recorded == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                            "date": time.strftime("%Y-%m-%d")}
        (tmp_path / "cache" / "demo" / "a.zip").unlink()
        server.files["a.zip"] = _zip({"a.txt": b"changed upstream"})
        with pytest.raises(UserError, match="recorded on first use"):
            fetch.fetch(src, tmp_path / "other", cache=tmp_path / "cache", **QUIET)
    # A first file that turns out not to be the source's archive is never recorded.
    wrong = tmp_path / "PennFudanPed.zip"
    wrong.write_bytes(_zip({"something/else.txt": b"x"}))
    pennfudan = TASKS["pedestrians"].sources[0]
    with pytest.raises(UserError, match="Expected PennFudanPed/ inside the archives of pennfudan"):
        fetch.fetch(pennfudan, tmp_path / "ped", archives=[wrong], cache=tmp_path / "cache", **QUIET)
    assert pennfudan.files[0].url not in fetch._recorded(tmp_path / "cache")


def test_offline_fails_in_seconds_with_one_line_naming_the_host_and_archive(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    code = cli.main(["data", "fetch", "traffic_signs", "--cache", str(tmp_path / "cache"), "--quiet",
                     "--mirror", f"http://127.0.0.1:{closed_port()}/"])
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and elapsed < 10
    assert len(err) == 1
    assert "Expected to reach 127.0.0.1" in err[0] and "GTSRB-Training_fixed.zip" in err[0]
    assert "--archive GTSRB-Training_fixed.zip" in err[0] and "connection refused" in err[0]
    assert not (tmp_path / "datasets" / "traffic_signs-gtsrb").exists()


def test_proxy_environment_is_honoured(tmp_path, monkeypatch):
    source, data = _one_zip_source(tmp_path, {"a.txt": b"via proxy"})
    with serve({"a.zip": data}) as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.setenv("no_proxy", "")
        monkeypatch.delenv("NO_PROXY", raising=False)
        src = dataclasses.replace(source, files=(dataclasses.replace(
            source.files[0], url="http://datasets.example.invalid/pub/a.zip"),))
        root = fetch.fetch(src, tmp_path / "out", cache=tmp_path / "cache", **QUIET)
        assert proxy.paths() == ["http://datasets.example.invalid/pub/a.zip"]  # The absolute URL: a proxy request.
    assert (root / "a.txt").read_bytes() == b"via proxy"


def test_archive_from_the_user_then_train_data_by_name(tmp_path, monkeypatch, capsys):
    """Construction Site Safety needs an account: `--archive` is the only way, and `--data css` finds it."""
    monkeypatch.chdir(tmp_path)
    task = TASKS["machinery_proximity"]
    archives, _ = build_archives(task.name, task.sources[0], tmp_path)
    (name, data), = archives.items()
    assert name == "archive.zip"
    (tmp_path / "css-download.zip").write_bytes(data)  # Browsers rename downloads: any name is taken.
    assert cli.main(["data", "fetch", task.name, "--cache", str(tmp_path / "cache")]) == 2
    assert "Expected --archive archive.zip for css: sign in at https://www.kaggle.com" in capsys.readouterr().err
    assert cli.main(["data", "fetch", task.name, "--archive", "css-download.zip", "--cache", str(tmp_path / "cache"),
                     "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "train on it: suite train machinery_proximity --data css" in out
    folder = Path("datasets") / "machinery_proximity-css"
    assert cli._data(task, "css") == folder
    assert _count(task.load_data(cli._data(task, "css"), task.recipes["smoke"])) > 0
    assert cli.main(["list"]) == 0
    assert "source css: Construction Site Safety (Roboflow Universe v28, Kaggle 'Construction Site Safety Image " \
           "Dataset') (fetched: datasets/machinery_proximity-css)" in capsys.readouterr().out
    with pytest.raises(UserError, match="Run `suite data fetch pedestrians --source pennfudan` first"):
        cli._data(TASKS["pedestrians"], "pennfudan")


def test_wrong_archive_name_and_unknown_source(tmp_path, capsys):
    (tmp_path / "other.zip").write_bytes(_zip({"a": b"a"}))
    assert cli.main(["data", "fetch", "pedestrians", "--archive", str(tmp_path / "other.zip"),
                     "--out", str(tmp_path / "o")]) == 2
    assert "Expected --archive files named PennFudanPed.zip. Received: other.zip." in capsys.readouterr().err
    assert cli.main(["data", "fetch", "speech_commands", "--source", "speech_commands_v3"]) == 2
    assert "Unknown source 'speech_commands_v3'" in capsys.readouterr().err


# --- Hostile archives: refused, nothing written outside the target ----------------------------------


def _tar_with(tmp: Path, *members: tarfile.TarInfo) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        ok = tarfile.TarInfo("set/ok.txt")
        ok.size = 2
        t.addfile(ok, io.BytesIO(b"ok"))
        for m in members:
            t.addfile(m, io.BytesIO(b"x" * m.size) if m.isfile() else None)
    return buf.getvalue()


def _link(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def _file(name: str, size: int = 1) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def _zip_symlink() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("set/escape")
        info.external_attr = (0o120777 << 16)  # S_IFLNK: a symbolic link entry.
        z.writestr(info, "../../outside")
    return buf.getvalue()


HOSTILE = {
    "zip-slip": ("a.zip", lambda tmp: _zip({"set/ok.txt": b"ok", "../evil.txt": b"owned"}), "climbs out with '..'"),
    "zip-absolute": ("a.zip", lambda tmp: _zip({"/tmp/suite-evil.txt": b"owned"}), "an absolute path"),
    "zip-symlink": ("a.zip", lambda tmp: _zip_symlink(), "a link or special file"),
    "tar-slip": ("a.tar.gz", lambda tmp: _tar_with(tmp, _file("set/../../evil.txt")), "climbs out with '..'"),
    "tar-absolute": ("a.tar.gz", lambda tmp: _tar_with(tmp, _file("/tmp/suite-evil.txt")), "an absolute path"),
    "tar-symlink-out": ("a.tar.gz", lambda tmp: _tar_with(tmp, _link("set/out", "../../../etc")), "outside"),
    "tar-symlink-absolute": ("a.tar.gz", lambda tmp: _tar_with(tmp, _link("set/abs", "/etc/passwd")), "absolute"),
    "tar-hardlink-out": ("a.tar.gz", lambda tmp: _tar_with(tmp, _link("set/h", "../../evil.txt", hard=True)),
                         "outside"),
    "zip-bomb": ("a.zip", lambda tmp: _zip({"set/zeros.bin": bytes(300_000)}), "archive bomb"),
    "tar-bomb-count": ("a.tar.gz", lambda tmp: _tar_with(tmp, *[_file(f"set/{i}.txt") for i in range(60)]),
                       "archive bomb"),
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_archives_are_refused_and_nothing_escapes(kind, tmp_path):
    filename, build, reason = HOSTILE[kind]
    data = build(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    r = Remote("http://unused/" + filename, None, hashlib.sha256(data).hexdigest(), None, "test")
    (tmp_path / filename).write_bytes(data)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(UserError, match=reason):
        fetch.fetch(Source("demo", "demo", (r,)), work / "data", archives=[tmp_path / filename],
                    cache=tmp_path / "cache", max_files=50, max_bytes=200_000, **QUIET)
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if not p.is_relative_to(tmp_path / "cache"))
    assert after == [p for p in before if not p.is_relative_to(Path("cache"))]  # Not one new file, not even the target.
    assert not Path("/tmp/suite-evil.txt").exists()
