"""JAX: a stateless adversarial `train_step` that threads both optimizers' state itself.

Keras' JAX `fit()` passes `(trainable, non_trainable, optimizer, metrics)` values through a
jitted step, but only for `self.optimizer`. kgan sets `self.optimizer` to a view over both
optimizers, so both Adam states travel through the step, and runs the step inside a
`StatelessScope` over all of that state: variable reads and writes (optimizer updates,
BatchNorm statistics, the noise SeedGenerator, metrics) then act on the passed values.

Each differentiated function runs in a `StatelessScope` of its own over every variable of the
step, which keeps every variable it assigns: Keras' `SpectralNormalization` writes its
normalized kernel and power-iteration vector in `call()`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import keras

from kgan.runs import cache_dir
from kgan.trainers.numpy_data import make_dataset

__all__ = ["Trainer", "make_dataset"]

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


class Trainer:
    """Mixed into `kgan.adversarial.Adversarial` on JAX: `train_step` runs the model's
    backend-neutral `step(x, y)` over the state `fit()` passes, updating through `minimize`
    and `minimize_through`."""

    replicas = 1  # a step sees the whole batch (JAX shards it across devices itself)

    def threaded_optimizer(self):
        """Set as `self.optimizer` by `compile`, so that fit() carries both states."""
        return BothOptimizers(self.d_optimizer, self.g_optimizer)

    def train_step(self, state, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return _stateless(self, state, lambda: self.step(x, y))

    def run(self, model, inputs):
        """`model(inputs)` in training mode."""
        return model(inputs, training=True)

    def replica_draw(self, draw, n):
        return draw(n)

    def forward(self, fn, variables, keep=True):
        """`fn()` and its pullback with respect to `variables`, for `minimize_through`; the
        variables it assigns (BatchNorm statistics, noise seeds) move once."""
        outputs, pullback, updated = jax.vjp(
            lambda values: _with_state(self, variables, values, fn),
            [v.value for v in variables], has_aux=True)
        _assign_others(self, variables, updated)
        return outputs, pullback

    def minimize(self, optimizer, variables, loss_fn):
        """Differentiates `loss_fn() -> (loss, aux)` with respect to `variables` and applies
        the gradient with `optimizer`; returns `(loss, aux)`.

        `loss_fn` runs in a `StatelessScope` over every variable of the step (the ones being
        differentiated as traced arguments), so the variables it assigns (dropout and noise
        seeds, spectral norm's vectors) are kept.
        """
        (loss, (aux, updated)), grads = jax.value_and_grad(
            lambda values: _split(_with_state(self, variables, values, loss_fn)),
            has_aux=True)([v.value for v in variables])
        _assign_others(self, variables, updated)
        optimizer.apply(grads, variables)
        return loss, jax.lax.stop_gradient(aux)

    def minimize_through(self, kept, outputs, optimizer, variables, loss_fn):
        """`minimize` of `loss_fn(outputs)`, where `outputs` and their pullback `kept` came
        from `forward`: the gradient reaches `variables` through that pass, not run again."""
        (loss, (aux, updated)), output_grads = jax.value_and_grad(
            lambda out: _split(_with_state(self, [], [], lambda: loss_fn(out))),
            has_aux=True)(outputs)
        _assign_others(self, [], updated)
        optimizer.apply(kept(output_grads)[0], variables)
        return loss, jax.lax.stop_gradient(aux)

    def squared_grad_norms(self, model, images, rest):
        """||grad_x model([x, *rest])||^2 per image at the model's current weights."""
        return _squared_grad_norms(model, *_state(model), images, rest)


def _step_groups(model) -> tuple:
    """The variables `fit()` threads through a step, in its groups: trainable,
    non-trainable, optimizer (both, `BothOptimizers`) and metrics."""
    return (model.trainable_variables, model.non_trainable_variables,
            model.optimizer.variables, model.metrics_variables)


def _step_variables(model) -> list:
    """Every variable a step reads."""
    return [v for group in _step_groups(model) for v in group]


def _others(model, variables) -> list:
    """The step's variables other than `variables`."""
    chosen = {id(v) for v in variables}
    return [v for v in _step_variables(model) if id(v) not in chosen]


def _with_state(model, variables, values, fn):
    """`fn()` with `variables` at `values` (traced) and every other variable of the step at
    its current value; returns its result and the others' values after it."""
    others = _others(model, variables)
    mapping = list(zip(variables, values)) + [(v, v.value) for v in others]
    with keras.StatelessScope(state_mapping=mapping) as scope:
        result = fn()
    return result, [scope.get_current_value(v) for v in others]


def _split(result_and_state):
    """`((loss, aux), state)` -> `(loss, (aux, state))`, as `value_and_grad` takes it."""
    (loss, aux), state = result_and_state
    return loss, (aux, state)


def _assign_others(model, variables, values) -> None:
    for variable, value in zip(_others(model, variables), values):
        variable.assign(value)


def _stateless(model, state, step):
    """Runs `step()` in a `StatelessScope` over the `(trainable, non_trainable, optimizer,
    metrics)` values `fit()` passes; returns its logs and the new values."""
    groups = _step_groups(model)
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

