"""`GAN`: a `keras.Model` that trains a generator against a discriminator."""

from __future__ import annotations

import keras
from keras import ops

from kgan import losses
from kgan.trainers import GANTrainer

SEED_STATE_KEY = "seed_generator_state"


@keras.saving.register_keras_serializable(package="kgan")
class GAN(GANTrainer, keras.Model):
    """A generator and a discriminator trained adversarially with `fit()`.

    The backend-specific `train_step` comes from `kgan.trainers`; this class holds the models,
    the two optimizers, the loss, the metrics and the noise `SeedGenerator`, and saves all of
    them (the seed state included) so that a resumed run continues exactly.

    Args:
        generator: model mapping `z` of shape `(latent_dim,)` to images.
        discriminator: model mapping images to one logit each.
        latent_dim: length of `z`.
        seed: seed of the training noise.

    Example:
        >>> gan = GAN(models.generator(cfg), models.discriminator(cfg), latent_dim=100)
        >>> gan.compile(keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5))
        >>> gan.fit(dataset, epochs=10)
    """

    def __init__(self, generator, discriminator, latent_dim, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")  # mean D logit on real images
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")  # mean D logit on fakes
        self.built = True  # both sub-models are Functional and already built

    def compile(self, d_optimizer, g_optimizer, loss="bce", d_steps=1, gp_weight=10.0, **kwargs):
        """Sets the two optimizers and the adversarial loss.

        Args:
            d_optimizer: optimizer of the discriminator.
            g_optimizer: optimizer of the generator.
            loss: name of a loss in `kgan.losses` (`bce`, `minimax`, `lsgan`, `hinge`, `wgan-gp`).
            d_steps: discriminator updates per generator update.
            gp_weight: gradient penalty weight (`wgan-gp` only).
            **kwargs: passed to `keras.Model.compile` (`jit_compile`, `steps_per_execution`).
        """
        super().compile(optimizer=None, **kwargs)
        self.loss_fn = losses.get(loss)
        self.gan_loss = loss
        self.d_steps = int(d_steps)
        self.gp_weight = float(gp_weight)
        self.d_optimizer = keras.optimizers.get(d_optimizer)
        self.g_optimizer = keras.optimizers.get(g_optimizer)
        # Build the slots now: a checkpoint's optimizer state can only be loaded into built
        # optimizers (an unbuilt Adam would silently restart from zero on resume).
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        if hasattr(self, "threaded_optimizer"):  # JAX: fit() threads only `self.optimizer`
            self.optimizer = self.threaded_optimizer()

    @property
    def steps(self) -> int:
        """Generator updates trained so far (also under a distribution strategy)."""
        return int(ops.convert_to_numpy(self.g_optimizer.iterations))

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    def update_metrics(self, d_loss, g_loss, real_logits, fake_logits):
        """Updates the trackers and returns the logs of one step (called by the trainers)."""
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(ops.mean(real_logits))
        self.d_fake_tracker.update_state(ops.mean(fake_logits))
        return {m.name: m.result() for m in self.metrics}

    def sample_noise(self, n, seed=None):
        """`n` latent vectors from N(0, 1): from the model's SeedGenerator, or from `seed` (int)."""
        return keras.random.normal((n, self.latent_dim), seed=self.seed_generator if seed is None
                                   else seed)

    def interpolation_weights(self, n, ndim=4):
        """U(0, 1) for `n` samples, shaped to broadcast over a batch of rank `ndim`: the
        gradient penalty's mix of real and fake."""
        return keras.random.uniform((n,) + (1,) * (ndim - 1), seed=self.seed_generator)

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def generate(self, n, seed):
        """Returns `n` images in [-1, 1] for the integer `seed` (same seed, same images)."""
        return self.generator(self.sample_noise(n, seed=seed), training=False)

    # Serialization: sub-models in get_config, both optimizers in the compile config, the
    # noise state beside the (empty) variables of the GAN itself.

    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def get_compile_config(self):
        return {
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
            "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
            "loss": self.gan_loss,
            "d_steps": self.d_steps,
            "gp_weight": self.gp_weight,
            "jit_compile": self.jit_compile,
            "steps_per_execution": self.steps_per_execution,
        }

    def compile_from_config(self, config):
        config = dict(config)
        for key in ("d_optimizer", "g_optimizer"):
            config[key] = keras.optimizers.deserialize(config[key])
        self.compile(**config)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[SEED_STATE_KEY] = ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        # The GAN owns no layer variables itself (its sub-models do), only the noise state.
        if SEED_STATE_KEY in store:
            self.seed_generator.state.assign(store[SEED_STATE_KEY])
