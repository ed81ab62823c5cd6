"""Where dataset files live, how they are verified, and how they are downloaded atomically.

A file is only ever used after its checksum passed (where one is known). A download streams
into a temporary file in the destination folder and is renamed into place only after the size
and checksum passed, so an interrupted or corrupted download never leaves a file that a later
run would read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from ..errors import ChecksumMismatch, DatasetNotFound
from .card import FileSpec

__all__ = [
    "ChecksumMismatch",
    "DatasetNotFound",
    "Opener",
    "default_data_dir",
    "download_file",
    "ensure_files",
    "file_digests",
    "resolve_data_dir",
    "verify_file",
]

#: Environment variable naming the data directory when no `data_dir` argument is given.
DATA_DIR_ENV = "VAEBENCH_DATA_DIR"

#: Opens a URL and returns a binary stream; `urllib.request.urlopen` or a test double.
Opener = Callable[..., IO[bytes]]

_log = logging.getLogger(__name__)
_CHUNK = 1 << 20
# Seconds to wait for a server before trying the next mirror; offline machines fail fast.
_TIMEOUT_S = 30.0


def default_data_dir() -> Path:
    """$VAEBENCH_DATA_DIR if set, else ~/.cache/vaebench."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else Path("~/.cache/vaebench").expanduser()


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """The data directory: the argument, then $VAEBENCH_DATA_DIR, then ~/.cache/vaebench."""
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


def file_digests(path: Path) -> tuple[str, str, int]:
    """(sha256, md5, size in bytes) of a file, read once in chunks."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


def _mismatch(spec: FileSpec, sha256: str, md5: str, size: int) -> str | None:
    """Why a file with these digests is not `spec`'s file, or None when it is."""
    if spec.size is not None and size != spec.size:
        return f"has {size:,} bytes, expected {spec.size:,}"
    if spec.sha256 is not None and sha256 != spec.sha256:
        return f"has sha256 {sha256}, expected {spec.sha256}"
    if spec.md5 is not None and md5 != spec.md5:
        return f"has md5 {md5}, expected {spec.md5}"
    return None


def verify_file(path: Path, spec: FileSpec) -> None:
    """Raise ChecksumMismatch unless `path` has `spec`'s size and checksums (where known)."""
    if not spec.verifiable and spec.size is None:
        return
    problem = _mismatch(spec, *file_digests(path))
    if problem is not None:
        raise ChecksumMismatch(
            f"{path} {problem}: the file is corrupted, truncated or a different version. "
            f"Delete it and load again to re-download it, or replace it with the file from "
            f"{spec.urls[0]}"
        )


def download_file(
    spec: FileSpec,
    dest_dir: Path,
    *,
    opener: Opener | None = None,
    timeout: float = _TIMEOUT_S,
) -> Path:
    """Download `spec` into `dest_dir`, trying each URL in turn; return the final path.

    The bytes go to a temporary file next to the destination; it is renamed into place
    (`os.replace`, atomic on one filesystem) only after the size and checksum passed, and
    deleted on any failure. Raises OSError listing each URL's failure when none worked.
    """
    opener = opener if opener is not None else urllib.request.urlopen
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / spec.name
    failures = []
    for url in spec.urls:
        fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{spec.name}.", suffix=".part")
        tmp = Path(tmp_name)
        _log.info("downloading %s from %s", spec.name, url)
        try:
            sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
            with os.fdopen(fd, "wb") as out, opener(url, timeout=timeout) as response:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    sha.update(chunk)
                    md5.update(chunk)
                    size += len(chunk)
            problem = _mismatch(spec, sha.hexdigest(), md5.hexdigest(), size)
            if problem is not None:
                failures.append(f"{url}: downloaded file {problem}")
                _log.warning("%s from %s rejected: %s", spec.name, url, problem)
                continue
            os.replace(tmp, dest)
            return dest
        except Exception as e:  # noqa: BLE001 - any failure moves on to the next mirror
            failures.append(f"{url}: {type(e).__name__}: {e}")
        finally:
            tmp.unlink(missing_ok=True)
    raise OSError(f"could not download {spec.name}: " + "; ".join(failures))


def ensure_files(
    dataset: str,
    folder: Path,
    specs: Iterable[FileSpec],
    *,
    download: bool = True,
    opener: Opener | None = None,
) -> dict[str, Path]:
    """Paths of `specs` in `folder`, verified; missing files are downloaded when allowed.

    Raises:
        ChecksumMismatch: a present file has the wrong checksum.
        DatasetNotFound: files are missing and could not be downloaded; the message names
            each file, the folder to put it in, and where it comes from.
    """
    paths: dict[str, Path] = {}
    missing: list[tuple[FileSpec, str]] = []
    for spec in specs:
        path = folder / spec.name
        if not path.is_file():
            if not download:
                missing.append((spec, "download=False"))
                continue
            try:
                download_file(spec, folder, opener=opener)
            except OSError as e:
                missing.append((spec, str(e)))
                continue
        else:
            verify_file(path, spec)
        paths[spec.name] = path
    if missing:
        listing = "\n".join(f"  - {s.name} (from {' or '.join(s.urls)}): {why}" for s, why in missing)
        raise DatasetNotFound(
            f"dataset '{dataset}' needs files missing from {folder}:\n{listing}\n"
            f"Download them by hand into {folder}, or pass data_dir= (or set "
            f"{DATA_DIR_ENV}) to a folder holding '{folder.name}/' with these files."
        )
    return paths
