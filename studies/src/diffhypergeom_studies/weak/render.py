"""A procedural dataset shaped like mpi3d-toy (Gondal et al., 2019), rendered with numpy.

Seven factors with mpi3d's cardinalities, in mpi3d's order:

    object colour (6), object shape (6), object size (2), camera height (3),
    background colour (3), horizontal axis (40), vertical axis (40)

Scene (coordinates in units of the image side, origin top left): a background of one of three
colours with a darker floor below a horizon; a dark robot arm from a base on the floor to its
tip; the object (circle, square, triangle, diamond, cross or ring; two sizes; six colours) held
at the tip. The horizontal / vertical axis factors move the tip on a 40 x 40 grid; the camera
height shifts the whole scene vertically (horizon, base and tip). Edges are anti-aliased
(coverage ``clip(0.5 - sdf / pixel, 0, 1)`` from signed distance functions), so sub-pixel moves
of the tip still change pixel values: every factor changes the image at 32 x 32 and 64 x 64.
Rendering is a pure function of the factor vector (deterministic).
"""

from __future__ import annotations

import numpy as np

from diffhypergeom_studies.weak.sources import FactorImageSource

__all__ = [
    "ARM_COLOR", "BACKGROUND_COLORS", "CAMERA_OFFSETS", "FACTOR_NAMES", "FACTOR_SIZES",
    "OBJECT_COLORS", "OBJECT_RADII", "ProceduralMPI3D", "SHAPES", "render",
]

FACTOR_NAMES = ("object_color", "object_shape", "object_size", "camera_height",
                "background_color", "horizontal_axis", "vertical_axis")
FACTOR_SIZES = (6, 6, 2, 3, 3, 40, 40)

# mpi3d's object colours: white, green, red, blue, brown, olive
OBJECT_COLORS = np.array([[0.95, 0.95, 0.95], [0.15, 0.70, 0.20], [0.85, 0.12, 0.10],
                          [0.15, 0.25, 0.90], [0.50, 0.28, 0.10], [0.55, 0.55, 0.10]],
                         dtype=np.float32)
BACKGROUND_COLORS = np.array([[0.55, 0.45, 0.70], [0.30, 0.60, 0.55], [0.85, 0.60, 0.50]],
                             dtype=np.float32)
ARM_COLOR = np.array([0.08, 0.08, 0.08], dtype=np.float32)  # dark: high contrast
OBJECT_RADII = np.array([0.09, 0.14], dtype=np.float32)
CAMERA_OFFSETS = np.array([-0.07, 0.0, 0.07], dtype=np.float32)
SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring")


def _shape_sdf(shape: np.ndarray, px: np.ndarray, py: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) of each batch element's shape ``[B, 1, 1]``, as
    ``[B, H, W]``."""
    ax, ay = np.abs(px), np.abs(py)
    length = np.sqrt(px * px + py * py)
    sdfs = [
        length - r,                                                            # circle
        np.maximum(ax, ay) - 0.85 * r,                                          # square
        np.maximum(0.866 * ax - 0.5 * py, py) - 0.5 * r,                        # triangle (up)
        (ax + ay) / 1.414 - 0.8 * r,                                            # diamond
        np.minimum(np.maximum(ax - 0.35 * r, ay - r), np.maximum(ax - r, ay - 0.35 * r)),
        np.abs(length - 0.72 * r) - 0.28 * r,                                   # ring
    ]
    out = np.zeros(np.broadcast_shapes(px.shape, py.shape), dtype=np.float32)
    for index, sdf in enumerate(sdfs):
        out = np.where(shape == index, sdf, out)
    return out


def _segment_sdf(x, y, ax, ay, bx, by, half_width):
    """Distance to a thick segment from ``a`` to ``b`` (all broadcast to ``[B, H, W]``)."""
    dx, dy = bx - ax, by - ay
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / np.maximum(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
    cx, cy = x - (ax + t * dx), y - (ay + t * dy)
    return np.sqrt(cx * cx + cy * cy) - half_width


def render(factors: np.ndarray, image_size: int = 64) -> np.ndarray:
    """Render ``factors [B, 7]`` (validated ints, mpi3d order) as ``[B, 3, S, S]`` float32 in
    ``[0, 1]`` with ``S = image_size``."""
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8, got {image_size}")
    f = np.asarray(factors, dtype=np.int64)
    batch = f.shape[0]
    pixel = 1.0 / image_size
    coords = (np.arange(image_size, dtype=np.float32) + 0.5) * pixel
    y = coords[None, :, None]
    x = coords[None, None, :]

    def col(values):  # per-batch scalars -> [B, 1, 1]
        return np.asarray(values, dtype=np.float32).reshape(batch, 1, 1)

    def coverage(sdf):
        return np.clip(0.5 - sdf / pixel, 0.0, 1.0)[:, None]  # [B, 1, H, W]

    offset = col(CAMERA_OFFSETS[f[:, 3]])
    horizon = 0.62 + offset
    background = BACKGROUND_COLORS[f[:, 4]][:, :, None, None]                 # [B, 3, 1, 1]
    floor = coverage(horizon - y + 0 * x)
    image = background * (1.0 - 0.35 * floor)
    image = np.broadcast_to(image, (batch, 3, image_size, image_size)).copy()

    tip_x = col(0.14 + 0.72 * f[:, 5] / (FACTOR_SIZES[5] - 1))
    tip_y = col(0.12 + 0.50 * f[:, 6] / (FACTOR_SIZES[6] - 1)) + offset
    base_x = col(np.full(batch, 0.5))
    base_y = horizon + 0.25
    arm = coverage(_segment_sdf(x, y, base_x, base_y, tip_x, tip_y, 0.035))
    image = image * (1.0 - arm) + ARM_COLOR[None, :, None, None] * arm

    radius = col(OBJECT_RADII[f[:, 2]])
    obj = coverage(_shape_sdf(f[:, 1, None, None], x - tip_x, y - tip_y, radius))
    image = image * (1.0 - obj) + OBJECT_COLORS[f[:, 0]][:, :, None, None] * obj
    return np.clip(image, 0.0, 1.0).astype(np.float32)


class ProceduralMPI3D(FactorImageSource):
    """The procedural mpi3d-like source (the default dataset; no download)."""

    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    num_channels = 3

    def __init__(self, image_size: int = 64):
        if image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {image_size}")
        self.image_size = int(image_size)

    def _images(self, factors: np.ndarray) -> np.ndarray:
        return render(factors, self.image_size)
