"""One `train_step` per backend, picked once from `keras.backend.backend()`.

Keras itself picks its trainer class the same way (keras/src/models/model.py). Everything
outside `kgan.trainers` is backend-neutral (`keras.ops`, `keras.random`).
"""

import keras

_BACKEND = keras.backend.backend()

if _BACKEND == "tensorflow":
    from kgan.trainers.tensorflow import GANTrainer, TranslationTrainer, make_dataset
elif _BACKEND == "jax":
    from kgan.trainers.jax import GANTrainer, TranslationTrainer, make_dataset
elif _BACKEND == "torch":
    from kgan.trainers.torch import GANTrainer, TranslationTrainer, make_dataset
else:
    from kgan.errors import KganError

    raise KganError(f"kgan does not train on the {_BACKEND!r} backend. Use tensorflow, jax or "
                    "torch (KERAS_BACKEND or --backend).")

__all__ = ["GANTrainer", "TranslationTrainer", "make_dataset"]
