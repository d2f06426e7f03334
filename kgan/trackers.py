"""Experiment trackers (`--track mlflow`, `--track wandb`): a run's config, its epochs' metrics
and grids, its evaluations with their metric cards, and its exports, in MLflow or W&B.

Both are optional extras (`pip install 'kgan[mlflow]'`, `'kgan[wandb]'`) and both work offline:
MLflow writes to `MLFLOW_TRACKING_URI`, by default a local `file:` store in `<runs_dir>/mlruns`
(view: `mlflow ui --backend-store-uri runs/mlruns`); W&B follows its own settings
(`WANDB_MODE=offline` keeps everything in `<run_dir>/wandb/` for a later `wandb sync`).

A run's tracker run is recorded in `<run_dir>/tracker.json`, so `--resume`, `kgan eval` and
`kgan export` log into the same one.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import time
from pathlib import Path

from kgan import runs
from kgan.config import TRACKERS, TrainConfig
from kgan.errors import KganError, first_line

STATE = "tracker.json"


def check(kind: str) -> None:
    """Refuses a tracker whose package is not installed, naming the extra that installs it
    (each tracker's module and kgan's extra are both named as the tracker)."""
    try:
        importlib.import_module(kind)
    except ImportError:
        raise KganError(f"--track {kind} needs the {kind} package: pip install "
                        f"'kgan[{kind}]'") from None


def params(config: TrainConfig) -> dict:
    """The config as flat parameters (your own models' configs are too long to be one)."""
    values = dataclasses.asdict(config)
    values.pop("models")
    return {key: "" if value is None else json.dumps(value) if isinstance(value, (list, tuple))
            else value for key, value in values.items()}


class MLflow:
    """Through `MlflowClient` (no global active run): one MLflow run per kgan run.

    Both trackers answer `log` (an epoch's numbers, and its grid), `card` (an evaluation's
    result with its metric card), `tag` (a fact: an export's path), `close` and `state` (what
    `tracker.json` keeps to come back to the same run).
    """

    def __init__(self, run_dir, config, previous):
        from mlflow import MlflowClient

        self.uri = (os.environ.get("MLFLOW_TRACKING_URI") or (previous or {}).get("uri")
                    or (run_dir.resolve().parent / "mlruns").as_uri())
        if self.uri.startswith("file:"):  # MLflow 3 keeps it, "in maintenance mode", on request
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=self.uri)
        if previous:
            self.run_id = previous["run_id"]
            return
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "kgan")
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = (experiment.experiment_id if experiment
                         else self.client.create_experiment(name))
        self.run_id = self.client.create_run(experiment_id, run_name=run_dir.name,
                                             tags={"kgan.run_dir": str(run_dir.resolve())}
                                             ).info.run_id
        from mlflow.entities import Param

        self.client.log_batch(self.run_id, params=[Param(key, str(value)[:6000])
                                                   for key, value in params(config).items()])
        self.client.log_dict(self.run_id, json.loads(config.to_json()), "config.json")

    def log(self, step, numbers, image=None):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[
            Metric(key, float(value), now, step) for key, value in numbers.items()])
        if image is not None:
            self.client.log_artifact(self.run_id, str(image), runs.SAMPLES)

    def card(self, name, result):
        self.client.log_dict(self.run_id, result, f"evaluations/{name}.json")

    def tag(self, key, value):
        self.client.set_tag(self.run_id, key, value)

    def close(self, status=None):
        if status is not None:  # a command's record (eval, export) leaves the run's own
            self.client.set_terminated(self.run_id, {"finished": "FINISHED",
                                                     "failed": "FAILED"}.get(status, "KILLED"))

    def state(self):
        return {"uri": self.uri, "run_id": self.run_id}


class Wandb:
    """One W&B run per kgan run (resumed by its id), its files under `<run_dir>/wandb/`."""

    def __init__(self, run_dir, config, previous):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "kgan"), name=run_dir.name,
            id=(previous or {}).get("id"), resume="allow" if previous else None,
            config=params(config), dir=str(run_dir), reinit="create_new",
            settings=wandb.Settings(console="off", silent=True))

    def log(self, step, numbers, image=None):
        values = dict(numbers)
        if image is not None:
            values[runs.SAMPLES] = self.wandb.Image(str(image))
        self.run.log({"step": step, **values})

    def card(self, name, result):
        self.run.summary[f"evaluations/{name}"] = result

    def tag(self, key, value):
        self.run.summary[key] = value

    def close(self, status=None):
        self.run.finish(exit_code=0 if status in (None, "finished") else 1)

    def state(self):
        return {"id": self.run.id}


KINDS = {"mlflow": MLflow, "wandb": Wandb}
assert tuple(KINDS) == TRACKERS


def open_tracker(run_dir: Path, config: TrainConfig):
    """The run's tracker run (the one in `tracker.json`, else a new one recorded there), or
    None for a run without `--track`."""
    if not config.track:
        return None
    check(config.track)
    path = run_dir / STATE
    try:
        previous = json.loads(path.read_text()).get(config.track)
    except FileNotFoundError:
        previous = None
    except (OSError, ValueError, AttributeError) as e:  # damaged: a new tracker run, said so
        raise KganError(f"Cannot read {path} ({first_line(e)}): remove it to log into a new "
                        f"{config.track} run") from None
    try:
        tracker = KINDS[config.track](run_dir, config, previous)
    except Exception as e:
        raise KganError(f"Cannot start the {config.track} run of {run_dir}: "
                        f"{first_line(e)}") from None
    if previous is None:
        with runs.atomic_path(path) as tmp:
            tmp.write_text(json.dumps({config.track: tracker.state()}) + "\n")
    return tracker


def record(run_dir: Path, config: TrainConfig, step: int, numbers: dict | None = None,
           card: tuple[str, dict] | None = None, tags: dict | None = None) -> None:
    """Logs what a command did to a tracked run (`kgan eval`, `kgan export`), then lets go."""
    tracker = open_tracker(run_dir, config)
    if tracker is None:
        return
    try:
        if numbers:
            tracker.log(step, numbers)
        if card:
            tracker.card(*card)
        for key, value in (tags or {}).items():
            tracker.tag(key, value)
    finally:
        tracker.close()
