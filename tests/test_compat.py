"""Runs and exports made by an earlier kgan still load, draw, export and resume exactly.

tests/data/main-566653c was made by kgan at commit 566653c (before the families moved into
packages of their own) with its own `kgan.training.train` and `kgan.export.export`: a
conditional DCGAN of tests/data/folder8 with the moving average, lazy R1 and ADA, and a
pix2pix run of the Fashion-MNIST inpainting demo, each exported. expected.npz holds what that
kgan drew from each, and every number each run held after one more epoch (`--resume`).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import full_state

from kgan import data, draw, export
from kgan.families.translation import sides

FIXTURE = Path(__file__).resolve().parent / "data" / "main-566653c"


@pytest.fixture(scope="module")
def expected():
    return np.load(FIXTURE / "expected.npz")


@pytest.fixture
def old(tmp_path, monkeypatch):
    """A copy of the fixture (a resume writes into its run), read from the repository root:
    the noise run's config.json names tests/data/folder8."""
    monkeypatch.chdir(FIXTURE.parents[2])
    shutil.copytree(FIXTURE, tmp_path / "old")
    # The noise run's data key fingerprints tests/data/folder8's file names, sizes and times,
    # and a clone gets new times: the key of the same files as checked out here replaces it.
    path = tmp_path / "old" / "runs" / "00000-noise" / "config.json"
    config = json.loads(path.read_text())
    assert config["data_key"] and config["data_count"] == 24
    path.write_text(json.dumps({**config, "data_key": data.key(config["dataset"])}))
    return tmp_path / "old"


def test_an_old_noise_run_and_its_export_draw_what_they_drew(old, expected):
    run, model = old / "runs" / "00000-noise", old / "saved_models" / "noise"
    np.testing.assert_array_equal(draw.draw(draw.from_run(run), 4, seed=5),
                                  expected["noise/sample"])
    np.testing.assert_array_equal(draw.draw(draw.from_export(model), 4, seed=5),
                                  expected["noise/export"])
    again = export.export(run, old / "again", name="noise", version=1, verify=False)
    np.testing.assert_array_equal(draw.draw(draw.from_export(again), 4, seed=5),
                                  expected["noise/export"])


def test_an_old_pix2pix_run_and_its_export_translate_as_they_did(old, expected):
    run, model = old / "runs" / "00001-pix2pix", old / "saved_models" / "pix2pix"
    a = np.asarray(sides.load_pairs("fashion_mnist:inpaint", 8, split="test", paired=True).a[:4])
    np.testing.assert_array_equal(a, expected["pix2pix/input"])
    np.testing.assert_array_equal(draw.translator(run).translate(a), expected["pix2pix/translate"])
    np.testing.assert_array_equal(draw.translator(model).translate(a), expected["pix2pix/export"])
    again = export.export(run, old / "again", name="pix2pix", version=1, verify=False)
    np.testing.assert_array_equal(draw.translator(again).translate(a), expected["pix2pix/export"])


@pytest.mark.parametrize("tag, run", [("noise", "00000-noise"), ("pix2pix", "00001-pix2pix")])
def test_an_old_run_resumes_to_the_numbers_it_resumed_to(old, expected, tag, run):
    # One thread, as the fixture was made: TensorFlow's CPU kernels may sum in another order
    # on more threads (a float32 ulp or two after an epoch).
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "OMP_NUM_THREADS": "1"}
    resumed = subprocess.run([sys.executable, "-m", "kgan", "train", "--resume",
                              old / "runs" / run, "--epochs", "2", "--quiet"], env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    state = full_state(old / "runs" / run)
    assert len(state) == len([k for k in expected.files if k.startswith(f"{tag}/resumed")]) > 20
    for i, value in enumerate(state):
        np.testing.assert_array_equal(value, expected[f"{tag}/resumed{i}"], err_msg=f"{tag} {i}")
