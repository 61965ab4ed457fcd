import numpy as np
import pytest

from diffhypergeom_studies.weak.render import FACTOR_SIZES, ProceduralMPI3D
from diffhypergeom_studies.weak.visualize import factor_grid, render_factor_grid


@pytest.mark.parametrize("size", [32, 64])
def test_deterministic_and_in_range(size):
    source = ProceduralMPI3D(size)
    factors = source.sample_factors(np.random.default_rng(1), 12)
    a, b = source.images(factors), source.images(factors.copy())
    assert a.shape == (12, 3, size, size)
    assert a.dtype.is_floating_point and float(a.min()) >= 0 and float(a.max()) <= 1
    assert np.array_equal(a.numpy(), b.numpy())
    # the image depends only on its own factor vector, not on the batch
    assert np.array_equal(source.images(factors[3:4]).numpy(), a[3:4].numpy())


@pytest.mark.parametrize("size", [32, 64])
def test_every_value_of_every_factor_changes_the_image(size):
    source = ProceduralMPI3D(size)
    rng = np.random.default_rng(0)
    for base in source.sample_factors(rng, 3):
        for factor, card in enumerate(FACTOR_SIZES):
            batch = np.repeat(base[None], card, 0)
            batch[:, factor] = np.arange(card)
            images = source.images(batch).numpy().reshape(card, -1)
            # all values of the factor give pairwise different images
            distance = np.abs(images[:, None] - images[None]).max(-1)
            off_diagonal = distance[~np.eye(card, dtype=bool)]
            assert off_diagonal.min() > 1e-3, (factor, off_diagonal.min())


def test_bad_factors():
    source = ProceduralMPI3D(32)
    with pytest.raises(ValueError, match="shape"):
        source.images(np.zeros((2, 6), dtype=int))
    with pytest.raises(ValueError, match="out of range"):
        source.images(np.array([[6, 0, 0, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="integers"):
        source.images(np.zeros((1, 7)))
    with pytest.raises(ValueError, match="image_size"):
        ProceduralMPI3D(4)


def test_factor_grid_png(tmp_path):
    source = ProceduralMPI3D(32)
    grid, shown = factor_grid(source, columns=5, seed=3)
    assert grid.shape == (7, 5, 7)
    for i in range(7):
        others = np.delete(grid[i], i, axis=1)
        assert (others == others[0]).all()          # only factor i varies in row i
        assert grid[i, : len(shown[i]), i].tolist() == shown[i]
    assert shown[2] == [0, 1]                         # object size has two values
    path = render_factor_grid(source, tmp_path / "grid.png", columns=5)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
