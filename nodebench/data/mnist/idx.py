"""The IDX file format (LeCun et al.): read and write arrays, checking the header against the data."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

# IDX type code -> numpy dtype (big-endian, as the format stores it).
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


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
