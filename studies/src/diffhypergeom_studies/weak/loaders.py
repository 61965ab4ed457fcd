"""Loaders for the real datasets when the user has the files (no download here).

* mpi3d (Gondal et al., 2019; e.g. ``mpi3d_toy.npz`` from rr-learning/disentanglement_dataset):
  key ``images``, uint8 ``[1036800, 64, 64, 3]``, images in factor order (row-major over the
  factor sizes ``(6, 6, 2, 3, 3, 40, 40)``).
* dSprites (``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``): keys ``imgs`` uint8
  ``[737280, 64, 64]`` in {0, 1} and ``latents_classes`` int ``[737280, 6]``, factor sizes
  ``(1, 3, 6, 40, 32, 32)`` (colour, shape, scale, orientation, x, y). The constant colour
  factor is dropped: the source has the five factors that vary.

Both are indexed by the mixed-radix (row-major) index of the factor vector. The image array of an
uncompressed ``.npz`` (``np.savez``, as published) is memory-mapped, so the 12 GB mpi3d array is
never read in full; a compressed member is loaded into memory. Missing files, missing keys and
wrong shapes raise ``FileNotFoundError`` / ``ValueError`` naming the file and the constraint.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from diffhypergeom_studies.weak.sources import FactorImageSource

__all__ = [
    "ArrayImageSource", "DSPRITES_ALL_SIZES", "DSPRITES_FACTOR_NAMES", "MPI3D_FACTOR_NAMES",
    "MPI3D_FACTOR_SIZES", "load_dsprites", "load_mpi3d",
]

MPI3D_FACTOR_NAMES = ("object_color", "object_shape", "object_size", "camera_height",
                      "background_color", "horizontal_axis", "vertical_axis")
MPI3D_FACTOR_SIZES = (6, 6, 2, 3, 3, 40, 40)
DSPRITES_FACTOR_NAMES = ("shape", "scale", "orientation", "position_x", "position_y")
DSPRITES_ALL_SIZES = (1, 3, 6, 40, 32, 32)


def _npz_member(path: Path, key: str) -> np.ndarray:
    """Array ``key`` of the ``.npz`` at ``path``: memory-mapped if stored uncompressed."""
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise ValueError(f"{path} is not a valid .npz archive (zip): {err}") from err
    with archive:
        names = archive.namelist()
        member = key + ".npy"
        if member not in names:
            keys = sorted(n[:-4] for n in names if n.endswith(".npy"))
            raise ValueError(f"{path} has no array {key!r} (found keys {keys})")
        info = archive.getinfo(member)
        if info.compress_type == zipfile.ZIP_STORED:
            with archive.open(member) as handle:
                try:
                    version = np.lib.format.read_magic(handle)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, fortran, dtype = read_header(handle)
                except ValueError as err:
                    raise ValueError(f"{path}: array {key!r} has a corrupt header: {err}") \
                        from err
                header_len = handle.tell()
            with open(path, "rb") as raw:  # local file header: 30 bytes + name + extra
                raw.seek(info.header_offset + 26)
                name_len, extra_len = np.frombuffer(raw.read(4), dtype="<u2")
            start = info.header_offset + 30 + int(name_len) + int(extra_len) + header_len
            expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if start + expected > path.stat().st_size or info.file_size < header_len + expected:
                raise ValueError(f"{path}: array {key!r} is truncated (shape {shape} needs "
                                 f"{expected} bytes)")
            return np.memmap(path, dtype=dtype, mode="r", offset=start, shape=shape,
                             order="F" if fortran else "C")
    try:
        with np.load(path) as data:
            return np.asarray(data[key])
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path}: cannot read array {key!r}: {err}") from err


def _flat_index(factors: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    return np.ravel_multi_index(tuple(factors.T), sizes)


class ArrayImageSource(FactorImageSource):
    """Images stored in factor order: image of factor vector ``v`` is ``images[ravel(v)]``.

    ``images``: ``[N, H, W, C]`` or ``[N, H, W]`` (uint8 in 0..255, or {0, 1} with
    ``binary=True``); ``N`` must equal ``prod(factor_sizes)``.
    """

    def __init__(self, images: np.ndarray, factor_names: tuple[str, ...],
                 factor_sizes: tuple[int, ...], image_size: int | None = None,
                 binary: bool = False, name: str = "images"):
        if images.ndim not in (3, 4):
            raise ValueError(f"{name} must have shape [N, H, W] or [N, H, W, C], got "
                             f"{images.shape}")
        total = int(np.prod(factor_sizes))
        if images.shape[0] != total:
            raise ValueError(f"{name} has {images.shape[0]} images but the factor sizes "
                             f"{tuple(factor_sizes)} need {total}")
        if images.shape[1] != images.shape[2]:
            raise ValueError(f"{name} images must be square, got {images.shape[1:3]}")
        self._array = images
        self._scale = 1.0 if binary else 1.0 / 255.0
        self.factor_names = tuple(factor_names)
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        self.num_channels = 1 if images.ndim == 3 else int(images.shape[3])
        self.image_size = int(image_size or images.shape[1])

    def _images(self, factors: np.ndarray) -> np.ndarray:
        index = _flat_index(factors, self.factor_sizes)
        order = np.argsort(index)  # sorted reads are kinder to a memory map
        batch = np.empty((len(index),) + self._array.shape[1:], dtype=np.float32)
        batch[order] = self._array[index[order]]
        batch *= self._scale
        if batch.ndim == 3:
            return batch[:, None]
        return batch.transpose(0, 3, 1, 2)


def load_mpi3d(path: str | Path, image_size: int | None = None,
               factor_sizes: tuple[int, ...] = MPI3D_FACTOR_SIZES) -> ArrayImageSource:
    """mpi3d ``.npz`` (key ``images``, ``[prod(factor_sizes), H, W, 3]`` uint8, factor order;
    ``[1036800, 64, 64, 3]`` for the published files). ``factor_sizes`` (7 values) only needs
    changing for subsets written in the same format."""
    path = Path(path)
    if len(factor_sizes) != len(MPI3D_FACTOR_NAMES) or min(factor_sizes) < 1:
        raise ValueError(f"factor_sizes must be 7 positive ints, got {factor_sizes}")
    images = _npz_member(path, "images")
    if images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"{path}: 'images' must have shape [N, H, W, 3], got {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"{path}: 'images' must be uint8, got {images.dtype}")
    return ArrayImageSource(images, MPI3D_FACTOR_NAMES, tuple(factor_sizes), image_size,
                            name=f"{path}: 'images'")


def load_dsprites(path: str | Path, image_size: int | None = None,
                  factor_sizes: tuple[int, ...] = DSPRITES_ALL_SIZES) -> ArrayImageSource:
    """dSprites ``.npz`` (``imgs`` ``[737280, 64, 64]`` in {0, 1}; ``latents_classes``
    ``[737280, 6]``); the constant colour factor is dropped. ``factor_sizes`` (all 6, colour
    first) only needs changing for subsets written in the same format."""
    path = Path(path)
    if len(factor_sizes) != len(DSPRITES_ALL_SIZES) or min(factor_sizes) < 1:
        raise ValueError(f"factor_sizes must be 6 positive ints, got {factor_sizes}")
    images = _npz_member(path, "imgs")
    classes = np.asarray(_npz_member(path, "latents_classes"))
    if images.ndim != 3:
        raise ValueError(f"{path}: 'imgs' must have shape [N, H, W], got {images.shape}")
    total = int(np.prod(factor_sizes))
    if classes.shape != (total, len(factor_sizes)):
        raise ValueError(f"{path}: 'latents_classes' must have shape "
                         f"({total}, {len(factor_sizes)}), got {classes.shape}")
    expected = np.stack(np.unravel_index(np.arange(total), factor_sizes), axis=1)
    if not np.array_equal(classes, expected):
        raise ValueError(f"{path}: images are not in factor order ('latents_classes' differs "
                         "from the row-major enumeration of the factor sizes)")
    return ArrayImageSource(images, DSPRITES_FACTOR_NAMES, tuple(factor_sizes[1:]), image_size,
                            binary=True, name=f"{path}: 'imgs'")
