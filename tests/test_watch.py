"""Watching training: TensorBoard events, curves.png, `kgan runs`, `kgan show` and report.html."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import At, ctrl_c, poison, toy_config
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from typer.testing import CliRunner

from cli.main import app
from kgan import plots, runs
from kgan import training as lib

runner = CliRunner()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("watch")
    x = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 1), dtype=np.uint8)
    np.savez(tmp / "toy.npz", x_train=x)
    # TensorBoard and curves.png are what this module is about.
    return lib.train(toy_config(tmp / "toy.npz", epochs=2, tensorboard=True, curves=True),
                     runs_dir=tmp / "runs").run_dir


def test_tensorboard_events_hold_metrics_and_sample_grids(finished):
    events = EventAccumulator(str(finished / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    records, _ = runs.read_metrics(finished)
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "images_per_sec"):
        logged = events.Tensors(key)
        assert [e.step for e in logged] == [1, 2]
        np.testing.assert_allclose([float(tf.make_ndarray(e.tensor_proto)) for e in logged],
                                   [r[key] for r in records], rtol=1e-6)
    grids = events.Tensors("samples")
    assert [e.step for e in grids] == [1, 2]
    width, height, png = tf.make_ndarray(grids[1].tensor_proto)
    decoded = tf.io.decode_png(png).numpy()
    assert (int(width), int(height)) == (82, 82) and decoded.shape == (82, 82, 1)
    np.testing.assert_array_equal(decoded, np.asarray(Image.open(
        finished / "samples" / "epoch-0002.png"))[..., None])


def test_curves_png_has_a_panel_per_metric_group(finished, tmp_path):
    curves = Image.open(finished / "curves.png")
    assert curves.format == "PNG" and curves.size == (1000, 360)  # losses + D output panels
    records = [{"epoch": e, "d_loss": 1.0, "g_loss": 2.0, "d_real": 0.1, "d_fake": -0.1,
                "fid": 100.0 / e} for e in (1, 2, 3)]
    assert Image.open(plots.curves(records, tmp_path / "c.png")).size == (1500, 360)


def test_runs_lists_every_status(tmp_path, toy_npz):
    home = tmp_path / "runs"
    lib.train(toy_config(toy_npz, epochs=1), runs_dir=home)
    lib.train(toy_config(toy_npz, epochs=3), runs_dir=home, callbacks=[At(14, ctrl_c)])
    with pytest.raises(Exception, match="d_loss became nan"):
        lib.train(toy_config(toy_npz, epochs=3), runs_dir=home, callbacks=[At(15, poison)])
    result = runner.invoke(app, ["runs", str(home), "--json"])
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [r["name"] for r in listed] == ["00000-mlp-toy", "00001-mlp-toy", "00002-mlp-toy"]
    assert [r["status"] for r in listed] == ["finished", "interrupted", "failed"]
    assert listed[2]["status_message"].startswith("Training stopped at step 16: d_loss became nan")
    assert [(r["epochs_done"], r["epochs"]) for r in listed] == [(1, 1), (1, 3), (1, 3)]
    assert all(r["size_bytes"] > 100_000 and r["dataset"] == str(toy_npz) for r in listed)
    assert listed[0]["d_loss"] == runs.read_metrics(home / "00000-mlp-toy")[0][-1]["d_loss"]
    # The poisoned run was recovered twice (the poison struck again each time) before failing.
    assert [(r["health"], r["recoveries"]) for r in listed] == [("ok", 0), ("ok", 0), ("ok", 2)]

    table = runner.invoke(app, ["runs", str(home)])
    assert table.exit_code == 0
    for text in ("00001-mlp-toy", "interrupted", "failed", "finished", "1/3", "tensorflow", " MB",
                 "ok, 2 recoveries"):
        assert text in table.stdout


def test_what_a_kill_mid_write_leaves_is_cleaned_or_listed(tmp_path, toy_npz):
    home = tmp_path / "runs"
    run = lib.train(toy_config(toy_npz), runs_dir=home).run_dir
    stale = [run / "checkpoints" / ".latest-k1ll3d.keras", run / ".metrics-k1ll3d.jsonl"]
    for path in stale:  # as atomic_path leaves them when the writer is killed
        path.write_bytes(b"half")
    assert lib.resume(run, epochs=2).step == 24
    assert not any(path.exists() for path in stale)
    # Killed during the first checkpoint write: a metrics line but nothing to resume from.
    (run / "checkpoints" / "latest.keras").unlink()
    listed = json.loads(runner.invoke(app, ["runs", str(home), "--json"]).stdout)
    assert (listed[0]["status"], listed[0]["status_message"]) == ("failed", "no checkpoint")


def test_runs_of_a_missing_folder_is_an_error(tmp_path):
    missing = runner.invoke(app, ["runs", str(tmp_path / "nothere")])
    assert (missing.exit_code, missing.stderr) == (1, f"Error: No such folder: "
                                                      f"{tmp_path / 'nothere'}\n")
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(app, ["runs", str(tmp_path / "empty")])
    assert (empty.exit_code, empty.stderr) == (0, f"No runs in {tmp_path / 'empty'}/\n")


def test_a_run_being_written_is_listed_and_shown(tmp_path, toy_npz):
    home = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "kgan", "train", "--dataset", str(toy_npz),
                             "--epochs", "1000", "--batch-size", "16", "--runs-dir", str(home),
                             "--quiet", "--no-jit", "--no-tensorboard"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        metrics = home / "00000-mlp-toy" / "metrics.jsonl"
        deadline = time.time() + 120
        while not metrics.exists():
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.2)
        for _ in range(3):  # while the other process keeps appending and checkpointing
            listed = json.loads(runner.invoke(app, ["runs", str(home), "--json"]).stdout)
            assert listed[0]["status"] == "running" and listed[0]["epochs"] == 1000
            shown = runner.invoke(app, ["show", "--runs-dir", str(home), "--open"])
            assert shown.exit_code == 0 and "status: running" in shown.stdout
        run = home / "00000-mlp-toy"
        before = (run / "config.json").read_text()
        second = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "2000"])
        assert second.exit_code == 1  # two writers would interleave metrics and checkpoints
        assert second.stderr == (f"Error: {run} is being trained by another process (pid "
                                 f"{proc.pid} on {socket.gethostname()}): let it finish or stop "
                                 "it, then resume\n")
        assert (run / "config.json").read_text() == before
    finally:
        proc.send_signal(signal.SIGKILL)  # no chance to say goodbye
        proc.wait()
    listed = json.loads(runner.invoke(app, ["runs", str(home), "--json"]).stdout)
    assert listed[0]["status"] == "failed"
    # (killed before or after its first checkpoint: "; no checkpoint" follows if before)
    assert listed[0]["status_message"].startswith("the training process ended without a word")


def test_show_prints_config_metrics_and_files_and_reports_damage(finished, tmp_path):
    run = tmp_path / finished.name
    shutil.copytree(finished, run)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "d_lo')  # cut short, as by a crash mid-write
    result = runner.invoke(app, ["show", str(run)])
    assert result.exit_code == 0
    assert result.stdout.startswith(f"{run}  status: finished\nepoch 2/2, step 8\n")
    assert '  arch: "mlp"' in result.stdout and "  image_shape: [8, 8, 1]" in result.stdout
    assert "  g_loss: " in result.stdout and f"  {run}/checkpoints/latest.keras" in result.stdout
    assert f"  {run}/samples/epoch-0002.png (newest of 2 sample grids)" in result.stdout
    assert result.stderr == (f"warning: {run}/metrics.jsonl line 3 is damaged (Unterminated "
                             "string starting at: line 1 column 14 (char 13)); skipped\n")
    listed = runner.invoke(app, ["runs", str(tmp_path), "--json"])
    assert listed.exit_code == 0 and len(json.loads(listed.stdout)[0]["problems"]) == 1
    # Worse damage: binary bytes, a loss that is text, a status that is not a record, and a
    # report that cannot be written. The run is listed with warnings; the others are not touched.
    other = tmp_path / "00001-other"
    shutil.copytree(finished, other)
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(b"\n\x00\xff\xfe garbage\n" + b'{"epoch": 4, "d_loss": "oops"}\n')
    (run / "status.json").write_text('"finished"')
    listed = runner.invoke(app, ["runs", str(tmp_path), "--json"])
    assert listed.exit_code == 0, listed.output
    damaged, intact = json.loads(listed.stdout)
    assert (damaged["status"], damaged["epochs_done"], damaged["d_loss"]) == (
        "unknown", 2, runs.read_metrics(finished)[0][-1]["d_loss"])
    assert any("d_loss is not a number" in p for p in damaged["problems"])
    assert (intact["status"], intact["problems"]) == ("finished", [])
    assert runner.invoke(app, ["runs", str(tmp_path)]).exit_code == 0
    (run / "report.html").mkdir()  # as unwritable as a read-only folder is (root writes those)
    shown = runner.invoke(app, ["show", str(run), "--open"])
    assert shown.exit_code == 1 and shown.stderr.endswith(
        f"Error: Cannot write {run / 'report.html'}: Is a directory; nothing was written "
        "there\n")


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="needs Debian's chromium (./dev test installs it)")
def test_report_renders_in_headless_chromium(finished, tmp_path):
    result = runner.invoke(app, ["show", str(finished), "--open"])
    assert result.exit_code == 0
    report = finished / "report.html"
    assert result.stdout.splitlines()[-1] == f"report: {report.resolve().as_uri()}"
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", report.resolve().as_uri()],
        capture_output=True, text=True, timeout=120).stdout
    images = [line for line in dom.split("<img")[1:]]
    assert len(images) == 3  # curves + 2 sample grids
    assert all('data-loaded="1"' in img and "data-failed" not in img for img in images), dom
    assert 'src="samples/epoch-0001.png"' in dom and 'src="curves.png"' in dom


def test_curves_redraw_at_most_every_interval_and_at_the_end(finished, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    (run_dir / "curves.png").unlink()
    from kgan import callbacks

    curves = callbacks.Curves(run_dir, callbacks.StopGuard(), epochs=3, interval=3600)
    curves.on_epoch_end(0)  # the first epoch is always drawn
    assert (run_dir / "curves.png").exists()
    (run_dir / "curves.png").unlink()
    curves.on_epoch_end(1)  # within the interval: skipped...
    assert not (run_dir / "curves.png").exists()
    curves.on_train_end()  # ...but drawn when training ends
    assert (run_dir / "curves.png").exists()
    (run_dir / "curves.png").unlink()
    curves.on_train_end()  # nothing new since: no redraw
    assert not (run_dir / "curves.png").exists()


def test_an_append_after_a_torn_line_keeps_its_record_and_bad_health_is_ignored(finished,
                                                                                 tmp_path):
    """A record appended after a line cut short (a kill mid-append) starts a line of its own,
    so the evaluation it holds survives; a line whose `health` is not a verdict is read
    without it, with a warning, and `kgan runs` lists every run."""
    run = tmp_path / finished.name
    shutil.copytree(finished, run)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "d_lo')
    runs.append_metrics(run, {"epoch": 2, "step": 8, "source": "eval", "fid": 12.5})
    records, problems = runs.read_metrics(run)
    assert records[-1] == {"epoch": 2, "step": 8, "source": "eval", "fid": 12.5}
    assert len(problems) == 1 and "line 3 is damaged" in problems[0]
    runs.truncate_metrics(run, 2)  # what the owner does on resume: the torn part goes
    assert runs.read_metrics(run) == (records, [])
    for health in ('"bad"', '{"status": ["x"]}'):
        with open(run / "metrics.jsonl", "a") as f:
            f.write(f'{{"epoch": 2, "step": 8, "d_loss": 0.5, "health": {health}}}\n')
    records, problems = runs.read_metrics(run)
    assert [r.get("health") for r in records[-2:]] == [None, None]
    assert len(problems) == 2 and all("`health` is not a watchdog verdict" in p for p in problems)
    listed = runner.invoke(app, ["runs", str(tmp_path), "--json"])
    assert listed.exit_code == 0, listed.output
    assert runner.invoke(app, ["runs", str(tmp_path)]).exit_code == 0


def test_a_stray_folder_with_a_unicode_digit_is_not_a_version(tmp_path):
    from kgan import export, serving

    (tmp_path / "model" / "²").mkdir(parents=True)
    (tmp_path / "model" / "3").mkdir()
    (tmp_path / "model" / "3" / "saved_model.pb").write_bytes(b"")
    assert export._next_version(tmp_path / "model") == 4
    assert serving.resolve(tmp_path / "model") == tmp_path / "model" / "3"
