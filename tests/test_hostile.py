"""Hostile cases, round two (issue 35): what a damaged, full or odd environment gets from kgan —
one `Error:` line, and nothing lost."""

import json
import resource

import numpy as np
import pytest
from conftest import At, kgan, poison, toy_config, write_toy_npz
from PIL import Image

from kgan import checkpoint, export, training
from kgan.errors import KganError


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A finished one-epoch toy run (mlp, 4 classes)."""
    root = tmp_path_factory.mktemp("hostile")
    return training.train(toy_config(write_toy_npz(root)), runs_dir=root / "runs").run_dir


def test_eval_prints_its_result_before_saying_it_could_not_be_recorded(toy_run, tmp_path):
    """Item 4: the metrics are computed, then the record cannot be written (here, a folder
    where metrics.jsonl goes; a read-only mount fails the same way)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(toy_run, run)
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").mkdir()
    done = kgan("eval", run, "--n", 32, "--json")
    assert done.exit_code == 1
    assert json.loads(done.stdout)["fid"] >= 0  # the result is there, on stdout
    assert done.stderr.endswith(f"Error: Cannot write {run}/metrics.jsonl: Is a directory; the "
                                "records before are kept (the result above is not in the run's "
                                "record)\n")


def test_counts_too_large_to_hold_are_refused_up_front(toy_run):
    """Items 12 and 33."""
    cases = [
        (["eval", toy_run, "--n", 100_000_000], "`n` must be at most 100000 (papers measure FID "
         "on 50,000; the images are held in memory). Received: n=100000000"),
        (["sample", toy_run, "--n", 100_000_000], "`n` must be at most 10000 (one grid of them "
         "is 100 images a side; draw more with other --seed values). Received: n=100000000"),
        (["sample", toy_run, "--labels", "0-3", "--n", 3000], "`n` must be at most 10000 (one "
         "grid of them is 100 images a side; draw more with other --seed values). Received: "
         "n=12000"),
        (["sample", toy_run, "--interpolate", 100_000], "`interpolate` must be at most 1000 (a "
         "GIF of more frames is minutes to write and too large to show). Received: "
         "interpolate=100000"),
        (["train", "--dataset", "mnist", "--eval-every", 1, "--eval-n", 200_000],
         "`eval_n` must be at most 100000 (papers measure FID on 50,000; the images are held in "
         "memory). Received: eval_n=200000"),
    ]
    for args, message in cases:
        done = kgan(*args)
        assert (done.exit_code, done.stderr) == (1, f"Error: {message}\n"), args


def test_a_checkpoint_with_nan_weights_is_not_good(toy_npz, tmp_path):
    """Items 14 and 29: sampling it is refused (it drew a black grid), and a run whose last
    checkpoint went bad stops saying so, instead of 'recovering' to it twice."""

    def poison_all(model):
        poison(model)
        checkpoint.save(model, model_run[0])  # the checkpoint goes bad as well

    model_run = [tmp_path / "00000-mlp-toy"]
    with pytest.raises(KganError) as e:
        training.train(toy_config(toy_npz, epochs=3), runs_dir=tmp_path,
                       callbacks=[At(13, poison_all)])
    kept = tmp_path / "00000-mlp-toy" / "checkpoints" / "latest.keras"
    assert str(e.value).startswith("Training stopped: ")
    assert str(e.value).endswith(f"it cannot recover: Checkpoint {kept} holds NaN or inf "
                                 "weights: it cannot be drawn from or trained on")
    done = kgan("sample", tmp_path / "00000-mlp-toy", "--n", 4)
    assert (done.exit_code, done.stderr) == (1, f"Error: Checkpoint {kept} holds NaN or inf "
                                                "weights: it cannot be drawn from or trained on\n")
    assert not (tmp_path / "00000-mlp-toy" / "samples" / "sample-seed0.png").exists()


def test_images_over_the_pixel_limit_are_named_with_the_limit(tmp_path, monkeypatch):
    """Item 6, in a training folder and in A/B folders (translate: test_translation)."""
    folder, pairs = tmp_path / "folder", tmp_path / "pairs"
    for place in (folder, pairs / "A", pairs / "B"):
        place.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(place / f"{i}.png")
    for big in (folder / "big.png", pairs / "A" / "big.png", pairs / "B" / "big.png"):
        Image.fromarray(np.zeros((60, 60), np.uint8)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 3,600 pixels: over twice that
    limit = ("Pillow refuses images over twice its limit of 1000 pixels; for an image you trust, "
             "raise it with KGAN_MAX_IMAGE_PIXELS=<pixels> (or none)")
    for args, name in ((["--dataset", folder, "--image-size", 8], folder / "big.png"),
                       (["--dataset", pairs, "--arch", "pix2pix", "--image-size", 8],
                        pairs / "A" / "big.png")):
        done = kgan("train", *args, "--epochs", 1, "--runs-dir", tmp_path / "runs", "--quiet")
        assert done.exit_code == 1 and done.stderr.startswith(
            f"Error: Cannot read image {name}: Image size (3600 pixels) exceeds limit of 2000 "
            "pixels"), done.stderr
        assert limit in done.stderr and done.stderr.count("\n") == 1


def test_a_full_disk_stops_the_run_naming_the_file_and_keeps_it_resumable(toy_npz, tmp_path,
                                                                          monkeypatch):
    """Items 3 and 10: the events file (TensorBoard's own writer dropped what it could not
    write, and the run 'finished'), then an export. Writes past the limit fail with EFBIG, as
    on a full disk (Python ignores SIGXFSZ)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    run = tmp_path / "00000-mlp-toy"

    def events():
        return next((run / "tensorboard").glob("events.out.tfevents.*"))

    def fill_the_disk(model):  # room for the small files, not for another epoch of events
        resource.setrlimit(resource.RLIMIT_FSIZE, (events().stat().st_size + 200, hard))

    try:
        with pytest.raises(KganError) as e:
            training.train(toy_config(toy_npz, epochs=4, tensorboard=True, checkpoint_every=2),
                           runs_dir=tmp_path, callbacks=[At(25, fill_the_disk)])  # epoch 3
        assert str(e.value) == (f"Cannot write {events()}: File too large; the events written "
                                "before are kept")
        # The disk fills once the checkpoint is loaded (its unpacked copy is the largest file).
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        loaded = export.load_gan

        def load_then_fill(*args, **kwargs):
            gan = loaded(*args, **kwargs)
            resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))
            return gan

        monkeypatch.setattr(export, "load_gan", load_then_fill)
        with pytest.raises(KganError) as e:
            export.export(run, tmp_path / "saved", verify=False)
        assert str(e.value).startswith(f"Cannot write to {tmp_path / 'saved' / 'mlp-toy'}: ")
        assert "File too large" in str(e.value)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and str(events()) in status["message"]
    assert not (tmp_path / "saved" / "mlp-toy" / "1").exists()
    resumed = training.resume(run)  # from epoch 2's checkpoint
    assert (resumed.status, resumed.step) == ("finished", 48)


def test_damaged_caches_are_rebuilt_with_a_warning_never_trusted(toy_run, tmp_path,
                                                                 monkeypatch):
    """Items 11, 16, 17 and 31: the real-statistics cache (cut short, NaN, another key's 3
    rows), the classifier's record, a cut-off classifier and a cache under a file."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("KGAN_CACHE", str(cache))

    def evaluate(*extra):
        done = kgan("eval", toy_run, "--n", 32, "--json", *extra)
        assert done.exit_code == 0, done.output
        return json.loads(done.stdout)

    first = evaluate()
    (stats,) = (cache / "real-stats").iterdir()
    with np.load(stats) as stored:
        good = dict(stored)
    damages = {
        "cut short": lambda: stats.write_bytes(stats.read_bytes()[:100]),
        "NaN": lambda: np.savez(stats, **{**good, "features": good["features"] * np.nan}),
        "another key": lambda: np.savez(stats, **{**good, "features": good["features"][:3],
                                                   "key": np.array("another")}),
    }
    for damage in damages.values():
        damage()
        result = evaluate()
        assert result["fid"] == first["fid"]  # computed again, not read from the damage
        (warning,) = [w for w in result["protocol"]["warnings"] if "cached" in w]
        assert warning.startswith(f"the cached real features {stats} were damaged (")
        assert warning.endswith(") and were computed again")
    (model,) = (cache / "classifiers").glob("*.keras")
    model.with_suffix(".json").write_text("{")
    result = evaluate()
    (warning,) = [w for w in result["protocol"]["warnings"] if "cached" in w]
    assert warning.startswith(f"the cached classifier {model} was damaged (")
    assert json.loads(model.with_suffix(".json").read_text())["test_accuracy"] >= 0
    cut = tmp_path / "cut.keras"
    cut.write_bytes(model.read_bytes()[:1000])
    done = kgan("eval", toy_run, "--n", 32, "--classifier", cut)
    assert (done.exit_code, done.stderr) == (1, f"Error: Cannot load classifier {cut}: it is "
                                                "not a whole .keras file (cut short, or not a "
                                                "Keras model)\n")
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("KGAN_CACHE", str(tmp_path / "file" / "cache"))
    done = kgan("eval", toy_run, "--n", 32)
    assert (done.exit_code, done.stderr) == (1, f"Error: Cannot use the cache folder "
                                                f"{tmp_path}/file/cache/classifiers: "
                                                f"{tmp_path}/file is a file, not a folder (set "
                                                "KGAN_CACHE to a folder kgan may write)\n")


def test_a_refused_resume_names_the_process_that_holds_the_run(toy_run):
    """Item 19: status.json still names a dead earlier owner; the lock's holder is named."""
    import os
    import socket

    from kgan import runs

    status = json.loads((toy_run / "status.json").read_text())
    (toy_run / "status.json").write_text(json.dumps({**status, "pid": 999_999_999}))
    try:
        with runs.owned(toy_run):  # this process trains it now
            done = kgan("train", "--resume", toy_run, "--epochs", 2)
    finally:
        (toy_run / "status.json").write_text(json.dumps(status))
    assert (done.exit_code, done.stderr) == (
        1, f"Error: {toy_run} is being trained by another process (pid {os.getpid()} on "
           f"{socket.gethostname()}): let it finish or stop it, then resume\n")


def test_a_damaged_status_file_is_a_warning_of_kgan_runs(toy_run, tmp_path):
    """Item 21."""
    import shutil

    run = tmp_path / "runs" / toy_run.name
    shutil.copytree(toy_run, run)
    (run / "status.json").write_text("garbage")
    done = kgan("runs", tmp_path / "runs")
    assert done.exit_code == 0
    assert (f"warning: {run.name}: {run}/status.json is damaged (Expecting value: line 1 column "
            "1 (char 0))") in done.stderr.replace("\n", "")


def test_another_models_checkpoint_is_one_line(toy_run, toy_npz, tmp_path):
    """Item 20: it printed 32 lines of Keras warnings and a cut-off error."""
    import shutil

    other = training.train(toy_config(toy_npz, arch="dcgan", base_filters=4),
                           runs_dir=tmp_path / "other").run_dir
    run = tmp_path / "runs" / toy_run.name
    shutil.copytree(toy_run, run)
    shutil.copy(other / "checkpoints" / "latest.keras", run / "checkpoints" / "latest.keras")
    done = kgan("sample", run, "--n", 4)
    assert done.exit_code == 1 and done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"Error: Cannot load checkpoint {run}/checkpoints/latest.keras: "
                                  "it holds another model's weights (Skipping ")
    assert done.stderr.endswith("); was it copied from another run?\n")
