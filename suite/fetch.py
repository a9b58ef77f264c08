"""Real datasets by name: download, verify, extract safely, in the layout the task's loader reads.

`suite data fetch TASK [--source NAME]` runs `fetch()` for one of the task's
`Source`s (declared in the task file, beside its loader). Each file of a source
has a pinned checksum from a public record (sha256 where one is published,
otherwise the md5 that torchvision or TFDS record, with the byte size); the code
names the record beside each value. A source whose host publishes no checksum
is verified on first use: the sha256 and size of the first successful fetch are
recorded in the cache and every later fetch must match them (`suite data fetch`
prints them so a team can pin them).

What a fetch guarantees:
- Downloads go to a cache folder (`~/.cache/suite`, or `$SUITE_CACHE_DIR`, or
  `--cache`), resume with HTTP Range after an interruption, retry with backoff,
  honour `http_proxy`/`https_proxy`/`no_proxy` (requests reads them), and show
  bytes, rate and ETA. A second fetch of a verified file makes no request.
- A checksum mismatch deletes the file and fails, naming expected and received.
- Extraction refuses absolute paths, `..` escapes, links pointing outside the
  target and special files, and stops at a size and file-count limit (archive
  bombs). Everything is extracted into a temporary folder beside the target and
  renamed into place, so a dataset folder is complete or absent.
- `--archive FILE` does the same from files a user already has (air-gapped
  machines, or hosts that need an account), checksums included; files are
  matched to a source's by name, except a manual source's one file.
- Offline, a fetch fails in seconds with one line naming what could not be
  reached and how to use `--archive`.

This module never imports `tasks`: the CLI hands it a task's sources.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import stat
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from suite.errors import UserError, closest

MAX_BYTES = 64 * 2**30  # Extraction limit; Speech Commands v0.02 is the largest source, ~3.8 GB extracted.
MAX_FILES = 500_000  # Extraction limit; Speech Commands v0.02 holds ~106,000 files.
CHUNK = 1 << 20
MANIFEST = ".suite-fetch.json"  # Written into each fetched dataset folder; loaders ignore dot files.


@dataclasses.dataclass(frozen=True)
class Remote:
    """One file of a source.

    Args:
        url: where it is published.
        size: its size in bytes, or None where no record gives it.
        sha256: its sha256, or None where none is published.
        md5: its md5, where only that is recorded (torchvision, older TFDS).
        record: where the checksum and size were recorded (a URL or a
            repository path), or why there is none.
        into: the folder inside the dataset folder the archive extracts into
            (`""`: the dataset folder itself). Defaults to `""`.
    """

    url: str
    size: int | None
    sha256: str | None
    md5: str | None
    record: str
    into: str = ""

    @property
    def filename(self) -> str:
        return PurePosixPath(urlsplit(self.url).path).name


@dataclasses.dataclass(frozen=True)
class Source:
    """A public dataset a task can train on, as its hosts publish it.

    Args:
        name: the name used with `--source` and `--data NAME`.
        title: the dataset and version, in words.
        files: the archives to fetch and extract.
        root: the folder (inside the dataset folder) that `suite train TASK
            --data` reads. Defaults to `""` (the dataset folder).
        licence: its licence, in words.
        manual: for hosts that need an account: where a user downloads the
            archive to pass with `--archive`. A source with `manual` is never
            downloaded. Defaults to `""`.
    """

    name: str
    title: str
    files: tuple[Remote, ...]
    root: str = ""
    licence: str = ""
    manual: str = ""


def cache_dir(override: str | Path | None = None) -> Path:
    """`override`, else `$SUITE_CACHE_DIR`, else `~/.cache/suite`."""
    if override:
        return Path(override)
    return Path(os.environ.get("SUITE_CACHE_DIR") or Path.home() / ".cache" / "suite")


def dataset_dir(datasets: Path, task: str, source: str) -> Path:
    """Where a fetched source lives: `datasets/<task>-<source>/` (beside the sample, `datasets/<task>/`)."""
    return Path(datasets) / f"{task}-{source}"


def find_source(sources: Sequence[Source], name: str | None, task: str) -> Source:
    """The source called `name` (the first when None), or a UserError listing them."""
    if not sources:
        raise UserError(f"Expected a task with public sources to fetch. Received: {task}, which declares none.")
    if name is None:
        return sources[0]
    for s in sources:
        if s.name == name:
            return s
    names = [s.name for s in sources]
    raise UserError(f"Unknown source '{name}' for {task}.{closest(name, names)} "
                    f"Expected one of: {', '.join(names)}. Received: {name!r}")


# --- Checksums ---------------------------------------------------------------------


def digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _recorded(cache: Path) -> dict[str, Any]:
    path = cache / "recorded.json"
    return json.loads(path.read_text()) if path.exists() else {}


def verify(path: Path, remote: Remote, cache: Path) -> dict[str, Any] | None:
    """Checks `path` against the remote's pinned size and checksum, or the one recorded on first use.

    Returns:
        For a file no public record pins and none was recorded yet, the record
        to keep (`record_first_use`) once the fetch succeeds; else None.

    Raises:
        UserError: on a mismatch, after deleting the file.
    """
    size = path.stat().st_size
    problems, first_use = [], None
    if remote.size is not None and size != remote.size:
        problems.append(f"size {remote.size:,} bytes, received {size:,}")
    if not problems and remote.sha256:
        got = digest(path, "sha256")
        if got != remote.sha256:
            problems.append(f"sha256 {remote.sha256}, received {got}")
    elif not problems and remote.md5:
        got = digest(path, "md5")
        if got != remote.md5:
            problems.append(f"md5 {remote.md5}, received {got}")
    elif not problems:  # No public record: trust on first use, then hold every later fetch to it.
        known = _recorded(cache).get(remote.url)
        got = digest(path, "sha256")
        if known and (known["sha256"] != got or known["size"] != size):
            problems.append(f"sha256 {known['sha256']} ({known['size']:,} bytes, recorded on first use "
                            f"in {cache / 'recorded.json'}; remove that entry if upstream changed), received "
                            f"{got} ({size:,} bytes)")
        elif not known:
            first_use = {"url": remote.url, "sha256": got, "size": size, "date": time.strftime("%Y-%m-%d")}
    if problems:
        path.unlink(missing_ok=True)
        raise UserError(f"Expected {remote.filename} with {'; '.join(problems)}. The file was deleted; "
                        "fetch again (a changed upstream file needs a new pinned checksum).")
    return first_use


def record_first_use(cache: Path, records: list[dict[str, Any]], log: Callable[[str], None]) -> None:
    """Keeps the checksums of files no public record pins, once their fetch succeeded (a wrong file
    that fails to extract is never recorded)."""
    if not records:
        return
    table = _recorded(cache)
    for record in records:
        url = record.pop("url")
        table[url] = record
        log(f"[fetch] {PurePosixPath(urlsplit(url).path).name}: no public checksum exists; recorded sha256 "
            f"{record['sha256']} and {record['size']:,} bytes on first use")
    _write_json_atomic(cache / "recorded.json", table)


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


# --- Downloads ---------------------------------------------------------------------


class _Unreachable(Exception):
    """The host could not be reached at all (no network, DNS failure, refused)."""


def _progress(total: int | None, initial: int, name: str, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                disable=quiet, file=sys.stderr, mininterval=0.5, dynamic_ncols=True)


def download(url: str, dest: Path, *, size: int | None = None, retries: int = 4, backoff: float = 1.0,
             timeout: float = 10.0, quiet: bool = False) -> Path:
    """Downloads `url` to `dest`, resuming `dest.part` with HTTP Range.

    Args:
        url: the file's URL.
        dest: the final path; bytes arrive in `dest` + `.part`, renamed when complete.
        size: the expected size, for the progress bar before the server says.
        retries: attempts after a dropped or failed transfer, each resuming
            where the last stopped. Defaults to 4.
        backoff: seconds before the first retry, doubled each time. Defaults to 1.0.
        timeout: seconds to connect and between bytes. Defaults to 10.0.
        quiet: no progress bar. Defaults to False.

    Returns:
        `dest`.

    Raises:
        UserError: when the host cannot be reached or keeps failing.
    """
    import requests

    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with requests.get(url, headers=headers, stream=True, timeout=timeout) as r:
                if r.status_code == 416 and have:  # Nothing left to send: the part is whole (verify checks).
                    os.replace(part, dest)
                    return dest
                if r.status_code in (404, 401, 403, 410):
                    raise UserError(f"Expected {url} to be downloadable. Received: HTTP {r.status_code} "
                                    f"{r.reason}.")
                r.raise_for_status()
                resumed = r.status_code == 206
                if not resumed:
                    have = 0  # The server ignored Range: start again.
                length = r.headers.get("Content-Length")
                total = have + int(length) if length and length.isdigit() else size
                with open(part, "ab" if resumed else "wb") as f, \
                        _progress(total, have, dest.name, quiet) as bar:
                    for block in r.iter_content(CHUNK):
                        f.write(block)
                        bar.update(len(block))
                if total is not None and part.stat().st_size < total:
                    raise ConnectionError(f"connection closed at {part.stat().st_size:,} of {total:,} bytes")
            os.replace(part, dest)
            return dest
        except UserError:
            raise
        except requests.exceptions.ConnectionError as e:
            # A host that never answered is not worth retrying; a transfer cut short is.
            if not (part.exists() and part.stat().st_size > have) and _never_connected(e):
                raise _Unreachable(str(e)) from e
            last = e
        except (requests.exceptions.RequestException, ConnectionError, OSError) as e:
            last = e
    raise UserError(f"Expected to download {url}. Received: {retries + 1} failed attempts, the last: "
                    f"{_short(last)}. The partial file {part} is kept; fetch again to resume.")


# What requests/urllib3 say when a host was never reached: readable reasons first, then exception names.
UNREACHABLE = ("Failed to resolve", "Name or service not known", "Connection refused", "Network is unreachable",
               "No route to host", "NameResolution", "ConnectTimeout", "getaddrinfo", "NewConnectionError")


def _never_connected(e: Exception) -> bool:
    return any(s in repr(e) for s in UNREACHABLE)


def _short(e: Exception | None) -> str:
    text = str(e) if e else "unknown error"
    return text if len(text) < 200 else text[:200] + "..."


# --- Safe extraction ---------------------------------------------------------------


def _safe_name(name: str, archive: Path) -> PurePosixPath:
    """A member name as a relative path inside the target, or UserError."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UserError(f"Expected archive members with relative paths. Received: {name!r} in {archive.name}, "
                        "an absolute path. Nothing was kept.")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        raise UserError(f"Expected archive members inside the target folder. Received: {name!r} in "
                        f"{archive.name}, which climbs out with '..'. Nothing was kept.")
    return PurePosixPath(*[p for p in parts if p not in ("", ".")]) if parts else PurePosixPath()


def _check_budget(files: int, total: int, max_files: int, max_bytes: int, archive: Path) -> None:
    if files > max_files or total > max_bytes:
        raise UserError(f"Expected at most {max_files:,} files and {max_bytes:,} bytes from {archive.name}. "
                        f"Received: more ({files:,} files, {total:,} bytes so far): an archive bomb or the "
                        "wrong archive. Nothing was kept.")


def _extract_zip(archive: Path, target: Path, max_files: int, max_bytes: int) -> None:
    with zipfile.ZipFile(archive) as z:
        members = z.infolist()
        declared = 0
        for i, m in enumerate(members):  # Check everything before writing anything.
            _safe_name(m.filename, archive)
            kind = stat.S_IFMT(m.external_attr >> 16)  # Unix type bits; 0 when the zip tool wrote none.
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise UserError(f"Expected regular files and folders in {archive.name}. Received: {m.filename!r}, "
                                "a link or special file. Nothing was kept.")
            declared += m.file_size
            _check_budget(i + 1, declared, max_files, max_bytes, archive)
        written = 0
        for m in members:
            rel = _safe_name(m.filename, archive)
            out = target.joinpath(*rel.parts) if rel.parts else target
            if m.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with z.open(m) as src, open(out, "wb") as dst:
                for block in iter(lambda: src.read(CHUNK), b""):
                    written += len(block)  # Counted as written: a member can inflate past what it declares.
                    _check_budget(0, written, max_files, max_bytes, archive)
                    dst.write(block)


def _extract_tar(archive: Path, target: Path, max_files: int, max_bytes: int) -> None:
    # The 'data' filter (PEP 706) refuses absolute paths, '..', links leaving the
    # target and device files; the loop adds the size and count limits.
    files, total = 0, 0
    with tarfile.open(archive, "r:*") as t:
        for member in t:
            _safe_name(member.name, archive)
            try:
                member = tarfile.data_filter(member, str(target))
            except tarfile.FilterError as e:
                raise UserError(f"Expected archive members that stay inside the target folder. Received: "
                                f"{e} in {archive.name}. Nothing was kept.") from e
            files += 1
            total += member.size
            _check_budget(files, total, max_files, max_bytes, archive)
            t.extract(member, target, filter="data")


def extract(archive: Path, target: Path, *, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES) -> None:
    """Extracts a zip or tar archive into `target` (which must exist), refusing
    anything that would leave it; raises UserError, leaving what was written in
    `target` to the caller (a temporary folder)."""
    if zipfile.is_zipfile(archive):
        _extract_zip(archive, target, max_files, max_bytes)
    elif tarfile.is_tarfile(archive):
        _extract_tar(archive, target, max_files, max_bytes)
    else:
        raise UserError(f"Expected a zip or tar archive. Received: {archive}, which is neither.")


# --- Fetching a source ---------------------------------------------------------------


def fetch(source: Source, out: Path, *, archives: Sequence[Path] = (), cache: Path | None = None,
          force: bool = False, mirror: str | None = None, retries: int = 4, backoff: float = 1.0,
          max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES, quiet: bool = False,
          log: Callable[[str], None] = print) -> Path:
    """Fetches a source into `out` and returns the folder its loader reads.

    Args:
        source: the `Source`.
        out: the dataset folder (created complete or not at all).
        archives: files the user already has; each replaces the download of
            the remote file with the same name. Defaults to none.
        cache: the download cache. Defaults to `cache_dir()`.
        force: replace an existing `out`. Defaults to False.
        mirror: a base URL serving the same file names (an institutional
            mirror), used instead of each file's host. Defaults to none.
        retries: see `download`. Defaults to 4.
        backoff: see `download`. Defaults to 1.0.
        max_files: extraction limit per archive. Defaults to `MAX_FILES`.
        max_bytes: extraction limit per archive. Defaults to `MAX_BYTES`.
        quiet: no progress bars. Defaults to False.
        log: where progress lines go. Defaults to `print`.

    Returns:
        `out / source.root`, the folder to pass as `--data`.

    Raises:
        UserError: unreachable host, checksum mismatch, hostile archive,
            missing `--archive` for a manual source, or `out` already there.
    """
    out, cache = Path(out), cache_dir(cache)
    root = out / source.root if source.root else out
    manifest = out / MANIFEST
    if manifest.exists() and not force:
        log(f"[fetch] {source.name} is already in {out} (remove it or pass --force to fetch again)")
        return root
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"Expected an empty or absent folder for {source.name}. Received: {out}, which holds "
                        "files. Pass --force to replace it, or --out another folder.")
    given = {Path(a).name: Path(a) for a in archives}
    if source.manual and len(source.files) == len(given) == 1:  # The user's download, whatever its name.
        given = {source.files[0].filename: Path(archives[0])}
    unknown = set(given) - {r.filename for r in source.files}
    if unknown:
        raise UserError(f"Expected --archive files named {', '.join(r.filename for r in source.files)}. "
                        f"Received: {', '.join(sorted(unknown))}.")
    for a in given.values():
        if not a.is_file():
            raise UserError(f"Expected a readable --archive file. Received: {a}, which does not exist.")

    files, pending = [], []
    for remote in source.files:
        cached = cache / source.name / remote.filename
        if remote.filename in given:
            log(f"[fetch] {remote.filename}: from {given[remote.filename]}")
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(cached.name + f".{os.getpid()}.copy")
            shutil.copyfile(given[remote.filename], tmp)
            os.replace(tmp, cached)
            pending.append(verify(cached, remote, cache))
        elif cached.exists():
            pending.append(verify(cached, remote, cache))  # Checked again, then used without a request.
            log(f"[fetch] {remote.filename}: verified in the cache {cached}")
        elif source.manual:
            raise UserError(f"Expected --archive {remote.filename} for {source.name}: {source.manual}. "
                            "Received: no such file given or cached.")
        else:
            url = mirror.rstrip("/") + "/" + remote.filename if mirror else remote.url
            log(f"[fetch] {remote.filename}: downloading {url}")
            try:
                download(url, cached, size=remote.size, retries=retries, backoff=backoff, quiet=quiet)
            except _Unreachable as e:
                raise UserError(
                    f"Expected to reach {urlsplit(url).netloc} for {remote.filename}. Received: no connection "
                    f"({_reason(e)}). Offline, download {remote.url} on a connected machine and pass it with "
                    f"`--archive {remote.filename}`.") from None
            pending.append(verify(cached, remote, cache))
        files.append((remote, cached))

    # Extract everything beside the target, then rename: the dataset is complete or absent.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.fetch-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for remote, cached in files:
            target = tmp / remote.into if remote.into else tmp
            target.mkdir(parents=True, exist_ok=True)
            log(f"[fetch] {remote.filename}: extracting")
            extract(cached, target, max_files=max_files, max_bytes=max_bytes)
        if source.root and not (tmp / source.root).is_dir():
            raise UserError(f"Expected {source.root}/ inside the archives of {source.name}. Received: "
                            f"{sorted(p.name for p in tmp.iterdir())[:8]}: not the archive this source names.")
        _write_json_atomic(tmp / MANIFEST, {
            "source": source.name, "title": source.title, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "files": [{"url": r.url, "size": c.stat().st_size, "sha256": digest(c)} for r, c in files]})
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
        record_first_use(cache, [p for p in pending if p], log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _reason(e: Exception) -> str:
    text = str(e)
    return next((key.lower() for key in (*UNREACHABLE[:5], "timed out") if key in text), _short(e))


def resolve_data(value: str, task: str, sources: Sequence[Source], datasets: Path) -> Path:
    """`--data` as a path, or the name of a fetched source of the task.

    A path that exists wins; otherwise a source name resolves to the folder its
    fetch wrote (`datasets/<task>-<source>/<root>`).
    """
    path = Path(value)
    if path.exists():
        return path
    for s in sources:
        if s.name == value:
            folder = dataset_dir(datasets, task, s.name)
            if not (folder / MANIFEST).exists():
                raise UserError(f"Expected the fetched dataset '{value}' in {folder}. Received: nothing there. "
                                f"Run `suite data fetch {task} --source {value}` first.")
            return folder / s.root if s.root else folder
    return path
