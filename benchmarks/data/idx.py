"""The IDX format of the original MNIST files: read and write, raw or gzip.

Layout: two zero bytes, a dtype code, the number of dimensions, then each
dimension as a big-endian uint32, then the data in C order, big-endian.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


class IdxError(ValueError):
    """A file that is not valid IDX; the message names the file."""


DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CODES = {np.dtype(v).str.lstrip("<>|"): k for k, v in DTYPES.items()}
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | Path) -> np.ndarray:
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise IdxError(f"{path}: corrupt or truncated gzip data ({err}).") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in DTYPES:
        raise IdxError(f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'missing'}; "
                       f"expected 0000 then a dtype code and a dimension count).")
    dtype, ndim = np.dtype(DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxError(f"{path}: truncated header ({len(raw)} bytes, need {header}).")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "has trailing bytes"
        raise IdxError(f"{path}: {problem}: {len(raw)} bytes, but its header {shape} "
                       f"of {dtype.name} needs {expected}.")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as IDX; gzip-compressed when the name ends in .gz."""
    array = np.asarray(array)
    code = CODES.get(array.dtype.str.lstrip("<>|"))
    if code is None:
        raise IdxError(f"{path}: IDX has no code for dtype {array.dtype}.")
    raw = (bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
           + array.astype(DTYPES[code]).tobytes())
    path = Path(path)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
