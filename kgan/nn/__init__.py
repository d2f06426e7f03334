"""Neural-network parts shared by the families: `layers` (kgan's own layers, `keras.ops` only)
and `fast` (Keras layers with faster JAX and PyTorch paths)."""

# Registers kgan's layers with Keras: after `import kgan.nn`, `keras.saving.load_model` reads a
# generator that `kgan export --format keras` wrote.
from kgan.nn import fast, layers

__all__ = ["fast", "layers"]
