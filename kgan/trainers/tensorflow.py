"""TensorFlow: the adversarial `train_step` (GradientTape) and the `tf.data` input pipeline."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from keras import ops


class GANTrainer:
    """Mixed into `kgan.GAN` on the TensorFlow backend (the Keras trainer picks the rest)."""

    epoch_steps = None  # steps per epoch, set by kgan's training loop for fused steps

    def make_train_function(self, force=False):
        """Keras' fused multi-step function (`steps_per_execution`), cut at epoch ends.

        Keras runs `steps_per_execution` steps per call, so an epoch whose length is not a
        multiple of it would run into the next epoch's batches (and a resumed run would see
        other batches than an uninterrupted one). Here each call runs at most the steps left in
        the epoch, from one function traced per distinct count (two in a run, four if resumed).
        """
        fused = self.steps_per_execution
        if fused == 1 or not self.epoch_steps or not hasattr(self, "_make_function"):
            return super().make_train_function(force)
        if self.train_function is not None and not force:
            return self.train_function
        functions = {}

        def train_function(iterator):
            done = int(self.g_optimizer.iterations) % self.epoch_steps
            steps = min(fused, self.epoch_steps - done)
            # Keras reads `steps_per_execution` when it traces: at the first call of each one.
            self.steps_per_execution = steps
            try:
                if steps not in functions:
                    functions[steps] = self._make_function(self.train_step)
                return functions[steps](iterator)
            finally:
                self.steps_per_execution = fused

        self.train_function = train_function
        return train_function

    def train_step(self, data):
        real = data[0] if isinstance(data, (tuple, list)) else data
        batch_size = tf.shape(real)[0]
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables

        for _ in range(self.d_steps):
            # The fake batch is made outside the tape: D's update needs no gradient through G.
            fake = self.generator(self.sample_noise(batch_size), training=True)
            with tf.GradientTape() as tape:
                real_logits = self.discriminator(real, training=True)
                fake_logits = self.discriminator(fake, training=True)
                d_loss = self.loss_fn.d_loss(real_logits, fake_logits)
                if self.gan_loss == "wgan-gp":
                    d_loss += self.gp_weight * self._gradient_penalty(real, fake)
            d_grads = tape.gradient(d_loss, d_vars)
            self.d_optimizer.apply_gradients(zip(d_grads, d_vars, strict=True))

        with tf.GradientTape() as tape:
            fake = self.generator(self.sample_noise(batch_size), training=True)
            g_loss = self.loss_fn.g_loss(self.discriminator(fake, training=True))
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars, strict=True))

        return self.update_metrics(d_loss, g_loss, real_logits, fake_logits)

    def _gradient_penalty(self, real, fake):
        """Gulrajani et al. 2017: (||grad_x D(x)|| - 1)^2 on random interpolates of real/fake."""
        alpha = self.interpolation_weights(real)
        mixed = real + alpha * (fake - real)
        with tf.GradientTape() as tape:
            tape.watch(mixed)
            logits = self.discriminator(mixed, training=True)
        grads = tape.gradient(logits, mixed)
        norms = ops.sqrt(ops.sum(ops.square(grads), axis=tuple(range(1, len(real.shape)))) + 1e-12)
        return ops.mean(ops.square(norms - 1.0))


def make_dataset(
    x: np.ndarray,
    batch_size: int,
    seed: int,
    steps_per_epoch: int,
    first_epoch: int,
    last_epoch: int,
    skip_steps: int = 0,
) -> tf.data.Dataset:
    """Batches of `x` for epochs `first_epoch` .. `last_epoch - 1`, `steps_per_epoch` each.

    Each epoch's order is a stateless shuffle keyed by (seed, epoch), not a stateful
    `Dataset.shuffle`: a resumed run then sees exactly the batches an uninterrupted one would.
    `skip_steps` drops the batches of `first_epoch` that were trained before an interruption.
    """
    images = tf.constant(x)
    n = len(x)

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
        )
        return (
            tf.data.Dataset.from_tensor_slices(order)
            .batch(batch_size, drop_remainder=True)
            .take(steps_per_epoch)
        )

    return (
        tf.data.Dataset.range(first_epoch, last_epoch)
        .flat_map(epoch_batches)
        .skip(skip_steps)
        .map(lambda idx: tf.gather(images, idx), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
