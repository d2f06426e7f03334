"""One `Trainer` per backend, picked once from `keras.backend.backend()`.

Keras itself picks its trainer class the same way (keras/src/models/model.py). A `Trainer`
holds only gradient plumbing: `train_step` calls the model's backend-neutral `step`, which
updates through the trainer's primitives (`run`, `forward`, `minimize`, `minimize_through`,
`squared_grad_norms`, `replica_draw`); `make_dataset` is the backend's input pipeline.
Everything outside `kgan.trainers` is backend-neutral (`keras.ops`, `keras.random`).
"""

import keras

_BACKEND = keras.backend.backend()

if _BACKEND == "tensorflow":
    from kgan.trainers.tensorflow import Trainer, make_dataset
elif _BACKEND == "jax":
    from kgan.trainers.jax import Trainer, make_dataset
elif _BACKEND == "torch":
    from kgan.trainers.torch import Trainer, make_dataset
else:
    from kgan.errors import KganError

    raise KganError(f"kgan does not train on the {_BACKEND!r} backend. Use tensorflow, jax or "
                    "torch (KERAS_BACKEND or --backend).")

__all__ = ["Trainer", "make_dataset"]
