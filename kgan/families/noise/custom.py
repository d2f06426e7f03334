"""`--arch custom`: a generator and a discriminator of your own, in kgan's managed runs.

`kgan.train(config, models=(G, D))` records both models' Keras configs in the run's
`config.json` (`TrainConfig.models`); every later step (resume, sample, eval, export) rebuilds
them from there with safe deserialization, and the checkpoint fills in their weights. Models made
of Keras layers (Functional or Sequential) rebuild anywhere; layers or models of your own classes
need `keras.saving.register_keras_serializable` and their module imported first (so resume
those from Python); a `Lambda` of Python code is refused, as `keras.saving` refuses it.

What the GAN needs of them:
- G takes `z` of shape `(latent_dim,)`, and for a conditional GAN a second input, an int32
  `label` of shape `()`; it returns images of the data's shape in [-1, 1] (a tanh).
- D takes those images (and the label, conditional) and returns one logit per image.
"""

from __future__ import annotations

import copy

import keras

from kgan.config import TrainConfig
from kgan.errors import KganError, first_line

ROLES = ("generator", "discriminator")


def describe(generator, discriminator) -> dict:
    """The settings that `generator` and `discriminator` fix: `arch`, `models`, `latent_dim`,
    `conditional` (a second generator input)."""
    for role, model in zip(ROLES, (generator, discriminator)):
        if not isinstance(model, keras.Model):
            raise KganError(f"The {role} must be a keras.Model. Received: "
                            f"{type(model).__name__}")
        if not model.built or not model.inputs:
            raise KganError(f"The {role} must be built with known inputs (keras.Input, or "
                            f"a Sequential that starts with one): {model.name} is not")
    inputs = generator.inputs
    if len(inputs) not in (1, 2) or len(inputs[0].shape) != 2 or inputs[0].shape[1] is None:
        raise KganError("The generator must take z of shape (latent_dim,), and a conditional one "
                        "an int label beside it. Received inputs: "
                        f"{', '.join(str(tuple(t.shape)) for t in inputs)}")
    if len(discriminator.inputs) != len(inputs):
        raise KganError(f"The discriminator takes {len(discriminator.inputs)} input(s) and the "
                        f"generator {len(inputs)}: a conditional GAN's both take the label")
    return {"arch": "custom", "latent_dim": int(inputs[0].shape[1]),
            "conditional": len(inputs) == 2,
            "models": {role: keras.saving.serialize_keras_object(model)
                       for role, model in zip(ROLES, (generator, discriminator))}}


def networks(config: TrainConfig) -> dict:
    """G and D rebuilt from `config.models` (safe deserialization), checked against the data."""
    built = {}
    for role in ROLES:
        try:
            # A deep copy: Keras empties the config it is given as it deserializes.
            built[role] = keras.saving.deserialize_keras_object(
                copy.deepcopy(config.models[role]), safe_mode=True)
        except Exception as e:
            raise KganError(f"Cannot rebuild the {role} from the run's config.json: "
                            f"{first_line(e)}. A model of your own classes needs them registered "
                            "(keras.saving.register_keras_serializable) and imported "
                            "first") from None
    generator, discriminator = built["generator"], built["discriminator"]
    shape = tuple(config.image_shape)
    made = tuple(generator.outputs[0].shape[1:])
    if made != shape:
        raise KganError(f"The generator makes images of shape {made}; the data's are {shape}")
    seen = tuple(discriminator.inputs[0].shape[1:])
    if seen != shape:
        raise KganError(f"The discriminator takes images of shape {seen}; the data's are {shape}")
    if tuple(discriminator.outputs[0].shape[1:]) not in ((), (1,)):
        raise KganError("The discriminator must return one logit per image. Received: output "
                        f"shape {tuple(discriminator.outputs[0].shape)}")
    return built
