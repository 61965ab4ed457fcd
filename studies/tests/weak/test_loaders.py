import numpy as np
import pytest

from diffhypergeom_studies.weak.loaders import load_dsprites, load_mpi3d

MPI_SIZES = (2, 2, 1, 1, 1, 3, 3)
DSPRITES_SIZES = (1, 3, 2, 2, 2, 2)


def _mpi3d_images(side=8):
    total = int(np.prod(MPI_SIZES))
    return np.random.default_rng(0).integers(0, 256, (total, side, side, 3), dtype=np.uint8)


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_mpi3d_round_trip(tmp_path, save):
    images = _mpi3d_images()
    path = tmp_path / "mpi3d.npz"
    save(path, images=images)
    source = load_mpi3d(path, factor_sizes=MPI_SIZES)
    assert source.num_channels == 3 and source.image_size == 8
    assert isinstance(source._array, np.memmap) == (save is np.savez)
    factors = source.sample_factors(np.random.default_rng(1), 10)
    got = source.images(factors).numpy()
    index = np.ravel_multi_index(tuple(factors.T), MPI_SIZES)
    assert np.allclose(got, images[index].transpose(0, 3, 1, 2) / 255.0)
    resized = load_mpi3d(path, image_size=4, factor_sizes=MPI_SIZES).images(factors[:2])
    assert resized.shape == (2, 3, 4, 4)


def test_dsprites_round_trip(tmp_path):
    total = int(np.prod(DSPRITES_SIZES))
    imgs = np.random.default_rng(2).integers(0, 2, (total, 8, 8), dtype=np.uint8)
    classes = np.stack(np.unravel_index(np.arange(total), DSPRITES_SIZES), axis=1)
    path = tmp_path / "dsprites.npz"
    np.savez(path, imgs=imgs, latents_classes=classes, latents_values=classes.astype(float))
    source = load_dsprites(path, factor_sizes=DSPRITES_SIZES)
    assert source.factor_sizes == DSPRITES_SIZES[1:] and source.num_channels == 1
    factors = source.sample_factors(np.random.default_rng(3), 6)
    got = source.images(factors).numpy()
    index = np.ravel_multi_index(tuple(factors.T), DSPRITES_SIZES[1:])
    assert np.array_equal(got[:, 0], imgs[index].astype(np.float32))


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_mpi3d(tmp_path / "nope.npz")
    bad_zip = tmp_path / "garbage.npz"
    bad_zip.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not a valid .npz"):
        load_mpi3d(bad_zip)
    wrong_key = tmp_path / "key.npz"
    np.savez(wrong_key, pictures=_mpi3d_images())
    with pytest.raises(ValueError, match="no array 'images'.*pictures"):
        load_mpi3d(wrong_key, factor_sizes=MPI_SIZES)
    wrong_count = tmp_path / "count.npz"
    np.savez(wrong_count, images=_mpi3d_images()[:-1])
    with pytest.raises(ValueError, match="35 images but the factor sizes"):
        load_mpi3d(wrong_count, factor_sizes=MPI_SIZES)
    gray = tmp_path / "gray.npz"
    np.savez(gray, images=_mpi3d_images()[..., 0])
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        load_mpi3d(gray, factor_sizes=MPI_SIZES)
    with pytest.raises(ValueError, match="7 positive"):
        load_mpi3d(gray, factor_sizes=(2, 2))


def test_truncated_file(tmp_path):
    path = tmp_path / "mpi3d.npz"
    np.savez(path, images=_mpi3d_images(16))
    data = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated|not a valid"):
        load_mpi3d(truncated, factor_sizes=MPI_SIZES)


def test_dsprites_wrong_order(tmp_path):
    total = int(np.prod(DSPRITES_SIZES))
    classes = np.stack(np.unravel_index(np.arange(total), DSPRITES_SIZES), axis=1)[::-1]
    path = tmp_path / "d.npz"
    np.savez(path, imgs=np.zeros((total, 4, 4), np.uint8), latents_classes=classes)
    with pytest.raises(ValueError, match="not in factor order"):
        load_dsprites(path, factor_sizes=DSPRITES_SIZES)
    np.savez(path, imgs=np.zeros((total, 4, 4), np.uint8), latents_classes=classes[:5])
    with pytest.raises(ValueError, match="latents_classes"):
        load_dsprites(path, factor_sizes=DSPRITES_SIZES)
