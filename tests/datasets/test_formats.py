import numpy as np
import pytest

from vaebench.datasets.formats import (
    extract_tar,
    fortran_images,
    read_amat,
    read_cifar_batch,
    read_idx,
    read_mat,
)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(fake, tmp_path, gz, dtype):
    rng = np.random.default_rng(1)
    array = (rng.normal(size=(7, 3, 5)) * 50).astype(dtype)
    path = fake.idx(tmp_path / "x.idx", array, gz=gz)
    out = read_idx(path)
    assert out.shape == (7, 3, 5) and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, array)


def test_idx_labels_one_dim(fake, tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(fake.idx(tmp_path / "l.gz", labels)), labels)


def test_idx_truncated_is_rejected(fake, tmp_path):
    path = fake.idx(tmp_path / "x.idx", np.zeros((4, 28, 28), np.uint8), gz=False)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def test_idx_bad_magic_is_rejected(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)


def test_amat_round_trip(fake, tmp_path):
    bits = np.random.default_rng(0).integers(0, 2, size=(9, 784)).astype(np.uint8)
    out = read_amat(fake.amat(tmp_path / "b.amat", bits))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, bits)


def test_amat_crlf_and_trailing_space(tmp_path):
    path = tmp_path / "b.amat"
    path.write_bytes(b"0 1 1 \r\n1 0 0 \r\n")
    np.testing.assert_array_equal(read_amat(path, num_columns=3), [[0, 1, 1], [1, 0, 0]])


@pytest.mark.parametrize(
    "content, match",
    [
        (b"0 1 0.5\n", "not a binary .amat"),
        (b"0 1 10\n", "not a binary .amat"),
        (b"0 1 1\n0 1\n", "not a binary .amat file"),
        (b"0 1 1 1\n", "expected 3 values per line, found 4"),
    ],
)
def test_amat_rejects_non_binary_or_ragged(tmp_path, content, match):
    path = tmp_path / "b.amat"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_amat(path, num_columns=3)


def test_mat_reads_named_variables_and_names_missing_ones(fake, tmp_path):
    path = fake.mat(tmp_path / "m.mat", data=np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(read_mat(path, ["data"])["data"], np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match=r"lacks variables \['testdata'\]; it has \['data'\]"):
        read_mat(path, ["data", "testdata"])


def test_mat_rejects_non_mat(tmp_path):
    path = tmp_path / "m.mat"
    path.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(ValueError, match="not a readable .mat"):
        read_mat(path, ["x"])


@pytest.mark.parametrize("h, w", [(28, 28), (28, 20), (3, 5)])
def test_fortran_images_matches_numpy_order_f(h, w):
    flat = np.random.default_rng(0).normal(size=(4, h * w))
    expected = flat.reshape((-1, h, w)).reshape((-1, h * w), order="F")
    np.testing.assert_array_equal(fortran_images(flat, h, w), expected)


def test_cifar_batch(fake, tmp_path):
    images = fake.gray_images(6, 3 * 32, 32).reshape(6, 3, 32, 32)
    path = tmp_path / "data_batch_1"
    path.write_bytes(fake.cifar_batch(images, np.arange(6)))
    x, y = read_cifar_batch(path)
    assert x.shape == (6, 3, 32, 32) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, np.arange(6))


def test_cifar_batch_wrong_width(fake, tmp_path):
    path = tmp_path / "b"
    import pickle

    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"must be \(N, 3072\)"):
        read_cifar_batch(path)


def test_extract_tar_only_named_members(fake, tmp_path):
    archive = fake.tar_gz(tmp_path / "a.tar.gz", {"d/keep": b"1", "d/skip": b"2"})
    extract_tar(archive, tmp_path / "out", ["d/keep"])
    assert (tmp_path / "out" / "d" / "keep").read_bytes() == b"1"
    assert not (tmp_path / "out" / "d" / "skip").exists()
    with pytest.raises(ValueError, match="lacks members"):
        extract_tar(archive, tmp_path / "out", ["d/none"])


def test_extract_tar_refuses_path_traversal(fake, tmp_path):
    archive = fake.tar_gz(tmp_path / "a.tar.gz", {"../evil": b"x"})
    with pytest.raises(ValueError, match="unsafe member"):
        extract_tar(archive, tmp_path / "out", ["../evil"])
    assert not (tmp_path / "evil").exists()


def test_extract_tar_leaves_no_temporary_folder(fake, tmp_path):
    archive = fake.tar_gz(tmp_path / "a.tar.gz", {"d/x": b"1", "d/y": b"2"})
    extract_tar(archive, tmp_path / "out", ["d/x", "d/y"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["d"]
    assert sorted(p.name for p in (tmp_path / "out" / "d").iterdir()) == ["x", "y"]
