"""Functions for the fresh-process tests; torch-free so that the child starts fast."""

from __future__ import annotations


def allocate(megabytes: int) -> dict[str, int]:
    """Hold ``megabytes`` of touched memory while returning its size."""
    block = bytearray(megabytes * 2**20)
    block[::4096] = b"\x01" * len(block[::4096])
    return {"allocated": len(block)}


def fail() -> dict[str, int]:
    """Raise, for the error-reporting test."""
    raise ValueError("toy failure in the child")
