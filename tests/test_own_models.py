"""Your own Keras models and data in kgan's managed runs (`kgan.train(models=, data=)`), on
TensorFlow, JAX and PyTorch; and fine-tuning from another run (`--init-from`)."""

import json
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
    with pytest.raises(KganError, match="needs a name"):
        training.train(config, tmp_path / "runs", data=np.zeros((4, 8, 8), np.uint8))
    assert not list((tmp_path / "runs").glob("0*"))
    refused = kgan("train", "--arch", "custom", "--runs-dir", tmp_path / "runs")
    assert refused.exit_code == 1 and refused.stderr == ("Error: --arch custom trains your own Keras models: give them "
                                 "from Python, kgan.train(config, models=(generator, "
                                 "discriminator))\n")
