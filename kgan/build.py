"""`build_gan`: the compiled model that a config describes, from its family (`kgan.families`)."""

from __future__ import annotations

import contextlib

import keras

from kgan import distribute, families, policy
from kgan.adversarial import Adversarial
from kgan.config import TrainConfig


def build_gan(config: TrainConfig, distributed: bool = False,
              steps_per_epoch: int = 1) -> Adversarial:
    """Builds and compiles the model that `config` describes (seeded, so weights are
    reproducible): a `GAN`, a `Pix2Pix` or a `CycleGAN`.

    With `distributed`, on the devices of `config.strategy` (for a family that `distributes`):
    models and both optimizers are made inside its scope. Otherwise on one device (sampling,
    evaluation and export). `steps_per_epoch` places a learning-rate schedule (cyclegan's).
    """
    family = families.of(config.arch)
    distributed = distributed and family.distributes
    replicas = distribute.replicas(config) if distributed else 1  # before any TF op
    keras.utils.set_random_seed(config.seed)
    precision = policy.precision_policy(config)

    def adam(rate):
        optimizer = keras.optimizers.Adam(rate, config.beta1, config.beta2)
        # float16 gradients underflow: scale the losses up and the gradients back down.
        if precision == "mixed_float16":
            return keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    with distribute.scope(config) if distributed else contextlib.nullcontext():
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(precision)  # layers take the policy when they are made
        try:
            networks = family.networks(config)
        finally:
            keras.config.set_dtype_policy(previous)
        return family.model(config, networks, adam, steps_per_epoch,
                            jit_compile=policy.jit_compile(config, replicas),
                            steps_per_execution=policy.steps_per_execution(config, replicas))
