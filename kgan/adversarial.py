"""`Adversarial`: the base of every adversarial `keras.Model` in kgan (`GAN`, `Pix2Pix`,
`CycleGAN`).

It holds what they share: the generators and discriminators, two optimizers (all generators',
all discriminators') built at compile time, the loss, a `SeedGenerator` for the model's own
randomness, the step count, the compile config and the saving of all of it, so a resumed run
continues exactly. A subclass writes its training step once, `step(x, y)`, over the backend's
primitives (`kgan.trainers.Trainer`).
"""

from __future__ import annotations

import contextlib

import keras
from keras import ops

from kgan import losses
from kgan.trainers import Trainer

SEED_STATE_KEY = "seed_generator_state"


class Adversarial(Trainer, keras.Model):
    """Generators trained against discriminators with two optimizers.

    Subclasses set `MODELS` (the constructor's sub-model arguments), `generators` and
    `discriminators` (lists of models), and write `step(x, y) -> logs`.

    Args:
        seed: seed of the model's `SeedGenerator` (noise, jitter, pools).
    """

    MODELS: tuple[str, ...] = ()
    epoch_steps = None  # steps per epoch, set by the training loop (fused TensorFlow steps)

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise")

    def compile(self, d_optimizer, g_optimizer, loss="bce", **kwargs):
        """Sets the optimizers of all discriminators and all generators, and the GAN loss.

        Args:
            d_optimizer: optimizer of the discriminators.
            g_optimizer: optimizer of the generators.
            loss: name of a loss in `kgan.losses`.
            **kwargs: passed to `keras.Model.compile` (`jit_compile`, `steps_per_execution`).
        """
        super().compile(optimizer=None, **kwargs)
        self.gan_loss, self.loss_fn = loss, losses.get(loss)
        self.d_optimizer = keras.optimizers.get(d_optimizer)
        self.g_optimizer = keras.optimizers.get(g_optimizer)
        # Built now: a checkpoint's optimizer state loads only into built optimizers (an
        # unbuilt Adam would silently restart from zero on resume).
        self.d_optimizer.build(self.d_variables)
        self.g_optimizer.build(self.g_variables)
        if hasattr(self, "threaded_optimizer"):  # JAX: fit() threads only `self.optimizer`
            self.optimizer = self.threaded_optimizer()

    @property
    def d_variables(self):
        return [v for model in self.discriminators for v in model.trainable_variables]

    @property
    def g_variables(self):
        return [v for model in self.generators for v in model.trainable_variables]

    @property
    def steps(self) -> int:
        """Generator updates trained so far (also under a distribution strategy)."""
        return int(ops.convert_to_numpy(self.g_optimizer.iterations))

    @contextlib.contextmanager
    def averaged_generator(self):
        """Within the block, the generators hold what sampling should use (a subclass with a
        moving average of the weights puts it in place here)."""
        yield

    def use_ema(self) -> list:
        """Loads a moving average of the weights into the generators, where the model keeps
        one, and returns the raw weights it replaced (none here)."""
        return []

    # Serialization: sub-models in get_config, both optimizers in the compile config, the
    # SeedGenerator's state (and each Dropout layer's) beside the model's own variables.

    def compile_options(self) -> dict:
        """`compile`'s arguments beyond the optimizers and the loss, for the compile config."""
        return {}

    def get_compile_config(self):
        return {
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
            "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
            "loss": self.gan_loss,
            **self.compile_options(),
            "jit_compile": self.jit_compile,
            "steps_per_execution": self.steps_per_execution,
        }

    def compile_from_config(self, config):
        config = dict(config)
        for key in ("d_optimizer", "g_optimizer"):
            config[key] = keras.optimizers.deserialize(config[key])
        self.compile(**config)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed,
                **{key: keras.saving.serialize_keras_object(getattr(self, key))
                   for key in self.MODELS}}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in cls.MODELS:
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    @property
    def dropout_seeds(self) -> list:
        """The state of each Dropout layer's own SeedGenerator (pix2pix's U-Net): a Keras
        checkpoint leaves it out, and a resumed run would draw its first masks again."""
        return [layer.seed_generator.state for model in self.generators
                for layer in model.layers if isinstance(layer, keras.layers.Dropout)]

    def save_own_variables(self, store):
        super().save_own_variables(store)  # e.g. a moving average, ADA's p, history pools
        store[SEED_STATE_KEY] = ops.convert_to_numpy(self.seed_generator.state)
        for i, state in enumerate(self.dropout_seeds):
            store[f"dropout_seed_{i}"] = ops.convert_to_numpy(state)

    def load_own_variables(self, store):
        super().load_own_variables({key: store[key] for key in store.keys() if key.isdigit()})
        if SEED_STATE_KEY in store:
            self.seed_generator.state.assign(store[SEED_STATE_KEY])
        for i, state in enumerate(self.dropout_seeds):
            if f"dropout_seed_{i}" in store:
                state.assign(store[f"dropout_seed_{i}"])
