"""Sampling a conditional run: --label, --labels rows, --interpolate strips and GIFs."""

import json

import keras
import numpy as np
import pytest
from conftest import kgan, toy_config
from PIL import Image

from kgan import draw, images
from kgan import training as lib
from kgan.checkpoint import load_gan
from kgan.families.noise import GANSource


def test_slerp_keeps_ends_and_walks_on_the_sphere():
    a = np.array([[1.0, 0.0, 0.0], [3.0, 4.0, 0.0]], np.float32)
    b = np.array([[0.0, 1.0, 0.0], [3.0, 4.0, 0.0]], np.float32)  # orthogonal; parallel
    path = draw.slerp(a, b, np.linspace(0, 1, 5))
    assert path.shape == (5, 2, 3)
    np.testing.assert_allclose(path[0], a, atol=1e-6)
    np.testing.assert_allclose(path[-1], b, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(path[:, 0], axis=-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(path[2, 0], [2**-0.5, 2**-0.5, 0], atol=1e-6)
    np.testing.assert_allclose(path[:, 1], np.broadcast_to(a[1], (5, 3)), atol=1e-5)


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("conditional")
    rng = np.random.default_rng(0)
    np.savez(tmp / "toy.npz", x_train=rng.integers(0, 256, (64, 8, 8, 1), dtype=np.uint8),
             y_train=np.arange(64) % 4)
    return lib.train(toy_config(tmp / "toy.npz", conditional=True), runs_dir=tmp / "runs").run_dir


def png(path):
    return np.asarray(Image.open(path))


def test_label_and_labels_rows(conditional_run, tmp_path):
    gan, _ = load_gan(conditional_run)
    done = kgan("sample", conditional_run, "--label", 3, "--n", 8, "--nrow", 8,
                "--out", tmp_path / "three.png")
    assert done.exit_code == 0, done.output
    three = images.to_uint8(keras.ops.convert_to_numpy(gan.generate(8, seed=0, labels=3)))
    np.testing.assert_array_equal(png(tmp_path / "three.png"), images.grid(three, 8)[..., 0])

    done = kgan("sample", conditional_run, "--labels", "1,3", "--out", tmp_path / "rows.png",
                "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"files": [str(tmp_path / "rows.png")]}
    rows = png(tmp_path / "rows.png")
    assert rows.shape == (2 * 10 + 2, 8 * 10 + 2)  # 2 rows of 8 (the default per class)
    np.testing.assert_array_equal(rows[12:], png(tmp_path / "three.png")[2:])  # same latents


def test_interpolate_writes_a_strip_and_a_looping_gif(conditional_run, tmp_path):
    done = kgan("sample", conditional_run, "--interpolate", 5, "--out", tmp_path / "walk.png")
    assert done.exit_code == 0, done.output
    assert done.stdout.split() == [str(tmp_path / "walk.png"), str(tmp_path / "walk.gif")]
    strip = png(tmp_path / "walk.png")
    assert strip.shape == (4 * 10 + 2, 5 * 10 + 2)  # one row per class, 5 frames
    gif = Image.open(tmp_path / "walk.gif")
    assert gif.n_frames == 5 + 3 and gif.info["loop"] == 0  # forward, then back
    gan, _ = load_gan(conditional_run)
    walks = draw.interpolate(GANSource(gan), 5, seed=0)
    assert walks.shape == (4, 5, 8, 8, 1)
    ends = keras.ops.convert_to_numpy(gan.sample_noise(8, seed=0))
    start = GANSource(gan).generate(np.repeat(ends[:1], 4, 0), np.arange(4, dtype="int32"))
    np.testing.assert_allclose(walks[:, 0], start, atol=1e-6)  # every class from the same z
    np.testing.assert_array_equal(np.asarray(gif.convert("L")),
                                  images.grid(images.to_uint8(walks[:, 0]))[..., 0])


def test_bad_sample_options(conditional_run, toy_npz, tmp_path):
    plain = lib.train(toy_config(toy_npz, steps_per_epoch=2), runs_dir=tmp_path).run_dir
    for run, args, message in [
        (conditional_run, ["--label", 4], "`label` must be in [0, 4) for this run. "
                                          "Received: label=4"),
        (conditional_run, ["--labels", "0-9"], "`label` must be in [0, 4) for this run. "
                                               "Received: label=4"),
        (conditional_run, ["--labels", "a-b"], "`labels` must look like 3, 0-9 or 0,2,5 (class "
                                               "numbers below 10000). Received: labels=a-b"),
        (conditional_run, ["--labels", "0-100000000"], "`labels` must look like 3, 0-9 or 0,2,5 "
         "(class numbers below 10000). Received: labels=0-100000000"),
        (conditional_run, ["--label", 1, "--labels", "0-1"], "Use --label or --labels, not both"),
        (conditional_run, ["--interpolate", 1], "`interpolate` must be an integer of at least 2 "
                                                "(frames per walk). Received: interpolate=1"),
        (plain, ["--label", 1], "--label needs a conditional run (trained with --conditional)"),
        (plain, ["--interpolate", 3, "--label", 0],
         "--label needs a conditional run (trained with --conditional)"),
    ]:
        done = kgan("sample", run, *args, "--out", tmp_path / "x.png")
        assert done.exit_code == 1, (args, done.output)
        assert done.stderr == f"Error: {message}\n", args
    assert not (tmp_path / "x.png").exists()


def test_a_run_and_its_export_draw_the_same_class_rows_and_walks(conditional_run, tmp_path):
    from kgan import export

    version = export.export(conditional_run, tmp_path / "saved_models")
    run, model = draw.from_run(conditional_run), draw.from_export(version)
    for name, drawn in [("class rows", lambda s: draw.class_rows(s, [0, 1, 2, 3], 5, seed=0)),
                        ("walks", lambda s: draw.interpolate(s, 4, seed=0)),
                        ("one class", lambda s: draw.draw(s, 6, seed=0, labels=2))]:
        a, b = drawn(run), drawn(model)
        assert a.shape == b.shape and a.shape[-3:] == (8, 8, 1), name
        np.testing.assert_allclose(a, b, atol=1e-5, err_msg=name)  # the same latents
    # The command dispatches a run and an export to the same drawing.
    from_run = kgan("sample", conditional_run, "--labels", "0-3", "--n", 5, "--out",
                    tmp_path / "run.png")
    from_model = kgan("sample", "--model", version, "--labels", "0-3", "--n", 5, "--out",
                      tmp_path / "model.png")
    assert from_run.exit_code == from_model.exit_code == 0, from_model.output
    a, b = png(tmp_path / "run.png").astype(int), png(tmp_path / "model.png").astype(int)
    assert a.shape == b.shape == (4 * 10 + 2, 5 * 10 + 2)  # a row of 5 per class
    assert np.abs(a - b).max() <= 1  # uint8 rounding only
