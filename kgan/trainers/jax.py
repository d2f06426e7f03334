"""JAX: a stateless adversarial `train_step` that threads both optimizers' state itself.

Keras' JAX `fit()` passes `(trainable, non_trainable, optimizer, metrics)` values through a
jitted step, but only for `self.optimizer`. kgan sets `self.optimizer` to a view over both
optimizers, so both Adam states travel through the step, and runs the step inside a
`StatelessScope` over all of that state: variable reads and writes (optimizer updates,
BatchNorm statistics, the noise SeedGenerator, metrics) then act on the passed values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import keras
from keras import ops

from kgan.trainers.numpy_data import make_dataset

__all__ = ["GANTrainer", "make_dataset"]


class BothOptimizers:
    """What `fit()` threads as optimizer state: the discriminator's, then the generator's."""

    built = True

    def __init__(self, d_optimizer, g_optimizer):
        self.optimizers = (d_optimizer, g_optimizer)

    @property
    def variables(self):
        return [v for optimizer in self.optimizers for v in optimizer.variables]


class GANTrainer:
    """Mixed into `kgan.GAN` on the JAX backend."""

    def threaded_optimizer(self):
        """Set as `self.optimizer` by `GAN.compile`, so that fit() carries both states."""
        return BothOptimizers(self.d_optimizer, self.g_optimizer)

    def train_step(self, state, data):
        real = data[0] if isinstance(data, (tuple, list)) else data
        groups = (self.trainable_variables, self.non_trainable_variables,
                  self.optimizer.variables, self.metrics_variables)
        mapping = [pair for variables, values in zip(groups, state)
                   for pair in zip(variables, values)]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = self._adversarial_step(real)
            new_state = tuple([scope.get_current_value(v) for v in variables]
                              for variables in groups)
        return logs, new_state

    def _adversarial_step(self, real):
        batch_size = ops.shape(real)[0]
        D, G = self.discriminator, self.generator

        for _ in range(self.d_steps):
            fake = jax.lax.stop_gradient(G(self.sample_noise(batch_size), training=True))
            alpha = (self.interpolation_weights(real.shape[0], real.ndim)
                     if self.gan_loss == "wgan-gp" else None)
            d_fixed = [v.value for v in D.non_trainable_variables]

            def d_loss_fn(d_values, d_fixed=d_fixed, fake=fake, alpha=alpha):
                def logits(x):
                    return D.stateless_call(d_values, d_fixed, x, training=True)[0]

                real_logits, fake_logits = logits(real), logits(fake)
                loss = self.loss_fn.d_loss(real_logits, fake_logits)
                if alpha is not None:
                    mixed = real + alpha * (fake - real)
                    grads = jax.grad(lambda x: jnp.sum(logits(x)))(mixed)
                    norms = jnp.sqrt(jnp.sum(grads**2, axis=tuple(range(1, grads.ndim))) + 1e-12)
                    loss = loss + self.gp_weight * jnp.mean((norms - 1.0) ** 2)
                return loss, (real_logits, fake_logits)

            d_values = [v.value for v in D.trainable_variables]
            (d_loss, (real_logits, fake_logits)), grads = jax.value_and_grad(
                d_loss_fn, has_aux=True)(d_values)
            self.d_optimizer.apply(grads, D.trainable_variables)

        z = self.sample_noise(batch_size)
        d_values = [v.value for v in D.trainable_variables]
        d_fixed = [v.value for v in D.non_trainable_variables]
        g_fixed = [v.value for v in G.non_trainable_variables]

        def g_loss_fn(g_values):
            fake, g_updates = G.stateless_call(g_values, g_fixed, z, training=True)
            logits, _ = D.stateless_call(d_values, d_fixed, fake, training=True)
            return self.loss_fn.g_loss(logits), g_updates

        (g_loss, g_updates), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
            [v.value for v in G.trainable_variables])
        for variable, value in zip(G.non_trainable_variables, g_updates):
            variable.assign(value)  # BatchNorm statistics of the G step
        self.g_optimizer.apply(grads, G.trainable_variables)

        return self.update_metrics(d_loss, g_loss, real_logits, fake_logits)
