import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from kgan import data
from kgan.errors import KganError


def write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_npz_uint8_maps_to_unit_range_and_keeps_labels(toy_npz):
    ds = data.load(str(toy_npz))
    raw = np.load(toy_npz)
    assert ds.name == "toy"
    assert ds.x.shape == (200, 8, 8, 1) and ds.x.dtype == np.float32
    np.testing.assert_allclose(ds.x[..., 0], raw["x_train"] / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(ds.y, raw["y_train"])
    assert ds.num_classes == int(raw["y_train"].max()) + 1


@pytest.mark.parametrize(("values", "expected"), [
    (np.array([0.0, 0.5, 1.0]), np.array([-1.0, 0.0, 1.0])),  # [0, 1]
    (np.array([-1.0, 0.0, 1.0]), np.array([-1.0, 0.0, 1.0])),  # already [-1, 1]
    (np.array([0.0, 127.5, 255.0]), np.array([-1.0, 0.0, 1.0])),  # float [0, 255]
])
def test_npz_float_ranges(tmp_path, values, expected):
    x = np.full((2, 4, 4, 3), values[0], np.float32)
    x[:, 0, :3, :] = values[:, None]
    np.savez(tmp_path / "f.npz", x_train=x)
    ds = data.load(str(tmp_path / "f.npz"))
    assert ds.y is None and ds.x.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(ds.x[1, 0, :3, 2], expected, atol=1e-6)


def test_npz_resize(toy_npz):
    ds = data.load(str(toy_npz), image_size=16)
    assert ds.x.shape == (200, 16, 16, 1)
    assert ds.x.min() >= -1.0 and ds.x.max() <= 1.0


def test_idx_gz_round_trip(tmp_path):
    images = np.arange(3 * 5 * 4, dtype=np.uint8).reshape(3, 5, 4)
    write_idx(tmp_path / "img-idx3-ubyte.gz", images)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "img-idx3-ubyte.gz"), images)


def test_idx_truncated_is_an_error(tmp_path):
    write_idx(tmp_path / "x.gz", np.zeros((3, 5, 4)))
    raw = gzip.decompress((tmp_path / "x.gz").read_bytes())
    (tmp_path / "x.gz").write_bytes(gzip.compress(raw[:-7]))
    with pytest.raises(KganError, match=r"Truncated IDX file .*x\.gz: header says shape \(3, 5, "):
        data.read_idx(tmp_path / "x.gz")


def test_debian_fashion_mnist_is_read_from_disk():
    # CI installs Debian's dataset-fashion-mnist (see ./dev); this reads the real 60k images.
    ds = data.load("fashion_mnist")
    assert ds.x.shape == (60000, 28, 28, 1) and ds.x.dtype == np.float32
    assert ds.x.min() == -1.0 and ds.x.max() == 1.0
    assert sorted(np.unique(ds.y)) == list(range(10))
    assert np.bincount(ds.y).tolist() == [6000] * 10


def make_folder(root, sizes=((10, 12), (20, 20)), mode="RGB"):
    rng = np.random.default_rng(1)
    for cls in ("cats", "dogs"):
        (root / cls / "nested").mkdir(parents=True)
        for i, (w, h) in enumerate(sizes):
            pixels = rng.integers(0, 256, (h, w, 3) if mode == "RGB" else (h, w), dtype=np.uint8)
            Image.fromarray(pixels, mode).save(root / cls / ("nested" if i else "") / f"{i}.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "dogs" / "extra.jpg")
    (root / "dogs" / "notes.txt").write_text("not an image")


def test_folder_recursive_with_class_labels(tmp_path):
    make_folder(tmp_path)
    ds = data.load(str(tmp_path), image_size=16)
    assert ds.x.shape == (5, 16, 16, 3)
    assert ds.y.tolist() == [0, 0, 1, 1, 1]  # sub-folders in sorted order: cats, dogs
    assert -1.0 <= ds.x.min() and ds.x.max() <= 1.0


def test_folder_of_gray_images_stays_gray(tmp_path):
    make_folder(tmp_path, mode="L")
    (tmp_path / "dogs" / "extra.jpg").unlink()
    ds = data.load(str(tmp_path))
    assert ds.x.shape == (4, 64, 64, 1)  # folders default to 64x64


def test_folder_errors(tmp_path):
    with pytest.raises(KganError, match=r"^No \.png/\.jpg images found in .*empty$"):
        (tmp_path / "empty").mkdir()
        data.load(str(tmp_path / "empty"))
    make_folder(tmp_path / "bad")
    (tmp_path / "bad" / "cats" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(KganError, match=r"^Cannot read image .*broken\.png"):
        data.load(str(tmp_path / "bad"))


@pytest.mark.parametrize(("source", "message"), [
    ("imagenet", "Unknown dataset 'imagenet'. Use one of mnist, fashion_mnist, cifar10, "
                 "a folder of images or an .npz file with x_train."),
    ("missing.npz", "Dataset not found: missing.npz (no such file or folder)"),
    ("no/such/folder", "Dataset not found: no/such/folder (no such file or folder)"),
])
def test_bad_sources(source, message):
    with pytest.raises(KganError) as e:
        data.load(source)
    assert str(e.value) == message


def test_npz_without_x_train(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((2, 4, 4)))
    with pytest.raises(KganError, match=r"has no `x_train` array \(found: images\)"):
        data.load(str(tmp_path / "d.npz"))


def test_offline_download_error_says_what_to_do(monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure on https://storage.googleapis.com/mnist.npz: "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(KganError) as e:
        data.load("mnist")
    assert str(e.value).startswith("Cannot load mnist: download failed (URL fetch failure")
    assert str(e.value).endswith("Offline: put mnist.npz in ~/.keras/datasets/")
