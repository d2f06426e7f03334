"""Short translation runs on the Fashion-MNIST demos learn what they are for, measured by
`kgan eval` on held-out test images: pix2pix beats doing nothing, CycleGAN turns sandals into
what the evaluation classifier calls sneakers."""

import json

from conftest import kgan

from kgan import training
from kgan.config import TrainConfig
from kgan.evaluate import evaluate


def quick(arch, dataset, **overrides):
    """Small models at a high learning rate: a few hundred steps, seconds on a CPU."""
    return TrainConfig(**{"arch": arch, "dataset": dataset, "base_filters": 8, "lr": 2e-3,
                          "seed": 0, "tensorboard": False, "curves": False, **overrides})


def test_pix2pix_beats_the_input_on_superresolution(fashion, tmp_path):
    run = training.train(quick("pix2pix", "fashion_mnist:superres", batch_size=16, epochs=2,
                               steps_per_epoch=100), runs_dir=tmp_path).run_dir
    result = evaluate(run, n=500)
    assert result["protocol"]["split"] == "test" and result["protocol"]["n"] == 500
    assert result["l1"] < 0.9 * result["input_l1"]  # 0.080 against 0.105 when written
    assert result["psnr"] > result["input_psnr"] and result["ssim"] > result["input_ssim"]
    assert 0 < result["fid"] < 100

    # The evaluation joins the run's metrics, and `kgan runs` shows it.
    listed = kgan("runs", tmp_path, "--json")
    (summary,) = json.loads(listed.stdout)
    assert summary["last_eval"]["l1"] == result["l1"] and summary["epochs_done"] == 2


def test_cyclegan_turns_sandals_into_sneakers(fashion, tmp_path):
    run = training.train(quick("cyclegan", "fashion_mnist:sandals2sneakers", batch_size=8,
                               epochs=1, steps_per_epoch=50), runs_dir=tmp_path).run_dir
    done = kgan("eval", run, "-n", "300", "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["input_target_share"] < 0.05  # sandals are not sneakers
    assert result["target_share"] > 0.5  # 0.85 when written
    assert result["cycle_l1"] < 0.15  # and they turn back into sandals
    assert "outputs classified as B's class" in done.stderr
