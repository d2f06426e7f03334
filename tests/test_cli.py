import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import kgan

from cli.train import PANELS
from kgan import __version__ as kgan_version
from kgan.config import options

KGAN = [sys.executable, "-m", "kgan"]


def test_train_writes_a_complete_run_and_prints_only_its_path(toy_npz, tmp_path):
    runs = tmp_path / "runs"
    result = kgan("train", "--dataset", toy_npz, "--epochs", 2, "--batch-size", 16,
                  "--steps-per-epoch", 5, "--runs-dir", runs, "--latent-dim", 8, "--arch", "dcgan",
                  "--loss", "hinge", "--seed", 7)
    assert result.exit_code == 0, result.output
    run = runs / "00000-dcgan-toy"
    assert result.stdout == f"{run}\n"
    assert "epoch 2/2" in result.stderr and "d_loss" in result.stderr
    config = json.loads((run / "config.json").read_text())
    assert (config["arch"], config["loss"], config["seed"], config["steps_per_epoch"]) == (
        "dcgan", "hinge", 7, 5)
    assert sorted(p.name for p in run.iterdir()) == [
        ".lock", ".owner", "checkpoints", "config.json", "curves.png", "metrics.jsonl",
        "samples", "status.json", "tensorboard"]
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch-0001.png",
                                                                  "epoch-0002.png"]
    trained = (run / "config.json").read_text()
    fewer = kgan("train", "--resume", run, "--epochs", 1)  # it has trained 2: refused as such
    assert (fewer.exit_code, fewer.stderr) == (1, f"Error: --epochs 1 is fewer than the 2 "
                                               f"epochs {run} has trained; give at least 2 "
                                               "(more trains on)\n")
    assert (run / "config.json").read_text() == trained
    assert (run / "checkpoints" / "latest.keras").is_file()
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [
        5, 10]

    more = kgan("train", "--resume", run, "--epochs", 3, "--quiet")
    assert more.exit_code == 0 and more.stdout == f"{run}\n" and more.stderr == ""
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3


def bad_inputs(tmp_path, toy_npz):
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"not an image")
    (tmp_path / "notarun").mkdir()
    unlabeled = tmp_path / "unlabeled.npz"
    np.savez(unlabeled, x_train=np.load(toy_npz)["x_train"])
    return [
        (["--dataset", "imagenet"], "Error: Unknown dataset 'imagenet'. Use one of mnist, "
         "fashion_mnist, cifar10, a folder of images or an .npz file with x_train."),
        (["--dataset", tmp_path / "nope"], f"Error: Dataset not found: {tmp_path / 'nope'} "
         "(no such file or folder)"),
        (["--dataset", tmp_path / "empty"],
         f"Error: No .png/.jpg/.webp images found in {tmp_path}/empty"),
        (["--dataset", tmp_path / "broken"], f"Error: Cannot read image {tmp_path}/broken/a.png: "),
        (["--dataset", toy_npz, "--image-size", 0],
         "Error: `image_size` must be a positive integer. Received: image_size=0"),
        (["--dataset", toy_npz, "--image-size", 27, "--arch", "dcgan"],
         "Error: `image_size` must be even and at least 8 for arch=dcgan (for example 28, 32 or "
         "64). Received: image_size=27"),
        (["--dataset", toy_npz, "--image-size", 100000],
         "Error: `image_size` must be at most 2048 (one image would take 16 MB and more). "
         "Received: image_size=100000"),
        (["--dataset", toy_npz, "--latent-dim", 10**12],
         "Error: `latent_dim` must be at most 65536 (the first layer alone would not fit). "
         f"Received: latent_dim={10**12}"),
        (["--dataset", toy_npz, "--epochs", 0],
         "Error: `epochs` must be a positive integer. Received: epochs=0"),
        (["--dataset", toy_npz, "--lr", "inf"],
         "Error: `lr` must be a positive number. Received: lr=inf"),
        (["--dataset", toy_npz, "--eval-every", 1, "--eval-n", 1],
         "Error: `eval_n` must be at least 2 (FID and KID compare the spread of the images). "
         "Received: eval_n=1"),
        (["--dataset", toy_npz, "--batch-size", -4],
         "Error: `batch_size` must be a positive integer. Received: batch_size=-4"),
        (["--dataset", toy_npz, "--arch", "resnet", "--attention", 16],
         "Error: `attention` must be a resolution that G and D of a 8 px resnet both have: "
         "none. Received: attention=16"),
        (["--dataset", toy_npz, "--augment", "ada", "--ada-target", 1.5],
         "Error: `ada_target` must be in (0, 1). Received: ada_target=1.5"),
        (["--dataset", toy_npz, "--augment", "translation,flip"],
         "Error: Unknown augment 'flip'. Valid values: translation, cutout, color, ada. "
         "Received: augment=flip"),
        (["--dataset", toy_npz, "--augment", ",,,"],
         "Error: `augment` must name some of translation, cutout, color, comma-separated. "
         "Received: augment=,,,"),
        (["--dataset", toy_npz, "--ema", 1.5],
         "Error: `ema` must be in (0, 1), for example 0.999. Received: ema=1.5"),
        (["--dataset", toy_npz, "--ema", 0.9, "--ema-start", -1],
         "Error: `ema_start` must be a non-negative integer. Received: ema_start=-1"),
        (["--dataset", toy_npz, "--r1", -1],
         "Error: `r1` must be a non-negative number. Received: r1=-1.0"),
        (["--dataset", toy_npz, "--r1-every", 0],
         "Error: `r1_every` must be a positive integer. Received: r1_every=0"),
        (["--dataset", unlabeled, "--conditional"],
         f"Error: --conditional needs class labels and {unlabeled} has none (a folder needs one "
         "sub-folder per class, an .npz a y_train)."),
        (["--resume", tmp_path / "notarun"], f"Error: {tmp_path}/notarun is not a kgan run "
         "(no config.json)"),
        (["--resume", tmp_path / "missing"], f"Error: Run directory not found: {tmp_path}/missing"),
        (["--resume", toy_npz], f"Error: {toy_npz} is a file, not a run directory"),
    ]


def test_bad_input_is_one_line_exit_1_and_no_run_directory(tmp_path, toy_npz):
    runs = tmp_path / "runs"
    for args, message in bad_inputs(tmp_path, toy_npz):
        result = kgan("train", *args, "--runs-dir", runs)
        assert result.exit_code == 1, (args, result.output)
        assert result.stdout == ""
        assert result.stderr.startswith(message), (args, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert not runs.exists() or list(runs.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--arch", "biggan"], "Invalid value for '--arch': Value error, 'biggan' is not one of "
     "'mlp', 'dcgan', 'resnet', 'stylegan', 'custom', 'pix2pix', 'cyclegan'."),
    (["--backend", "mxnet"], "Invalid value for '--backend' (env var: 'KERAS_BACKEND'): Value "
     "error, 'mxnet' is not one of 'tensorflow', 'jax', 'torch'."),
    (["--crop", "diagonal"], "Invalid value for '--crop': Value error, 'diagonal' is not one of "
     "'center', 'none'."),
    (["--epochs", "many"], "Invalid value for '--epochs': Input should be a valid integer"),
    (["--no-such-option"], "No such option: --no-such-option"),
])
def test_usage_errors_exit_2_and_name_the_choices(args, message, tmp_path):
    done = kgan("train", *args, "--runs-dir", tmp_path)
    assert done.exit_code == 2 and done.stdout == ""
    assert message in " ".join(line.strip(" │╭╮╰╯─") for line in done.stderr.splitlines())
    assert not any(tmp_path.iterdir())


def test_version_completion_and_the_help_panels():
    version = kgan("--version")
    assert (version.exit_code, version.stdout) == (0, f"kgan {kgan_version}\n")
    assert "--install-completion" in kgan("--help").stdout
    shown = kgan("train", "--help").stdout
    panels = [line.split("─ ", 1)[1].split(" ─")[0] for line in shown.splitlines()
              if line.startswith("╭─ ")]
    assert panels == list(PANELS)  # in order, each option in one (cli/train.py)
    assert "<center|none>" in shown  # a choice is listed as its choices
    assert sorted(name for names in PANELS.values() for name in names) == sorted(
        [f.name for f in options()] + ["config", "runs_dir", "name", "resume", "quiet"])


def test_a_runs_dir_that_is_a_file_is_named_as_such(tmp_path, toy_npz):
    (tmp_path / "runs").write_text("not a folder")
    done = kgan("train", "--dataset", toy_npz, "--epochs", 1, "--no-jit", "--runs-dir",
                tmp_path / "runs" / "inner")
    assert (done.exit_code, done.stderr) == (1, "Error: Cannot create a run directory in "
                                             f"{tmp_path}/runs/inner: {tmp_path}/runs is a "
                                             "file, not a folder\n")


def test_corrupt_checkpoint(tmp_path, toy_npz):
    run = tmp_path / "runs" / "00000-mlp-toy"
    assert kgan("train", "--dataset", toy_npz, "--epochs", 1, "--batch-size", 50, "--quiet",
                "--no-jit", "--no-curves", "--runs-dir", tmp_path / "runs").exit_code == 0
    (run / "checkpoints" / "latest.keras").write_bytes(b"\x00" * 100)
    result = kgan("train", "--resume", run)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: Cannot load checkpoint {run}/checkpoints/latest.keras")
    assert result.stderr.count("\n") == 1


def test_real_process_no_traceback_and_bad_flag_exit_2(tmp_path):
    env = {**os.environ, "KGAN_DEBUG": ""}
    bad = subprocess.run([*KGAN, "train", "--dataset", "imagenet"], capture_output=True,
                         text=True, env=env, cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.startswith("Error: Unknown dataset 'imagenet'.")  # TensorFlow says nothing
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert not (tmp_path / "runs").exists()
    flag = subprocess.run([*KGAN, "train", "--epochs", "many"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert flag.returncode == 2 and "Invalid value for '--epochs'" in flag.stderr
    help_ = subprocess.run([*KGAN, "--help"], capture_output=True, text=True)
    assert help_.returncode == 0 and "train" in help_.stdout


@pytest.mark.parametrize("command", ["train", "sample", "export", "eval", "runs", "show",
                                     "translate"])
def test_every_command_prints_its_help(command):
    # Rich reads help text as markup: "[/VERSION]" once crashed `kgan eval --help`.
    help_ = subprocess.run([*KGAN, command, "--help"], capture_output=True, text=True)
    assert help_.returncode == 0 and help_.stderr == ""
    assert f" {command} [OPTIONS]" in help_.stdout


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_prints_the_resume_command(tmp_path, toy_npz):
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [*KGAN, "train", "--dataset", str(toy_npz), "--epochs", "1000", "--batch-size", "16",
         "--runs-dir", str(runs), "--checkpoint-every", "1000", "--sample-every", "1000",
         "--no-jit", "--no-tensorboard"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    metrics = runs / "00000-mlp-toy" / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    run = runs / "00000-mlp-toy"
    assert proc.returncode == 130, stderr
    assert stdout == f"{run}\n"
    assert f"Checkpoint saved. Resume with:\n  kgan train --resume {run}\n" in stderr
    assert "Traceback" not in stderr
    assert (run / "checkpoints" / "latest.keras").is_file()  # written on Ctrl-C, not by schedule
    epochs_done = len(metrics.read_text().splitlines())
    resumed = kgan("train", "--resume", run, "--epochs", epochs_done + 1, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    lines = metrics.read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == list(range(1, epochs_done + 2))


def test_resume_takes_equal_and_runtime_options_and_refuses_model_changes(tmp_path, toy_npz):
    run = tmp_path / "runs" / "00000-mlp-toy"
    assert kgan("train", "--dataset", toy_npz, "--epochs", 1, "--batch-size", 50, "--quiet",
                "--no-jit", "--no-curves", "--runs-dir", tmp_path / "runs").exit_code == 0
    before = (run / "config.json").read_text()
    for args, message in [
        (["--arch", "dcgan"], "--arch cannot change when resuming: the run was trained with "
                              "arch=mlp. Received: arch=dcgan"),
        (["--batch-size", 16], "--batch-size cannot change when resuming: the run was trained "
                               "with batch_size=50. Received: batch_size=16"),
        (["--name", "other"], f"--name names a new run; a resumed run keeps its directory {run}"),
        (["--epochs", 0], "`epochs` must be a positive integer. Received: epochs=0"),
    ]:
        result = kgan("train", "--resume", run, *args)
        assert result.exit_code == 1, args
        assert result.stderr == f"Error: {message}\n", args
        assert (run / "config.json").read_text() == before  # a refused resume changes nothing
    # The command that started the run, plus --resume and what may change (multi-worker docs).
    again = kgan("train", "--dataset", toy_npz, "--batch-size", 50, "--no-jit", "--no-curves",
                 "--runs-dir", tmp_path / "runs", "--resume", run, "--epochs", 2,
                 "--sample-every", 2, "--no-tensorboard", "-q")
    assert again.exit_code == 0, again.output
    saved = json.loads((run / "config.json").read_text())
    assert (saved["epochs"], saved["sample_every"], saved["tensorboard"]) == (2, 2, False)
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch-0001.png",
                                                                  "epoch-0002.png"]
