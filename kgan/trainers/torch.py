"""PyTorch: gradient plumbing (autograd) for the adversarial step; Keras' torch trainer runs the
rest.

Keras' `SpectralNormalization` assigns its normalized kernel in `call()`, in place, which torch
cannot allow between a forward pass and its backward pass. So here the kernels are normalized
once before each update's forward passes (`Trainer._normalize`), and D then runs with
`training=False`, which uses them as they are (D has no other layer that `training` changes).
"""

from __future__ import annotations

import contextlib
import functools
import math

import keras
import torch
from keras import ops
from keras.src.backend.torch.optimizers import torch_adam  # the class Keras' torch Adam is

from kgan.trainers.numpy_data import make_dataset

__all__ = ["Trainer", "make_dataset"]


class Trainer:
    """Mixed into `kgan.adversarial.Adversarial` on PyTorch: `train_step` runs the model's
    backend-neutral `step(x, y)`, which updates through `minimize` and `minimize_through`."""

    replicas = 1

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.step(ops.convert_to_tensor(x), None if y is None else ops.convert_to_tensor(y))

    def run(self, model, inputs):
        """`model(inputs)` in training mode, each layer by its own `call()` (`_call`); a model
        with spectrally normalized layers uses the kernels `_normalize` set (see the module)."""
        return _call(model, inputs, training=not self._spectral_layers(model))

    def replica_draw(self, draw, n):
        return draw(n)

    def forward(self, fn, variables, keep=True):
        """`fn()`, its graph kept for `minimize_through` only with `keep`."""
        with contextlib.nullcontext() if keep else torch.no_grad():
            return fn(), None

    def minimize(self, optimizer, variables, loss_fn):
        """Runs `loss_fn() -> (loss, aux)`, backpropagates `loss` and applies its gradient to
        `variables` with `optimizer`; returns `(loss, aux)`, detached."""
        self.zero_grad()  # also the gradients an earlier update left on other models
        for variable in variables:  # and on variables outside the model (a projection's)
            variable.value.grad = None
        self._normalize()
        loss, aux = loss_fn()
        loss.backward()
        _update(optimizer, variables)
        return loss.detach(), keras.tree.map_structure(lambda t: t.detach(), aux)

    def minimize_through(self, kept, outputs, optimizer, variables, loss_fn):
        """`minimize` of `loss_fn(outputs)`, where `outputs` came from `forward` with their
        graph: the gradient reaches `variables` through it, not run again."""
        return self.minimize(optimizer, variables, lambda: loss_fn(outputs))

    def squared_grad_norms(self, model, images, rest):
        """||grad_x model([x, *rest])||^2 per image, differentiable."""
        images = ops.convert_to_tensor(images).detach().requires_grad_(True)
        logits = self.run(model, [images, *rest] if rest else images)
        (grads,) = torch.autograd.grad(logits.sum(), images, create_graph=True)
        return torch.sum(grads.float() ** 2, dim=tuple(range(1, grads.ndim)))

    def _spectral_layers(self, model=None) -> list:
        """The spectrally normalized layers of `model` (default: of every model trained)."""
        cache = self.__dict__.setdefault("_spectral_cache", {})
        model = model or self
        if id(model) not in cache:
            cache[id(model)] = [layer for layer in model._flatten_layers()
                                if isinstance(layer, keras.layers.SpectralNormalization)]
        return cache[id(model)]

    def _normalize(self):
        """One power iteration and kernel normalization of each spectrally normalized layer,
        before an update's forward passes."""
        with torch.no_grad():
            for layer in self._spectral_layers():
                vector_u, kernel = layer.normalized_weights()
                layer.vector_u.assign(vector_u)
                layer.kernel.assign(kernel)


def _call(model, inputs, training):
    """`model(inputs, training=training)`, each layer run by its own `call()`.

    Keras' `Layer.__call__` (input checks, casts, masks, name scopes) took 283 µs a Dense layer
    of the MLP against 114 µs for its `call()` on the 2-core CI machine: the MLP generator's
    forward pass took 6.0 ms through it and 3.3 ms without. The casts are all it would do
    here, so a model whose layers do not all compute in float32 (mixed precision) goes
    through `__call__` as usual.
    """
    if not _float32(model):
        return model(inputs, training=training)

    def direct(layer):
        def call(*args, **kwargs):
            if layer._call_has_training_arg:
                kwargs["training"] = training
            return layer.call(*args, **kwargs)
        return call

    outputs = model._run_through_graph(model._standardize_inputs(inputs), operation_fn=direct)
    return outputs[0] if isinstance(outputs, list | tuple) and len(outputs) == 1 else outputs


def _float32(model) -> bool:
    return isinstance(model, keras.Model) and hasattr(model, "_run_through_graph") and all(
        layer.compute_dtype == "float32" for layer in model.layers)


def _update(optimizer, variables):
    """Applies the gradients that backward() left on `variables` with `optimizer`.

    Keras' torch Adam takes 8 `torch._foreach_*` passes over the weights per update (11.9 ms
    for the MLP generator's 1.5M weights on the 2-core CI machine); on CPU tensors its update
    runs here as PyTorch's one fused Adam kernel instead (0.5 ms), on Keras' own slots and with
    its epsilon (`_fused_adam_update`). Keras' `apply` still does all around the update:
    clipping, weight decay, the learning-rate schedule, EMA and the step count.
    """
    if type(optimizer) is torch_adam.Adam and "_backend_update_step" not in vars(optimizer):
        optimizer._backend_update_step = functools.partial(_fused_adam_update, optimizer)
    with torch.no_grad():
        optimizer.apply([v.value.grad for v in variables], variables)


def _fused_adam_update(optimizer, grads, variables, learning_rate):
    params = [v.value for v in variables]
    if optimizer.amsgrad or any(p.device.type != "cpu" for p in params):
        return torch_adam.Adam._backend_update_step(optimizer, grads, variables, learning_rate)
    slot = optimizer._get_variable_index
    step = float(optimizer.iterations.value) + 1
    # Keras adds epsilon to sqrt(v); PyTorch to sqrt(v / (1 - beta_2^t)): scaled to agree.
    eps = optimizer.epsilon / math.sqrt(1 - optimizer.beta_2**step)
    torch._fused_adam_(
        params, list(grads), [optimizer._momentums[slot(v)].value for v in variables],
        [optimizer._velocities[slot(v)].value for v in variables], [],
        [torch.tensor(step)] * len(params), lr=float(learning_rate), beta1=optimizer.beta_1,
        beta2=optimizer.beta_2, weight_decay=0.0, eps=eps, amsgrad=False, maximize=False)
