"""Reader for the IDX file format used by MNIST and Fashion-MNIST.

An IDX file is a tiny big-endian header followed by a dense, row-major array::

    bytes 0-1   zero
    byte  2     element type code (0x08 = unsigned byte, ...)
    byte  3     number of dimensions, ndim
    then        ndim unsigned 32-bit big-endian sizes
    then        prod(sizes) elements

The files are normally gzip-compressed.  Because the header states exactly how
many bytes must follow, the reader never trusts the stream length: it checks
the declared size against hard limits *before* allocating anything, then reads
at most that many bytes, and finally insists the stream ends right there.  A
hostile header (say 10**12 items) or a gzip bomb therefore costs no memory
beyond the limit; it raises ``ValueError`` naming the file instead.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from typing import BinaryIO, Optional, Sequence

import numpy as np

__all__ = ["read_idx", "parse_idx", "IDX_DTYPES", "DEFAULT_MAX_BYTES"]

# IDX element type codes -> NumPy dtypes (multi-byte types are big-endian on
# disk; the reader converts them to native order).
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# The largest payload we are willing to hold in memory by default.  The
# biggest file we load (MNIST/Fashion-MNIST train images) is 47,040,000 bytes;
# 1 GiB leaves ample room for other IDX data while still refusing absurd
# headers outright.
DEFAULT_MAX_BYTES = 1 << 30

# Deflate cannot compress better than about 1032:1, so a gzip file of N bytes
# cannot legitimately inflate to more than ~1032*N bytes.  Used to reject
# headers that promise more data than the compressed file could contain
# before reading (or allocating) anything.
_DEFLATE_MAX_RATIO = 1032
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20  # decompress in 1 MiB steps so memory tracks real data


def _fail(name: str, why: str) -> ValueError:
    return ValueError(f"malformed IDX file {name!r}: {why}")


def _read_exact(stream: BinaryIO, n: int, name: str, what: str) -> bytes:
    """Read exactly ``n`` bytes or raise ValueError (truncated file)."""
    data = stream.read(n)
    if len(data) != n:
        raise _fail(name, f"truncated {what} (expected {n} bytes, got {len(data)})")
    return data


def parse_idx(
    stream: BinaryIO,
    name: str = "<stream>",
    *,
    expected_ndim: Optional[int] = None,
    expected_shape: Optional[Sequence[Optional[int]]] = None,
    expected_dtype=None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """Parse one IDX array from an (already decompressed) binary stream.

    ``expected_shape`` may contain ``None`` for "any size" (e.g. the item
    count), so ``(None, 28, 28)`` accepts any number of 28x28 images.  The
    whole stream must be consumed by the array: trailing bytes are an error.
    Returns a writable array in native byte order.
    """
    if max_bytes < 0:
        raise ValueError("max_bytes must be >= 0")
    head = _read_exact(stream, 4, name, "header")
    zero, type_code, ndim = struct.unpack(">HBB", head)
    if zero != 0:
        raise _fail(name, f"bad magic number 0x{int.from_bytes(head, 'big'):08X} "
                          "(the first two bytes must be zero)")
    if type_code not in IDX_DTYPES:
        raise _fail(name, f"unknown element type code 0x{type_code:02X}")
    dtype = IDX_DTYPES[type_code]
    if expected_dtype is not None and dtype.newbyteorder("=") != np.dtype(expected_dtype).newbyteorder("="):
        raise _fail(name, f"element type {dtype} (code 0x{type_code:02X}), "
                          f"expected {np.dtype(expected_dtype)}")
    if expected_shape is not None and expected_ndim is None:
        expected_ndim = len(expected_shape)
    if expected_ndim is not None and ndim != expected_ndim:
        raise _fail(name, f"magic 0x{int.from_bytes(head, 'big'):08X} declares "
                          f"{ndim} dimension(s), expected {expected_ndim}")
    if ndim == 0:
        raise _fail(name, "zero dimensions")

    dims = struct.unpack(f">{ndim}I", _read_exact(stream, 4 * ndim, name, "dimension sizes"))
    if expected_shape is not None:
        for axis, (got, want) in enumerate(zip(dims, expected_shape)):
            if want is not None and got != want:
                raise _fail(name, f"dimension {axis} is {got}, expected {want} "
                                  f"(declared shape {dims})")

    # Python ints: no overflow however large the declared sizes are.
    n_items = 1
    for d in dims:
        n_items *= d
    n_bytes = n_items * dtype.itemsize
    if n_bytes > max_bytes:
        raise _fail(name, f"header declares shape {dims} = {n_bytes:,} bytes, "
                          f"more than the {max_bytes:,}-byte limit")

    # Read in chunks into a growing buffer, so a header that lies about the
    # size costs memory proportional to the data actually present, never to
    # the claim.  bytearray keeps the final array writable without a copy.
    buf = bytearray()
    while len(buf) < n_bytes:
        chunk = stream.read(min(_CHUNK, n_bytes - len(buf)))
        if not chunk:
            break
        buf += chunk
    if len(buf) != n_bytes:
        raise _fail(name, f"truncated payload: header declares shape {dims} "
                          f"({n_bytes:,} bytes) but only {len(buf):,} bytes follow")
    if stream.read(1):
        raise _fail(name, f"trailing data after the {n_bytes:,}-byte payload "
                          f"declared by shape {dims}")

    arr = np.frombuffer(buf, dtype=dtype).reshape(dims)
    if not dtype.isnative and dtype.itemsize > 1:
        arr = arr.astype(dtype.newbyteorder("="))
    return arr


def read_idx(
    path: "os.PathLike[str] | str",
    *,
    expected_ndim: Optional[int] = None,
    expected_shape: Optional[Sequence[Optional[int]]] = None,
    expected_dtype=None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """Read an IDX file, gzip-compressed (detected by its magic) or raw.

    Any format problem -- bad magic, wrong dimensions, truncated or oversized
    payload, trailing garbage, corrupt gzip stream or CRC -- raises
    ``ValueError`` whose message names the file.
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    file_size = os.path.getsize(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if compressed:
            # Tighten the limit to what this many compressed bytes could ever
            # inflate to, so an impossible header fails before any read.
            limit = min(max_bytes, file_size * _DEFLATE_MAX_RATIO)
            stream = gzip.GzipFile(fileobj=raw, mode="rb")
        else:
            limit = min(max_bytes, file_size)
            stream = raw
        try:
            return parse_idx(stream, name, expected_ndim=expected_ndim,
                             expected_shape=expected_shape,
                             expected_dtype=expected_dtype, max_bytes=limit)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            # gzip reports a damaged stream / CRC mismatch as BadGzipFile,
            # a cut-off stream as EOFError, bad deflate data as zlib.error;
            # present them uniformly as a format error.
            raise ValueError(f"malformed IDX file {name!r}: corrupt gzip data ({exc})") from exc
