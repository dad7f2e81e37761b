"""Loading a verified split from the cache as tensors."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch

from nodebench.data.mnist.idx import _parse_idx
from nodebench.data.mnist.specs import (
    CHECKSUMS,
    SPLITS,
    _check_digests,
    _check_split,
    _command,
    _read_checksums,
    _spec,
    data_root,
)


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
