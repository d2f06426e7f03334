"""Your own Keras models and data in kgan's managed runs (`kgan.train(models=, data=)`), on
TensorFlow, JAX and PyTorch; and fine-tuning from another run (`--init-from`)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import full_state, kgan, toy_config

from kgan import training
from kgan.errors import KganError

# A conditional generator and discriminator that are none of kgan's archs (Functional models
# of stock layers), trained 2 epochs straight and 1 + 1 resumed, from NumPy (TensorFlow),
# tf.data (JAX) or Grain (torch) data. argv: runs folder, backend.
OWN = r"""
import sys
import keras
import numpy as np
import kgan
from kgan import training

runs, backend = sys.argv[1:3]


def models():
    keras.utils.set_random_seed(1)
    z, label = keras.Input((6,), name="z"), keras.Input((), dtype="int32", name="label")
    x = keras.layers.Concatenate()([z, keras.layers.Embedding(4, 6)(label)])
    x = keras.layers.Dense(32, activation="relu")(x)
    x = keras.layers.Dense(64, activation="tanh")(x)
    generator = keras.Model([z, label], keras.layers.Reshape((8, 8, 1))(x), name="tiny_g")
    image, label = keras.Input((8, 8, 1)), keras.Input((), dtype="int32")
    h = keras.layers.LeakyReLU(0.2)(keras.layers.Dense(32)(keras.layers.Flatten()(image)))
    h = keras.layers.Concatenate()([h, keras.layers.Embedding(4, 8)(label)])
    discriminator = keras.Model([image, label], keras.layers.Dense(1)(h), name="tiny_d")
    return generator, discriminator


rng = np.random.default_rng(0)
x = rng.integers(0, 256, (96, 8, 8, 1), dtype=np.uint8)
y = rng.integers(0, 4, 96)
if backend == "jax":
    import tensorflow as tf
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(10)
elif backend == "torch":
    import grain
    data = grain.MapDataset.source([{"image": i, "label": l} for i, l in zip(x, y)])
else:
    data = (x, y)
config = kgan.TrainConfig(epochs=2, batch_size=16, seed=4, backend=backend, jit=False,
                          steps_per_execution=1, tensorboard=False, curves=False)
straight = kgan.train(config, runs, models=models(), data=data, data_name="tiny")
short = kgan.train(config.__class__(**{**config.__dict__, "epochs": 1}), runs,
                   models=models(), data=data, data_name="tiny")
resumed = training.resume(short.run_dir, epochs=2)
assert straight.status == resumed.status == "finished" and resumed.step == 12, resumed
print(straight.run_dir, resumed.run_dir)
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_own_models_and_data_get_a_whole_run(backend, tmp_path, on_backend, monkeypatch):
    runs = tmp_path / "runs"
    if backend == "tensorflow":  # in this process
        import io
        from contextlib import redirect_stdout

        out = io.StringIO()
        monkeypatch.setattr("sys.argv", ["-c", str(runs), backend])
        with redirect_stdout(out):
            exec(compile(OWN, "<own>", "exec"), {"__name__": "__main__"})
        done = out.getvalue()
    else:
        done = on_backend(backend, OWN, runs, backend)
    straight, resumed = (Path(p) for p in done.split())
    assert straight.name == "00000-custom-tiny"
    config = json.loads((straight / "config.json").read_text())
    assert (config["arch"], config["latent_dim"], config["conditional"], config["num_classes"]
            ) == ("custom", 6, True, 4)
    assert config["models"]["generator"]["config"]["name"] == "tiny_g"
    # The data went to runs/data once (both runs read the same file), as uint8 with labels.
    assert config["dataset"] == json.loads((resumed / "config.json").read_text())["dataset"]
    stored = np.load(config["dataset"])
    assert stored["x_train"].dtype == np.uint8 and stored["x_train"].shape == (96, 8, 8, 1)
    assert len(list((runs / "data").iterdir())) == 1
    # Exact resume; what a built-in run writes.
    reference = full_state(straight)
    for a, b in zip(reference, full_state(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in (straight / "samples").iterdir()) == [
        "epoch-0001.png", "epoch-0002.png"]
    records = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and all("health" in r for r in records)
    if backend != "tensorflow":
        return
    evaluated = kgan("eval", straight, "--n", 32, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["fid"] >= 0
    exported = kgan("export", straight, "--out-dir", tmp_path / "saved", "--verify")
    assert exported.exit_code == 0, exported.output
    assert "answer as the run's generator does" in exported.stderr


def test_own_data_of_a_wrong_kind_is_one_error_line(tmp_path):
    config = toy_config("unused", epochs=1)
    cases = [
        (np.zeros((4, 8, 8, 2), np.uint8), "Images must have the shape (H, W), (H, W, 1) or "
         "(H, W, 3). Received: (8, 8, 2) at image 0"),
        (np.full((4, 8, 8), 2.0, np.float32), "Float images must lie in [-1, 1] (uint8 ones in "
         "[0, 255]). Received: values in [2, 2] at images 0.."),
        ((np.zeros((4, 8, 8), np.uint8), np.zeros(3)), "3 labels were given for 4 images"),
        ("images", "`data` must be a NumPy array, (images, labels), a tf.data.Dataset, a Grain "
         "source or an iterable of images. Received: str"),
    ]
    for data, message in cases:
        with pytest.raises(KganError) as caught:
            training.train(config, tmp_path / "runs", data=data, data_name="bad")
        assert str(caught.value) == message
    (tmp_path / "file").write_text("")  # a file where the runs folder goes
    with pytest.raises(KganError) as caught:
        training.train(config, tmp_path / "file", data=np.zeros((4, 8, 8), np.uint8),
                       data_name="bad")
    assert str(caught.value) == (f"Cannot write the data given for bad to {tmp_path}/file/data: "
                                 f"{tmp_path}/file is a file, not a folder")
    with pytest.raises(KganError, match="needs a name"):
        training.train(config, tmp_path / "runs", data=np.zeros((4, 8, 8), np.uint8))
    assert not list((tmp_path / "runs").glob("0*"))
    refused = kgan("train", "--arch", "custom", "--runs-dir", tmp_path / "runs")
    assert refused.exit_code == 1 and refused.stderr == (
        "Error: --arch custom trains your own Keras models: give them from Python, "
        "kgan.train(config, models=(generator, discriminator))\n")


def test_init_from_starts_a_new_run_from_another(toy_npz, tmp_path):
    """Fine-tuning: G, D and the average from a run (or G from its export), fresh optimizers,
    ADA's p at 0; class-indexed layers afresh for another class count; a misfit is one line."""
    from kgan.checkpoint import load_gan, save

    runs = tmp_path / "runs"
    options = {"arch": "dcgan", "base_filters": 4, "conditional": True, "ema": 0.5,
               "ema_start": 0, "augment": "ada", "ada_kimg": 1, "ada_target": 0.01}
    source = training.train(toy_config(toy_npz, **options), runs).run_dir
    old, _ = load_gan(source)
    old.ada_p.assign(0.9)  # a p that ADA had raised: the new run starts again from 0
    save(old, source)
    rng = np.random.default_rng(1)
    other = tmp_path / "other.npz"  # 3 classes where the source had 4
    np.savez(other, x_train=rng.integers(0, 256, (48, 8, 8), dtype=np.uint8),
             y_train=rng.integers(0, 3, 48))
    args = ["train", "--dataset", other, "--batch-size", 16, "--steps-per-epoch", 1, "--epochs",
            1, "--latent-dim", 8, "--lr", 1e-9, "--no-tensorboard", "--no-curves", "--quiet",
            "--runs-dir", runs, *[f"--{k.replace('_', '-')}={v}" for k, v in options.items()
                                  if k != "conditional"], "--conditional"]
    done = kgan(*args, "--init-from", source)
    assert done.exit_code == 0, done.output
    tuned = Path(done.stdout.strip())
    assert json.loads((tuned / "config.json").read_text())["init_from"] == str(source.resolve())
    old, _ = load_gan(source)
    new, _ = load_gan(tuned)
    # Fresh optimizers; p moved by one step (16 of ada_kimg's 1000 images) from 0.
    assert new.steps == int(new.d_optimizer.iterations) == 1 and float(new.ada_p) <= 0.0161

    def by_layer(model):  # by position and kind: Keras numbers unnamed layers per process
        # Trainable weights: a BatchNorm's statistics move with every batch, whatever the rate.
        return {f"{i}-{type(layer).__name__}": [np.asarray(w) for w in layer.trainable_weights]
                for i, layer in enumerate(lay for lay in model.layers if lay.weights)}

    for role in ("generator", "discriminator"):
        before, after = by_layer(getattr(old, role)), by_layer(getattr(new, role))
        assert before.keys() == after.keys()
        for name, weights in after.items():
            if "Embedding" in name:  # 3 classes where there were 4: started afresh
                assert weights[0].shape[0] == 3 and before[name][0].shape[0] == 4
                continue
            for a, b in zip(before[name], weights, strict=True):
                np.testing.assert_allclose(b, a, atol=1e-6, err_msg=f"{role} {name}")
    # The average was the source's (not a copy of its G): with decay 0.5 after one step of a
    # nearly still G, it sits halfway between the source's average and its G.
    old_average = [np.asarray(w) for w in old.ema_weights]
    raw = [np.asarray(w) for w in old.generator.weights]
    for average, a, g, w in zip(new.ema_weights, old_average, raw, old.generator.weights,
                                strict=True):
        if average.shape == a.shape and w.trainable:  # (BatchNorm statistics moved)
            np.testing.assert_allclose(np.asarray(average), (a + g) / 2, atol=1e-5)
    assert any(np.abs(a - g).max() > 1e-3 for a, g in zip(old_average, raw))

    # From an export: G alone, with the weights it serves (the average).
    exported = kgan("export", source, "--out-dir", tmp_path / "saved", "--no-verify")
    assert exported.exit_code == 0, exported.output
    done = kgan(*args, "--init-from", tmp_path / "saved" / "dcgan-toy")
    assert done.exit_code == 0, done.output
    from_export, _ = load_gan(done.stdout.strip())
    with old.averaged_generator():
        before = by_layer(old.generator)
    for name, weights in by_layer(from_export.generator).items():
        if "Embedding" not in name:
            for a, b in zip(before[name], weights, strict=True):
                np.testing.assert_allclose(b, a, atol=1e-6)

    missing = kgan(*args, "--init-from", tmp_path / "nowhere")
    assert missing.exit_code == 1 and missing.stderr == (
        f"Error: --init-from {tmp_path / 'nowhere'}: no such run or export (give a run directory "
        "or saved_models/NAME[/VERSION])\n")
    refused = kgan(*args, "--init-from", source, "--base-filters", 8)
    assert refused.exit_code == 1
    assert re.fullmatch(r"Error: The generator's layer '\w+' \(Dense, layer 2 of 4 with weights\) "
                        r"does not fit: its weights have shapes \[\(58, 128\)\], the starting ones "
                        r"\[\(58, 64\)\]\n", refused.stderr), refused.stderr
