"""What a correct copy of MNIST / Fashion-MNIST is, where the cache lives, and verifying a cached copy."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nodebench.data.mnist.idx import read_idx

SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FILES: tuple[str, ...] = tuple(name for pair in SPLITS.values() for name in pair)
CHECKSUMS = "checksums.json"


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
