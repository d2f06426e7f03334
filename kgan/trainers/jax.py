"""JAX: a stateless adversarial `train_step` that threads both optimizers' state itself.

Keras' JAX `fit()` passes `(trainable, non_trainable, optimizer, metrics)` values through a
jitted step, but only for `self.optimizer`. kgan sets `self.optimizer` to a view over both
optimizers, so both Adam states travel through the step, and runs the step inside a
`StatelessScope` over all of that state: variable reads and writes (optimizer updates,
BatchNorm statistics, the noise SeedGenerator, metrics) then act on the passed values.

The discriminator is run with `_run`, which keeps every variable it assigns: Keras'
`SpectralNormalization` writes its normalized kernel and power-iteration vector in `call()`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import keras
from keras import ops

from kgan.runs import cache_dir
from kgan.trainers.numpy_data import make_dataset

__all__ = ["GANTrainer", "TranslationTrainer", "make_dataset"]

# XLA took 13.5 s to compile CycleGAN's step on the 2-core CI machine, and a resumed run compiles
# the same program again: JAX's persistent cache keeps compiled steps (unless the user chose a
# cache of their own).
if not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "jax"))
    # Also the many small programs (weight initializers: 64 of them took 20 s for a U-Net).
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)


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
        real, labels, _ = keras.utils.unpack_x_y_sample_weight(data)  # labels: conditional
        return _stateless(self, state, lambda: self._adversarial_step(real, labels))

    def _adversarial_step(self, real, labels):
        batch_size = ops.shape(real)[0]
        D, G = self.discriminator, self.generator

        for _ in range(self.d_steps):
            z, fake_labels = self.training_inputs(batch_size)
            # G's pass, with its pullback kept for G's update (the last D step's fakes:
            # see `GAN`); its BatchNorm statistics and noise seeds move once.
            fake, g_pullback, g_updates = jax.vjp(
                functools.partial(_call, G, [v.value for v in G.non_trainable_variables],
                                  self.g_inputs(z, fake_labels)),
                [v.value for v in G.trainable_variables], has_aux=True)
            for variable, value in zip(G.non_trainable_variables, g_updates):
                variable.assign(value)
            real_in = self.d_inputs(real, labels, self.augment_params(batch_size))
            fake_in = self.d_inputs(fake, fake_labels, self.augment_params(batch_size))
            alpha = self.interpolation_weights(batch_size, real.ndim)

            def d_loss_fn(values, fixed, real_in=real_in, fake_in=fake_in, alpha=alpha):
                real_logits, values, fixed = _run(D, values, fixed, real_in)
                fake_logits, values, fixed = _run(D, values, fixed, fake_in)
                loss = self.d_loss(real_in, fake_in, real_logits, fake_logits, alpha,
                                   lambda images, rest: _squared_grad_norms(
                                       D, values, fixed, images, rest))
                return loss, (real_logits, fake_logits, values, fixed)

            (d_loss, (real_logits, fake_logits, values, fixed)), grads = jax.value_and_grad(
                d_loss_fn, has_aux=True)(*_state(D))
            _assign(D, values, fixed)
            self.d_optimizer.apply(grads, D.trainable_variables)

        params = self.augment_params(batch_size)
        d_values, d_fixed = _state(D)

        def g_loss_fn(fake):  # the updated D on the fakes
            logits, values, fixed = _run(D, d_values, d_fixed,
                                         self.d_inputs(fake, fake_labels, params))
            return self.loss_fn.g_loss(logits), (values, fixed)

        (g_loss, (values, fixed)), fake_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
        _assign(D, values, fixed)
        self.g_optimizer.apply(g_pullback(fake_grads)[0], G.trainable_variables)
        self.update_ema()

        return self.update_metrics(d_loss, g_loss, real_logits, fake_logits)

    def squared_grad_norms(self, images, rest):
        """||grad_x D(x)||^2 per image at D's current weights."""
        return _squared_grad_norms(self.discriminator, *_state(self.discriminator), images, rest)


class TranslationTrainer:
    """Mixed into `kgan.translation`'s models: `train_step` runs their backend-neutral `step`
    over the state `fit()` passes (as `GANTrainer` does), updating through `minimize`."""

    def threaded_optimizer(self):
        return BothOptimizers(self.d_optimizer, self.g_optimizer)

    def train_step(self, state, data):
        a, b, _ = keras.utils.unpack_x_y_sample_weight(data)
        return _stateless(self, state, lambda: self.step(a, b))

    def minimize(self, optimizer, variables, loss_fn):
        """Differentiates `loss_fn() -> (loss, aux)` with respect to `variables` and applies
        the gradient with `optimizer`; returns `(loss, aux)`.

        `loss_fn` runs in a `StatelessScope` over every variable of the model (the ones being
        differentiated as traced arguments), so the variables it assigns (dropout and noise
        seeds) are kept.
        """
        chosen = {id(v) for v in variables}
        others = [v for v in self.variables if id(v) not in chosen]
        current = [v.value for v in others]

        def loss_with_state(values):
            mapping = list(zip(variables, values)) + list(zip(others, current))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                loss, aux = loss_fn()
            return loss, (aux, [scope.get_current_value(v) for v in others])

        (loss, (aux, updated)), grads = jax.value_and_grad(loss_with_state, has_aux=True)(
            [v.value for v in variables])
        for variable, value in zip(others, updated):
            variable.assign(value)
        optimizer.apply(grads, variables)
        return loss, jax.lax.stop_gradient(aux)


def _stateless(model, state, step):
    """Runs `step()` in a `StatelessScope` over the `(trainable, non_trainable, optimizer,
    metrics)` values `fit()` passes; returns its logs and the new values."""
    groups = (model.trainable_variables, model.non_trainable_variables,
              model.optimizer.variables, model.metrics_variables)
    mapping = [pair for variables, values in zip(groups, state)
               for pair in zip(variables, values)]
    with keras.StatelessScope(state_mapping=mapping) as scope:
        logs = step()
        new_state = tuple([scope.get_current_value(v) for v in variables]
                          for variables in groups)
    return logs, new_state


def _state(model):
    return ([v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables])


def _assign(model, values, fixed):
    for variable, value in zip(model.trainable_variables + model.non_trainable_variables,
                               values + fixed):
        variable.assign(value)


def _call(model, fixed, inputs, values):
    """`model(inputs, training=True)` on trainable `values` and non-trainable `fixed`; returns
    the outputs and the non-trainable values after the call."""
    return model.stateless_call(values, fixed, inputs, training=True)


def _run(model, values, fixed, inputs):
    """`model(inputs, training=True)` on the given variable values; returns the outputs and all
    the variables' values after the call (`stateless_call` would drop trainable ones)."""
    mapping = list(zip(model.trainable_variables, values)) + list(
        zip(model.non_trainable_variables, fixed))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        outputs = model(inputs, training=True)
    return (outputs, [scope.get_current_value(v) for v in model.trainable_variables],
            [scope.get_current_value(v) for v in model.non_trainable_variables])


def _squared_grad_norms(model, values, fixed, images, rest):
    """||grad_x D(x)||^2 per image (float32)."""
    def total(x):
        return jnp.sum(_run(model, values, fixed, [x, *rest] if rest else x)[0])

    grads = jax.grad(total)(images).astype(jnp.float32)
    return jnp.sum(grads**2, axis=tuple(range(1, grads.ndim)))

