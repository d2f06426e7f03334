"""--mixed-precision: low-precision compute, float32 weights, logits and gradient penalty."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import KGAN_CLI, toy_config

from kgan import draw
from kgan import training as lib
from kgan.build import build_gan
from kgan.checkpoint import load_gan
from kgan.config import TrainConfig
from kgan.policy import cpu_has_bfloat16, mixed_precision, precision_policy


def test_mixed_precision_trains_in_bfloat16_on_cpu_and_keeps_float32_where_it_matters(
        toy_npz, tmp_path):
    config = toy_config(toy_npz, arch="dcgan", loss="wgan-gp", base_filters=8, epochs=2,
                        mixed_precision=True)
    assert precision_policy(config) == "mixed_bfloat16"  # no GPU here
    run = lib.train(config, runs_dir=tmp_path).run_dir
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was

    gan, _ = load_gan(run)  # rebuilt with the run's policy
    hidden = [layer for model in (gan.generator, gan.discriminator) for layer in model.layers
              if layer.weights and layer.name not in ("images", "logits")]
    assert len(hidden) == 3  # dense + batch norm in G, a conv in D (8x8 images)
    assert {(layer.compute_dtype, layer.variable_dtype) for layer in hidden} == {
        ("bfloat16", "float32")}
    assert {w.dtype for w in gan.weights} == {"float32"}
    images = gan.generator(np.zeros((2, 8), "float32"))
    logits = gan.discriminator(images)
    assert (images.dtype, logits.dtype) == ("float32", "float32")

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2
    assert all(np.isfinite(r[key]) for r in records for key in ("d_loss", "g_loss", "d_real"))
    drawn = draw.draw(draw.from_run(run), 4, seed=0)
    assert drawn.shape == (4, 8, 8, 1) and drawn.dtype == np.float32
    assert np.isfinite(drawn).all() and np.abs(drawn).max() <= 1


def test_without_mixed_precision_everything_is_float32(toy_npz):
    config = TrainConfig(dataset=str(toy_npz), arch="dcgan", latent_dim=8, base_filters=8,
                         mixed_precision=False)
    config.image_shape = (8, 8, 1)
    gan = build_gan(config)
    assert precision_policy(config) == "float32"
    assert {layer.compute_dtype for layer in gan.generator.layers + gan.discriminator.layers} == {
        "float32"}


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_mixed_precision_trains_on_jax_and_torch(toy_npz, tmp_path, backend, on_backend):
    run = Path(on_backend(backend, KGAN_CLI, "train", "--backend", backend, "--dataset", toy_npz,
                          "--arch", "dcgan", "--loss", "wgan-gp", "--epochs", 1, "--batch-size",
                          16, "--latent-dim", 8, "--mixed-precision", "--quiet", "--no-curves",
                          "--no-tensorboard", "--runs-dir", tmp_path).strip())
    assert json.loads((run / "config.json").read_text())["mixed_precision"] is True
    record = json.loads((run / "metrics.jsonl").read_text())
    assert all(np.isfinite(record[key]) for key in ("d_loss", "g_loss", "d_real", "d_fake"))


def test_auto_mixed_precision_is_bfloat16_for_the_dcgan_on_a_bfloat16_cpu(toy_npz, tmp_path):
    def auto(**options):
        return mixed_precision(TrainConfig(**{"arch": "dcgan", **options}))

    # This test's own CPU decides: the CI machine's has AVX512-BF16.
    assert auto() is cpu_has_bfloat16()
    assert auto(backend="jax") is auto(backend="torch") is auto(arch="mlp") is False
    assert auto(mixed_precision=False) is False and auto(arch="mlp", mixed_precision=True)
    # A run records what was chosen, and is rebuilt with it.
    run = lib.train(toy_config(toy_npz, arch="dcgan", base_filters=8, epochs=1),
                    runs_dir=tmp_path).run_dir
    assert json.loads((run / "config.json").read_text())["mixed_precision"] is cpu_has_bfloat16()
    gan, _ = load_gan(run)
    assert gan.discriminator.layers[1].compute_dtype == (
        "bfloat16" if cpu_has_bfloat16() else "float32")
