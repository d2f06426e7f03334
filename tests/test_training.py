import csv as csv_module
import json
import resource
import zipfile

import keras
import numpy as np
import pytest
from conftest import (
    STYLE_ADA,
    TECHNIQUES,
    At,
    assert_same_state,
    ctrl_c,
    poison,
    toy_config,
    write_toy_npz,
)
from PIL import Image

from kgan import health, images
from kgan import training as lib
from kgan.checkpoint import load_gan
from kgan.errors import Interrupted, KganError


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """3 uninterrupted epochs of the toy data: what every interrupted or extended run of the
    same settings must end identical to."""
    tmp = tmp_path_factory.mktemp("straight")
    return lib.train(toy_config(write_toy_npz(tmp), epochs=3), runs_dir=tmp / "runs").run_dir


def test_run_directory_contents(toy_npz, tmp_path):
    result = lib.train(toy_config(toy_npz, epochs=2, sample_every=1), runs_dir=tmp_path / "runs")
    run = result.run_dir
    assert run.name == "00000-mlp-toy" and result.status == "finished" and result.step == 24
    saved = json.loads((run / "config.json").read_text())
    assert saved["image_shape"] == [8, 8, 1] and saved["num_classes"] == 4
    assert saved["epochs"] == 2 and saved["dataset"] == str(toy_npz)
    assert (run / "checkpoints" / "latest.keras").is_file()
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    for epoch in (1, 2):
        grid = Image.open(run / "samples" / f"epoch-{epoch:04d}.png")
        assert grid.size == (82, 82) and grid.mode == "L"  # 8x8 tiles of 8 px, 2 px padding
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    assert [line["step"] for line in lines] == [12, 24]
    for line in lines:
        assert {"d_loss", "g_loss", "d_real", "d_fake", "seconds", "images_per_sec"} <= set(line)
        assert line["images_per_sec"] > 0
    second = lib.train(toy_config(toy_npz, epochs=1), runs_dir=tmp_path / "runs", name="again")
    assert second.run_dir.name == "00001-again"


def test_every_grid_is_drawn_from_the_same_fixed_noise(straight):
    # The grid after the last epoch is the final generator applied to the noise that the run's
    # seed fixes (test_gan checks the first epoch's grid the same way).
    z = np.random.default_rng(3).standard_normal((64, 8)).astype("float32")
    gan, _ = load_gan(straight)
    expected = images.grid(images.to_uint8(keras.ops.convert_to_numpy(gan.generator(z))))
    grids = [np.asarray(Image.open(straight / "samples" / f"epoch-{e:04d}.png")) for e in (1, 3)]
    np.testing.assert_array_equal(grids[1], expected[..., 0])
    assert not np.array_equal(grids[0], grids[1])  # the generator changed in between


@pytest.mark.parametrize("options", [{}, TECHNIQUES, STYLE_ADA],
                         ids=["plain", "techniques", "stylegan-ada"])
def test_interrupt_mid_epoch_then_resume_is_bit_identical(toy_npz, tmp_path, options, straight):
    epochs = 3  # the module's straight run; 2 of their own with every technique
    if options:
        epochs = 2
        straight = lib.train(toy_config(toy_npz, epochs=epochs, **options),
                             runs_dir=tmp_path / "a").run_dir
    cut = lib.train(toy_config(toy_npz, epochs=epochs, **options), runs_dir=tmp_path / "b",
                    callbacks=[At(17, ctrl_c)])
    # Ctrl-C came between steps 17 and 18: the step in flight (18) finishes, then it stops.
    assert (cut.status, cut.step, cut.epoch) == ("interrupted", 18, 1)
    lines = (cut.run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1  # the cut epoch is not logged as done
    done = lib.resume(cut.run_dir)
    assert (done.status, done.step) == ("finished", 12 * epochs)
    assert_same_state(straight, cut.run_dir)
    lines = (cut.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, epochs + 1))


def test_fused_steps_stop_at_epoch_ends_and_resume_bit_identically(toy_npz, tmp_path, straight):
    # 12 steps per epoch in calls of 5 (5, 5, 2 per epoch): a Ctrl-C after step 17 lets the
    # call in flight (steps 18-22) finish, and the resumed run's first call is 2 steps long.
    fused = toy_config(toy_npz, epochs=3, steps_per_execution=5)
    cut = lib.train(fused, runs_dir=tmp_path / "b", callbacks=[At(17, ctrl_c)])
    assert (cut.status, cut.step, cut.epoch) == ("interrupted", 22, 1)
    assert lib.resume(cut.run_dir).step == 36
    assert_same_state(straight, cut.run_dir)  # same batches, same math as one step per call
    lines = [json.loads(line) for line in (cut.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["step"]) for r in lines] == [(1, 12), (2, 24), (3, 36)]


def test_ctrl_c_on_an_epochs_last_step_logs_that_epoch(toy_npz, tmp_path):
    # One call per 12-step epoch: the Ctrl-C after step 12 stops at the end of epoch 2.
    cut = lib.train(toy_config(toy_npz, epochs=3, steps_per_execution=12), runs_dir=tmp_path,
                    callbacks=[At(12, ctrl_c)])
    assert (cut.status, cut.step, cut.epoch) == ("interrupted", 24, 2)

    def epochs():
        return [json.loads(line)["epoch"]
                for line in (cut.run_dir / "metrics.jsonl").read_text().splitlines()]

    assert epochs() == [1, 2]
    assert lib.resume(cut.run_dir).status == "finished" and epochs() == [1, 2, 3]


def test_resume_extends_a_finished_run_bit_identically(toy_npz, tmp_path, straight):
    short = lib.train(toy_config(toy_npz, epochs=1), runs_dir=tmp_path / "b").run_dir
    lib.resume(short, epochs=3)
    assert json.loads((short / "config.json").read_text())["epochs"] == 3
    assert_same_state(straight, short)


def twice(model):
    ctrl_c(model)
    ctrl_c(model)  # the second one, while the first still waits for the step to end


def test_a_second_ctrl_c_stops_at_once_and_says_what_was_kept(toy_npz, tmp_path):
    with pytest.raises(Interrupted) as e:
        lib.train(toy_config(toy_npz, epochs=3), runs_dir=tmp_path, callbacks=[At(15, twice)])
    run = tmp_path / "00000-mlp-toy"
    assert str(e.value) == (f"Stopped at once by a second Ctrl-C; {run} keeps its last "
                            f"checkpoint. Resume with: kgan train --resume {run}")
    assert e.value.exit_code == 130
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"
    assert lib.resume(run).step == 36  # from the checkpoint of epoch 1
    with pytest.raises(Interrupted) as e:
        lib.train(toy_config(toy_npz, epochs=3), runs_dir=tmp_path / "early",
                  callbacks=[At(3, twice)])
    assert str(e.value) == ("Stopped at once by a second Ctrl-C, before the first checkpoint: "
                            f"nothing was kept ({tmp_path / 'early' / '00000-mlp-toy'} is "
                            "removed)")
    assert list((tmp_path / "early").iterdir()) == []


def test_nan_stops_and_keeps_the_last_good_checkpoint(toy_npz, tmp_path):
    with pytest.raises(KganError) as e:  # --recover 0: no second try (tests/test_health.py)
        lib.train(toy_config(toy_npz, epochs=3, recover=0), runs_dir=tmp_path,
                  callbacks=[At(15, poison)])
    run = tmp_path / "00000-mlp-toy"
    assert str(e.value).startswith("Training stopped at step 16: d_loss became nan; the last good "
                                   f"checkpoint is {run / 'checkpoints' / 'latest.keras'}.")
    gan, _ = load_gan(run)
    assert int(gan.g_optimizer.iterations) == 12  # end of epoch 1, before the NaN
    assert all(np.isfinite(keras.ops.convert_to_numpy(v)).all() for v in gan.weights)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_failure_before_any_checkpoint_leaves_no_run_directory(toy_npz, tmp_path):
    with pytest.raises(KganError, match="no checkpoint was kept"):
        lib.train(toy_config(toy_npz, epochs=2), runs_dir=tmp_path / "runs",
                  callbacks=[At(3, poison)])
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_full_disk_is_named_as_such_and_keeps_the_last_checkpoint(toy_npz, tmp_path):
    # Writes past 20 KB fail with EFBIG from step 13 on, as on a full disk (Python ignores
    # SIGXFSZ); a checkpoint of the toy GAN is about 400 KB.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

    def fill_the_disk(model=None):
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))

    run = tmp_path / "00000-mlp-toy"
    checkpoint = run / "checkpoints" / "latest.keras"
    try:
        with pytest.raises(KganError) as e:
            lib.train(toy_config(toy_npz, epochs=3), runs_dir=tmp_path,
                      callbacks=[At(13, fill_the_disk)])
        assert str(e.value) == (f"Cannot write {checkpoint}: File too large; the "
                                "previous one is kept")
        with pytest.raises(KganError) as e:
            load_gan(run)  # the checkpoint is fine: its unpacked copy cannot be written
        assert str(e.value).startswith(f"Cannot unpack {checkpoint} to load it: File too large")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert load_gan(run)[0].steps == 12  # epoch 1's, intact


def test_corrupt_checkpoint(toy_npz, tmp_path):
    run = lib.train(toy_config(toy_npz, epochs=1), runs_dir=tmp_path).run_dir
    (run / "checkpoints" / "latest.keras").write_bytes(b"garbage")
    with pytest.raises(KganError, match=r"^Cannot load checkpoint .*latest\.keras: "):
        lib.resume(run)


def test_checkpoint_too_big_for_its_model_is_not_unpacked(toy_npz, tmp_path):
    run = lib.train(toy_config(toy_npz, epochs=1), runs_dir=tmp_path).run_dir
    with zipfile.ZipFile(run / "checkpoints" / "latest.keras", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.weights.h5", bytes(64 * 2**20))  # 64 MiB of zeros, 64 KiB zipped
    with pytest.raises(KganError, match=r"^Cannot load checkpoint .*latest\.keras: its "
                       r"model\.weights\.h5 has 67108864 bytes, more than this model's weights "
                       r"could take \(\d+\)$"):
        lib.resume(run)


def test_dataset_smaller_than_a_batch(toy_npz, tmp_path):
    with pytest.raises(KganError) as e:
        lib.train(toy_config(toy_npz, batch_size=500), runs_dir=tmp_path / "runs")
    assert str(e.value) == ("The dataset has 200 images, fewer than one batch. Use a smaller "
                            "--batch-size. Received: batch_size=500")
    assert not (tmp_path / "runs").exists()


def test_stock_keras_callbacks_read_the_logs(toy_npz, tmp_path):
    """kgan's callbacks leave numbers only in Keras' `logs`: the stock TensorBoard and
    CSVLogger callbacks record every one of them, the watchdog's health and the evaluation's
    FID included."""
    import tensorflow as tf

    board, csv = tmp_path / "board", tmp_path / "log.csv"
    result = lib.train(toy_config(toy_npz, epochs=2), runs_dir=tmp_path / "runs", callbacks=[
        keras.callbacks.TensorBoard(str(board)), keras.callbacks.CSVLogger(str(csv))])
    assert result.status == "finished"
    tags = {value.tag for path in board.rglob("*.tfevents.*")
            for event in tf.compat.v1.train.summary_iterator(str(path))
            for value in event.summary.value}
    assert {"epoch_d_loss", "epoch_g_loss", "epoch_r_t", "epoch_health",
            "epoch_images_per_sec"} <= tags
    rows = list(csv_module.DictReader(csv.open()))
    records = [json.loads(line) for line in
               (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == len(records) == 2
    for row, record in zip(rows, records, strict=True):
        # The verdict stays whole in metrics.jsonl; the logs carry its severity.
        assert float(row["health"]) == health.SEVERITY.index(record["health"]["status"])
        assert float(row["d_loss"]) == pytest.approx(record["d_loss"])
        assert float(row["seconds"]) == record["seconds"]


def test_early_stopping_on_a_logged_metric_stops_the_run_honestly(toy_npz, tmp_path):
    """A stock EarlyStopping on `d_loss` (asked for an impossible improvement, so it stops
    after the second epoch) ends the run "stopped" at that epoch with its checkpoint; a resume
    trains the rest."""
    stop = keras.callbacks.EarlyStopping(monitor="d_loss", mode="min", min_delta=1e9, patience=1)
    result = lib.train(toy_config(toy_npz, epochs=4, checkpoint_every=3),
                       runs_dir=tmp_path / "runs", callbacks=[stop])
    assert (result.status, result.epoch, result.step) == ("stopped", 2, 24)
    status = json.loads((result.run_dir / "status.json").read_text())
    assert (status["status"], status["message"]) == ("stopped", "stopped early by a callback")
    assert load_gan(result.run_dir)[0].steps == 24  # saved though 2 is not a checkpoint epoch
    assert lib.resume(result.run_dir).status == "finished"
    assert load_gan(result.run_dir)[0].steps == 48
