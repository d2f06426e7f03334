"""`kgan project` and `kgan edit` on toy runs: the files, every backend, the directions, the
errors. (Recovery of a generator's own images and class edits on real data:
`test_conditional_quality.py`.)"""

import json

import numpy as np
import pytest
from conftest import kgan, toy_config, write_toy_npz
from PIL import Image

from kgan import edit, export
from kgan import project as projection
from kgan import training as lib
from kgan.checkpoint import load_gan


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    """A DCGAN and a conditional StyleGAN of 8x8 gray toy images, and 3 such images."""
    tmp = tmp_path_factory.mktemp("project")
    npz, rng = write_toy_npz(tmp), np.random.default_rng(1)
    (tmp / "images").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(
            tmp / "images" / f"{i}.png")
    runs = {arch: lib.train(toy_config(npz, arch=arch, base_filters=4,
                                       steps_per_epoch=4, **extra), runs_dir=tmp / "runs").run_dir
            for arch, extra in (("dcgan", {}), ("stylegan", {"conditional": True}))}
    return tmp, runs


def test_project_writes_each_images_projection_latent_search_and_record(toy_runs):
    tmp, runs = toy_runs
    done = kgan("project", runs["stylegan"], tmp / "images", "--out", tmp / "out", "--steps",
                20, "--distance", "discriminator", "--space", "w+", "--label", 2, "--json")
    assert done.exit_code == 0, done.output
    records = json.loads(done.stdout)["projections"]
    assert [r["image"] for r in records] == [str(tmp / "images" / f"{i}.png") for i in range(3)]
    for i, record in enumerate(records):
        assert (record["space"], record["label"], record["steps"]) == ("w+", 2, 20)
        assert 0 < record["psnr"] <= 100 and -1 <= record["ssim"] <= 1
        stem = tmp / "out" / str(i)
        assert Image.open(stem.with_suffix(".png")).size == (8, 8)
        gif = Image.open(stem.with_suffix(".gif"))  # the target beside the search
        assert gif.size == (16, 8) and 2 <= gif.n_frames <= 20  # (a still frame merges)
        target = np.asarray(Image.open(tmp / "images" / f"{i}.png"))
        np.testing.assert_array_equal(np.asarray(gif.convert("L"))[:, :8], target)
        latent = np.load(stem.with_suffix(".npy"))
        assert latent.shape == (5, 8)  # w+: a style for each of the 5 layers of 8x8 images
        assert json.loads(stem.with_suffix(".json").read_text()) == record
    # The latent, edited: mix with another image's, and class 0.
    for direction, frames in (("mix:" + str(tmp / "out" / "1.npy"), 5), ("class:0", 2)):
        done = kgan("edit", runs["stylegan"], tmp / "out" / "0.npy", "--direction", direction,
                    "--out", tmp / "edits", "--json")
        assert done.exit_code == 0, done.output
        strip, gif = json.loads(done.stdout)["files"]
        assert Image.open(strip).size == (8 * frames, 8)
        assert Image.open(gif).n_frames == 2 * frames - 2  # there and back


# Projects argv[2] into the run argv[1] on this worker's backend, into argv[3]; prints it.
PROJECT = r"""
import sys
import keras
from kgan.project import project_files
project_files(*sys.argv[1:4], steps=10, distance_kind="pixel")
print(keras.backend.backend())
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_projection_takes_the_same_path_on_every_backend(backend, toy_runs, on_backend):
    """The same steps from the same start: the latents TensorFlow finds, within float noise."""
    tmp, runs = toy_runs
    if not (tmp / "tensorflow").is_dir():  # once for both backends
        assert kgan("project", runs["dcgan"], tmp / "images", "--out", tmp / "tensorflow",
                    "--steps", 10, "--distance", "pixel").exit_code == 0
    assert on_backend(backend, PROJECT, runs["dcgan"], tmp / "images", tmp / backend) \
        == f"{backend}\n"
    for i in range(3):
        np.testing.assert_allclose(np.load(tmp / backend / f"{i}.npy"),
                                   np.load(tmp / "tensorflow" / f"{i}.npy"), atol=2e-3)


@pytest.mark.parametrize("arch", ["dcgan", "stylegan"])
def test_principal_directions_are_orthonormal_and_ordered_by_variance(arch, toy_runs):
    tmp, runs = toy_runs
    gan, _ = load_gan(runs[arch])
    space = "w" if arch == "stylegan" else "z"
    directions, stds, variances = edit.principal_directions(gan, space, count=6)
    np.testing.assert_allclose(directions @ directions.T, np.eye(6), atol=1e-5)
    assert np.all(np.diff(variances) <= 0) and variances[-1] > 0
    if space == "w":  # the spread of fresh styles along each is its own, in that order
        z = np.random.default_rng(5).standard_normal((4000, gan.latent_dim))
        w = projection.mapped_styles(gan, z, np.arange(4000) % 4)
        spread = np.std(w @ directions.T, axis=0)
        np.testing.assert_allclose(spread, stds, rtol=0.1)
        assert np.all(np.diff(spread) < 0.05 * spread[0])
    else:
        assert np.all(stds == 1)  # z's spread along any unit direction
    done = kgan("edit", runs[arch], "--list", "--out", tmp / arch, "--json")
    strip, _ = json.loads(done.stdout)["files"]
    assert Image.open(strip).size == (7 * 8, 8 * 8)  # pca:0 .. pca:7, 7 strengths each


def test_an_export_is_projected_in_z_and_one_without_raw_is_refused(toy_runs):
    import tensorflow as tf

    tmp, runs = toy_runs
    path = export.export(runs["dcgan"], tmp / "saved_models", verify=False)
    done = kgan("project", path.parent, tmp / "images", "--out", tmp / "from-export",
                "--steps", 10, "--distance", "pixel", "--json")
    assert done.exit_code == 0, done.output
    (first, *_) = json.loads(done.stdout)["projections"]
    assert first["space"] == "z" and first["source"] == str(path)
    # The same search through the run's own generator finds the same latent.
    if not (tmp / "tensorflow").is_dir():
        assert kgan("project", runs["dcgan"], tmp / "images", "--out", tmp / "tensorflow",
                    "--steps", 10, "--distance", "pixel").exit_code == 0
    np.testing.assert_allclose(np.load(tmp / "from-export" / "0.npy"),
                               np.load(tmp / "tensorflow" / "0.npy"), atol=2e-3)
    # An export of another kind, with kgan.json but no `raw` signature.
    module = tf.Module()
    module.f = tf.function(lambda z: {"images": z}, input_signature=[
        tf.TensorSpec([None, 8], tf.float32, name="z")])
    old = tmp / "old" / "1"
    tf.saved_model.save(module, str(old), signatures={"serving_default": module.f})
    (old / "assets.extra").mkdir()
    (old / "assets.extra" / "kgan.json").write_text((path / "assets.extra" / "kgan.json")
                                                   .read_text())
    done = kgan("project", old, tmp / "images", "--out", tmp / "x")
    assert (done.exit_code, done.output) == (1, f"Error: {old} has no `raw` signature (z to "
                                             "float images), which projection moves through: "
                                             "export its run again\n")


def test_bad_project_and_edit_input_is_one_line(toy_runs):
    tmp, runs = toy_runs
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp / "color.png")
    cases = [
        (["project", runs["dcgan"], tmp / "color.png", "--out", tmp / "x"],
         f"Error: {tmp / 'color.png'} has 3 channels; the generator draws gray images "
         "(1 channel): convert it first\n"),
        (["project", runs["dcgan"], tmp / "images", "--out", tmp / "x", "--space", "w"],
         "Error: --space w needs a stylegan generator (it has styles w); this one is searched "
         "in z\n"),
        (["edit", runs["dcgan"], "seed:1", "--direction", "sideways:2"],
         "Error: Unknown direction 'sideways:2'. Valid directions: class:K, pca:N, "
         "from:POS_DIR,NEG_DIR, mix:OTHER. Received: direction=sideways:2\n"),
        (["edit", runs["dcgan"], "seed:1", "--direction", "class:1"],
         "Error: class:K needs a conditional run (trained with --conditional)\n"),
        (["edit", runs["dcgan"], "seed:1", "--direction", "mix:seed:2"],
         "Error: mix:OTHER needs a stylegan run's latents in w or w+ (its images are made of "
         "styles)\n"),
        (["edit", runs["dcgan"], "seed:1", "--direction", "pca:99"],
         "Error: The principal direction must be a number in [0, 8). Received: 99\n"),
        (["edit", runs["dcgan"], "seed:1", "--direction", "pca:0", "--strength", "3"],
         "Error: `strength` must be a range LOW..HIGH, e.g. -3..3. Received: strength=3\n"),
    ]
    for args, message in cases:
        done = kgan(*args)
        assert (done.exit_code, done.output) == (1, message), args
    assert not (tmp / "x").exists()  # nothing written for a refused input
