"""Image-to-image translation: `Pix2Pix` (paired) and `CycleGAN` (unpaired) as `keras.Model`s.

Each writes its training step once, with `keras.ops`, over the backend's gradient plumbing
(`minimize` of `kgan.trainers.Trainer`). `kgan.adversarial.Adversarial` holds the two
optimizers (all generators, all discriminators), the `SeedGenerator` of their randomness
(jitter, pools; dropout draws its own) and saves everything with the model, so a resumed run
continues exactly.

Both update the generators first and then the discriminators on the same generated batch (as
the papers' reference code does), which takes one generator pass per step instead of two.
"""

from __future__ import annotations

import keras
from keras import ops

from kgan.adversarial import Adversarial

JITTER_SCALE = 286 / 256  # the papers resize 256 -> 286 and crop 256 back


@keras.saving.register_keras_serializable(package="kgan")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`rate` for the first `constant_steps`, then linearly down to 0 over `decay_steps`
    (CycleGAN's schedule: 100 epochs constant, 100 decaying)."""

    def __init__(self, rate, constant_steps, decay_steps):
        self.rate, self.constant_steps, self.decay_steps = rate, constant_steps, decay_steps

    def __call__(self, step):
        done = ops.maximum(ops.cast(step, "float32") - self.constant_steps, 0.0)
        return self.rate * ops.maximum(1.0 - done / max(self.decay_steps, 1), 0.0)

    def get_config(self):
        return {"rate": self.rate, "constant_steps": self.constant_steps,
                "decay_steps": self.decay_steps}


class Translator(Adversarial):
    """What `Pix2Pix` and `CycleGAN` share: jitter and logs.

    Subclasses set `generators` and `discriminators` (lists of models), `LOGS` (the names of
    their step's logs) and write `step(a, b)` and `translate(images, direction)`.
    """

    LOGS: tuple[str, ...] = ()

    def __init__(self, seed=None, jitter=False, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.jitter = bool(jitter)
        self.trackers = [keras.metrics.Mean(name=name) for name in self.LOGS]

    @property
    def metrics(self):
        return self.trackers

    def logs(self, **values):
        for tracker in self.trackers:
            tracker.update_state(values[tracker.name])
        return {tracker.name: tracker.result() for tracker in self.trackers}

    def jittered(self, *batches):
        """The papers' jitter: resize up by 286/256, crop back at a random place and mirror at
        random, the same for every batch given (a pair stays aligned); unchanged without
        `jitter`. Draws from the model's SeedGenerator."""
        if not self.jitter:
            return batches
        n, size = batches[0].shape[0], batches[0].shape[1]
        big = round(size * JITTER_SCALE)
        corner = keras.random.randint((2,), 0, big - size + 1, seed=self.seed_generator)
        mirror = keras.random.uniform((n, 1, 1, 1), seed=self.seed_generator) < 0.5
        out = []
        for images in batches:
            images = ops.image.resize(images, (big, big), interpolation="bilinear")
            images = ops.slice(images, ops.stack([0, corner[0], corner[1], 0]),
                               (n, size, size, images.shape[-1]))
            out.append(ops.where(mirror, ops.flip(images, axis=2), images))
        return tuple(out)

    def call(self, images, training=False):
        return self.translate(images)

    def get_config(self):
        return {**super().get_config(), "jitter": self.jitter}


@keras.saving.register_keras_serializable(package="kgan")
class Pix2Pix(Translator):
    """pix2pix (Isola et al. 2017): a U-Net `generator` from A to B, trained against a PatchGAN
    `discriminator` that sees (input, output) pairs, with `l1` * |G(a) - b| beside the GAN loss.

    Example:
        >>> model = Pix2Pix(nets.unet(cfg, 1, 1), nets.patch_discriminator(cfg, 2, "d"))
        >>> model.compile(keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5))
        >>> model.fit(tf.data.Dataset.from_tensor_slices((a, b)).batch(1), epochs=10)
    """

    MODELS = ("generator", "discriminator")
    LOGS = ("d_loss", "g_loss", "gan_loss", "l1_loss")

    def __init__(self, generator, discriminator, l1=100.0, **kwargs):
        super().__init__(**kwargs)
        self.generator, self.discriminator, self.l1 = generator, discriminator, float(l1)
        self.generators, self.discriminators = [generator], [discriminator]
        self.built = True

    def step(self, a, b):
        a, b = self.jittered(a, b)
        D = self.discriminator

        def g_loss_fn():
            fake = self.generator(a, training=True)
            gan = self.loss_fn.g_loss(D(ops.concatenate([a, fake], -1), training=True))
            l1 = ops.mean(ops.abs(fake - b))
            return gan + self.l1 * l1, (fake, gan, l1)

        g_loss, (fake, gan, l1) = self.minimize(self.g_optimizer, self.g_variables, g_loss_fn)
        d_loss, _ = self.minimize(self.d_optimizer, self.d_variables, lambda: (
            self.loss_fn.d_loss(D(ops.concatenate([a, b], -1), training=True),
                                D(ops.concatenate([a, fake], -1), training=True)), ()))
        return self.logs(d_loss=d_loss, g_loss=g_loss, gan_loss=gan, l1_loss=l1)

    def translate(self, images, direction="a2b"):
        """A -> B (`direction` must be a2b): float images in [-1, 1]."""
        return self.generator(images, training=False)

    def get_config(self):
        return {**super().get_config(), "l1": self.l1}


@keras.saving.register_keras_serializable(package="kgan")
class CycleGAN(Translator):
    """CycleGAN (Zhu et al. 2017): generators `g_ab` and `g_ba`, PatchGAN discriminators `d_a`
    and `d_b`, the GAN loss (LSGAN in the paper), `cycle` * |G_ba(G_ab(a)) - a| (and for b),
    `identity` * `cycle` * |G_ab(b) - b| (and for a), and a history pool of `pool_size`
    generated images per discriminator (Shrivastava et al. 2017), kept in the checkpoint.
    """

    MODELS = ("g_ab", "g_ba", "d_a", "d_b")
    LOGS = ("d_loss", "g_loss", "gan_loss", "cycle_loss", "identity_loss")

    def __init__(self, g_ab, g_ba, d_a, d_b, cycle=10.0, identity=0.5, pool_size=50, **kwargs):
        super().__init__(**kwargs)
        self.g_ab, self.g_ba, self.d_a, self.d_b = g_ab, g_ba, d_a, d_b
        self.generators, self.discriminators = [g_ab, g_ba], [d_a, d_b]
        self.cycle, self.identity, self.pool_size = float(cycle), float(identity), int(pool_size)
        # Pool of fakes of A (shown to d_a) and of B (to d_b), and how full each is.
        self.pools = [(self.add_weight(shape=(self.pool_size, *g.output.shape[1:]),
                                       initializer="zeros", trainable=False, name=f"pool_{side}"),
                       self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                       trainable=False, name=f"pool_{side}_count"))
                      for side, g in (("a", g_ba), ("b", g_ab))] if self.pool_size else []
        self.built = True

    def step(self, a, b):
        a, = self.jittered(a)
        b, = self.jittered(b)

        def g_loss_fn():
            fake_b, fake_a = self.g_ab(a, training=True), self.g_ba(b, training=True)
            gan = (self.loss_fn.g_loss(self.d_b(fake_b, training=True))
                   + self.loss_fn.g_loss(self.d_a(fake_a, training=True)))
            cycle = (ops.mean(ops.abs(self.g_ba(fake_b, training=True) - a))
                     + ops.mean(ops.abs(self.g_ab(fake_a, training=True) - b)))
            identity = ops.zeros(())
            if self.identity:
                identity = (ops.mean(ops.abs(self.g_ab(b, training=True) - b))
                            + ops.mean(ops.abs(self.g_ba(a, training=True) - a)))
            total = gan + self.cycle * cycle + self.identity * self.cycle * identity
            return total, (fake_a, fake_b, gan, cycle, identity)

        g_loss, (fake_a, fake_b, gan, cycle, identity) = self.minimize(
            self.g_optimizer, self.g_variables, g_loss_fn)
        if self.pools:
            fake_a, fake_b = (self.from_pool(*pool, fake)
                              for pool, fake in zip(self.pools, (fake_a, fake_b)))
        d_loss, _ = self.minimize(self.d_optimizer, self.d_variables, lambda: (
            self.loss_fn.d_loss(self.d_a(a, training=True), self.d_a(fake_a, training=True))
            + self.loss_fn.d_loss(self.d_b(b, training=True), self.d_b(fake_b, training=True)),
            ()))
        return self.logs(d_loss=d_loss, g_loss=g_loss, gan_loss=gan, cycle_loss=cycle,
                         identity_loss=identity)

    def from_pool(self, pool, count, fakes):
        """The history pool's answer to a batch of fakes, image by image: while the pool fills,
        the fake itself (stored); then with probability 1/2 a stored one (replaced by the
        fake), else the fake."""
        n = fakes.shape[0]
        swap_draw = keras.random.uniform((n,), seed=self.seed_generator)
        slots = keras.random.randint((n,), 0, self.pool_size, seed=self.seed_generator)
        stored, filled, answers = pool.value, count.value, []
        for i in range(n):
            full = filled >= self.pool_size
            swap = ops.logical_and(full, swap_draw[i] > 0.5)
            slot = ops.where(full, slots[i], filled)
            answers.append(ops.where(swap, ops.take(stored, slot, axis=0), fakes[i]))
            write = ops.cast(ops.logical_or(ops.logical_not(full), swap), stored.dtype)
            mask = ops.reshape(ops.one_hot(slot, self.pool_size, dtype=stored.dtype) * write,
                               (-1, 1, 1, 1))
            stored = stored * (1.0 - mask) + fakes[i][None] * mask
            filled = ops.minimum(filled + 1, self.pool_size)
        pool.assign(stored)
        count.assign(filled)
        return ops.stack(answers)

    def translate(self, images, direction="a2b"):
        """A -> B (`a2b`) or B -> A (`b2a`): float images in [-1, 1]."""
        return (self.g_ab if direction == "a2b" else self.g_ba)(images, training=False)

    def get_config(self):
        return {**super().get_config(), "cycle": self.cycle, "identity": self.identity,
                "pool_size": self.pool_size}
