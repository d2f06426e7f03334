import math

import numpy as np
import pytest

from kgan import losses
from kgan.errors import KganError

REAL = np.array([[2.0], [-1.0]], np.float32)
FAKE = np.array([[0.5], [-3.0]], np.float32)


def softplus(x):
    return math.log1p(math.exp(x))


def mean(values):
    return sum(values) / len(values)


EXPECTED = {  # hand-computed from the formulas, logits above
    "bce": (0.5 * (mean([softplus(-2), softplus(1)]) + mean([softplus(0.5), softplus(-3)])),
            mean([softplus(-0.5), softplus(3)])),
    "minimax": (0.5 * (mean([softplus(-2), softplus(1)]) + mean([softplus(0.5), softplus(-3)])),
                -mean([softplus(0.5), softplus(-3)])),
    "lsgan": (0.5 * (mean([1.0, 4.0]) + mean([0.25, 9.0])), 0.5 * mean([0.25, 16.0])),
    "hinge": (mean([0.0, 2.0]) + mean([1.5, 0.0]), -mean([0.5, -3.0])),
    "wgan-gp": (mean([0.5, -3.0]) - mean([2.0, -1.0]), -mean([0.5, -3.0])),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loss_values(name):
    loss = losses.get(name)
    d_expected, g_expected = EXPECTED[name]
    assert float(loss.d_loss(REAL, FAKE)) == pytest.approx(d_expected, rel=1e-5)
    assert float(loss.g_loss(FAKE)) == pytest.approx(g_expected, rel=1e-5)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(KganError) as e:
        losses.get("wasserstein")
    assert str(e.value) == ("Unknown loss 'wasserstein'. Valid losses: bce, minimax, lsgan, hinge, "
                            "wgan-gp. Received: loss=wasserstein")
