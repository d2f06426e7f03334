"""Training speed of kgan against the usual ways to train the same GAN, side by side.

    .venv/bin/python benchmarks/speed.py [--only mlp|dcgan|startup|memory|data] [--steps N]
                                         [--reps 3] [--rounds 2] [--data-sizes 2000,100000]

Every row runs in its own process, one after another, on the same machine, with the same
data (Fashion-MNIST from the Debian package), the same architecture and the same batch size:

- `torch_reference`: a plain PyTorch loop of the classic MLP GAN (Linear/LeakyReLU/Tanh G,
  Linear/LeakyReLU/Sigmoid D, BCELoss, Adam 2e-4 (0.5, 0.999), one D update on a real and a
  detached fake batch, then one G update on fresh noise);
- `keras_io`: a keras.io-style `train_step` (GradientTape, no XLA) of kgan's models under `fit`;
- `kgan_<backend>`: `kgan.training.train` with its defaults (input pipeline, checkpoints,
  sample grids, TensorBoard, metrics), on each backend;
- `kgan_tensorflow_in_memory`: kgan's compiled TensorFlow step under `fit` on one batch already
  in memory, without its input pipeline or callbacks: what those cost.

Each row trains `reps + 1` epochs of `--steps` steps and reports the median of the last `reps`
(the first pays for compilation), from the start of an epoch to the end of its last callback.
The rows take `--rounds` turns (A B C, A B C) and each reports its fastest round: on a shared
machine whose speed drifts by 20% within minutes, the slow spells hit every row alike.
Prints one JSON object: steps/s, images/s, the ratio to the row's baseline, peak RSS, and the
model FLOP/s achieved against the matmul peak measured in the same run.

For the DCGAN it also writes down where the time goes, on each backend: `layer_ms`, each
layer's forward and backward passes alone (TensorFlow: float32 and bfloat16), and
`conv_kernel_gflops`, the two big convolutions' GFLOP/s.

`memory` trains the default MLP run (`kgan.training.train` with its checkpoints, grids,
TensorBoard and curves every epoch) for 50 epochs of 100 steps and reports its resident memory
after each epoch: a leak shows as growth from epoch 5 to epoch 50.

`data` measures reading data by index (`kgan.data`), on each backend:
- `speed`: steps/s of the MLP at 28 px (Fashion-MNIST packed by `kgan data pack`, memory-mapped,
  against the built-in held in memory) and of the DCGAN at 64 px (a folder of PNGs, packed and
  memory-mapped, against the same pixels in memory);
- `memory`: the DCGAN at 64 px on folders of `--data-sizes` images (made once under
  `--data-dir`), and pix2pix and CycleGAN (TensorFlow, batch 4) on A/ and B/ folders of as
  many images in all: the peak of the process's anonymous memory (`RssAnon`, sampled after
  every step; a memory-mapped file's pages are page cache, not counted there) and of its
  resident memory, and the seconds to the first step: TensorFlow's row builds the pack (in a
  fresh `KGAN_CACHE`; `pack_seconds` of that), the other backends' rows find it built.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ARCHS = {"mlp": 64, "dcgan": 128}  # architecture -> batch size
# Steps per timed epoch: a whole Fashion-MNIST epoch for the MLP (what a run pays for its
# per-epoch checkpoint and grids), about 12 s of the much slower DCGAN.
STEPS = {"mlp": 60000 // 64, "dcgan": 30}
BASELINE = {"mlp": "torch_reference", "dcgan": "keras_io"}
BACKENDS = ("tensorflow", "jax", "torch")
ROWS = {
    "mlp": ["torch_reference", "keras_io", "kgan_tensorflow", "kgan_tensorflow_in_memory",
            "kgan_jax", "kgan_torch"],
    "dcgan": ["keras_io", "kgan_tensorflow", "kgan_tensorflow_in_memory", "kgan_jax",
              "kgan_torch"],
}


# ---------------------------------------------------------------------------------------------
# Workers: each runs in a fresh process and prints {"epoch_seconds": [...]} (or the peak).


def _fashion_mnist():
    """The 60,000 training images as one float32 array (the references take arrays)."""
    import numpy as np

    from kgan import data

    return np.asarray(data.load("fashion_mnist").x[:])


def _config(arch: str, args, backend: str = "tensorflow"):
    from kgan.config import TrainConfig

    # image_shape lets the models be built without loading the data (train() sets it anyway).
    return TrainConfig(dataset="fashion_mnist", arch=arch, batch_size=ARCHS[arch],
                       epochs=args.reps + 1, steps_per_epoch=args.steps, backend=backend,
                       image_shape=(28, 28, 1))


def matmul_peak(args) -> dict:
    """GFLOP/s of a large float32 matmul in TensorFlow: what this CPU can do at best."""
    import tensorflow as tf

    n = 2048
    a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
    matmul = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    matmul(a, b).numpy()
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(5):
            matmul(a, b).numpy()
        best = max(best, 5 * 2 * n**3 / (time.perf_counter() - start))
    return {"gflops": best / 1e9}


def torch_reference(args) -> dict:
    import torch
    from torch import nn

    torch.manual_seed(0)
    x = torch.from_numpy(_fashion_mnist().reshape(-1, 784))
    batch = ARCHS["mlp"]
    generator = nn.Sequential(
        nn.Linear(100, 256), nn.LeakyReLU(0.2), nn.Linear(256, 512), nn.LeakyReLU(0.2),
        nn.Linear(512, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 784), nn.Tanh())
    discriminator = nn.Sequential(
        nn.Linear(784, 512), nn.LeakyReLU(0.2), nn.Linear(512, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 1), nn.Sigmoid())
    loss = nn.BCELoss()
    g_opt = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    seconds = []
    for _ in range(args.reps + 1):
        order = torch.randperm(len(x))
        start = time.perf_counter()
        for step in range(args.steps):
            real = x[order[step * batch:(step + 1) * batch]]
            fake = generator(torch.randn(batch, 100))
            d_opt.zero_grad()
            d_loss = (loss(discriminator(real), ones)
                      + loss(discriminator(fake.detach()), zeros)) / 2
            d_loss.backward()
            d_opt.step()
            g_opt.zero_grad()
            g_loss = loss(discriminator(generator(torch.randn(batch, 100))), ones)
            g_loss.backward()
            g_opt.step()
        float(g_loss)
        seconds.append(time.perf_counter() - start)
    return {"epoch_seconds": seconds}


def keras_io(args) -> dict:
    """The keras.io GAN example's `train_step`, on kgan's models and a `tf.data` pipeline."""
    import keras
    import tensorflow as tf

    from kgan.families.noise import nets

    arch = args.arch
    config = _config(arch, args)
    keras.utils.set_random_seed(0)

    class KerasIoGAN(keras.Model):
        def __init__(self):
            super().__init__()
            self.generator = nets.generator(config)
            self.discriminator = nets.discriminator(config)
            self.bce = keras.losses.BinaryCrossentropy(from_logits=True)
            self.seed_generator = keras.random.SeedGenerator(0)

        def compile(self):
            super().compile(jit_compile=False)
            self.d_optimizer = keras.optimizers.Adam(2e-4, 0.5)
            self.g_optimizer = keras.optimizers.Adam(2e-4, 0.5)

        def train_step(self, real):
            batch = tf.shape(real)[0]
            noise = keras.random.normal((batch, 100), seed=self.seed_generator)
            fake = self.generator(noise, training=True)
            with tf.GradientTape() as tape:
                real_logits = self.discriminator(real, training=True)
                fake_logits = self.discriminator(fake, training=True)
                d_loss = (self.bce(tf.ones_like(real_logits), real_logits)
                          + self.bce(tf.zeros_like(fake_logits), fake_logits)) / 2
            d_vars = self.discriminator.trainable_weights
            self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
            noise = keras.random.normal((batch, 100), seed=self.seed_generator)
            with tf.GradientTape() as tape:
                logits = self.discriminator(self.generator(noise, training=True), training=True)
                g_loss = self.bce(tf.ones_like(logits), logits)
            g_vars = self.generator.trainable_weights
            self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
            return {"d_loss": d_loss, "g_loss": g_loss}

    gan = KerasIoGAN()
    gan.compile()
    dataset = (tf.data.Dataset.from_tensor_slices(_fashion_mnist()).shuffle(1024)
               .batch(ARCHS[arch], drop_remainder=True).repeat().prefetch(tf.data.AUTOTUNE))
    return _timed_fit(gan, dataset, args)


def epoch_timer():
    """A Keras callback timing each epoch, from its start to the end of its last callback."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    return EpochTimer()


def _timed_fit(model, dataset, args) -> dict:
    timer = epoch_timer()
    model.fit(dataset, epochs=args.reps + 1, steps_per_epoch=args.steps, callbacks=[timer],
              verbose=0)
    return {"epoch_seconds": timer.seconds}


def kgan_train(args) -> dict:
    backend = args.row.removeprefix("kgan_")
    os.environ["KERAS_BACKEND"] = backend
    from kgan import training

    timer = epoch_timer()
    with tempfile.TemporaryDirectory() as runs_dir:
        training.train(_config(args.arch, args, backend), runs_dir=runs_dir, callbacks=[timer])
    return {"epoch_seconds": timer.seconds}


MEMORY_EPOCHS, MEMORY_STEPS = 50, 100


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc (VmRSS: resident now; VmHWM: its peak;
    RssAnon: anonymous memory now), in MB."""
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
    return round(kib / 1024, 1)


def memory(args) -> dict:
    import dataclasses

    import keras

    from kgan import training

    class Resident(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.mb = []

        def on_epoch_end(self, epoch, logs=None):  # after the run's own epoch-end callbacks
            self.mb.append(_status_mb("VmRSS"))

    resident = Resident()
    config = dataclasses.replace(_config("mlp", args), epochs=MEMORY_EPOCHS,
                                 steps_per_epoch=MEMORY_STEPS)
    with tempfile.TemporaryDirectory() as runs_dir:
        training.train(config, runs_dir=runs_dir, callbacks=[resident])
    return {"rss_mb": resident.mb}


def kgan_in_memory(args) -> dict:
    """kgan's own compiled step, run by `fit` as kgan runs it (XLA and fused steps as chosen
    for the architecture), on one batch already in memory: no input pipeline, no callbacks."""
    import tensorflow as tf

    from kgan.build import build_gan

    config = _config(args.arch, args)
    gan = build_gan(config)
    gan.epoch_steps = args.steps
    batch = tf.data.Dataset.from_tensors((_fashion_mnist()[: config.batch_size],)).repeat()
    return _timed_fit(gan, batch, args)


def model_flops(args) -> dict:
    """Multiply-add FLOPs of one forward pass per image, of G and of D (dense and conv layers).

    A kgan training step is counted as 3 G passes (one forward, kept for G's update, and its
    backward; the baselines' steps as 4, as they run G again for G's update) and 8 D passes
    (forward and backward on the real and fake batches, then forward and input-gradient for
    G's update); a backward pass costs two forwards.
    """
    import math

    from keras import layers

    from kgan.families.noise import nets

    config = _config(args.arch, args)

    def flops(model):
        total = 0
        for layer in model.layers:
            if isinstance(layer, (layers.Dense, layers.Conv2D, layers.Conv2DTranspose)):
                kernel = math.prod(layer.kernel.shape)
                # A dense kernel meets each image once, a conv kernel each output pixel, a
                # transposed conv kernel each input pixel.
                # (kgan's convolutions are subclasses of Keras' own.)
                pixels = (1 if isinstance(layer, layers.Dense)
                          else math.prod(layer.input.shape[1:3])
                          if isinstance(layer, layers.Conv2DTranspose)
                          else math.prod(layer.output.shape[1:3]))
                total += 2 * kernel * pixels
        return total

    return {"g": flops(nets.generator(config)), "d": flops(nets.discriminator(config))}


def conv_kernels(args) -> dict:
    """GFLOP/s of the DCGAN's two big layers alone (forward + both backward passes, batch 256
    as D sees real and fake), on the backend of the row (`conv_kernels_<backend>`), as kgan
    builds them (`kgan.nn.fast`): the ceiling that any step built from these kernels meets."""
    backend = args.row.removeprefix("conv_kernels_")
    os.environ["KERAS_BACKEND"] = backend

    from kgan.nn import fast

    batch = 2 * ARCHS["dcgan"]
    cases = {"d_conv_64_128": (fast.Conv2D(128, 4, strides=2, padding="same"),
                               (batch, 14, 14, 64), 2 * 7 * 7 * 16 * 64 * 128),
             "g_conv_transpose_128_64": (
                 fast.Conv2DTranspose(64, 4, strides=2, padding="same"),
                 (batch, 7, 7, 128), 2 * 7 * 7 * 16 * 128 * 64)}
    result = {}
    for name, (layer, shape, flops) in cases.items():
        layer.build(shape)
        result[name] = round(3 * flops * batch / _layer_seconds(backend, layer, shape, 20) / 1e9,
                             1)
    return result


def layer_profile(args) -> dict:
    """Where the DCGAN step's time goes: milliseconds of each layer's forward and backward
    passes alone (G's at batch 128, D's at 256 as it sees real and fake), on the row's backend
    (`profile_<backend>`), float32 and, on TensorFlow, bfloat16 as well."""
    backend = args.row.removeprefix("profile_")
    os.environ["KERAS_BACKEND"] = backend
    import keras
    from keras import layers

    from kgan.families.noise import nets

    result = {}
    for policy in ("float32", "mixed_bfloat16")[: 2 if backend == "tensorflow" else 1]:
        keras.backend.clear_session()  # the same layer names in both
        keras.config.set_dtype_policy(policy)
        config = _config("dcgan", args, backend)  # the models take the policy just set
        times = result[policy] = {}
        for model, batch in ((nets.generator(config), ARCHS["dcgan"]),
                             (nets.discriminator(config), 2 * ARCHS["dcgan"])):
            for layer in model.layers:
                if not layer.weights and not isinstance(layer, (layers.ReLU, layers.LeakyReLU)):
                    continue  # inputs, reshapes
                seconds = _layer_seconds(backend, layer, (batch, *layer.input.shape[1:]), 10)
                times[f"{model.name}/{layer.name}"] = round(seconds * 1e3, 2)
        times["total"] = round(sum(times.values()), 1)
    return result


def _layer_seconds(backend, layer, shape, repeat) -> float:
    """Seconds of one forward and backward pass of `layer` on random inputs of `shape` (the
    mean of `repeat`, after one that compiles)."""
    import keras
    import numpy as np

    step, x = _forward_backward(backend, layer, np.random.default_rng(0).normal(
        size=shape).astype("float32"))
    keras.ops.convert_to_numpy(step(x)[0])
    start = time.perf_counter()
    for _ in range(repeat):
        grads = step(x)
    keras.ops.convert_to_numpy(grads[0])
    return (time.perf_counter() - start) / repeat


def _forward_backward(backend, layer, x):
    """A compiled (where the backend compiles) function of x: the gradients of
    sum(layer(x, training=True)) with respect to x and the layer's weights (in the layer's
    compute dtype); and x as that backend's tensor."""
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.reduce_sum(tf.cast(layer(x, training=True), tf.float32))
            return tape.gradient(y, [x, *layer.trainable_variables])

        return step, tf.constant(x)
    if backend == "jax":
        import inspect

        import jax

        fixed = [v.value for v in layer.non_trainable_variables]
        training = {"training": True} if "training" in inspect.signature(
            layer.call).parameters else {}  # stateless_call passes it on as it is

        def total(x, values):
            y = layer.stateless_call(values, fixed, x, **training)[0]
            return jax.numpy.sum(y.astype("float32"))

        grads = jax.jit(jax.grad(total, argnums=(0, 1)))
        values = [v.value for v in layer.trainable_variables]
        return lambda x: jax.tree.leaves(grads(x, values)), jax.numpy.asarray(x)
    import torch

    def step(x):
        x = x.detach().requires_grad_(True)
        layer(x, training=True).float().sum().backward()
        return [x.grad, *(v.value.grad for v in layer.trainable_variables)]

    return step, torch.from_numpy(x)


DATA_STEPS = {"mlp": 200, "dcgan": 10}  # steps per timed epoch of the data rows


def data_train(args) -> dict:
    """One data row: `kgan.training.train` on `args.dataset` with the arch's defaults."""
    backend = args.row.removeprefix("data_")
    os.environ["KERAS_BACKEND"] = backend
    import keras

    from kgan import training
    from kgan.config import TrainConfig

    start = time.perf_counter()
    marks = {}

    class Probe(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.anon = 0.0

        def on_train_batch_end(self, batch, logs=None):
            marks.setdefault("first_step", time.perf_counter() - start)
            self.anon = max(self.anon, _status_mb("RssAnon"))

    def packing(done, total):
        marks.setdefault("pack_start", time.perf_counter())
        marks["pack_end"] = time.perf_counter()

    probe, timer = Probe(), epoch_timer()
    config = TrainConfig(dataset=args.dataset, arch=args.arch, backend=backend,
                         image_size=None if args.arch == "mlp" else 64, epochs=args.reps + 1,
                         steps_per_epoch=args.steps, sample_every=1000, checkpoint_every=1000,
                         batch_size=4 if args.arch in ("pix2pix", "cyclegan") else 64,
                         tensorboard=False, curves=False)
    with tempfile.TemporaryDirectory() as runs_dir:
        training.train(config, runs_dir=runs_dir, callbacks=[probe, timer], progress=packing)
    return {"epoch_seconds": timer.seconds, "first_step_seconds": round(marks["first_step"], 1),
            "pack_seconds": round(marks["pack_end"] - marks["pack_start"], 1)
            if "pack_start" in marks else 0.0,
            "peak_rss_anon_mb": max(probe.anon, _status_mb("RssAnon")),
            "peak_rss_mb": _status_mb("VmHWM")}


def _make_folder(folder: str, n: int) -> None:
    """`n` 64x64 RGB PNGs (smooth colors plus noise, about 8 KB each), made once."""
    import concurrent.futures

    import numpy as np
    from PIL import Image

    if os.path.isfile(os.path.join(folder, "done")):
        return
    os.makedirs(folder, exist_ok=True)
    ramp = np.linspace(0, 1, 64, dtype=np.float32)

    def write(i):
        rng = np.random.default_rng(i)
        color = rng.random((3,), np.float32) * 200
        pixels = (color * ramp[:, None, None] + rng.integers(0, 55, (64, 64, 3)))
        Image.fromarray(pixels.astype(np.uint8)).save(os.path.join(folder, f"{i:06d}.png"))

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(write, range(n)))
    open(os.path.join(folder, "done"), "w").close()


def _make_pairs(folder: str, images: str, n: int) -> None:
    """A/ and B/ of `n` pairs: links to the first `n` images of the folder `images`."""
    if os.path.isdir(folder):
        return
    for side in ("A", "B"):
        os.makedirs(os.path.join(folder, side))
        for i in range(n):
            os.symlink(os.path.join(images, f"{i:06d}.png"),
                       os.path.join(folder, side, f"{i:06d}.png"))


def data_report(args) -> dict:
    """The `data` section: streamed against in-memory steps/s, and memory against data size."""
    import numpy as np

    sizes = [int(n) for n in args.data_sizes.split(",")]
    folders = {n: os.path.join(args.data_dir, f"folder-{n}") for n in sizes}
    for n, folder in folders.items():
        _make_folder(folder, n)
    from kgan import data

    cache = tempfile.mkdtemp(prefix="kgan-cache-")
    sources = {"mlp": {"streamed": os.path.join(cache, "fashion_mnist.npz"),
                       "in_memory": "fashion_mnist"},
               "dcgan": {"streamed": folders[sizes[0]],
                         "in_memory": os.path.join(cache, "folder-in-memory.npz")}}
    os.environ["KGAN_CACHE"] = os.path.join(cache, "aside")  # a pack only for the npz below
    data.write_npz(data.load("fashion_mnist"), sources["mlp"]["streamed"])
    small = data.load(folders[sizes[0]], 64)
    np.savez_compressed(sources["dcgan"]["in_memory"], x_train=small.x.uint8(slice(None)))
    os.environ["KGAN_CACHE"] = cache  # the workers': each size is packed by its first row
    report = {"memory": {}, "speed": {}, "read_ms_per_batch": {}, "data_dir": args.data_dir}
    for backend in BACKENDS:
        for n, folder in folders.items():
            result = run_worker(f"data_{backend}", "dcgan", DATA_STEPS["dcgan"], 1, folder)
            report["memory"][f"{backend}_{n}"] = {
                key: result[key] for key in ("peak_rss_anon_mb", "peak_rss_mb",
                                             "first_step_seconds", "pack_seconds")}
            print(f"data memory {backend} {n}: {report['memory'][f'{backend}_{n}']}",
                  file=sys.stderr)
    for backend in BACKENDS:
        anon = [report["memory"][f"{backend}_{n}"]["peak_rss_anon_mb"] for n in sizes]
        report["memory"][f"{backend}_anon_growth_mb"] = round(anon[-1] - anon[0], 1)
    # Image to image, on TensorFlow: A/ and B/ folders of as many images in all as the folders.
    pairs = {n // 2: os.path.join(args.data_dir, f"pairs-{n // 2}") for n in sizes}
    for n, folder in pairs.items():
        _make_pairs(folder, folders[sizes[-1]], n)
    for arch in ("pix2pix", "cyclegan"):
        anon = []
        for n, folder in pairs.items():
            result = run_worker("data_tensorflow", arch, 20, 1, folder)
            report["memory"][f"{arch}_{n}_pairs"] = {
                key: result[key] for key in ("peak_rss_anon_mb", "first_step_seconds")}
            anon.append(result["peak_rss_anon_mb"])
            print(f"data memory {arch} {n} pairs: {report['memory'][f'{arch}_{n}_pairs']}",
                  file=sys.stderr)
        report["memory"][f"{arch}_anon_growth_mb"] = round(anon[-1] - anon[0], 1)
    for arch, modes in sources.items():
        steps = args.steps or DATA_STEPS[arch]
        for backend in BACKENDS:
            rates = {mode: [] for mode in modes}
            for _ in range(args.rounds):
                for mode, dataset in modes.items():
                    result = run_worker(f"data_{backend}", arch, steps, args.reps, dataset)
                    rates[mode].append(steps / statistics.median(result["epoch_seconds"][1:]))
                    print(f"data {arch} {backend} {mode}: {rates[mode][-1]:.2f} steps/s",
                          file=sys.stderr)
            best = {mode: max(r) for mode, r in rates.items()}
            report["speed"][f"{arch}_{backend}"] = {
                **{f"{mode}_steps_per_sec": round(rate, 2) for mode, rate in best.items()},
                "ratio": round(best["streamed"] / best["in_memory"], 3),
                "rounds": {mode: [round(r, 2) for r in rounds] for mode, rounds in rates.items()}}
        report["read_ms_per_batch"][arch] = {
            mode: _read_ms(dataset, 64 if arch == "dcgan" else None, 64)  # the runs' batch
            for mode, dataset in modes.items()}
    return report


def _read_ms(dataset: str, image_size, batch_size: int) -> float:
    """Milliseconds to read one batch (rows by index, to float32) in the NumPy pipeline, the
    median of 5 rounds of up to 200 batches: what the data costs a step, apart from it."""
    from kgan import data
    from kgan.trainers.numpy_data import make_dataset

    images = data.load(dataset, image_size).x
    steps, rounds = min(200, len(images) // batch_size), []
    for seed in range(5):
        batches = make_dataset((images,), batch_size, seed, steps, 0, 1)
        start = time.perf_counter()
        for _ in batches:
            pass
        rounds.append((time.perf_counter() - start) / steps * 1000)
    return round(statistics.median(rounds), 3)


WORKERS = {"matmul_peak": matmul_peak, "torch_reference": torch_reference,
           "keras_io": keras_io, "kgan_tensorflow_in_memory": kgan_in_memory,
           "model_flops": model_flops, "memory": memory,
           **{f"conv_kernels_{b}": conv_kernels for b in BACKENDS},
           **{f"profile_{b}": layer_profile for b in BACKENDS}}


# ---------------------------------------------------------------------------------------------
# The driver.


def _env() -> dict:
    # Each row runs alone, so torch keeps its default OpenMP spinning (faster here than the
    # OMP_WAIT_POLICY=PASSIVE the tests use to share cores).
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}


def run_worker(row: str, arch: str, steps: int, reps: int, dataset: str = "") -> dict:
    """Runs one row in a fresh process; adds its peak RSS (from wait4) to the worker's output."""
    with tempfile.TemporaryFile("w+") as out:
        command = [sys.executable, __file__, "--worker", row, "--arch", arch,
                   "--steps", str(steps), "--reps", str(reps), "--dataset", dataset]
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, text=True,
                                   env=_env())
        stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            sys.exit(f"{row} ({arch}) failed:\n{stderr[-3000:]}")
        out.seek(0)
        result = json.loads(out.read().splitlines()[-1])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024)  # Linux reports KiB
    return result


def _seconds(command: list[str], repeat: int = 3) -> float:
    """Best wall time of `command` (a fresh process each time)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=_env())
        best = min(best, time.perf_counter() - start)
    return best


def startup() -> dict:
    """Seconds of `kgan --help`, and of `kgan sample --n 64` beyond importing the framework."""
    kgan = [sys.executable, "-m", "kgan"]
    with tempfile.TemporaryDirectory() as runs_dir:
        subprocess.run([*kgan, "train", "--dataset", "fashion_mnist", "--epochs", "1",
                        "--steps-per-epoch", "5", "--runs-dir", runs_dir, "--quiet"],
                       check=True, capture_output=True, env=_env())
        sample = _seconds([*kgan, "sample", "--n", "64", "--runs-dir", runs_dir])
    framework = _seconds([sys.executable, "-c", "import tensorflow, keras"])
    return {"help_seconds": round(_seconds([*kgan, "--help"]), 3),
            "sample_64_seconds": round(sample, 2),
            "framework_import_seconds": round(framework, 2),
            "sample_64_beyond_import_seconds": round(sample - framework, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="steps per timed epoch (default: per arch)")
    parser.add_argument("--reps", type=int, default=3, help="timed epochs after one warm-up")
    parser.add_argument("--rounds", type=int, default=2,
                        help="turns of every row; each row reports its fastest round")
    parser.add_argument("--only", choices=(*ARCHS, "startup", "memory", "data"),
                        help="one section only")
    parser.add_argument("--data-sizes", default="2000,100000",
                        help="data: folder sizes for the memory rows (smallest first)")
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(),
                                                           "kgan-bench-data"),
                        help="data: where the image folders are made (once)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--arch", default="mlp", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.row = args.worker
        worker = WORKERS.get(args.worker, data_train if args.worker.startswith("data_")
                             else kgan_train)
        print(json.dumps(worker(args)))
        return

    report = {"benchmark": "GAN training steps/s, Fashion-MNIST 28x28",
              "cpu_count": os.cpu_count(), "timed_epochs": args.reps, "rounds": args.rounds}
    if args.only in (None, "startup"):
        report["startup"] = startup()
    if args.only in (None, "memory"):
        rss = run_worker("memory", "mlp", MEMORY_STEPS, 0)["rss_mb"]
        report["memory"] = {"epochs": MEMORY_EPOCHS, "steps_per_epoch": MEMORY_STEPS,
                            "rss_mb_after_epoch": {5: rss[4], 10: rss[9], 25: rss[24],
                                                   50: rss[49]},
                            "growth_epoch_5_to_50": round(rss[49] / rss[4] - 1, 4)}
    if args.only == "data":
        report["data"] = data_report(args)
    if args.only in ("startup", "memory", "data"):
        report["targets"] = targets(report)
        print(json.dumps(report, indent=2))
        return
    peak = run_worker("matmul_peak", "mlp", 0, 0)["gflops"]
    report["matmul_peak_gflops"] = round(peak, 1)
    for arch, batch in ARCHS.items():
        if args.only and arch != args.only:
            continue
        steps = args.steps or STEPS[arch]
        flops = run_worker("model_flops", arch, 0, 0)
        # kgan runs G forward once a step; the baselines run it again for G's update.
        step_flops = {row: batch * ((4 if row in BASELINE.values() else 3) * flops["g"]
                                    + 8 * flops["d"]) for row in ROWS[arch]}
        rates, rss = {row: [] for row in ROWS[arch]}, {}
        for _ in range(args.rounds):  # the rows take turns, so a slow spell hits them all
            for row in ROWS[arch]:
                result = run_worker(row, arch, steps, args.reps)
                rates[row].append(steps / statistics.median(result["epoch_seconds"][1:]))
                rss[row] = max(rss.get(row, 0), result["peak_rss_mb"])
                print(f"{arch} {row}: {rates[row][-1]:.2f} steps/s", file=sys.stderr)
        rows = {}
        for row, rounds in rates.items():
            rate = max(rounds)
            rows[row] = {"steps_per_sec": round(rate, 1), "images_per_sec": round(rate * batch),
                         "gflops": round(rate * step_flops[row] / 1e9, 2),
                         "peak_fraction": round(rate * step_flops[row] / 1e9 / peak, 3),
                         "peak_rss_mb": rss[row],
                         "rounds_steps_per_sec": [round(r, 1) for r in rounds]}
        base = rows[BASELINE[arch]]["steps_per_sec"]
        for values in rows.values():
            values["ratio"] = round(values["steps_per_sec"] / base, 2)
        in_memory = rows["kgan_tensorflow_in_memory"]["steps_per_sec"]
        report[arch] = {
            "batch_size": batch, "steps_per_epoch": steps, "baseline": BASELINE[arch],
            "step_gflop": round(step_flops["kgan_tensorflow"] / 1e9, 3), "rows": rows,
            "input_pipeline_cost": round(1 - rows["kgan_tensorflow"]["steps_per_sec"] / in_memory,
                                         3),
        }
    if "dcgan" in report:
        for key, worker in (("layer_ms", "profile"), ("conv_kernel_gflops", "conv_kernels")):
            report["dcgan"][key] = {}
            for backend in BACKENDS:
                result = run_worker(f"{worker}_{backend}", "dcgan", 0, 0)
                result.pop("peak_rss_mb")
                report["dcgan"][key][backend] = result
    report["targets"] = targets(report)
    print(json.dumps(report, indent=2))


def targets(report: dict) -> dict:
    """The project's speed and memory targets (issues 8, 18 and 30), as measured in this one
    run."""

    def fastest(arch):  # ratio of kgan's fastest backend
        return max(v["ratio"] for k, v in report[arch]["rows"].items()
                   if k.startswith("kgan_") and not k.endswith("in_memory"))

    checks = {}
    if "mlp" in report:
        checks["mlp: kgan_tensorflow / torch_reference >= 2.0"] = report["mlp"]["rows"][
            "kgan_tensorflow"]["ratio"]
        checks["mlp: fastest kgan backend / torch_reference >= 3.0"] = fastest("mlp")
        checks["mlp: input pipeline and callbacks cost < 0.05"] = report["mlp"][
            "input_pipeline_cost"]
        checks["mlp: kgan_torch / torch_reference >= 1.0"] = report["mlp"]["rows"][
            "kgan_torch"]["ratio"]
    if "dcgan" in report:
        rows = report["dcgan"]["rows"]
        checks["dcgan: kgan_tensorflow / keras_io >= 1.3"] = rows["kgan_tensorflow"]["ratio"]
        for backend in ("jax", "torch"):
            checks[f"dcgan: kgan_{backend} / kgan_tensorflow >= 0.8"] = round(
                rows[f"kgan_{backend}"]["steps_per_sec"]
                / rows["kgan_tensorflow"]["steps_per_sec"], 2)
    if "memory" in report:
        checks["memory: RSS growth from epoch 5 to 50 < 0.05"] = report["memory"][
            "growth_epoch_5_to_50"]
    if "data" in report:
        for row, values in report["data"]["speed"].items():
            checks[f"data: {row} streamed / in memory >= 0.9"] = values["ratio"]
        for backend in BACKENDS:
            checks[f"data: {backend} dcgan RssAnon growth in MB, smallest to largest folder "
                   "< 500"] = report["data"]["memory"][f"{backend}_anon_growth_mb"]
        for arch in ("pix2pix", "cyclegan"):
            checks[f"data: tensorflow {arch} RssAnon growth in MB, smallest to largest A/B "
                   "folders < 500"] = report["data"]["memory"][f"{arch}_anon_growth_mb"]
    return {name: {"value": value, "met": value < float(name.rsplit(" ", 1)[1]) if "<" in name
                   else value >= float(name.rsplit(" ", 1)[1])}
            for name, value in checks.items()}

if __name__ == "__main__":
    main()
