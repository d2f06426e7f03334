"""Each train option is written once, in `TrainConfig`: the CLI, resume and docs/train.md follow."""

import json
import re
from pathlib import Path

import pytest
import typer
from conftest import kgan
from typer.testing import CliRunner

from cli.main import app
from kgan.config import TrainConfig, options, shown_default
from kgan.errors import KganError

TRAIN_DOC = Path(__file__).resolve().parents[1] / "docs" / "train.md"  # the option table
COMMAND_OPTIONS = {"--config", "--runs-dir", "--name", "--resume", "--quiet"}  # not settings


def flag(field):
    return (field.metadata["flags"] or ("--" + field.name.replace("_", "-"),))[0].split("/")[0]


def option_table():
    """`kgan train`'s option table in docs/train.md: {first flag of a row: its default cell}."""
    table = TRAIN_DOC.read_text().split("| option | default | meaning |\n")[1].split("\n\n")[0]
    rows = {}
    for line in table.splitlines()[1:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[re.findall(r"`(--[a-z0-9-]+)", cells[0])[0]] = cells[1]
    return rows


def test_the_option_table_lists_every_option_with_the_configs_default():
    rows = option_table()
    fields = {flag(field): field for field in options()}
    assert set(rows) == set(fields) | COMMAND_OPTIONS
    for name, field in fields.items():
        assert rows[name] == shown_default(field), name


def test_kgan_train_derives_its_options_from_the_config():
    params = {p.name: p for p in typer.main.get_command(app).commands["train"].params}
    fields = {field.name: field for field in options()}
    assert set(params) == set(fields) | {"config", "runs_dir", "name", "resume", "quiet"}
    for name, field in fields.items():
        assert params[name].opts[0] == flag(field)
        assert (params[name].default, params[name].help) == (field.default,
                                                             field.metadata["help"])
    shown = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).stdout
    assert "one pass over the data" in shown and "[env var: KERAS_BACKEND]" in shown


def test_every_option_is_checked_with_a_message_naming_it():
    for field in options():
        with pytest.raises(KganError, match=rf"{field.name}|{flag(field)}"):
            TrainConfig(**{field.name: object()}).validate()


def test_resume_accepts_equal_and_runtime_settings_and_refuses_the_others():
    config = TrainConfig(arch="dcgan", epochs=3)
    resumed = config.resumed({"arch": "dcgan", "epochs": 5, "jit": True, "eval_every": 2})
    assert (resumed.arch, resumed.epochs, resumed.jit, resumed.eval_every) == ("dcgan", 5, True, 2)
    assert config.epochs == 3  # a copy
    runtime = {f.name for f in options() if f.metadata["resumable"]}
    assert runtime == {"epochs", "jit", "steps_per_execution", "strategy", "sample_every",
                       "checkpoint_every", "recover", "tensorboard", "track", "curves",
                       "eval_every", "eval_n", "eval_features"}
    with pytest.raises(KganError) as e:
        config.resumed({"loss": "hinge"})
    assert str(e.value) == ("--loss cannot change when resuming: the run was trained with "
                            "loss=bce. Received: loss=hinge")
    with pytest.raises(KganError, match="`eval_n` must be a positive integer"):
        config.resumed({"eval_n": 0})


@pytest.mark.parametrize(("key", "value", "message"), [
    ("augment", 5, "`augment` must be a comma-separated string. Received: augment=5"),
    ("image_shape", ["a", "b", "c"], "`image_shape` must be (height, width, 1 or 3), each at "
                                     "most 2048. Received: image_shape=('a', 'b', 'c')"),
    ("latent_dim", 10**12, "`latent_dim` must be at most 65536 (the first layer alone would not "
                           f"fit). Received: latent_dim={10**12}"),
    ("num_classes", -3, "`num_classes` must be a positive integer. Received: num_classes=-3"),
    ("jit", "yes", "`jit` must be true or false. Received: jit=yes"),
])
def test_a_damaged_config_json_is_one_clear_error(tmp_path, key, value, message):
    config = json.loads(TrainConfig(image_shape=(8, 8, 1)).to_json())
    (tmp_path / "config.json").write_text(json.dumps({**config, key: value}))
    with pytest.raises(KganError) as e:
        TrainConfig.load(tmp_path / "config.json")
    assert str(e.value) == message


def test_help_texts_read_the_same_through_rich_markup():
    # Typer renders help through Rich, which takes "[word]" for a style tag and drops it
    # (as it once dropped "[sign(D(real))]" from --ada-target's help).
    from rich.text import Text

    for field in options():
        assert Text.from_markup(field.metadata["help"]).plain == field.metadata["help"], field.name


def test_a_config_file_in_json_toml_or_yaml_gives_the_options(tmp_path):
    from kgan.config import read_options

    files = {"run.json": '{"arch": "dcgan", "image-size": 32, "ema": 0.999, "jit": false}',
             "run.toml": 'arch = "dcgan"\nimage_size = 32\nema = 0.999\njit = false\n',
             "run.yaml": "arch: dcgan\nimage-size: 32\nema: 0.999\njit: false\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        assert read_options(tmp_path / name) == {"arch": "dcgan", "image_size": 32, "ema": 0.999,
                                                 "jit": False}, name
    # A run's config.json is a config file: what it filled in from its data is left out.
    saved = tmp_path / "config.json"
    saved.write_text(TrainConfig(arch="dcgan", image_shape=(8, 8, 1), num_classes=3,
                                 data_key="abc", data_count=5).to_json())
    again = TrainConfig(**read_options(saved))
    assert again == TrainConfig(arch="dcgan") and again.image_shape is None


@pytest.mark.parametrize("name, text, message", [
    ("run.ini", "", "--config takes a .json, .toml, .yaml, .yml file. Received: {path}"),
    ("run.toml", "arch = ", "{path} is not valid TOML: "),
    ("run.json", "[1, 2]", "{path} must hold a mapping of options to values. Received: list"),
    ("run.yaml", "arch: dcgan\nwings: 2\n", "Unknown options in {path}: wings"),
    ("missing.json", None, "Cannot read {path}: No such file or directory"),
])
def test_a_bad_config_file_is_one_line(name, text, message, tmp_path):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    done = kgan("train", "--config", path, "--runs-dir", tmp_path / "runs")
    assert done.exit_code == 1 and done.stderr.startswith(f"Error: {message.format(path=path)}")
    assert done.stderr.count("\n") == 1 and not (tmp_path / "runs").exists()


def test_train_takes_a_config_file_and_the_command_line_overrides_it(toy_npz, tmp_path):
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"dataset: {toy_npz}\nepochs: 3\nbatch-size: 50\njit: false\n"
                        "tensorboard: false\ncurves: false\n")
    done = kgan("train", "--config", settings, "--epochs", 1, "--quiet",
                "--runs-dir", tmp_path / "runs")
    assert done.exit_code == 0, done.output
    saved = json.loads((Path(done.stdout.strip()) / "config.json").read_text())
    assert (saved["epochs"], saved["batch_size"], saved["dataset"]) == (1, 50, str(toy_npz))
    again = kgan("train", "--config", settings, "--resume", done.stdout.strip())
    assert again.exit_code == 1 and again.stderr.startswith(
        "Error: --config starts a new run; a resumed run keeps its own config.json")
