"""Adversarial losses: pure functions of discriminator logits, looked up by name.

Each entry is `(d_loss(real_logits, fake_logits), g_loss(fake_logits))` written with
`keras.ops`, so every backend uses the same formulas, and the loss's own penalty (`wgan-gp`'s)
as a function of the squared input-gradient norms that the backend's trainer computes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from keras import ops

from kgan.config import LOSSES
from kgan.errors import KganError


class GANLoss(NamedTuple):
    d_loss: Callable  # (real_logits, fake_logits) -> scalar
    g_loss: Callable  # (fake_logits) -> scalar
    # (||grad_x D(x)||^2 per image, x interpolating real and fake) -> scalar, or None
    penalty: Callable | None = None
    bounded: bool = True  # D's loss has a floor (0 or so): a D that wins sits near it

    @property
    def interpolates(self) -> bool:
        """D's penalty is taken on random mixes of real and fake images."""
        return self.penalty is not None


def bce_d(real, fake):
    """d = (softplus(-real) + softplus(fake)) / 2, i.e. mean BCE of real->1 and fake->0."""
    return 0.5 * (ops.mean(ops.softplus(-real)) + ops.mean(ops.softplus(fake)))


def bce_g(fake):
    """g = softplus(-fake): the non-saturating loss -log D(G(z))."""
    return ops.mean(ops.softplus(-fake))


def minimax_g(fake):
    """g = -softplus(fake) = log(1 - D(G(z))): the original minimax objective."""
    return -ops.mean(ops.softplus(fake))


def lsgan_d(real, fake):
    """d = ((real - 1)^2 + fake^2) / 2 (least squares, Mao et al. 2017)."""
    return 0.5 * (ops.mean(ops.square(real - 1.0)) + ops.mean(ops.square(fake)))


def lsgan_g(fake):
    """g = (fake - 1)^2 / 2."""
    return 0.5 * ops.mean(ops.square(fake - 1.0))


def hinge_d(real, fake):
    """d = relu(1 - real) + relu(1 + fake)."""
    return ops.mean(ops.relu(1.0 - real)) + ops.mean(ops.relu(1.0 + fake))


def wasserstein_d(real, fake):
    """d = fake - real: the critic's negated Wasserstein estimate (plus the gradient penalty)."""
    return ops.mean(fake) - ops.mean(real)


def gradient_penalty(squared_norms):
    """(||grad D|| - 1)^2 on interpolates of real and fake (Gulrajani et al. 2017)."""
    return ops.mean(ops.square(ops.sqrt(squared_norms + 1e-12) - 1.0))


def wasserstein_g(fake):
    """g = -fake (used by both `hinge` and `wgan-gp`)."""
    return -ops.mean(fake)


_LOSSES = {
    "bce": GANLoss(bce_d, bce_g),
    "minimax": GANLoss(bce_d, minimax_g),
    "lsgan": GANLoss(lsgan_d, lsgan_g),
    "hinge": GANLoss(hinge_d, wasserstein_g),
    "wgan-gp": GANLoss(wasserstein_d, wasserstein_g, gradient_penalty, bounded=False),
}
assert tuple(_LOSSES) == LOSSES


def get(name: str) -> GANLoss:
    """Returns the `GANLoss` called `name`; unknown names list the valid ones."""
    try:
        return _LOSSES[name]
    except KeyError:
        raise KganError(
            f"Unknown loss {name!r}. Valid losses: {', '.join(LOSSES)}. Received: loss={name}"
        ) from None
