"""TensorFlow: gradient plumbing (GradientTape) for the adversarial step, and the `tf.data`
input pipeline."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops


class Trainer:
    """Mixed into `kgan.adversarial.Adversarial` on TensorFlow: `train_step` runs the model's
    backend-neutral `step(x, y)`, which updates through `minimize` and `minimize_through`."""

    epoch_steps = None  # steps per epoch, set by kgan's training loop for fused steps

    def make_train_function(self, force=False):
        """Keras' fused multi-step function (`steps_per_execution`), cut at epoch ends.

        Keras runs `steps_per_execution` steps per call, so an epoch whose length is not a
        multiple of it would run into the next epoch's batches (and a resumed run would see
        other batches than an uninterrupted one). Here each call runs at most the steps left in
        the epoch, from one function traced per distinct count (two in a run, four if resumed).
        """
        fused = self.steps_per_execution
        if fused == 1 or not self.epoch_steps or not hasattr(self, "_make_function"):
            return super().make_train_function(force)
        if self.train_function is not None and not force:
            return self.train_function
        functions = {}

        def train_function(iterator):
            done = self.steps % self.epoch_steps
            steps = min(fused, self.epoch_steps - done)
            # Keras reads `steps_per_execution` when it traces: at the first call of each one.
            self.steps_per_execution = steps
            try:
                if steps not in functions:
                    functions[steps] = self._make_function(self.train_step)
                return functions[steps](iterator)
            finally:
                self.steps_per_execution = fused

        self.train_function = train_function
        return train_function

    def train_step(self, data):
        # Under tf.distribute this runs once per replica, on its share of the global batch.
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        logs = self.step(x, y)
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras averages multi-worker logs along axis 0, which a scalar does not have.
            logs = {name: value[None] for name, value in logs.items()}
        return logs

    @property
    def replicas(self) -> int:
        """Replicas that run this step, each on its share of the global batch."""
        return tf.distribute.get_strategy().num_replicas_in_sync

    def run(self, model, inputs):
        """`model(inputs)` in training mode."""
        return model(inputs, training=True)

    def forward(self, fn, variables, keep=True):
        """`fn()`, recorded for `minimize_through` with respect to `variables`."""
        tape = tf.GradientTape()
        with tape:
            outputs = fn()
        return outputs, tape

    def minimize(self, optimizer, variables, loss_fn):
        """Runs `loss_fn() -> (loss, aux)` under a tape and applies the gradient of `loss` to
        `variables` with `optimizer`; returns `(loss, aux)`.

        The optimizers sum the replicas' gradients, so each replica's mean loss is divided by
        the number of replicas (Keras' loss objects do the same; these means are our own).
        """
        with tf.GradientTape() as tape:
            loss, aux = loss_fn()
            scaled = optimizer.scale_loss(loss / self.replicas)  # mixed_float16
        optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables, strict=True))
        return loss, aux

    def minimize_through(self, kept, outputs, optimizer, variables, loss_fn):
        """`minimize` of `loss_fn(outputs)`, where `outputs` and `kept` came from `forward`:
        the gradient reaches `variables` through that recorded pass, which is not run again."""
        with kept:
            loss, aux = loss_fn(outputs)
            scaled = optimizer.scale_loss(loss / self.replicas)
        optimizer.apply_gradients(zip(kept.gradient(scaled, variables), variables, strict=True))
        return loss, aux

    def replica_draw(self, draw, n):
        """`draw(n)` on one device; on N replicas, this replica's n rows of `draw(N * n)`.

        Every replica draws the whole global batch's randomness from the same (mirrored) seed
        state and keeps the rows of its replica id: replicas get different noise, and together
        exactly the noise one device would draw for the global batch.
        """
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return draw(n)
        start = tf.cast(context.replica_id_in_sync_group, tf.int32) * n
        return tf.nest.map_structure(lambda t: None if t is None else t[start : start + n],
                                     draw(n * context.num_replicas_in_sync))

    def squared_grad_norms(self, model, images, rest):
        """||grad_x model([x, *rest])||^2 per image, float32 (also under mixed policies),
        differentiable."""
        images, rest = tf.convert_to_tensor(images), [tf.convert_to_tensor(t) for t in rest]
        with tf.GradientTape() as tape:
            tape.watch(images)
            logits = model([images, *rest] if rest else images, training=True)
        grads = tf.cast(tape.gradient(logits, images), tf.float32)
        return ops.sum(ops.square(grads), axis=tuple(range(1, len(images.shape))))


def make_dataset(
    arrays: tuple,
    batch_size: int,
    seed: int,
    steps_per_epoch: int,
    first_epoch: int,
    last_epoch: int,
    skip_steps: int = 0,
    paired: bool = True,
    strategy=None,
):
    """Batches of `arrays` (one tuple per step) for epochs `first_epoch` .. `last_epoch - 1`,
    `steps_per_epoch` each.

    `arrays` are read by index (`kgan.data.Images`, or NumPy arrays): each step reads only its
    batch's rows, so memory does not grow with the data set. Each epoch's order is a stateless
    shuffle keyed by (seed, epoch), not a stateful `Dataset.shuffle`: a resumed run then sees
    exactly the batches an uninterrupted one would. `skip_steps` drops the batches of
    `first_epoch` that were trained before an interruption. `paired` arrays share one order;
    otherwise each array after the first has its own, keyed by (seed + index * 2**32, epoch).

    Under a `MultiWorkerMirroredStrategy` (`strategy`), each worker reads only its share of
    every global batch (`worker_batches`), as a `tf.distribute.DistributedDataset`.
    """
    def batches(context=None):
        return worker_batches(arrays, batch_size, seed, steps_per_epoch, first_epoch,
                              last_epoch, skip_steps, paired, context)

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return strategy.distribute_datasets_from_function(batches)
    return batches()


def worker_batches(arrays, batch_size, seed, steps_per_epoch, first_epoch, last_epoch,
                   skip_steps=0, paired=True, context: tf.distribute.InputContext | None = None
                   ) -> tf.data.Dataset:
    """`make_dataset`'s batches; with an input `context` of N workers, this worker's rows of
    each global batch only: the i-th N-th, split into one batch per local replica, so replica r
    of the cluster trains on the rows one device would give it (`Trainer.replica_draw`)."""
    sizes = [len(arrays[0] if paired else array) for array in arrays]
    dtypes = [tf.as_dtype(array.dtype) for array in arrays]
    workers = context.num_input_pipelines if context else 1
    rows = batch_size // workers
    first_row = context.input_pipeline_id * rows if context else 0

    def epoch_batches(epoch):
        orders = [tf.random.experimental.stateless_shuffle(
            tf.range(size), seed=tf.stack([tf.constant(seed + (k << 32), tf.int64), epoch]))
            for k, size in enumerate(sizes[:1] if paired else sizes)]
        return (
            tf.data.Dataset.zip(tuple(tf.data.Dataset.from_tensor_slices(o) for o in orders))
            .batch(batch_size, drop_remainder=True)
            .take(steps_per_epoch)
        )

    def read(*orders):
        return tuple(np.asarray(array[order]) for array, order in
                     zip(arrays, orders if not paired else orders * len(arrays)))

    def gather(*orders):
        orders = [order[first_row : first_row + rows] for order in orders]
        batch = tf.numpy_function(read, orders, dtypes, stateful=False)
        for tensor, array in zip(batch, arrays):
            tensor.set_shape((rows, *array.shape[1:]))
        # Images alone as a tensor, not a 1-tuple: MultiWorkerMirroredStrategy's distributed
        # iterator hands a 1-tuple to the step as a PerReplica it cannot convert.
        return batch[0] if len(batch) == 1 else tuple(batch)

    # A sequential map and no autotuning: reading a batch's rows is quick next to a step, and
    # on a 2-core CPU the autotuner's and parallel map's threads preempted the step's compute
    # threads, which then waited on each other (the DCGAN ran 5.7 against 7.3-9.3 steps/s in
    # the same rounds, benchmarks/speed.py). No private thread pool: with one the DCGAN ran
    # 9.2, without 8.9 steps/s (within the rounds' spread), and its threads end with every
    # iterator, where TensorFlow's shared pool lives with the process.
    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = (
        tf.data.Dataset.range(first_epoch, last_epoch)
        .flat_map(epoch_batches)
        .skip(skip_steps)
        .map(gather)
    )
    if context and context.num_replicas_in_sync > workers:  # several replicas on this worker
        dataset = dataset.rebatch(context.get_per_replica_batch_size(batch_size))
    return dataset.prefetch(2).with_options(options)
