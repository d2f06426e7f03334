"""The training watchdog: its verdicts on made-up epochs, and real runs that go wrong on purpose
(NaN weights, a learning rate too large, a generator that draws one image)."""

import json

import keras
import numpy as np
import pytest
from conftest import At, poison, toy_config

from kgan import health, runs
from kgan import training as lib
from kgan.callbacks import RichProgress
from kgan.checkpoint import load_gan
from kgan.errors import KganError


def epochs(*losses, **extra):
    return [{"epoch": i + 1, "d_loss": d, "g_loss": g, **extra} for i, (d, g) in enumerate(losses)]


def test_a_healthy_run_is_ok():
    dog = health.Watchdog(True, epochs((0.7, 1.2), (0.6, 1.4), (0.62, 1.3)))
    verdict = dog.check({"d_loss": 0.55, "g_loss": 1.6, "r_t": 0.4}, True, 0.3)
    assert verdict == {"status": "ok", "alarms": [], "r_t": 0.4, "diversity": 0.3}


@pytest.mark.parametrize("record, finite, status, alarm", [
    ({"d_loss": float("nan"), "g_loss": 1.0}, True, "non_finite", "d_loss is nan"),
    ({"d_loss": 0.5, "g_loss": float("inf")}, True, "non_finite", "g_loss is inf"),
    ({"d_loss": 0.5, "g_loss": 1.0}, False, "non_finite", "the weights hold NaN or inf"),
    ({"d_loss": 0.5, "g_loss": 40.0}, True, "diverged",
     "g_loss 40 is far outside its recent range [1.2, 1.4]"),
    ({"d_loss": 0.5, "g_loss": 1.3, "r_t": 0.97}, True, "warning",
     "D overfits: it calls 98% of real images real (r_t 0.97)"),
])
def test_each_alarm(record, finite, status, alarm):
    dog = health.Watchdog(True, epochs((0.7, 1.2), (0.6, 1.4), (0.62, 1.3)))
    verdict = dog.check(record, finite)
    assert (verdict["status"], verdict["alarms"]) == (status, [alarm])


def test_d_winning_while_g_does_not_fall_is_divergence_except_for_wgan():
    history = epochs((0.04, 3.0), (0.02, 4.0))
    record = {"d_loss": 0.01, "g_loss": 5.0}
    verdict = health.Watchdog(True, history).check(record)
    assert verdict["status"] == "diverged"
    assert verdict["alarms"] == ["D wins: d_loss below 0.05 for 3 epochs while g_loss did not "
                                 "fall (now 5)"]
    stuck = health.Watchdog(True, epochs((0.0, 7.0), (0.0, 7.0))).check(
        {"d_loss": 0.0, "g_loss": 7.0})  # saturated: the same loss every epoch
    assert stuck["status"] == "diverged"
    assert health.Watchdog(True, history).check({"d_loss": 0.01, "g_loss": 2.5})["status"] == "ok"
    assert health.Watchdog(False, history).check(record)["status"] == "ok"


def test_a_loss_in_the_thousands_is_divergence_from_the_first_epoch():
    verdict = health.Watchdog(True).check({"d_loss": 28062.1, "g_loss": 1173770.6})
    assert verdict["status"] == "diverged" and verdict["alarms"] == [
        "d_loss 2.806e+04 is beyond 1000: the logits have blown up",
        "g_loss 1.174e+06 is beyond 1000: the logits have blown up"]
    assert health.Watchdog(False).check({"d_loss": -3000.0, "g_loss": 2500.0})["status"] == (
        "ok")


def test_collapse_is_diversity_falling_or_classes_missing():
    same = np.zeros((64, 8, 8, 1))
    assert health.diversity(same) == 0.0
    assert health.diversity(np.random.default_rng(0).uniform(-1, 1, (64, 8, 8, 1))) > 0.5
    dog = health.Watchdog(True)
    assert dog.check({"d_loss": 0.7, "g_loss": 1.0}, True, 0.4)["status"] == "ok"
    verdict = dog.check({"d_loss": 0.7, "g_loss": 1.0}, True, 0.05)  # best 0.4 before
    assert verdict["alarms"] == ["collapse: the fixed-noise images are nearly alike (diversity "
                                 "0.050, best 0.400)"]
    history = [{"epoch": 1, "d_loss": 0.7, "g_loss": 1.0, "coverage_entropy": 0.95}]
    verdict = health.Watchdog(True, history).check({"d_loss": 0.7, "g_loss": 1.0}, True, None,
                                                    0.6, 2)
    assert verdict["status"] == "warning" and verdict["alarms"] == [
        "collapse: class coverage fell to 0.60 (best 0.95)",
        "collapse: 2 classes never generated"]


class Once(At):
    """`At` that acts the first time only (a recovered run passes the same step again)."""

    def on_train_batch_end(self, batch, logs=None):
        if self.action is not None and self.model.steps == self.step:
            self.action(self.model)
            self.action = None


def test_a_nan_is_recovered_from_the_last_checkpoint_at_half_the_learning_rate(toy_npz, tmp_path):
    news = []
    result = lib.train(toy_config(toy_npz, epochs=3), runs_dir=tmp_path,
                       callbacks=[Once(15, poison)], notify=news.append)
    assert (result.status, result.step) == ("finished", 36)
    recoveries = [line for line in news if not line.startswith("epoch ")]  # not the alarms
    assert recoveries == ["Recovery 1 of 2: d_loss became nan; continuing from step 12 (the "
                          "last good checkpoint) at learning rate 0.0001, with fresh noise"]
    records, problems = runs.read_metrics(result.run_dir)
    assert problems == []
    (recovery,) = [r for r in records if r.get("source") == "recovery"]
    assert recovery == {"epoch": 1, "step": 12, "source": "recovery", "recovery": 1,
                        "reason": "d_loss became nan", "d_lr": pytest.approx(1e-4),
                        "g_lr": pytest.approx(1e-4)}
    assert [r["epoch"] for r in records if "source" not in r] == [1, 2, 3]
    assert all(r["health"]["status"] in ("ok", "warning") for r in records if "source" not in r)
    gan, _ = load_gan(result.run_dir)  # the halved rates are in the checkpoint: resume keeps them
    assert float(gan.d_optimizer.learning_rate) == pytest.approx(1e-4)
    assert float(gan.g_optimizer.learning_rate) == pytest.approx(1e-4)
    status = json.loads((result.run_dir / runs.STATUS).read_text())
    assert status["status"] == "finished" and status["health"]["status"] in ("ok", "warning")


# The same recovery on JAX and PyTorch: the poison lands at the start of epoch 2 (a JAX fit()
# reads its state from the variables at each epoch's first step, not within an epoch).
RECOVER = r"""
import json, sys
import keras
import numpy as np
from kgan import runs, training
from kgan.config import TrainConfig

class Poison(keras.callbacks.Callback):
    done = False  # once: the recovered run passes epoch 2's start again

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1 and not self.done:
            weights = self.model.generator.trainable_variables[0]
            weights.assign(np.full(weights.shape, np.nan, "float32"))
            self.done = True

npz, runs_dir = sys.argv[1:3]
config = TrainConfig(dataset=npz, batch_size=16, latent_dim=8, seed=3, epochs=3, jit=False,
                     tensorboard=False, curves=False, backend=keras.backend.backend())
result = training.train(config, runs_dir=runs_dir, callbacks=[Poison()])
records = runs.read_metrics(result.run_dir)[0]
print(json.dumps({"status": result.status, "step": result.step,
                  "recoveries": [r for r in records if r.get("source") == "recovery"],
                  "epochs": [r["epoch"] for r in records if "source" not in r]}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_recovery_on_every_backend(backend, on_backend, toy_npz, tmp_path):
    out = json.loads(on_backend(backend, RECOVER, toy_npz, tmp_path / "runs"))
    assert (out["status"], out["step"], out["epochs"]) == ("finished", 36, [1, 2, 3])
    assert [(r["recovery"], r["step"], r["reason"]) for r in out["recoveries"]] == [
        (1, 12, "d_loss became nan")]
    assert out["recoveries"][0]["g_lr"] == pytest.approx(1e-4)


def huge_learning_rate(model):
    for optimizer in (model.d_optimizer, model.g_optimizer):
        optimizer.learning_rate = 1e6


def test_a_learning_rate_too_large_is_tried_twice_then_stops_with_a_usable_checkpoint(
        toy_npz, tmp_path):
    """Every pass through step 13 sets both rates to 1e6: it diverges, is recovered twice from
    epoch 1's checkpoint, and then stops with one clear error and that checkpoint."""
    with pytest.raises(KganError) as e:
        lib.train(toy_config(toy_npz, epochs=3), runs_dir=tmp_path,
                  callbacks=[At(13, huge_learning_rate)])
    run = tmp_path / "00000-mlp-toy"
    message = str(e.value)
    assert message.startswith("Training stopped at step ")
    assert (" after 2 recoveries at half the learning rate each; the last good checkpoint is "
            f"{run / 'checkpoints' / 'latest.keras'}. Start a new run with a lower --lr or "
            f"another --loss (--init-from {run} starts it from this run's weights).") in message
    assert "\n" not in message
    records, _ = runs.read_metrics(run)
    recoveries = [r for r in records if r.get("source") == "recovery"]
    assert [(r["recovery"], r["step"]) for r in recoveries] == [(1, 12), (2, 12)]
    # Both from epoch 1's checkpoint: the second try runs at half the first one's rates.
    assert [r["g_lr"] for r in recoveries] == [pytest.approx(1e-4), pytest.approx(5e-5)]
    assert [r["epoch"] for r in records if "source" not in r] == [1]
    gan, _ = load_gan(run)
    assert gan.steps == 12
    assert all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in gan.weights)
    assert float(gan.g_optimizer.learning_rate) == pytest.approx(2e-4)  # written before both
    assert np.isfinite(keras.ops.convert_to_numpy(gan.generate(4, seed=1))).all()


def one_image(model):
    """The generator draws one image whatever its noise: its last layer's kernel is zero."""
    last = [layer for layer in model.generator.layers if layer.weights][-1]
    last.weights[0].assign(np.zeros(last.weights[0].shape, np.float32))


def test_a_collapsed_generator_is_flagged_in_the_log_status_and_progress(toy_npz, tmp_path):
    from rich.console import Console

    console = Console(file=(log := __import__("io").StringIO()), width=300)
    said = []
    result = lib.train(toy_config(toy_npz, epochs=2, recover=0), runs_dir=tmp_path,
                       callbacks=[At(24, one_image), RichProgress(16, console)],
                       notify=said.append)
    assert result.status == "finished"
    records = [r for r in runs.read_metrics(result.run_dir)[0] if "source" not in r]
    assert not any("collapse" in a for a in records[0]["health"]["alarms"])
    assert records[1]["health"]["status"] == "warning"
    assert records[1]["health"]["diversity"] == 0.0
    assert records[1]["health"]["alarms"][-1].startswith(
        "collapse: the fixed-noise images are nearly alike (diversity 0.000, best ")
    status = json.loads((result.run_dir / runs.STATUS).read_text())
    assert status["health"] == records[1]["health"]
    assert log.getvalue().splitlines()[-1].endswith("health: warning")
    assert said[-1].startswith("epoch 2 warning: ") and (
        "collapse: the fixed-noise images are nearly alike" in said[-1])


def poison_a_generator(model):
    weights = model.generators[0].trainable_variables[0]
    weights.assign(np.full(weights.shape, np.nan, np.float32))


@pytest.mark.parametrize("arch", ["pix2pix", "cyclegan"])
def test_image_to_image_runs_recover_too(arch, tmp_path):
    from kgan.config import TrainConfig

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "pairs.npz", x_a=rng.integers(0, 256, (12, 8, 8), dtype=np.uint8),
             x_b=rng.integers(0, 256, (12, 8, 8), dtype=np.uint8))
    config = TrainConfig(arch=arch, dataset=str(tmp_path / "pairs.npz"), batch_size=4,
                         base_filters=4, seed=3, epochs=3, tensorboard=False, curves=False)
    result = lib.train(config, runs_dir=tmp_path / "runs", callbacks=[Once(5, poison_a_generator)])
    assert (result.status, result.step) == ("finished", 9)
    records, _ = runs.read_metrics(result.run_dir)
    (recovery,) = [r for r in records if r.get("source") == "recovery"]
    assert (recovery["step"], recovery["reason"]) == (3, "d_loss became nan")
    assert recovery["g_lr"] == pytest.approx(1e-4)
    assert all(r["health"]["status"] == "ok" for r in records if "source" not in r)
    gan, _ = load_gan(result.run_dir, steps_per_epoch=3)  # as a resume loads it
    if arch == "cyclegan":  # the schedule keeps its shape at half its base rate
        schedule = gan.g_optimizer.get_config()["learning_rate"]["config"]
        assert schedule == {"rate": pytest.approx(1e-4), "constant_steps": 6, "decay_steps": 3}
    else:
        assert float(gan.g_optimizer.learning_rate) == pytest.approx(1e-4)
