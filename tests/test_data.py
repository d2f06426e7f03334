import gzip
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from kgan import data
from kgan.config import MAX_CLASSES
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
    assert np.asarray(ds.x).min() >= -1.0 and np.asarray(ds.x).max() <= 1.0


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
    assert np.asarray(ds.x).min() == -1.0 and np.asarray(ds.x).max() == 1.0
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
    assert -1.0 <= np.asarray(ds.x).min() and np.asarray(ds.x).max() <= 1.0


def test_folder_of_gray_images_stays_gray(tmp_path):
    make_folder(tmp_path, mode="L")
    (tmp_path / "dogs" / "extra.jpg").unlink()
    ds = data.load(str(tmp_path))
    assert ds.x.shape == (4, 64, 64, 1)  # folders default to 64x64


def test_folder_errors(tmp_path):
    with pytest.raises(KganError, match=r"^No \.png/\.jpg/\.webp images found in .*empty$"):
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


def test_a_folder_with_non_ascii_letters_names_its_runs_in_ascii(tmp_path):
    make_folder(tmp_path / "données")
    assert data.load(str(tmp_path / "données"), image_size=8).name == "donn_es"


def test_16_bit_pngs_keep_their_gray_levels(tmp_path):
    ramp = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    (tmp_path / "deep").mkdir()
    Image.fromarray(ramp).save(tmp_path / "deep" / "ramp.png")  # 16-bit gray (I;16)
    ds = data.load(str(tmp_path / "deep"), image_size=8)
    expected = np.round(ramp / 65535 * 255) / 127.5 - 1
    np.testing.assert_allclose(ds.x[0, ..., 0], expected, atol=1e-6)  # not all white


@pytest.mark.parametrize(("labels", "problem"), [
    (np.arange(4) - 2, ": integers in [0, 10000). Received: np.int64(-2)"),
    (np.array([0, 1, np.nan, 2]), ": integers in [0, 10000). Received: np.float64(nan)"),
    (np.array([0, 1, 2e9, 2]), ": integers in [0, 10000). Received: np.float64(2000000000.0)"),
    (np.array([0, 1.5, 2, 3]), ": integers in [0, 10000). Received: np.float64(1.5)"),
    (np.array(["a", "b", "c", "d"]), ". Received: dtype=<U1"),
])
def test_labels_must_be_class_numbers(tmp_path, labels, problem):
    np.savez(tmp_path / "d.npz", x_train=np.zeros((4, 4, 4), np.uint8), y_train=labels)
    with pytest.raises(KganError) as e:
        data.load(str(tmp_path / "d.npz"))
    assert str(e.value) == f"`y_train` in {tmp_path / 'd.npz'} must hold class numbers{problem}"


def test_files_that_are_not_npz_archives(tmp_path):
    np.save(tmp_path / "single.npy", np.zeros((4, 4, 4)))
    (tmp_path / "single.npy").rename(tmp_path / "renamed.npz")
    np.savez(tmp_path / "strings.npz", x_train=np.array([["a", "b"], ["c", "d"]]))
    (tmp_path / "photo.png").write_bytes(b"png")
    (tmp_path / "notes.npz").write_text("x_train: see the attached photos")
    (tmp_path / "notes.npy").write_text("x_train: see the attached photos")
    for source, message in [
        ("notes.npy", "Cannot read {}: it is not an .npy array (numpy.save writes one)"),
        ("notes.npz", "Cannot read {}: it is not an .npz archive (numpy.savez writes one, "
                      "with x_train and y_train)"),
        ("renamed.npz", "Cannot read {}: it is a single .npy array, not an .npz archive "
                        "(numpy.savez writes one, with x_train and y_train)"),
        ("strings.npz", "`x_train` in {} must hold numbers. Received: dtype=<U1"),
        ("photo.png", "Dataset {} is a file, but not an .npz: give a folder of images or an "
                      ".npz file with x_train"),
    ]:
        with pytest.raises(KganError) as e:
            data.load(str(tmp_path / source))
        assert str(e.value) == message.format(tmp_path / source)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(images=arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 5), st.integers(1, 5),
                                         st.sampled_from([1, 3]))),
       classes=st.integers(1, 5), data_=st.data())
def test_any_uint8_npz_loads_into_the_unit_range_with_its_labels(tmp_path, images, classes,
                                                                  data_):
    labels = data_.draw(arrays(np.int64, len(images), elements=st.integers(0, classes - 1)))
    np.savez(tmp_path / "any.npz", x_train=images, y_train=labels)
    ds = data.load(str(tmp_path / "any.npz"))
    assert ds.x.shape == images.shape and ds.x.dtype == np.float32
    np.testing.assert_allclose(ds.x, images / 127.5 - 1, atol=1e-6)
    assert ds.y.dtype == np.int32 and ds.y.tolist() == labels.tolist()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(labels=arrays(np.float64, 3, elements=st.floats(allow_nan=True, allow_infinity=True)))
def test_any_label_outside_the_class_numbers_is_one_clear_error(tmp_path, labels):
    np.savez(tmp_path / "any.npz", x_train=np.zeros((3, 2, 2), np.uint8), y_train=labels)
    valid = np.isfinite(labels) & (labels >= 0) & (labels < MAX_CLASSES) & (
        labels == np.round(labels))
    if valid.all():
        assert data.load(str(tmp_path / "any.npz")).y.tolist() == labels.astype(int).tolist()
    else:
        with pytest.raises(KganError, match=r"must hold class numbers: integers in \[0, 10000\)"):
            data.load(str(tmp_path / "any.npz"))
