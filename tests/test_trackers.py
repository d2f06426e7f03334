"""--track mlflow and --track wandb, offline: a local `file:` store, `WANDB_MODE=offline`."""

import json
import struct
import sys

import pytest
from conftest import kgan

TOY = ["--batch-size", 16, "--latent-dim", 8, "--epochs", 2, "--steps-per-execution", 1,
       "--no-jit", "--no-tensorboard", "--no-curves", "--quiet"]


def test_mlflow_gets_config_metrics_grids_evaluations_and_exports(toy_npz, tmp_path):
    from mlflow import MlflowClient

    runs = tmp_path / "runs"
    done = kgan("train", "--dataset", toy_npz, *TOY, "--runs-dir", runs, "--track", "mlflow",
                "--eval-every", 2, "--eval-n", 32)
    assert done.exit_code == 0, done.output
    run_dir = done.stdout.strip()
    assert kgan("eval", run_dir, "--n", 32).exit_code == 0
    exported = kgan("export", run_dir, "--out-dir", tmp_path / "saved", "--no-verify")
    assert exported.exit_code == 0, exported.output
    state = json.loads((tmp_path / "runs" / "00000-mlp-toy" / "tracker.json").read_text())
    assert state["mlflow"]["uri"] == (runs / "mlruns").resolve().as_uri()
    client = MlflowClient(state["mlflow"]["uri"])
    run = client.get_run(state["mlflow"]["run_id"])
    assert run.info.run_name == "00000-mlp-toy" and run.info.status == "FINISHED"
    assert run.data.params["dataset"] == str(toy_npz) and run.data.params["lr"] == "0.0002"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "d_loss")] == [12, 24]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "fid")] == [24]
    assert len(client.get_metric_history(run.info.run_id, "eval/fid")) == 1
    assert run.data.tags["export"] == str((tmp_path / "saved" / "mlp-toy" / "1").resolve())
    files = {f.path for f in client.list_artifacts(run.info.run_id, "samples")}
    assert files == {"samples/epoch-0001.png", "samples/epoch-0002.png"}
    cards = {f.path for f in client.list_artifacts(run.info.run_id, "evaluations")}
    assert cards == {"evaluations/epoch-0002.json", "evaluations/eval-step-24.json"}
    local = client.download_artifacts(run.info.run_id, "evaluations/epoch-0002.json", tmp_path)
    card = json.loads(open(local).read())
    assert card["protocol"]["n_fake"] == 32 and card["fid"] >= 0
    # A resumed run logs into the same MLflow run.
    assert kgan("train", "--resume", run_dir, "--epochs", 3, "--quiet").exit_code == 0
    assert len(client.get_metric_history(run.info.run_id, "d_loss")) == 3
    # A damaged tracker.json: the evaluation is shown and recorded, then one line.
    tracker = runs / "00000-mlp-toy" / "tracker.json"
    tracker.write_text("{")
    done = kgan("eval", run_dir, "--n", 32, "--json")
    assert done.exit_code == 1 and json.loads(done.stdout)["fid"] >= 0
    last = done.stderr.splitlines()[-1] + "\n"  # after the table and the card's warnings
    assert last.startswith(f"Error: Cannot read {tracker} (")
    assert last.endswith("): remove it to log into a new mlflow run (the result above is "
                                "in metrics.jsonl, not in the tracker)\n")


def test_wandb_offline_gets_config_metrics_grids_and_exports(toy_npz, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    done = kgan("train", "--dataset", toy_npz, *TOY, "--runs-dir", tmp_path / "runs",
                "--track", "wandb")
    assert done.exit_code == 0, done.output
    run_dir = tmp_path / "runs" / "00000-mlp-toy"
    assert kgan("eval", run_dir, "--n", 32).exit_code == 0
    exported = kgan("export", run_dir, "--out-dir", tmp_path / "saved", "--no-verify")
    assert exported.exit_code == 0, exported.output
    run_id = json.loads((run_dir / "tracker.json").read_text())["wandb"]["id"]
    offline = sorted((run_dir / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(offline) == 3  # training, then the evaluation's and the export's records
    records = list(wandb_records(next(offline[0].glob("*.wandb"))))
    config = {k: json.loads(v) for kind, items in records if kind == "run" for k, v in items}
    history = [dict(items) for kind, items in records if kind == "history"]
    assert config["arch"] == "mlp" and config["dataset"] == str(toy_npz)
    assert [json.loads(row["step"]) for row in history] == [12, 24]
    assert all("d_loss" in row and json.loads(row["samples/_type"]) == "image-file"
               for row in history)
    assert len(list((offline[0] / "files" / "media" / "images").glob("samples_*.png"))) == 2
    evaluated = {k: v for kind, items in wandb_records(next(offline[1].glob("*.wandb")))
                 if kind in ("history", "summary") for k, v in items}
    assert json.loads(evaluated["eval/fid"]) >= 0  # the numbers, and the card in the summary
    assert json.loads(evaluated["evaluations/eval-step-24"])["protocol"]["n_fake"] == 32
    summaries = [dict(items) for kind, items in wandb_records(
        next(offline[2].glob("*.wandb"))) if kind == "summary"]
    exports = [json.loads(s["export"]) for s in summaries if "export" in s]
    assert exports == [str((tmp_path / "saved" / "mlp-toy" / "1").resolve())]


def wandb_records(path, block=32768):
    """(kind, [(key, JSON value)]) of the run, history and summary records of a W&B offline
    `.wandb` file: LevelDB-log blocks (7-byte record headers; full, first, middle and last
    fragments) of `Record` protos, after a 7-byte file header."""
    from wandb.proto import wandb_internal_pb2

    data, pos, pending = path.read_bytes(), 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, fragment = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        pending = chunk if fragment in (1, 2) else pending + chunk
        if fragment not in (1, 4):
            continue
        record = wandb_internal_pb2.Record()
        record.ParseFromString(pending)
        kind = record.WhichOneof("record_type")
        where = {"run": "run.config.update", "history": "history.item",
                 "summary": "summary.update"}.get(kind)
        if where:
            items = record
            for name in where.split("."):
                items = getattr(items, name)
            yield kind, [(item.key or "/".join(item.nested_key), item.value_json)
                         for item in items]


@pytest.mark.parametrize("tracker", ["mlflow", "wandb"])
def test_a_missing_tracker_is_one_error_line_naming_the_extra(tracker, toy_npz, tmp_path,
                                                              monkeypatch):
    monkeypatch.setitem(sys.modules, tracker, None)  # as if not installed: import fails
    runs = tmp_path / "runs"
    done = kgan("train", "--dataset", toy_npz, *TOY, "--runs-dir", runs, "--track", tracker)
    assert done.exit_code == 1
    assert done.stderr == (f"Error: --track {tracker} needs the {tracker} package: pip install "
                           f"'kgan[{tracker}]'\n")
    assert not runs.exists()
