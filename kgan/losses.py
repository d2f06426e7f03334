"""Adversarial losses: pure functions of discriminator logits, looked up by name.

Each entry is a pair `(d_loss(real_logits, fake_logits), g_loss(fake_logits))` written with
`keras.ops`, so every backend uses the same formulas. `wgan-gp`'s gradient penalty needs
gradients of D and so lives in the trainers; here it is the plain Wasserstein critic loss.
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


def wasserstein_g(fake):
    """g = -fake (used by both `hinge` and `wgan-gp`)."""
    return -ops.mean(fake)


_LOSSES = {
    "bce": GANLoss(bce_d, bce_g),
    "minimax": GANLoss(bce_d, minimax_g),
    "lsgan": GANLoss(lsgan_d, lsgan_g),
    "hinge": GANLoss(hinge_d, wasserstein_g),
    "wgan-gp": GANLoss(wasserstein_d, wasserstein_g),
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
