"""Neural-network parts shared by the families: `layers` (kgan's own layers, `keras.ops` only)
and `fast` (Keras layers with faster JAX and PyTorch paths)."""
