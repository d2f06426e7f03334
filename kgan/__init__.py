"""kgan: train GANs with Keras 3 and ship their generators to TensorFlow Serving.

Heavy modules (Keras, TensorFlow) load on first use, so `import kgan` and the CLI stay fast.

Example:
    >>> import kgan
    >>> run_dir = kgan.train(kgan.TrainConfig(dataset="fashion_mnist", epochs=5)).run_dir
"""

from kgan.config import TrainConfig
from kgan.errors import KganError

__version__ = "0.1.0"
__all__ = ["GAN", "KganError", "TrainConfig", "train"]


def __getattr__(name):
    if name == "GAN":
        # Loads Keras: only when asked for, after the backend is set.
        from kgan.families.noise.gan import GAN

        return GAN
    if name == "train":
        from kgan.training import train  # loads Keras: only when asked for

        return train
    raise AttributeError(f"module 'kgan' has no attribute {name!r}")
