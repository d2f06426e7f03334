"""PyTorch: the adversarial `train_step` with autograd (Keras' torch trainer runs the rest)."""

from __future__ import annotations

import torch
from keras import ops

from kgan.trainers.numpy_data import make_dataset

__all__ = ["GANTrainer", "make_dataset"]


class GANTrainer:
    """Mixed into `kgan.GAN` on the PyTorch backend."""

    def train_step(self, data):
        real = ops.convert_to_tensor(data[0] if isinstance(data, (tuple, list)) else data)
        batch_size = ops.shape(real)[0]
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables

        for _ in range(self.d_steps):
            with torch.no_grad():  # D's update needs no gradient through G
                fake = self.generator(self.sample_noise(batch_size), training=True)
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            d_loss = self.loss_fn.d_loss(real_logits, fake_logits)
            if self.gan_loss == "wgan-gp":
                d_loss = d_loss + self.gp_weight * self._gradient_penalty(real, fake)
            self.zero_grad()
            d_loss.backward()
            with torch.no_grad():
                self.d_optimizer.apply([v.value.grad for v in d_vars], d_vars)

        self.zero_grad()
        fake = self.generator(self.sample_noise(batch_size), training=True)
        g_loss = self.loss_fn.g_loss(self.discriminator(fake, training=True))
        g_loss.backward()
        with torch.no_grad():
            self.g_optimizer.apply([v.value.grad for v in g_vars], g_vars)

        return self.update_metrics(d_loss.detach(), g_loss.detach(), real_logits.detach(),
                                   fake_logits.detach())

    def _gradient_penalty(self, real, fake):
        """Gulrajani et al. 2017: (||grad_x D(x)|| - 1)^2 on random interpolates of real/fake."""
        alpha = self.interpolation_weights(real.shape[0], real.ndim)
        mixed = (real + alpha * (fake - real)).detach().requires_grad_(True)
        logits = self.discriminator(mixed, training=True)
        (grads,) = torch.autograd.grad(logits.sum(), mixed, create_graph=True)
        norms = torch.sqrt(torch.sum(grads**2, dim=tuple(range(1, grads.ndim))) + 1e-12)
        return torch.mean((norms - 1.0) ** 2)
