"""Image-to-image data: paired and unpaired folders and .npz files, the demos, and batching."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from kgan.errors import KganError
from kgan.families.translation import sides
from kgan.trainers import numpy_data
from kgan.trainers.tensorflow import make_dataset as tf_make_dataset


def save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path


def test_paired_folder_pairs_files_by_name_across_depths_and_channels(tmp_path):
    rng = np.random.default_rng(0)
    gray = {name: rng.integers(0, 256, (8, 8), dtype=np.uint8) for name in ("x", "y", "z")}
    save(tmp_path / "A" / "x.png", gray["x"])
    save(tmp_path / "A" / "sub" / "y.png", gray["y"])
    # 16-bit gray is scaled to 8 bits, not clipped.
    save(tmp_path / "A" / "z.png", gray["z"].astype(np.uint16) * 257)
    color = {name: rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for name in gray}
    save(tmp_path / "B" / "x.png", color["x"])
    save(tmp_path / "B" / "sub" / "y.png", np.dstack([color["y"], np.full((8, 8), 255,
                                                                         np.uint8)]))  # RGBA
    save(tmp_path / "B" / "z.png", color["z"])

    pairs = sides.load_pairs(str(tmp_path))
    assert pairs.paired and pairs.channels == (1, 3) and pairs.image_shape == (8, 8, 1)
    # Sorted by relative path: sub/y, x, z; each A beside its own B.
    for i, name in enumerate(("y", "x", "z")):
        np.testing.assert_array_equal(np.round((pairs.a[i, ..., 0] + 1) * 127.5), gray[name])
        np.testing.assert_array_equal(np.round((pairs.b[i] + 1) * 127.5), color[name])
    resized = sides.load_pairs(str(tmp_path), image_size=12)
    assert resized.a.shape == (3, 12, 12, 1) and resized.b.shape == (3, 12, 12, 3)


def test_unpaired_folders_take_any_names_and_counts(tmp_path):
    for i in range(3):
        save(tmp_path / "A" / f"a{i}.jpg", np.full((8, 8, 3), 40 * i, np.uint8))
    save(tmp_path / "B" / "other.png", np.zeros((8, 8), np.uint8))
    pairs = sides.load_pairs(str(tmp_path), paired=False)
    assert (pairs.a.shape, pairs.b.shape) == ((3, 8, 8, 3), (1, 8, 8, 1))
    assert not pairs.paired


def _folder(tmp_path, a_files, b_files, size=(8, 8)):
    for side, files in (("A", a_files), ("B", b_files)):
        (tmp_path / side).mkdir(parents=True, exist_ok=True)
        for name in files:
            save(tmp_path / side / name, np.zeros(size[::-1] if name != "big.png" else (12, 12),
                                                  np.uint8))
    return str(tmp_path)


@pytest.mark.parametrize("a_files, b_files, message", [
    (["x.png", "y.png"], ["x.png"], "{root}/A/y.png has no partner {root}/B/y.png (paired "
     "data needs files of the same names in A/ and B/)"),
    (["x.png"], ["x.png", "w.png"], "{root}/B/w.png has no partner {root}/A/w.png (paired "
     "data needs files of the same names in A/ and B/)"),
    (["big.png"], [], "No .png/.jpg/.webp images found in {root}/B"),
])
def test_bad_paired_folders_name_the_first_offending_file(tmp_path, a_files, b_files, message):
    root = _folder(tmp_path, a_files, b_files)
    with pytest.raises(KganError) as e:
        sides.load_pairs(root)
    assert str(e.value) == message.format(root=root)


def test_a_pair_of_two_sizes_and_odd_sizes_are_refused(tmp_path):
    save(tmp_path / "A" / "x.png", np.zeros((8, 8), np.uint8))
    save(tmp_path / "B" / "x.png", np.zeros((12, 12), np.uint8))
    with pytest.raises(KganError) as e:
        sides.load_pairs(str(tmp_path))
    assert str(e.value) == (f"{tmp_path}/A/x.png is 8x8 but {tmp_path}/B/x.png is 12x12: a "
                            "pair must be the same size")
    save(tmp_path / "B" / "x.png", np.zeros((6, 6), np.uint8))
    save(tmp_path / "A" / "x.png", np.zeros((6, 6), np.uint8))
    with pytest.raises(KganError) as e:
        sides.load_pairs(str(tmp_path))
    assert str(e.value) == (f"Images of {tmp_path} are 6x6: image-to-image runs need square "
                            "sides divisible by 4 (resize with --image-size, e.g. 32)")
    (tmp_path / "B" / "x.png").unlink()
    (tmp_path / "B").rmdir()
    with pytest.raises(KganError, match=r"has no B/ folder: image-to-image data is a folder "
                       r"with A/ \(inputs\) and B/ \(targets\)"):
        sides.load_pairs(str(tmp_path))


def test_npz_pairs_and_their_errors(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 8, 8)), rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "p.npz", x_a=a, x_b=b, x_a_test=a[:2], x_b_test=b[:2])
    pairs = sides.load_pairs(str(tmp_path / "p.npz"))
    assert pairs.a.shape == (5, 8, 8, 1) and pairs.b.shape == (5, 8, 8, 3)
    np.testing.assert_allclose(pairs.a[..., 0], a * 2 - 1, atol=1e-6)
    assert sides.load_pairs(str(tmp_path / "p.npz"), split="test").a.shape == (2, 8, 8, 1)

    np.savez(tmp_path / "short.npz", x_a=a, x_b=b[:4])
    with pytest.raises(KganError) as e:
        sides.load_pairs(str(tmp_path / "short.npz"))
    assert str(e.value) == (f"`x_a` and `x_b` in {tmp_path}/short.npz must pair up: the same "
                            "number of images of the same size. Received: shapes (5, 8, 8, 1) "
                            "and (4, 8, 8, 3)")
    assert len(sides.load_pairs(str(tmp_path / "short.npz"), paired=False).b) == 4
    np.savez(tmp_path / "one.npz", x_a=a)
    with pytest.raises(KganError, match=r"has no `x_b` array \(found: x_a\)"):
        sides.load_pairs(str(tmp_path / "one.npz"))
    with pytest.raises(KganError, match="image-to-image runs take a folder with A/ and B/"):
        sides.load_pairs(str(tmp_path / "missing"))


@pytest.mark.parametrize("demo", ["inpaint", "superres", "edges"])
def test_paired_demos_derive_inputs_from_fashion_mnist(demo):
    pairs = sides.load_pairs(f"fashion_mnist:{demo}", split="test")
    assert pairs.a.shape == pairs.b.shape == (10000, 28, 28, 1) and pairs.paired
    assert pairs.a.min() >= -1 and pairs.a.max() <= 1
    changed = pairs.a != pairs.b
    if demo == "inpaint":  # one gray 12x12 square; the rest is the target itself
        assert np.all(changed.sum(axis=(1, 2, 3)) <= 144)
        assert np.all(pairs.a[changed] == 0.0)
    elif demo == "superres":  # constant on 4x4 blocks, their mean
        blocks = pairs.a.reshape(-1, 7, 4, 7, 4, 1)
        assert np.all(blocks == blocks[:, :, :1, :, :1])
        np.testing.assert_allclose(blocks[:, :, 0, :, 0], pairs.b.reshape(-1, 7, 4, 7, 4, 1)
                                   .mean(axis=(2, 4)), atol=1e-5)
    else:  # binary edge maps
        assert set(np.unique(pairs.a)) == {-1.0, 1.0}


def test_unpaired_demo_and_demo_errors():
    pairs = sides.load_pairs("fashion_mnist:sandals2sneakers", split="test", paired=False)
    assert pairs.domains == (5, 7) and len(pairs.a) == len(pairs.b) == 1000
    with pytest.raises(KganError) as e:
        sides.load_pairs("fashion_mnist:sandals2sneakers")
    assert str(e.value) == ("Dataset fashion_mnist:sandals2sneakers is unpaired (--arch "
                            "cyclegan)")
    with pytest.raises(KganError) as e:
        sides.load_pairs("fashion_mnist:colorize")
    assert str(e.value) == ("Unknown demo 'fashion_mnist:colorize'. Valid demos: "
                            "fashion_mnist:inpaint, fashion_mnist:superres, fashion_mnist:edges, "
                            "fashion_mnist:sandals2sneakers")


@settings(max_examples=25, deadline=None)
@given(n_a=st.integers(4, 30), n_b=st.integers(4, 30), batch=st.integers(1, 4),
       seed=st.integers(0, 2**31 - 1), paired=st.booleans())
def test_batches_are_keyed_by_seed_and_epoch_and_resume_exactly(n_a, n_b, batch, seed, paired):
    """Paired arrays share one order; unpaired A and B have their own; a resumed epoch (skip)
    sees exactly the rest of the batches an uninterrupted one does, on NumPy and tf.data."""
    n_b = n_a if paired else n_b
    a, b = np.arange(n_a), 1000 + np.arange(n_b)
    steps = min(n_a, n_b) // batch
    for make in (numpy_data.make_dataset, tf_make_dataset):
        whole = [tuple(np.asarray(x) for x in step)
                 for step in make((a, b), batch, seed, steps, 0, 2, paired=paired)]
        assert len(whole) == 2 * steps
        for epoch in range(2):
            seen_a = np.concatenate([s[0] for s in whole[epoch * steps : (epoch + 1) * steps]])
            seen_b = np.concatenate([s[1] for s in whole[epoch * steps : (epoch + 1) * steps]])
            assert len(set(seen_a)) == len(seen_a) == steps * batch  # without replacement
            assert len(set(seen_b)) == len(seen_b)
            if paired:
                np.testing.assert_array_equal(seen_b, seen_a + 1000)
        resumed = [tuple(np.asarray(x) for x in step)
                   for step in make((a, b), batch, seed, steps, 1, 2, skip_steps=steps // 2,
                                    paired=paired)]
        for got, expected in zip(resumed, whole[steps + steps // 2 :], strict=True):
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])
