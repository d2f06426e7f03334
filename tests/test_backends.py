"""The same GAN on TensorFlow, JAX and PyTorch: one-step parity, resume, portable checkpoints.

JAX and PyTorch run in a worker process each (Keras picks its backend once, at import); the
tests themselves run on TensorFlow.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import KGAN_CLI, STYLE_ADA, TECHNIQUES, full_state

from kgan import export
from kgan.config import LOSSES

# One training step of each (arch, loss) case in argv[3] from the weights, batch and noise in
# the given .npz: the DCGAN with every loss, the residual GAN with its hinge loss and the
# style-based one with its non-saturating loss. StyleGAN2's per-pixel noise is the given one as
# well (the backends' random generators differ), style mixing is off, and so is spectral norm
# (its power iteration runs once per forward pass on TF and JAX, once per update on torch).
ONE_STEP = r"""
import json, sys
import numpy as np
import keras
from kgan.nn import layers
from kgan.config import TrainConfig
from kgan.build import build_gan

given = np.load(sys.argv[1])
draw_noise = layers.ModulatedConv2D.draw_noise  # put back at the end: the process serves on
layers.ModulatedConv2D.draw_noise = lambda self, x, training: keras.ops.cast(
    keras.ops.convert_to_tensor(given[f"noise{x.shape[1]}"])[: keras.ops.shape(x)[0]], x.dtype)
out = {}
for arch, loss in json.loads(sys.argv[3]):
    config = TrainConfig(arch=arch, image_shape=(8, 8, 1), latent_dim=8, base_filters=4,
                         loss=loss, spectral_norm=False, style_mixing=0.0, r1=0.0,
                         backend=keras.backend.backend(), jit=False, mixed_precision=False)
    gan = build_gan(config)
    gan.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1), loss=loss)
    weights = gan.generator.weights + gan.discriminator.weights
    for i, variable in enumerate(weights):
        variable.assign(given[f"{arch}/w{i}"])
    # One draw of z per step: G's update reuses the D step's fakes.
    gan.sample_noise = lambda n, seed=None: keras.ops.convert_to_tensor(given["z"])
    gan.interpolation_weights = lambda n, ndim: keras.ops.convert_to_tensor(given["alpha"])
    logs = gan.train_on_batch(given["real"], return_dict=True)
    for i, variable in enumerate(weights):
        out[f"{arch}-{loss}/w{i}"] = keras.ops.convert_to_numpy(variable)
    out[f"{arch}-{loss}/d_loss"] = np.float32(logs["d_loss"])
layers.ModulatedConv2D.draw_noise = draw_noise
np.savez(sys.argv[2], **out)
"""
CASES = [("dcgan", loss) for loss in LOSSES] + [("resnet", "hinge"), ("stylegan", "bce")]


def test_one_step_parity_of_every_loss_and_arch(tmp_path, on_backend, monkeypatch):
    from kgan.build import build_gan
    from kgan.config import TrainConfig
    from kgan.nn import layers

    rng = np.random.default_rng(0)
    given = {"real": rng.uniform(-1, 1, (16, 8, 8, 1)).astype(np.float32),
             "z": rng.standard_normal((16, 8)).astype(np.float32),
             "alpha": rng.uniform(0, 1, (16, 1, 1, 1)).astype(np.float32),
             "noise4": rng.standard_normal((16, 4, 4, 1)).astype(np.float32),
             "noise8": rng.standard_normal((16, 8, 8, 1)).astype(np.float32)}
    sizes = {}
    for arch in ("dcgan", "resnet", "stylegan"):
        gan = build_gan(TrainConfig(arch=arch, image_shape=(8, 8, 1), latent_dim=8,
                                    base_filters=4, spectral_norm=False))
        weights = gan.generator.weights + gan.discriminator.weights
        sizes[arch] = len(weights)
        given.update({f"{arch}/w{i}": np.ones(v.shape, np.float32)
                      if "gamma" in v.path or "variance" in v.path
                      else rng.normal(0, 0.3, v.shape).astype(np.float32)
                      for i, v in enumerate(weights)})
    np.savez(tmp_path / "given.npz", **given)
    results = {}
    for backend in ("tensorflow", "jax", "torch"):
        args = (tmp_path / "given.npz", tmp_path / f"{backend}.npz", json.dumps(CASES))
        if backend == "tensorflow":  # this process (undoing the noise patch, should it fail)
            monkeypatch.setattr("sys.argv", ["-c", *map(str, args)])
            monkeypatch.setattr(layers.ModulatedConv2D, "draw_noise",
                                layers.ModulatedConv2D.draw_noise)
            exec(ONE_STEP, {"__name__": "__main__"})
        else:
            on_backend(backend, ONE_STEP, *args)
        results[backend] = np.load(tmp_path / f"{backend}.npz")
    reference = results["tensorflow"]
    for arch, loss in CASES:
        case = f"{arch}-{loss}"
        moved = [not np.allclose(reference[f"{case}/w{i}"], given[f"{arch}/w{i}"])
                 for i in range(sizes[arch])]
        assert sum(moved) > sizes[arch] // 2, case  # the step changed most weights
        for backend in ("jax", "torch"):
            for key in reference.files:
                if key.startswith(f"{case}/"):
                    np.testing.assert_allclose(results[backend][key], reference[key], rtol=1e-4,
                                               atol=1e-5, err_msg=f"{backend} {key}")


# Straight for 2 epochs, vs: 1 epoch, extended to 2 and interrupted at step 17 (mid-epoch 2),
# then resumed. One chain covers both ways a run continues.
RESUME = r"""
import json, os, signal, sys
import keras
import numpy as np
from kgan.config import TrainConfig
from kgan import training as lib

npz, runs, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
config = TrainConfig(dataset=npz, batch_size=16, latent_dim=8, seed=3, epochs=2,
                     backend=keras.backend.backend(), tensorboard=False, curves=False,
                     **options)

class CtrlC(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()  # JAX keeps the state outside the variables mid-epoch
        if self.model.steps == 17:
            os.kill(os.getpid(), signal.SIGINT)

print(lib.train(config, runs_dir=runs).run_dir)
short = lib.train(config.__class__(**{**config.__dict__, "epochs": 1}), runs_dir=runs)
cut = lib.resume(short.run_dir, epochs=2, callbacks=[CtrlC()])
assert (cut.status, cut.step) == ("interrupted", 18), cut
assert lib.resume(cut.run_dir).step == 24
print(cut.run_dir)
"""


@pytest.mark.parametrize("options", [{}, TECHNIQUES, STYLE_ADA],
                         ids=["plain", "techniques", "stylegan-ada"])
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_resume_is_bit_identical(backend, options, toy_npz, tmp_path, on_backend):
    done = on_backend(backend, RESUME, toy_npz, tmp_path / "runs", json.dumps(options))
    straight, continued = (Path(p) for p in done.split())
    assert json.loads((straight / "config.json").read_text())["backend"] == backend
    assert json.loads((continued / "config.json").read_text())["epochs"] == 2
    reference = full_state(straight)
    assert len(reference) > 20
    for a, b in zip(reference, full_state(continued), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_torch_run_can_be_sampled_and_evaluated(toy_npz, tmp_path, on_backend):
    runs = tmp_path / "runs"
    on_backend("torch", KGAN_CLI, "train", "--backend", "torch", "--dataset", toy_npz,
               "--epochs", 1, "--batch-size", 16, "--runs-dir", runs, "-q", "--no-curves")
    run_dir = runs / "00000-mlp-toy"
    sampled = on_backend("torch", KGAN_CLI, "sample", run_dir, "--n", 4)
    assert sampled == f"{run_dir}/samples/sample-seed0.png\n"
    # The classifier for the toy data is trained (and cached) by this evaluation.
    evaluated = on_backend("torch", "import os, sys\nos.environ['KGAN_CACHE'] = sys.argv[1]\n"
                           + KGAN_CLI.replace("sys.argv[1:]", "sys.argv[2:]"),
                           tmp_path / "cache", "eval", run_dir, "--n", 64, "--json")
    result = json.loads(evaluated)
    assert result["fid"] >= 0 and result["step"] == 12 and result["protocol"]["n_fake"] == 64


# Trains one epoch on JAX and saves what its generator makes of the given latents.
JAX_RUN = r"""
import sys
import keras
import numpy as np
from kgan import training
from kgan.checkpoint import load_gan
from kgan.config import TrainConfig
npz, runs, z, out = sys.argv[1:5]
run_dir = training.train(TrainConfig(dataset=npz, batch_size=16, epochs=1, backend="jax",
                                     tensorboard=False, curves=False), runs_dir=runs).run_dir
gan, _ = load_gan(run_dir)
np.save(out, keras.ops.convert_to_numpy(gan.generator(np.load(z))))
print(run_dir)
"""


def test_export_of_a_jax_run_matches_its_own_generator(toy_npz, tmp_path, on_backend):
    z = np.random.default_rng(5).standard_normal((6, 100)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    run_dir = on_backend("jax", JAX_RUN, toy_npz, tmp_path / "runs", tmp_path / "z.npy",
                         tmp_path / "jax.npy").strip()
    on_jax = np.load(tmp_path / "jax.npy")
    path = export.export(run_dir, tmp_path / "saved_models")  # this process: TensorFlow
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    raw = loaded.signatures["raw"](z=tf.constant(z))["images"].numpy()
    np.testing.assert_allclose(raw, on_jax, atol=1e-5)
    images = loaded.signatures["serving_default"](z=tf.constant(z))["images"].numpy()
    assert np.abs(images.astype(int) - np.round((on_jax + 1) * 127.5)).max() <= 1


# Five Adam updates of the same weights and gradients, by Keras' torch Adam as it is and
# through the torch trainer's `_update` (PyTorch's fused kernel on CPU): a constant and a
# scheduled learning rate, clipping, and the MLP generator's widths.
FUSED_ADAM = r"""
import sys
import numpy as np
import keras
import torch
from kgan.trainers import torch as trainer

shapes = [(100, 256), (256,), (1024, 784), (784,)]
rng = np.random.default_rng(0)
start = [rng.normal(size=s).astype("float32") for s in shapes]
grads = [[rng.normal(size=s).astype("float32") for s in shapes] for _ in range(5)]
out = {}
for case, options in {"constant": {}, "scheduled and clipped": {"clipnorm": 1.0}}.items():
    for path in ("keras", "fused"):
        lr = 2e-4 if not options else keras.optimizers.schedules.ExponentialDecay(1e-3, 2, 0.5)
        optimizer = keras.optimizers.Adam(lr, 0.5, **options)
        variables = [keras.Variable(w) for w in start]
        optimizer.build(variables)
        for step in grads:
            if path == "keras":
                with torch.no_grad():
                    optimizer.apply([torch.from_numpy(g) for g in step], variables)
            else:
                for v, g in zip(variables, step):
                    v.value.grad = torch.from_numpy(g)
                trainer._update(optimizer, variables)
        # The weights' changes (small beside the weights), then the moments.
        states = [keras.ops.convert_to_numpy(v) - w for v, w in zip(variables, start)] + [
            keras.ops.convert_to_numpy(v) for v in optimizer._momentums + optimizer._velocities]
        for i, state in enumerate(states):
            out[f"{case}/{path}/{i}"] = state
        out[f"{case}/{path}/steps"] = int(optimizer.iterations)
    out[f"{case}/fused_used"] = "_backend_update_step" in vars(optimizer)
np.savez(sys.argv[1], **out)  # not JSON: 3 million numbers a case
"""


def test_fused_torch_adam_updates_as_keras_adam_does(on_backend, tmp_path):
    on_backend("torch", FUSED_ADAM, tmp_path / "states.npz")
    out = np.load(tmp_path / "states.npz")
    for case in ("constant", "scheduled and clipped"):
        assert out[f"{case}/fused_used"], case
        count = sum(1 for key in out.files if key.startswith(f"{case}/fused/")) - 1
        assert count == sum(1 for key in out.files if key.startswith(f"{case}/keras/")) - 1 \
            == 3 * 4  # changes, m, v
        for i in range(count):
            np.testing.assert_allclose(out[f"{case}/fused/{i}"], out[f"{case}/keras/{i}"],
                                       rtol=1e-5, atol=1e-6, err_msg=case)
        # Keras still counts the steps.
        assert out[f"{case}/fused/steps"] == out[f"{case}/keras/steps"] == 5


# The torch trainer's `_call` (each layer's own call()) against Keras' `model(...)`: the
# conditional models of every noise arch, G training (batch statistics; not the style-based G,
# whose per-pixel noise is then drawn afresh; D not, whose spectral norm then steps), and a
# bfloat16 model, which takes Keras' path.
DIRECT_CALL = r"""
import json
import numpy as np
import keras
from kgan.families.noise import nets
from kgan.build import build_gan
from kgan.config import TrainConfig
from kgan.trainers import torch as trainer

out = {}
rng = np.random.default_rng(0)
for arch in ("mlp", "dcgan", "resnet", "stylegan"):
    config = TrainConfig(arch=arch, image_shape=(16, 16, 1), latent_dim=8, base_filters=4,
                         conditional=True, num_classes=3, backend="torch")
    gan, training = build_gan(config), arch != "stylegan"
    images = keras.ops.convert_to_tensor(rng.uniform(-1, 1, (4, 16, 16, 1)).astype("float32"))
    z = keras.ops.convert_to_tensor(rng.normal(size=(4, 8)).astype("float32"))
    labels = keras.ops.convert_to_tensor(np.array([0, 1, 2, 0], "int32"))
    for name, model, inputs in (("g", gan.generator, gan.g_inputs(z, labels, 0.7)),
                                ("d", gan.discriminator, gan.d_inputs(images, labels))):
        training = training and name == "g"
        out[f"{arch}/{name}"] = [
            keras.ops.convert_to_numpy(call(model, inputs, training=training)).tolist()
            for call in (lambda m, x, training: m(x, training=training), trainer._call)]
keras.config.set_dtype_policy("mixed_bfloat16")
out["bfloat16 takes __call__"] = not trainer._float32(nets.generator(config))
print(json.dumps(out))
"""


def test_torch_direct_layer_calls_compute_what_keras_calls_do(on_backend):
    out = json.loads(on_backend("torch", DIRECT_CALL))
    assert out.pop("bfloat16 takes __call__") is True
    assert len(out) == 8
    for name, (keras_out, direct_out) in out.items():
        np.testing.assert_allclose(direct_out, keras_out, rtol=1e-6, atol=1e-6, err_msg=name)
