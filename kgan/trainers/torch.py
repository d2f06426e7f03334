"""PyTorch: the adversarial `train_step` with autograd (Keras' torch trainer runs the rest).

Keras' `SpectralNormalization` assigns its normalized kernel in `call()`, in place, which torch
cannot allow between a forward pass and its backward pass. So here the kernels are normalized
once before each update's forward passes (`_normalize_d`), and D then runs with
`training=False`, which uses them as they are (D has no other layer that `training` changes).
"""

from __future__ import annotations

import functools

import keras
import torch
from keras import ops

from kgan.trainers.numpy_data import make_dataset

__all__ = ["GANTrainer", "make_dataset"]


class GANTrainer:
    """Mixed into `kgan.GAN` on the PyTorch backend."""

    def train_step(self, data):
        real, labels, _ = keras.utils.unpack_x_y_sample_weight(data)  # labels: conditional
        real = ops.convert_to_tensor(real)
        labels = None if labels is None else ops.convert_to_tensor(labels)
        batch_size = ops.shape(real)[0]
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables

        for _ in range(self.d_steps):
            z, fake_labels = self.training_inputs(batch_size)
            with torch.no_grad():  # D's update needs no gradient through G
                fake = self.generator(self.g_inputs(z, fake_labels), training=True)
            real_in = self.d_inputs(real, labels, self.augment_params(batch_size))
            fake_in = self.d_inputs(fake, fake_labels, self.augment_params(batch_size))
            self._normalize_d()
            real_logits = self._discriminate(real_in)
            fake_logits = self._discriminate(fake_in)
            d_loss = self.loss_fn.d_loss(real_logits, fake_logits)
            if self.gan_loss == "wgan-gp":
                d_loss = d_loss + self.gp_weight * self._gradient_penalty(real_in, fake_in)
            if self.r1 and int(self.d_optimizer.iterations) % self.r1_every == 0:  # lazy R1
                d_loss = d_loss + 0.5 * self.r1 * self.r1_every * self.r1_penalty(real_in)
            self.zero_grad()
            d_loss.backward()
            with torch.no_grad():
                self.d_optimizer.apply([v.value.grad for v in d_vars], d_vars)

        self.zero_grad()
        z, fake_labels = self.training_inputs(batch_size)
        params = self.augment_params(batch_size)
        self._normalize_d()
        fake = self.generator(self.g_inputs(z, fake_labels), training=True)
        g_loss = self.loss_fn.g_loss(self._discriminate(self.d_inputs(fake, fake_labels, params)))
        g_loss.backward()
        with torch.no_grad():
            self.g_optimizer.apply([v.value.grad for v in g_vars], g_vars)
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
        return self.discriminator(d_inputs, training=not self._spectral_layers)

    def _squared_grad_norms(self, images, rest):
        """||grad_x D(x)||^2 per image, differentiable (for D's update)."""
        images = images.detach().requires_grad_(True)
        logits = self._discriminate([images, *rest] if rest else images)
        (grads,) = torch.autograd.grad(logits.sum(), images, create_graph=True)
        return torch.sum(grads.float() ** 2, dim=tuple(range(1, grads.ndim)))

    def r1_penalty(self, d_inputs):
        """Mescheder et al. 2018: E ||grad_x D(x)||^2 over the (real) images x of `d_inputs`."""
        return torch.mean(self._squared_grad_norms(*self.split_d_inputs(d_inputs)))

    def _gradient_penalty(self, real_in, fake_in):
        """Gulrajani et al. 2017: (||grad_x D(x)|| - 1)^2 on random interpolates of real/fake."""
        (real, rest), fake = self.split_d_inputs(real_in), self.split_d_inputs(fake_in)[0]
        alpha = self.interpolation_weights(real.shape[0], real.ndim)
        norms = torch.sqrt(self._squared_grad_norms(real + alpha * (fake - real), rest) + 1e-12)
        return torch.mean((norms - 1.0) ** 2)

