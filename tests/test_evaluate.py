"""FID, KID, classifier score and coverage: closed forms, the real classifier, the CLI."""

import hashlib
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import toy_config
from typer.testing import CliRunner

from cli.main import app
from kgan import data, evaluate, metrics
from kgan import training as lib
from kgan.errors import KganError

runner = CliRunner()


def test_fid_of_a_set_with_itself_is_zero():
    a = np.random.default_rng(0).standard_normal((500, 8))
    assert metrics.fid(a, a) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_a_shifted_set_is_the_squared_shift():
    a = np.random.default_rng(0).standard_normal((500, 8)) @ np.diag(np.arange(1.0, 9.0))
    shift = np.linspace(-1, 2, 8)
    assert metrics.fid(a, a + shift) == pytest.approx(np.sum(shift**2), rel=1e-9)


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    # Diagonal covariances: tr(S1 + S2 - 2 sqrt(S1 S2)) = sum((s1 - s2)^2) with s the std devs.
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([2.0, 1.0, 0.5])
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    assert metrics.frechet_distance(mu1, np.diag(s1**2), mu2, np.diag(s2**2)) == pytest.approx(
        closed, rel=1e-12)
    # A rotation changes neither distance: the eigenvalue route handles non-commuting matrices.
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))
    assert metrics.frechet_distance(q @ mu1, q @ np.diag(s1**2) @ q.T, q @ mu2,
                                     q @ np.diag(s2**2) @ q.T) == pytest.approx(closed, rel=1e-9)
    # Sample FID approaches it.
    rng = np.random.default_rng(2)
    a = mu1 + s1 * rng.standard_normal((200_000, 3))
    b = mu2 + s2 * rng.standard_normal((200_000, 3))
    assert metrics.fid(a, b) == pytest.approx(closed, rel=0.02)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: metrics.fid(np.full((5, 3), np.nan), np.zeros((5, 3))),
     "`features_a` must be finite; it has NaN or inf values"),
    (lambda: metrics.kid(np.zeros((5, 3)), [[np.inf, 0, 0]] * 5),
     "`features_b` must be finite; it has NaN or inf values"),
    (lambda: metrics.fid(np.zeros(5), np.zeros(5)),
     "`features_a` must be a 2-D array (samples, features) with at least 2 samples. "
     "Received: shape=(5,)"),
    (lambda: metrics.kid(np.zeros((1, 3)), np.zeros((5, 3))),
     "`features_a` must be a 2-D array (samples, features) with at least 2 samples. "
     "Received: shape=(1, 3)"),
    (lambda: metrics.classifier_score(np.random.default_rng(0).normal(0, 3, (100, 10))),
     "`probs` must be class probabilities: rows of non-negative numbers that sum to 1 (apply a "
     "softmax to logits first)"),
])
def test_metrics_refuse_what_they_cannot_measure(call, message):
    with pytest.raises(KganError) as e:
        call()
    assert str(e.value) == message


def test_kid_is_unbiased_and_separates_distributions():
    rng = np.random.default_rng(0)
    same = metrics.kid(rng.standard_normal((2000, 16)), rng.standard_normal((2000, 16)), 20, 500)
    other = metrics.kid(rng.standard_normal((2000, 16)), rng.standard_normal((2000, 16)) + 0.5,
                         20, 500)
    assert abs(same[0]) < 0.01 and abs(same[0]) < 3 * same[1]
    assert other[0] > 0.1 and other[0] > 10 * other[1]


def test_classifier_score_and_coverage():
    uniform = np.eye(10)[np.arange(1000) % 10]
    assert metrics.classifier_score(uniform)[0] == pytest.approx(10.0, rel=1e-6)
    one_class = np.eye(10)[np.full(1000, 3)]
    assert metrics.classifier_score(one_class)[0] == pytest.approx(1.0, rel=1e-6)
    cov = metrics.coverage(one_class)
    assert cov["missing_classes"] == [0, 1, 2, 4, 5, 6, 7, 8, 9] and cov["entropy"] == 0.0
    full = metrics.coverage(uniform)
    assert full["missing_classes"] == [] and full["entropy_normalized"] == pytest.approx(1.0)
    assert full["histogram"] == [100] * 10 and full["top_class_fraction"] == 0.1


def test_classifier_reaches_its_accuracy_bar_on_real_fashion_mnist(fashion, kgan_cache):
    info = json.loads((kgan_cache / "classifiers" / "fashion_mnist-28x28x1-v2.json").read_text())
    assert info["test_split"] == "test" and info["train_images"] == 60000
    assert info["test_accuracy"] >= 0.90
    assert fashion.info["test_accuracy"] == info["test_accuracy"]
    test = data.load("fashion_mnist", split="test")
    _, probs = fashion(test.x[:2000])
    assert np.mean(probs.argmax(1) == test.y[:2000]) >= 0.88


def test_real_images_beat_noise_and_one_class_is_flagged(fashion):
    reference = metrics.Reference(fashion, "fashion_mnist", None, 2000)
    train = data.load("fashion_mnist")
    real = reference.compare(train.x[:2000])
    noise = reference.compare(np.random.default_rng(0).uniform(-1, 1, (2000, 28, 28, 1))
                              .astype(np.float32))
    assert real["fid"] < noise["fid"] / 10 and real["kid"] < noise["kid"] / 10
    assert real["classifier_score"] > 5 > noise["classifier_score"]
    assert real["coverage"]["entropy_normalized"] > 0.95 > noise["coverage"]["entropy_normalized"]
    assert real["coverage"]["missing_classes"] == []
    protocol = dict(real["protocol"])
    card = {key: protocol.pop(key) for key in ("extractor_sha256", "resize", "statistics",
                                                "versions", "warnings", "real_stats_sha256",
                                                "real_stats_cached", "comparable_with_papers")}
    assert protocol == {
        "n_fake": 2000, "n_real": 2000, "real_split": "test", "features": "classifier",
        "extractor": fashion.info["path"], "classifier_accuracy": fashion.info["test_accuracy"],
        "seed": 0, "kid_subset_size": 1000, "kid_subsets": 100}
    # The metric card: which weights, how images were sized, which libraries, what to mistrust.
    weights = Path(fashion.info["path"]).read_bytes()
    assert card["extractor_sha256"] == hashlib.sha256(weights).hexdigest()[:16]
    assert card["resize"].startswith("none: the run's image size")
    assert card["comparable_with_papers"] is False  # only fid-inception's FIDs are
    assert card["statistics"] == "float64"
    assert card["versions"]["keras"] == keras.__version__ and card["versions"]["numpy"] == (
        np.__version__)
    assert {"kgan", "backend", "tensorflow"} <= set(card["versions"])
    assert card["warnings"] == ["FID from 2000 images is biased upwards (the fewer images, the "
                                "more); compare FIDs only at equal n, and use n >= 10000 for "
                                "figures to publish"]
    assert card["real_stats_sha256"] == hashlib.sha256(
        reference.features.astype(np.float32).tobytes()).hexdigest()[:16]
    collapsed = reference.compare(train.x[train.y == 3][:1000])  # a generator of dresses only
    coverage = collapsed["coverage"]
    assert coverage["top_class_fraction"] > 0.9 and coverage["histogram"][3] > 900
    assert coverage["missing_classes"] and coverage["entropy_normalized"] < 0.2
    assert real["coverage"]["top_class_fraction"] < 0.15


def test_real_statistics_are_cached_per_dataset_split_and_extractor(fashion, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("KGAN_CACHE", str(tmp_path))  # an empty cache of real statistics
    first = metrics.Reference(fashion, "fashion_mnist", None, 500)
    second = metrics.Reference(fashion, "fashion_mnist", None, 500)
    other_split = metrics.Reference(fashion, "fashion_mnist", None, 500, split="train")
    assert (first.cached, second.cached, other_split.cached) == (False, True, False)
    np.testing.assert_array_equal(first.features, second.features)
    assert len(list((tmp_path / "real-stats").iterdir())) == 2
    fake = data.load("fashion_mnist").x[:500]
    a, b = first.compare(fake), second.compare(fake)
    assert a["fid"] == b["fid"] and a["kid"] == b["kid"]  # the cache changes no number
    assert (a["protocol"]["real_stats_cached"], b["protocol"]["real_stats_cached"]) == (False,
                                                                                        True)
    assert a["protocol"]["real_stats_sha256"] == b["protocol"]["real_stats_sha256"]
    assert other_split.compare(fake)["protocol"]["real_stats_sha256"] != (
        a["protocol"]["real_stats_sha256"])


def test_kgan_eval_and_train_eval_every(kgan_cache, toy_npz, tmp_path):
    runs = tmp_path / "runs"
    config = toy_config(toy_npz, epochs=2, eval_every=1, eval_n=64)
    run = lib.train(config, runs_dir=runs).run_dir
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [("fid" in x, "kid" in x, "classifier_score" in x) for x in lines] == [(True,) * 3] * 2
    # Each evaluation's card (the real side made once, at the start, so not from the cache);
    # 64 images in 128 feature dimensions are flagged.
    assert [x["protocol"]["real_stats_cached"] for x in lines] == [False, False]
    assert lines[0]["protocol"]["warnings"][0].startswith("FID from 64 images in 128 feature "
                                                          "dimensions: the covariance is singular")
    assert (run / "checkpoints" / "best.keras").is_file()
    best_epoch = min(lines, key=lambda x: x["fid"])["epoch"]
    exported = runner.invoke(app, ["export", str(run), "--best", "--out-dir", str(tmp_path / "b")])
    assert exported.exit_code == 0, exported.output
    meta = json.loads((tmp_path / "b" / "mlp-toy" / "1" / "assets.extra" / "kgan.json").read_text())
    assert (meta["checkpoint"], meta["step"]) == ("checkpoints/best.keras", 12 * best_epoch)
    sampled = runner.invoke(app, ["sample", str(run), "--best", "--n", "4"])
    assert sampled.exit_code == 0 and sampled.stdout.endswith("sample-seed0.png\n")

    result = runner.invoke(app, ["eval", str(run), "--n", "100", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["protocol"]["n_fake"] == 100 and printed["protocol"]["real_split"] == "train"
    assert (printed["epoch"], printed["step"], printed["source"]) == (2, 24, "eval")
    assert "FID" in result.stderr and "KID" in result.stderr and "classifier score" in result.stderr
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1]) == printed
    assert "warning: FID from 100 images in 128 feature dimensions" in result.stderr
    again = runner.invoke(app, ["eval", str(run), "--n", "100", "--json"])
    assert json.loads(again.stdout)["fid"] == printed["fid"]  # same seed, same numbers
    assert (printed["protocol"]["real_stats_cached"],
            json.loads(again.stdout)["protocol"]["real_stats_cached"]) == (False, True)
    shown = runner.invoke(app, ["show", str(run)])
    assert "metric card" in shown.stdout and 'real_stats_sha256: "' in shown.stdout
    assert "warning: FID from 100 images" in shown.stdout

    exported = runner.invoke(app, ["export", str(run), "--out-dir", str(tmp_path / "models")])
    assert exported.exit_code == 0
    served = runner.invoke(app, ["eval", "--model", exported.stdout.strip(), "--n", "100",
                                 "--json"])
    assert served.exit_code == 0, served.output
    served = json.loads(served.stdout)
    assert served["model"] == exported.stdout.strip()
    assert served["fid"] == pytest.approx(printed["fid"], rel=0.05)  # uint8 off-by-ones only
    floor = runner.invoke(app, ["eval", "--dataset", str(toy_npz), "--n", "100", "--json"])
    assert json.loads(floor.stdout)["images"] == "real train split"


def test_eval_bad_input(tmp_path, toy_npz, monkeypatch, capsys):
    unlabeled = tmp_path / "plain.npz"
    np.savez(unlabeled, x_train=np.load(toy_npz)["x_train"])
    with pytest.raises(KganError, match="needs class labels and .*plain.npz has none"):
        metrics.classifier(str(unlabeled), None)
    result = runner.invoke(app, ["eval", "--runs-dir", str(tmp_path / "none")])
    assert result.exit_code == 1 and result.stderr.startswith("Error: No runs found in ")
    zero = runner.invoke(app, ["eval", "--n", "0"])
    assert zero.stderr == "Error: `n` must be a positive integer. Received: n=0\n"
    one = runner.invoke(app, ["eval", "--n", "1"])  # before any run or model is read
    assert one.stderr == ("Error: `n` must be at least 2 (FID and KID compare the spread of the "
                          "images). Received: n=1\n")
    for options, message in [
        ({"real_split": "val"}, "Unknown real_split 'val'. Valid values: test, train. "
                                "Received: real_split=val"),
        ({"seed": 2**63}, f"`seed` must be an integer in [0, 2**31). Received: seed={2**63}"),
    ]:
        with pytest.raises(KganError) as e:
            evaluate.evaluate(dataset=str(toy_npz), n=10, **options)
        assert str(e.value) == message
    # Offline without the InceptionV3 weights: the error says what to put where.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(metrics, "INCEPTION_URL", "http://127.0.0.1:9/inception.h5")
    capsys.readouterr()
    with pytest.raises(KganError) as e:
        metrics.inception()
    assert capsys.readouterr().out == ""  # "Downloading ..." is progress: stderr
    message = str(e.value)
    assert message.startswith("InceptionV3 weights are not on this machine and could not be "
                              "downloaded (")
    assert message.endswith(f"Put {metrics.INCEPTION_FILE} (from http://127.0.0.1:9/inception.h5)"
                            f" at {tmp_path}/keras/models/{metrics.INCEPTION_FILE}, or use "
                            "--features classifier.")
