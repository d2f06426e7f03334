"""`GAN`: a `keras.Model` that trains a generator from noise against a discriminator; its
training step is written once, over the backend's primitives (`kgan.trainers`)."""

from __future__ import annotations

import contextlib

import keras
from keras import ops

from kgan import augment
from kgan.adversarial import Adversarial
from kgan.families.noise import nets
from kgan.labels import labels_for


@keras.saving.register_keras_serializable(package="kgan")
class GAN(Adversarial):
    """A generator and a discriminator trained adversarially with `fit()`.

    One training step: `d_steps` discriminator updates, each on a real batch and a batch of
    fresh fakes, then one generator update through the updated discriminator on the last of
    those fakes. G's forward pass is made once and kept for its update (as in PyTorch's DCGAN
    example), not made again from new noise: a step runs G's forward pass once, not twice.

    `step` is backend-neutral: the backend's `kgan.trainers.Trainer` supplies the gradient
    plumbing it calls. `Adversarial` holds the two optimizers and the noise `SeedGenerator`
    and saves them with the model, so that a resumed run continues exactly.

    Args:
        generator: model mapping `z` of shape `(latent_dim,)` to images.
        discriminator: model mapping images to one logit each.
        latent_dim: length of `z`.
        seed: seed of the training noise.
        num_classes: classes of a conditional GAN (both models then also take a `label`).
        ema: decay of a moving average of the generator's weights kept beside them (None: none).
        ema_start: generator steps during which the average only copies the weights.
        ada_target: adaptive augmentation (Karras et al. 2020): `compile`'s `augment` policies
            are each applied with a probability p, raised while r_t = E[sign(D(real))] is
            above this target and lowered while below (None: always applied, DiffAugment).
        ada_kimg: thousands of images over which p can move from 0 to 1.

    Example:
        >>> gan = GAN(nets.generator(cfg), nets.discriminator(cfg), latent_dim=100)
        >>> gan.compile(keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5))
        >>> gan.fit(dataset, epochs=10)
    """

    MODELS = ("generator", "discriminator")

    def __init__(self, generator, discriminator, latent_dim, seed=None, num_classes=None,
                 ema=None, ema_start=0, ada_target=None, ada_kimg=100, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.generators, self.discriminators = [generator], [discriminator]
        self.latent_dim = int(latent_dim)
        self.num_classes = num_classes
        self.ema, self.ema_start = ema, int(ema_start)
        # The average of every generator weight, BatchNorm statistics included. Each replica
        # computes the same update from its identical weights, so the first one's is kept.
        self.ema_weights = [] if ema is None else [
            self.add_weight(shape=w.shape, dtype=w.dtype, trainable=False, name=f"ema_{i}",
                            initializer=lambda shape, dtype, w=w: ops.convert_to_numpy(w),
                            aggregation="only_first_replica")
            for i, w in enumerate(generator.weights)]
        self.ada_target, self.ada_kimg = ada_target, int(ada_kimg)
        # Each replica moves p by its own share of the batch; the mean of their moves is kept.
        self.ada_p = None if ada_target is None else self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="ada_p", aggregation="mean")
        # StyleGAN-style generators take a truncation psi per image (1 while training).
        self.truncates = nets.truncates(generator)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")  # mean D logit on real images
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")  # mean D logit on fakes
        # E[sign(D(real))] (Karras et al. 2020): near 1, D calls every real image real.
        self.r_t_tracker = keras.metrics.Mean(name="r_t")
        self.built = True  # both sub-models are Functional and already built

    def compile(self, d_optimizer, g_optimizer, loss="bce", d_steps=1, gp_weight=10.0, r1=0.0,
                r1_every=16, augment=(), **kwargs):
        """Sets the two optimizers and the adversarial loss.

        Args:
            d_optimizer: optimizer of the discriminator.
            g_optimizer: optimizer of the generator.
            loss: name of a loss in `kgan.losses` (`bce`, `minimax`, `lsgan`, `hinge`, `wgan-gp`).
            d_steps: discriminator updates per generator update.
            gp_weight: gradient penalty weight (`wgan-gp` only).
            r1: weight gamma of the R1 penalty gamma/2 E||grad_x D(x)||^2 on real images.
            r1_every: the R1 penalty is computed every this many D steps (weighted by it).
            augment: DiffAugment policies applied to D's inputs (`kgan.augment`).
            **kwargs: passed to `keras.Model.compile` (`jit_compile`, `steps_per_execution`).
        """
        self.d_steps = int(d_steps)
        self.gp_weight = float(gp_weight)
        self.r1, self.r1_every = float(r1), int(r1_every)
        self.augment = tuple(augment)
        super().compile(d_optimizer, g_optimizer, loss, **kwargs)

    def compile_options(self):
        return {"d_steps": self.d_steps, "gp_weight": self.gp_weight, "r1": self.r1,
                "r1_every": self.r1_every, "augment": list(self.augment)}

    def step(self, real, labels=None):
        """One training step on a batch of `real` images (and their `labels`, conditional)."""
        n = ops.shape(real)[0]
        D, G = self.discriminator, self.generator
        for i in range(self.d_steps):
            z, fake_labels = self.replica_draw(self.training_inputs, n)
            # G's pass, kept for G's update (the last D step's); D sees the fakes as constants.
            fake, kept = self.forward(lambda z=z, y=fake_labels: self.run(G, self.g_inputs(z, y)),
                                      self.g_variables, keep=i == self.d_steps - 1)
            real_in = self.d_inputs(real, labels, self.replica_draw(self.augment_params, n))
            fake_in = self.d_inputs(ops.stop_gradient(fake), fake_labels,
                                    self.replica_draw(self.augment_params, n))
            alpha = self.replica_draw(lambda n: self.interpolation_weights(n, len(real.shape)), n)

            def d_loss_fn(real_in=real_in, fake_in=fake_in, alpha=alpha):
                real_logits, fake_logits = self.run(D, real_in), self.run(D, fake_in)
                return (self.d_loss(real_in, fake_in, real_logits, fake_logits, alpha),
                        (real_logits, fake_logits))

            d_loss, (real_logits, fake_logits) = self.minimize(self.d_optimizer,
                                                               self.d_variables, d_loss_fn)
        params = self.replica_draw(self.augment_params, n)
        g_loss, _ = self.minimize_through(kept, fake, self.g_optimizer, self.g_variables,
                                          lambda fake: (self.loss_fn.g_loss(self.run(
                                              D, self.d_inputs(fake, fake_labels, params))), ()))
        self.update_ema()
        return self.update_metrics(d_loss, g_loss, real_logits, fake_logits)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker,
                self.r_t_tracker]

    def update_metrics(self, d_loss, g_loss, real_logits, fake_logits):
        """Updates the trackers (and ADA's p) and returns the logs of one step."""
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(ops.mean(real_logits))
        self.d_fake_tracker.update_state(ops.mean(fake_logits))
        r_t = ops.mean(ops.sign(ops.cast(real_logits, "float32")))
        self.r_t_tracker.update_state(r_t)
        logs = {m.name: m.result() for m in self.metrics}
        if self.ada_p is not None:
            # StyleGAN2-ADA adjusts every 4 steps from their r_t; here every step from its own.
            images = ops.cast(ops.shape(real_logits)[0] * self.replicas, "float32")
            step = ops.sign(r_t - self.ada_target) * images / (self.ada_kimg * 1000.0)
            self.ada_p.assign(ops.clip(self.ada_p + step, 0.0, 1.0))
            logs["ada_p"] = ops.convert_to_tensor(self.ada_p)
        return logs

    def sample_noise(self, n, seed=None):
        """`n` latent vectors from N(0, 1): from the model's SeedGenerator, or from `seed` (int)."""
        return keras.random.normal((n, self.latent_dim), seed=self.seed_generator if seed is None
                                   else seed)

    def training_inputs(self, n):
        """The generator's inputs for `n` fakes: `(z, labels)`, labels uniform over the classes
        (None for an unconditional GAN)."""
        z = self.sample_noise(n)
        if not self.num_classes:
            return z, None
        return z, keras.random.randint((n,), 0, self.num_classes, seed=self.seed_generator,
                                       dtype="int32")

    def interpolation_weights(self, n, ndim=4):
        """U(0, 1) for `n` samples, shaped to broadcast over a batch of rank `ndim`: the
        penalty's mix of real and fake (None for a loss without `interpolates`)."""
        if not self.loss_fn.interpolates:
            return None
        return keras.random.uniform((n,) + (1,) * (ndim - 1), seed=self.seed_generator)

    def augment_params(self, n):
        """The uniforms of `n` images' DiffAugment (see `kgan.augment`); None without it."""
        if not self.augment:
            return None
        return keras.random.uniform(
            (n, augment.num_params(self.augment, adaptive=self.ada_p is not None)),
            seed=self.seed_generator)

    def d_inputs(self, images, labels, params=None):
        """What the discriminator sees: `images` augmented with `params` (when augmenting;
        with ADA, each policy with probability p), and their labels for a conditional GAN."""
        if self.augment:
            images = augment.apply(images, self.augment, params, self.ada_p)
        return images if labels is None else [images, labels]

    @staticmethod
    def split_d_inputs(d_inputs):
        """`d_inputs` -> (images, the other inputs): a conditional D also takes labels."""
        return (d_inputs[0], d_inputs[1:]) if isinstance(d_inputs, list) else (d_inputs, [])

    def g_inputs(self, z, labels, truncation=1.0):
        """The generator's inputs: `z`, the labels of a conditional GAN and the truncation psi
        of a StyleGAN-style one (1: none)."""
        inputs = [z] if labels is None else [z, labels]
        if self.truncates:  # tensors all (a call may not mix them with NumPy arrays)
            inputs = [ops.convert_to_tensor(t) for t in inputs]
            inputs.append(ops.full((ops.shape(z)[0],), truncation, "float32"))
        return inputs[0] if len(inputs) == 1 else inputs

    def d_loss(self, real_in, fake_in, real_logits, fake_logits, alpha):
        """D's loss: the adversarial loss, its own penalty (`wgan-gp`'s) and lazy R1.

        The penalties need ||grad_x D(x)||^2 per image, which the backend's trainer computes
        (`squared_grad_norms`). `alpha` mixes real and fake for a penalty on interpolates
        (`interpolation_weights`).
        """
        loss = self.loss_fn.d_loss(real_logits, fake_logits)
        if self.loss_fn.penalty is not None:
            # A conditional D scores the mix of real and fake with the real images' labels.
            (real, rest), fake = self.split_d_inputs(real_in), self.split_d_inputs(fake_in)[0]
            norms = self.squared_grad_norms(self.discriminator, real + alpha * (fake - real),
                                            rest)
            loss = loss + self.gp_weight * self.loss_fn.penalty(norms)
        if self.r1:
            # Lazy (StyleGAN2): only every `r1_every`-th D step, weighted up by `r1_every`.
            loss = loss + ops.cond(
                self.d_optimizer.iterations % self.r1_every == 0,
                lambda: 0.5 * self.r1 * self.r1_every * self.r1_penalty(real_in),
                lambda: ops.zeros((), "float32"))
        return loss

    def r1_penalty(self, d_inputs):
        """Mescheder et al. 2018: E ||grad_x D(x)||^2 over the (real) images x of `d_inputs`."""
        return ops.mean(self.squared_grad_norms(self.discriminator,
                                                *self.split_d_inputs(d_inputs)))

    def update_ema(self):
        """After a generator update: average <- d * average + (1 - d) * weights, where d is
        `ema`, or 0 (a copy) during the first `ema_start` generator steps."""
        if not self.ema_weights:
            return
        decay = ops.cast(self.g_optimizer.iterations > self.ema_start, "float32") * self.ema
        for average, weight in zip(self.ema_weights, self.generator.weights, strict=True):
            average.assign(decay * average + (1.0 - decay) * ops.stop_gradient(weight))

    @contextlib.contextmanager
    def averaged_generator(self):
        """Within the block, `self.generator` holds the moving average of its weights (if
        `ema`); the raw weights are put back after it."""
        if not self.ema_weights:
            yield self.generator
            return
        raw = self.use_ema()
        try:
            yield self.generator
        finally:
            for weight, value in zip(self.generator.weights, raw):
                weight.assign(value)

    def use_ema(self) -> list:
        """Loads the moving average into the generator and returns the raw weights (NumPy)."""
        raw = [ops.convert_to_numpy(w) for w in self.generator.weights]
        for weight, average in zip(self.generator.weights, self.ema_weights):
            weight.assign(average)
        return raw

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def generate(self, n, seed, labels=None, truncation=1.0):
        """Returns `n` images in [-1, 1] for the integer `seed` (same seed, same images);
        conditional GANs draw `labels` (default: classes 0, 1, ... in turn); StyleGAN-style
        ones pull their styles `truncation` of the way from the average (1: none)."""
        return self.generator(self.g_inputs(self.sample_noise(n, seed=seed),
                                            self.labels_for(n, labels), truncation),
                              training=False)

    def labels_for(self, n, labels=None):
        """`n` int32 labels for a conditional GAN (None otherwise): `labels` (one, or one per
        image), by default the classes in turn (`kgan.labels.labels_for`)."""
        labels = labels_for(n, self.num_classes, labels)
        return None if labels is None else ops.convert_to_tensor(labels)

    # Serialization (`Adversarial`): the GAN's own variables are the moving average and ADA's p.

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "num_classes": self.num_classes,
            "ema": self.ema,
            "ema_start": self.ema_start,
            "ada_target": self.ada_target,
            "ada_kimg": self.ada_kimg,
        }
