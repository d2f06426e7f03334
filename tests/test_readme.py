"""The README's "Bring your own model" and "Track experiments" run as they are written."""

import json
import shlex
from pathlib import Path

import numpy as np
from conftest import full_state, kgan, readme_blocks


def test_bring_your_own_model_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (code,) = readme_blocks("### Bring your own model", "python")
    exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})
    run_dir = Path("runs/00000-custom-fashion5k")
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["arch"], config["latent_dim"], config["data_count"]) == ("custom", 32, 5000)
    assert len(full_state(run_dir)) > 20  # the checkpoint loads into the rebuilt models
    sampled = kgan("sample", run_dir, "--n", 4, "--json")
    assert sampled.exit_code == 0, sampled.output
    assert np.load(config["dataset"])["x_train"].shape == (5000, 28, 28, 1)


def test_track_experiments_commands_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (shell,) = readme_blocks("### Track experiments", "bash")
    commands = [line for line in shell.splitlines() if " kgan train " in f" {line}"]
    assert len(commands) == 2
    for line in commands:
        words = shlex.split(line)
        for word in words[:words.index("kgan")]:  # VARIABLE=value before the command
            monkeypatch.setenv(*word.split("=", 1))
        done = kgan(*words[words.index("kgan") + 1:], "--quiet")
        assert done.exit_code == 0, done.output
    tracked = {json.loads(p.read_text()).popitem()[0] for p in Path("runs").glob("*/tracker.json")}
    assert tracked == {"mlflow", "wandb"}
    assert Path("runs/mlruns").is_dir()
