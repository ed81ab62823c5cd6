import io
from pathlib import Path

import pytest

from vaebench.datasets import (
    ChecksumMismatch,
    DatasetNotFound,
    FileSpec,
    download_file,
    ensure_files,
    resolve_data_dir,
    verify_file,
)


def _source(tmp_path: Path, content: bytes = b"published bytes\n" * 1000) -> Path:
    src = tmp_path / "server" / "data.bin"
    src.parent.mkdir(parents=True)
    src.write_bytes(content)
    return src


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_data_dir_argument_then_env_then_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("VAEBENCH_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("VAEBENCH_DATA_DIR")
    assert resolve_data_dir(None) == Path("~/.cache/vaebench").expanduser()


@pytest.mark.parametrize("checksum", ["sha256", "md5"])
def test_verify_accepts_the_file_and_rejects_one_flipped_byte(fake, tmp_path, checksum):
    src = _source(tmp_path)
    spec = fake.spec(src, checksum=checksum)
    verify_file(src, spec)
    data = bytearray(src.read_bytes())
    data[100] ^= 1
    src.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatch, match=rf"{checksum} .*expected .*Delete it"):
        verify_file(src, spec)


def test_verify_rejects_a_truncated_file_by_size(fake, tmp_path):
    src = _source(tmp_path)
    spec = fake.spec(src)
    src.write_bytes(src.read_bytes()[:-1])
    with pytest.raises(ChecksumMismatch, match="bytes, expected"):
        verify_file(src, spec)


def test_download_from_file_url_lands_verified_and_leaves_no_temp(fake, tmp_path):
    src = _source(tmp_path)
    dest_dir = tmp_path / "data" / "ds"
    path = download_file(fake.spec(src), dest_dir)
    assert path == dest_dir / "data.bin"
    assert path.read_bytes() == src.read_bytes()
    assert _leftovers(dest_dir) == ["data.bin"]


def test_download_falls_back_to_the_next_mirror(fake, tmp_path):
    src = _source(tmp_path)
    good = fake.spec(src)
    spec = FileSpec(good.name, ((tmp_path / "missing.bin").as_uri(), src.as_uri()), sha256=good.sha256)
    path = download_file(spec, tmp_path / "out")
    assert path.read_bytes() == src.read_bytes()


def test_download_with_wrong_checksum_never_leaves_a_file(fake, tmp_path):
    src = _source(tmp_path)
    spec = FileSpec(src.name, (src.as_uri(),), sha256="0" * 64)
    dest_dir = tmp_path / "out"
    with pytest.raises(OSError, match="has sha256 .*expected 0000"):
        download_file(spec, dest_dir)
    assert _leftovers(dest_dir) == []


class _Interrupted(io.BytesIO):
    """A response that delivers some bytes, then the connection drops."""

    def read(self, n=-1):
        if self.tell() > 0:
            raise ConnectionResetError("connection dropped")
        return super().read(100)


def test_interrupted_download_leaves_nothing_and_a_later_one_succeeds(fake, tmp_path):
    src = _source(tmp_path)
    spec = fake.spec(src)
    dest_dir = tmp_path / "out"
    calls = []

    def opener(url, timeout):
        calls.append((url, timeout))
        return _Interrupted(src.read_bytes())

    with pytest.raises(OSError, match="ConnectionResetError: connection dropped"):
        download_file(spec, dest_dir, opener=opener)
    assert calls and calls[0][0] == spec.urls[0]
    assert _leftovers(dest_dir) == []
    # A file that exists is the whole verified file, so the next attempt simply downloads.
    download_file(spec, dest_dir, opener=lambda url, timeout: io.BytesIO(src.read_bytes()))
    assert (dest_dir / src.name).read_bytes() == src.read_bytes()


def test_download_replaces_atomically_an_old_file(fake, tmp_path):
    src = _source(tmp_path)
    dest_dir = tmp_path / "out"
    dest_dir.mkdir()
    (dest_dir / src.name).write_bytes(b"stale")
    download_file(fake.spec(src), dest_dir)
    assert (dest_dir / src.name).read_bytes() == src.read_bytes()


def test_ensure_files_missing_without_download_names_files_folder_and_source(fake, tmp_path):
    spec = FileSpec("a.gz", ("https://example.org/a.gz",), sha256="1" * 64)
    folder = tmp_path / "data" / "toy"
    with pytest.raises(DatasetNotFound) as err:
        ensure_files("toy", folder, [spec], download=False)
    msg = str(err.value)
    assert "dataset 'toy'" in msg and "a.gz" in msg and str(folder) in msg
    assert "https://example.org/a.gz" in msg and "VAEBENCH_DATA_DIR" in msg


def test_ensure_files_reports_a_failed_download(tmp_path):
    spec = FileSpec("a.gz", ((tmp_path / "nowhere" / "a.gz").as_uri(),))
    with pytest.raises(DatasetNotFound, match="could not download a.gz"):
        ensure_files("toy", tmp_path / "toy", [spec])


def test_ensure_files_downloads_then_reuses(fake, tmp_path):
    src = _source(tmp_path)
    spec = fake.spec(src)
    folder = tmp_path / "data" / "toy"
    paths = ensure_files("toy", folder, [spec])
    assert paths == {src.name: folder / src.name}
    src.unlink()  # the second call must not need the server
    assert ensure_files("toy", folder, [spec], download=False) == paths


def test_ensure_files_rejects_a_corrupted_local_file(fake, tmp_path):
    src = _source(tmp_path)
    spec = fake.spec(src)
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / src.name).write_bytes(src.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ChecksumMismatch, match="corrupted"):
        ensure_files("toy", folder, [spec])
