import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def toy_npz(tmp_path):
    """200 random 8x8 gray uint8 images with labels 0..3, as an .npz the loader reads."""
    rng = np.random.default_rng(0)
    path = tmp_path / "toy.npz"
    np.savez(path, x_train=rng.integers(0, 256, (200, 8, 8), dtype=np.uint8),
             y_train=rng.integers(0, 4, 200))
    return path
