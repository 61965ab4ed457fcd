"""Reader and writer for IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed.

Layout: two zero bytes, a type code, the number of dimensions ``d``, then ``d`` big-endian
uint32 sizes, then the data in C order, big-endian. Type codes: 0x08 uint8, 0x09 int8,
0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "write_idx"]

_CODES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"corrupt or truncated gzip IDX file {path}: {err}") from err
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzip detected from its magic bytes) into a numpy array.

    Raises FileNotFoundError for a missing file and ValueError for a bad header, an unknown
    type code, or a data section shorter or longer than the header's shape says.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"IDX file {path} is truncated: {len(data)} bytes, no full header")
    zero1, zero2, code, ndim = data[0], data[1], data[2], data[3]
    if zero1 != 0 or zero2 != 0:
        raise ValueError(f"{path} is not an IDX file: the first two bytes must be zero")
    if code not in _CODES:
        raise ValueError(f"IDX file {path} has unknown type code 0x{code:02x}; "
                         f"known: {sorted(hex(c) for c in _CODES)}")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(f"IDX file {path} is truncated inside its header "
                         f"({len(data)} of {header_len} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = _CODES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    payload = len(data) - header_len
    if payload < expected:
        raise ValueError(f"IDX file {path} is truncated: header says shape {shape} "
                         f"({expected} data bytes) but only {payload} bytes follow")
    if payload > expected:
        raise ValueError(f"IDX file {path} has {payload - expected} unexpected trailing bytes "
                         f"after the data of shape {shape}")
    array = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize,
                          offset=header_len)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzip-compressed if ``compress`` (default: name ends
    in ``.gz``). The dtype must be one of the IDX types (uint8, int8, int16, int32, float32,
    float64)."""
    path = Path(path)
    array = np.asarray(array)
    code = next((c for c, dt in _CODES.items()
                 if dt.kind == array.dtype.kind and dt.itemsize == array.dtype.itemsize), None)
    if code is None:
        raise ValueError(f"array dtype {array.dtype} has no IDX type code")
    if array.ndim > 255:
        raise ValueError("IDX supports at most 255 dimensions")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = np.ascontiguousarray(array, dtype=_CODES[code]).tobytes()
    blob = header + body
    if compress if compress is not None else path.suffix == ".gz":
        blob = gzip.compress(blob)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return path
