"""`build_gan`: the compiled model that a config describes, from its family (`kgan.families`)."""

from __future__ import annotations

import contextlib

import keras

from kgan import distribute, families, policy
from kgan.adversarial import Adversarial
from kgan.config import TrainConfig
from kgan.errors import KganError


def build_gan(config: TrainConfig, distributed: bool = False, steps_per_epoch: int = 1,
              start: dict | None = None) -> Adversarial:
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
            for role, model in (start or {}).items():
                copy_weights(model, networks[role], role)
        finally:
            keras.config.set_dtype_policy(previous)
        return family.model(config, networks, adam, steps_per_epoch,
                            jit_compile=policy.jit_compile(config, replicas),
                            steps_per_execution=policy.steps_per_execution(config, replicas))


def copy_weights(source: keras.Model, target: keras.Model, role: str) -> None:
    """Gives `target` the weights of `source`, layer by layer in order (Keras numbers the names
    of unnamed layers per process, so names differ between two builds of one model).

    A class-indexed layer (an `Embedding`, or one with `num_classes`) whose class count
    differs keeps its fresh initialisation: fine-tuning on data with other classes starts
    their embeddings anew. Any other misfit raises `KganError` naming the layer.
    """
    mine = [layer for layer in target.layers if layer.weights]
    theirs = [layer for layer in source.layers if layer.weights]
    kinds = [type(layer).__name__ for layer in mine]
    if kinds != [type(layer).__name__ for layer in theirs]:
        raise KganError(f"The {role} has other layers than the one it would start from: "
                        f"{', '.join(kinds)}; the starting one has "
                        f"{', '.join(type(layer).__name__ for layer in theirs)}")
    for i, (layer, other) in enumerate(zip(mine, theirs)):
        new, old = layer.get_weights(), other.get_weights()
        if [w.shape for w in new] == [w.shape for w in old]:
            layer.set_weights(old)
        elif not (isinstance(layer, keras.layers.Embedding) or hasattr(layer, "num_classes")):
            raise KganError(f"The {role}'s layer {layer.name!r} ({kinds[i]}, layer {i + 1} of "
                            f"{len(mine)} with weights) does not fit: its weights have shapes "
                            f"{[tuple(w.shape) for w in new]}, the starting ones "
                            f"{[tuple(w.shape) for w in old]}")
