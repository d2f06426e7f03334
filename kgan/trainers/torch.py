"""PyTorch: the adversarial `train_step` with autograd (Keras' torch trainer runs the rest).

Keras' `SpectralNormalization` assigns its normalized kernel in `call()`, in place, which torch
cannot allow between a forward pass and its backward pass. So here the kernels are normalized
once before each update's forward passes (`_normalize_d`), and D then runs with
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

__all__ = ["GANTrainer", "TranslationTrainer", "make_dataset"]


class GANTrainer:
    """Mixed into `kgan.GAN` on the PyTorch backend."""

    def train_step(self, data):
        real, labels, _ = keras.utils.unpack_x_y_sample_weight(data)  # labels: conditional
        real = ops.convert_to_tensor(real)
        labels = None if labels is None else ops.convert_to_tensor(labels)
        batch_size = ops.shape(real)[0]
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables

        for step in range(self.d_steps):
            z, fake_labels = self.training_inputs(batch_size)
            # G's graph is kept for G's update, from the last D step's fakes (see `GAN`).
            with contextlib.nullcontext() if step == self.d_steps - 1 else torch.no_grad():
                fake = _call(self.generator, self.g_inputs(z, fake_labels), training=True)
            real_in = self.d_inputs(real, labels, self.augment_params(batch_size))
            fake_in = self.d_inputs(fake.detach(), fake_labels, self.augment_params(batch_size))
            self._normalize_d()
            real_logits = self._discriminate(real_in)
            fake_logits = self._discriminate(fake_in)
            alpha = self.interpolation_weights(batch_size, real.ndim)
            d_loss = self.d_loss(real_in, fake_in, real_logits, fake_logits, alpha,
                                 self.squared_grad_norms)
            self.zero_grad()
            d_loss.backward()
            _update(self.d_optimizer, d_vars)

        self.zero_grad()
        params = self.augment_params(batch_size)
        self._normalize_d()
        g_loss = self.loss_fn.g_loss(self._discriminate(self.d_inputs(fake, fake_labels, params)))
        g_loss.backward()
        _update(self.g_optimizer, g_vars)
        with torch.no_grad():
            self.update_ema()

        return self.update_metrics(d_loss.detach(), g_loss.detach(), real_logits.detach(),
                                   fake_logits.detach())

    @functools.cached_property
    def _spectral_layers(self):
        return [layer for layer in self.discriminator._flatten_layers()
                if isinstance(layer, keras.layers.SpectralNormalization)]

    def _normalize_d(self):
        """One power iteration and kernel normalization of each spectrally normalized layer."""
        with torch.no_grad():
            for layer in self._spectral_layers:
                vector_u, kernel = layer.normalized_weights()
                layer.vector_u.assign(vector_u)
                layer.kernel.assign(kernel)

    def _discriminate(self, d_inputs):
        # Spectrally normalized layers must not re-normalize (assign) inside the graph.
        return _call(self.discriminator, d_inputs, training=not self._spectral_layers)

    def squared_grad_norms(self, images, rest):
        """||grad_x D(x)||^2 per image, differentiable (for D's update)."""
        images = ops.convert_to_tensor(images).detach().requires_grad_(True)
        logits = self._discriminate([images, *rest] if rest else images)
        (grads,) = torch.autograd.grad(logits.sum(), images, create_graph=True)
        return torch.sum(grads.float() ** 2, dim=tuple(range(1, grads.ndim)))


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


class TranslationTrainer:
    """Mixed into `kgan.translation`'s models: `train_step` runs their backend-neutral `step`,
    which updates through `minimize`."""

    def train_step(self, data):
        a, b, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.step(ops.convert_to_tensor(a), ops.convert_to_tensor(b))

    def minimize(self, optimizer, variables, loss_fn):
        """Runs `loss_fn() -> (loss, aux)`, backpropagates `loss` and applies its gradient to
        `variables` with `optimizer`; returns `(loss, aux)`, detached."""
        self.zero_grad()  # also the gradients an earlier update left on other models
        loss, aux = loss_fn()
        loss.backward()
        _update(optimizer, variables)
        return loss.detach(), keras.tree.map_structure(lambda t: t.detach(), aux)
