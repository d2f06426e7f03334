"""The measures of `kgan eval` that work offline: FID, KID, classifier score and class coverage.

Distances are measured in the feature space of an extractor:

- `classifier`: a small CNN that kgan trains on the dataset's own training split the first time
  it is needed and caches (the approach of TF-GAN's MNIST example: no download needed);
- `inception`: Keras' InceptionV3 pool features, when its ImageNet weights are on disk;
- `fid-inception`: the Inception of pytorch-fid, TF-GAN and clean-fid (`kgan.fid_inception`), the
  one FIDs in papers are measured with, from pytorch-fid's weights file.

Only `fid-inception` gives FIDs that can be set beside a paper's; the others compare runs with
each other.

The metric functions are NumPy (float64) and work on any features. What each family measures
is its `evaluate` (`kgan.families.*`); `kgan.evaluate` loads a run or an export and asks it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import math
import os
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
from filelock import FileLock
from keras import layers

from kgan import data as data_lib
from kgan import fid_inception as fid_net
from kgan import runs
from kgan.config import EVAL_FEATURES
from kgan.errors import KganError, NoSplit, first_line

# Measured here: 91.3% test accuracy on Fashion-MNIST in under a minute (3 epochs, the learning
# rate decayed to 0 along a cosine); the first version's 5 epochs at a constant rate reached
# 91.2-91.6% in about 100 s.
CLASSIFIER_EPOCHS = 3
CLASSIFIER_BATCH = 64
CLASSIFIER_VERSION = 2  # in the cache key: FIDs compare only within one version
INCEPTION_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
                 + INCEPTION_FILE)
# FID is biased upwards the fewer images it sees (Chong & Forsyth 2020); papers use 10k or 50k.
STABLE_FID_N = 10_000
REAL_STATS = "real-stats"  # under the cache folder: real features per dataset, split, extractor


# Metrics ---------------------------------------------------------------------------------------


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians.

    tr((S1 S2)^(1/2)) is computed as the sum of square roots of the eigenvalues of the symmetric
    PSD matrix S1^(1/2) S2 S1^(1/2) (same spectrum as S1 S2): no complex parts, no failed
    `sqrtm` on near-singular covariances.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    root1 = _sqrt_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
    value = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt
    return float(max(value, 0.0))


def _sqrt_psd(matrix):
    eigenvalues, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ vectors.T


def _features(values, name: str) -> np.ndarray:
    """`values` as float64 (N, D) with N >= 2 finite rows, or one clear `KganError`."""
    try:
        x = np.asarray(values, np.float64)
    except (TypeError, ValueError):
        raise KganError(f"`{name}` must be numbers. Received: {type(values).__name__}") from None
    if x.ndim != 2 or len(x) < 2:
        raise KganError(f"`{name}` must be a 2-D array (samples, features) with at least 2 "
                        f"samples. Received: shape={x.shape}")
    if not np.isfinite(x).all():
        raise KganError(f"`{name}` must be finite; it has NaN or inf values")
    return x


def _probabilities(values) -> np.ndarray:
    probs = _features(values, "probs")
    if (probs < 0).any() or not np.allclose(probs.sum(1), 1.0, atol=1e-3):
        raise KganError("`probs` must be class probabilities: rows of non-negative numbers that "
                        "sum to 1 (apply a softmax to logits first)")
    return probs


def fid(features_a, features_b) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets (N, D)."""
    a, b = _features(features_a, "features_a"), _features(features_b, "features_b")
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def kid(features_a, features_b, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3.

    Returns the mean and standard deviation over `subsets` random subsets of `subset_size`
    (capped at the smaller set's size) drawn from each set.
    """
    a, b = _features(features_a, "features_a"), _features(features_b, "features_b")
    m = min(subset_size, len(a), len(b))
    dim = a.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((p @ q.T / dim + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(within - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def image_scores(outputs: np.ndarray, targets: np.ndarray) -> dict:
    """L1, PSNR (dB) and SSIM per image of uint8 `outputs` against uint8 `targets`, on the
    [0, 1] scale (L1 0.1: a tenth of the full range; scikit-image's PSNR and SSIM, 7x7
    windows; identical images: PSNR 100, not infinite)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # slow import

    out, ref = outputs.astype(np.float64) / 255.0, targets.astype(np.float64) / 255.0
    return {"l1": np.mean(np.abs(out - ref), axis=tuple(range(1, out.ndim))),
            "psnr": np.array([peak_signal_noise_ratio(r, o, data_range=1.0) if np.any(r != o)
                              else 100.0 for o, r in zip(out, ref)]),
            "ssim": np.array([structural_similarity(r, o, data_range=1.0, channel_axis=-1)
                              for o, r in zip(out, ref)])}


def classifier_score(probs, splits: int = 10) -> tuple[float, float]:
    """Inception-Score-style exp(E_x KL(p(y|x) || p(y))), mean and std over `splits` parts."""
    probs = np.clip(_probabilities(probs), 1e-12, 1.0)
    scores = []
    for part in np.array_split(probs, min(splits, len(probs))):
        marginal = part.mean(0, keepdims=True)
        scores.append(math.exp(np.mean(np.sum(part * (np.log(part) - np.log(marginal)), 1))))
    return float(np.mean(scores)), float(np.std(scores))


def coverage(probs) -> dict:
    """Histogram of predicted classes, its entropy (nats and normalized), the largest class's
    share and the classes never predicted: few classes or one dominant one means mode collapse.
    """
    probs = _probabilities(probs)
    classes = probs.shape[1]
    counts = np.bincount(probs.argmax(1), minlength=classes)
    freq = counts / counts.sum()
    entropy = float(-np.sum(freq[freq > 0] * np.log(freq[freq > 0])))
    return {
        "histogram": counts.tolist(),
        "entropy": entropy,
        "entropy_normalized": entropy / math.log(classes) if classes > 1 else 1.0,
        "missing_classes": np.flatnonzero(counts == 0).tolist(),
        "top_class_fraction": float(freq.max()),
    }


# Feature extractors ----------------------------------------------------------------------------


class Extractor:
    """Maps images in [-1, 1] to features (and, for a classifier, class probabilities)."""

    name = ""
    resize = ""  # how images reach the extractor's input size (the metric card says it)
    comparable = False  # whether its FIDs can be set beside papers' (the metric card says it)

    def __init__(self, model, info: dict, notes: tuple[str, ...] = ()):
        self.model, self.info = model, info
        self.notes = list(notes)  # for the metric card's warnings (a cache entry rebuilt)

    @property
    def sha256(self) -> str | None:
        """The first 16 hex digits of the SHA-256 of the extractor's weights file."""
        return file_sha256(self.info.get("path"))

    def __call__(self, images: np.ndarray, batch_size: int = 250):
        feats, probs = [], []
        for i in range(0, len(images), batch_size):
            out = self._predict(images[i : i + batch_size])
            feats.append(out[0])
            if out[1] is not None:
                probs.append(out[1])
        return np.concatenate(feats).astype(np.float64), (np.concatenate(probs) if probs else None)

    def _predict(self, batch):
        features, probs = self.model(batch, training=False)
        return keras.ops.convert_to_numpy(features), keras.ops.convert_to_numpy(probs)


class ClassifierExtractor(Extractor):
    name = "classifier"
    resize = "none: the run's image size (Pillow bicubic where --image-size resized the data)"


class InceptionExtractor(Extractor):
    name = "inception"
    resize = "bilinear to 299x299 (keras.ops.image.resize), gray tiled to RGB"

    def _predict(self, batch):
        x = keras.ops.convert_to_tensor(batch)
        if batch.shape[-1] == 1:  # gray -> RGB by tiling
            x = keras.ops.tile(x, (1, 1, 1, 3))
        x = keras.ops.image.resize(x, (299, 299), interpolation="bilinear")
        return keras.ops.convert_to_numpy(self.model(x, training=False)), None


class FidInceptionExtractor(Extractor):
    name = "fid-inception"
    resize = ("rounded to uint8 pixels as a PNG holds them, gray tiled to RGB, bilinear to "
              "299x299 as pytorch-fid (align_corners=False, no antialiasing)")
    comparable = True

    def _predict(self, batch):
        pixels = np.round((np.clip(batch, -1.0, 1.0) + 1.0) * 127.5) / 255.0  # [0, 1]
        x = keras.ops.convert_to_tensor(pixels.astype(np.float32))
        if batch.shape[-1] == 1:
            x = keras.ops.tile(x, (1, 1, 1, 3))
        x = keras.ops.image.resize(x, (fid_net.SIZE, fid_net.SIZE), interpolation="bilinear",
                                   antialias=False)
        return keras.ops.convert_to_numpy(self.model(2.0 * x - 1.0, training=False)), None


def classifier_key(dataset: str, image_shape) -> str:
    """Cache name of the classifier for a dataset at a shape; files are keyed by their content."""
    shape = "x".join(str(d) for d in image_shape)
    version = f"v{CLASSIFIER_VERSION}"
    if dataset in data_lib.BUILTIN_DATASETS:
        return f"{dataset}-{shape}-{version}"
    digest = hashlib.sha1(dataset_key(dataset).encode()).hexdigest()[:10]
    return f"{data_lib.slug(Path(dataset).stem)}-{digest}-{shape}-{version}"


def dataset_key(dataset: str) -> str:
    """`dataset`, and for files or a TFDS set their fingerprint: a changed dataset is another
    key."""
    key = data_lib.key(dataset)
    return dataset if key == dataset else f"{dataset}:{key}"


def classifier(dataset: str | None, image_size: int | None, path: str | Path | None = None,
               on_train=None, crop: str = "center") -> ClassifierExtractor:
    """The evaluation classifier of `dataset`: loaded from `path` or the cache, else trained.

    Training (a few minutes on a CPU) uses the training split; its accuracy is measured on the
    test split (or, without one, on a held-out tenth of the training split) and saved beside
    the model as JSON. `on_train(path)` is called before training starts. With `path` and no
    `dataset`, the classifier is not checked against a dataset's images.
    """
    train = None if dataset is None else data_lib.load(dataset, image_size, crop=crop)
    if train is not None and train.y is None:
        raise KganError(f"The classifier extractor needs class labels and {dataset} has none. "
                        "Use --features inception.")
    notes, loaded = [], None
    if path is None:
        key = classifier_key(dataset, train.image_shape)
        path = runs.cache_folder("classifiers") / f"{key}.keras"
        # Two evaluations at once: the second waits for the first one's classifier.
        with FileLock(path.with_suffix(".lock")):
            if path.exists():
                try:
                    loaded = _read_classifier(path)
                except Exception as e:  # a damaged cache entry is trained again, not trusted
                    notes.append(f"the cached classifier {path} was damaged ({first_line(e)}) "
                                 "and was trained again")
                    path.unlink()
            if not path.exists():
                if on_train:
                    on_train(path)
                _train_classifier(train, dataset, image_size, path, crop)
    path = Path(path)
    if not path.is_file():
        raise KganError(f"Classifier not found: {path}")
    if loaded is None:
        try:
            loaded = _read_classifier(path)
        except Exception as e:
            raise KganError(f"Cannot load classifier {path}: {first_line(e)}") from None
    model, features, info = loaded
    if train is not None and tuple(model.input_shape[1:]) != train.image_shape:
        raise KganError(f"Classifier {path} takes images of shape {model.input_shape[1:]}, "
                        f"the dataset has {train.image_shape}")
    return ClassifierExtractor(keras.Model(model.input, [features, model.output]),
                               {**info, "path": str(path)}, notes)


def _read_classifier(path: Path) -> tuple:
    """A classifier file, its features layer and its `.json` record, or the reason it is not
    whole (an exception)."""
    if not zipfile.is_zipfile(path):
        raise ValueError("it is not a whole .keras file (cut short, or not a Keras model)")
    model = keras.saving.load_model(path)  # safe_mode stays on: a plain Functional CNN
    features = model.get_layer("features").output
    info_path = path.with_suffix(".json")
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    if not isinstance(info, dict):
        raise ValueError(f"{info_path} holds no JSON object")
    return model, features, info


def _train_classifier(train: data_lib.Dataset, dataset: str, image_size, path: Path,
                      crop: str) -> None:
    # The whole split as float32: the classifier trains on labeled sets of a CPU's size.
    train_x, train_y = np.asarray(train.x), train.y
    try:
        test = data_lib.load(dataset, image_size, split="test", crop=crop)
        test_x, test_y = np.asarray(test.x), test.y
        test_split = "test"
    except NoSplit:  # no test split: hold out a tenth of the training split
        order = np.random.default_rng(0).permutation(len(train_x))
        cut = len(order) // 10
        test_x, test_y = train_x[order[:cut]], train_y[order[:cut]]
        train_x, train_y = train_x[order[cut:]], train_y[order[cut:]]
        test_split = "held-out 10% of train"
    keras.utils.set_random_seed(0)
    inputs = keras.Input(train.image_shape, name="images")
    x = inputs
    for filters in (32, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu", name="features")(x)
    x = layers.Dropout(0.3)(x)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="eval_classifier")
    steps = CLASSIFIER_EPOCHS * math.ceil(len(train_x) / CLASSIFIER_BATCH)
    learning_rate = keras.optimizers.schedules.CosineDecay(2e-3, steps)
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(train_x, train_y, batch_size=CLASSIFIER_BATCH, epochs=CLASSIFIER_EPOCHS, verbose=0)
    _, accuracy = model.evaluate(test_x, test_y, batch_size=500, verbose=0)
    with runs.atomic_path(path) as tmp:
        model.save(tmp)
    info = {"dataset": dataset, "image_shape": list(train.image_shape),
            "num_classes": num_classes, "test_accuracy": round(float(accuracy), 4),
            "test_split": test_split, "train_images": len(train_x), "epochs": CLASSIFIER_EPOCHS,
            "version": CLASSIFIER_VERSION}
    with runs.atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n")


def inception(weights: str | Path | None = None) -> InceptionExtractor:
    """InceptionV3 pool features (2048-d) from local ImageNet weights (downloaded if online)."""
    keras_home = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser()
    weights = Path(weights) if weights else keras_home / "models" / INCEPTION_FILE
    if not weights.is_file():
        _download(INCEPTION_FILE, INCEPTION_URL,
                  "InceptionV3 weights are not on this machine and could not be downloaded "
                  f"({{reason}}). Put {INCEPTION_FILE} (from {INCEPTION_URL}) at {weights}, or "
                  "use --features classifier.", cache_subdir="models")
    try:
        model = keras.applications.InceptionV3(include_top=False, pooling="avg",
                                               weights=str(weights), input_shape=(299, 299, 3))
    except Exception as e:
        raise KganError(f"Cannot load InceptionV3 weights {weights}: "
                        f"{first_line(e)}") from None
    return InceptionExtractor(model, {"path": str(weights)})


def fid_inception(weights: str | Path | None = None) -> FidInceptionExtractor:
    """The FID Inception's pool features (2048-d) from pytorch-fid's weights: `weights`, else
    `$KGAN_FID_WEIGHTS`, else where pytorch-fid or kgan keep them
    (`~/.cache/torch/hub/checkpoints/`, the kgan cache), else downloaded there if online."""
    weights = weights or os.environ.get("KGAN_FID_WEIGHTS")
    if weights:
        weights = Path(weights).expanduser()
        if not weights.is_file():
            raise KganError(f"No FID Inception weights at {weights} (--fid-weights or "
                            f"KGAN_FID_WEIGHTS): expected pytorch-fid's {fid_net.WEIGHTS_FILE}")
    else:
        places = [fid_net.torch_checkpoints(), runs.cache_dir() / "fid"]
        weights = next((p / fid_net.WEIGHTS_FILE for p in places
                        if (p / fid_net.WEIGHTS_FILE).is_file()), None)
        if weights is None:
            weights = _download(
                fid_net.WEIGHTS_FILE, fid_net.WEIGHTS_URL,
                "--features fid-inception needs pytorch-fid's Inception weights, which are not "
                "on this machine and could not be downloaded ({reason}). Download "
                f"{fid_net.WEIGHTS_URL} and give its path with --fid-weights PATH or "
                "KGAN_FID_WEIGHTS.", cache_dir=str(runs.cache_folder()), cache_subdir="fid")
    model = fid_net.network()
    fid_net.load_weights(model, weights)
    return FidInceptionExtractor(model, {"path": str(weights)})


def _download(file: str, url: str, failure: str, **where) -> Path:
    """`keras.utils.get_file` (its progress on stderr: not a result); a failure raises
    `KganError` with `failure`, `{reason}` in it replaced by the error's first line."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return Path(keras.utils.get_file(file, url, **where))
    except Exception as e:
        raise KganError(failure.replace("{reason}", first_line(e))) from None


def extractor(features: str, dataset: str, image_size: int | None,
              classifier_path: str | Path | None = None, on_train=None,
              crop: str = "center") -> Extractor:
    if features == "classifier":
        return classifier(dataset, image_size, classifier_path, on_train, crop)
    if features == "inception":
        return inception()
    if features == "fid-inception":
        return fid_inception()
    raise KganError(f"Unknown features {features!r}. Valid values: {', '.join(EVAL_FEATURES)}. "
                    f"Received: features={features}")


# The metric card -------------------------------------------------------------------------------


def file_sha256(path: str | Path | None) -> str | None:
    """The first 16 hex digits of a file's SHA-256 (None for no file), computed once per
    version of the file."""
    if path is None or not Path(path).is_file():
        return None
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def library_versions() -> dict:
    """The versions that make a number: kgan, Keras and its backend, TensorFlow, NumPy."""
    versions = {"kgan": importlib.metadata.version("kgan"), "keras": keras.__version__,
                "backend": keras.backend.backend(), "numpy": np.__version__}
    for name in ("tensorflow", "tensorflow-cpu"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions["tensorflow"] = importlib.metadata.version(name)
            break
    return versions


def card(extractor: Extractor, n_fake: int, n_real: int, dim: int) -> dict:
    """What every evaluation records beside its numbers: the extractor and a hash of its
    weights, the resize, the library versions, and warnings about too few images."""
    warnings = list(extractor.notes)
    if min(n_fake, n_real) <= dim:
        warnings.append(f"FID from {min(n_fake, n_real)} images in {dim} feature dimensions: "
                        "the covariance is singular and FID unreliable; use n above "
                        f"{dim}")
    if min(n_fake, n_real) < STABLE_FID_N:
        warnings.append(f"FID from {min(n_fake, n_real)} images is biased upwards (the fewer "
                        f"images, the more); compare FIDs only at equal n, and use "
                        f"n >= {STABLE_FID_N} for figures to publish")
    return {"extractor_sha256": extractor.sha256, "resize": extractor.resize,
            "comparable_with_papers": extractor.comparable,
            "statistics": "float64", "versions": library_versions(), "warnings": warnings}


# Evaluation ------------------------------------------------------------------------------------


def real_images(dataset: str, image_size: int | None, n: int, split: str = "test",
                seed: int = 0, crop: str = "center") -> tuple[np.ndarray, str]:
    """Up to `n` real images of `split` (falling back to train when there is no test split),
    read by index: the rest of the split is never read."""
    try:
        real = data_lib.load(dataset, image_size, split=split, crop=crop)
    except NoSplit:  # damaged data is not a missing split: it raises
        real, split = data_lib.load(dataset, image_size, crop=crop), "train"
    order = np.random.default_rng(seed).permutation(len(real.x))[:n]
    return real.x[order], split


class Reference:
    """The real side of a comparison: features of up to `n` real images.

    They are cached per (dataset, image size, split, n, seed, extractor weights) under
    `KGAN_CACHE/real-stats/`, so a repeated evaluation reads them instead of extracting them
    again; `cached` says whether this one did.
    """

    def __init__(self, extractor: Extractor, dataset: str, image_size: int | None, n: int,
                 split: str = "test", seed: int = 0, crop: str = "center"):
        self.extractor, self.seed = extractor, seed
        key = json.dumps([dataset_key(dataset), image_size, split, n, seed, extractor.name,
                          extractor.sha256] + ([] if crop == "center" else [crop]))
        digest = hashlib.sha256(key.encode()).hexdigest()[:20]
        path = runs.cache_folder(REAL_STATS) / f"{digest}.npz"
        self.notes = []  # for the metric card's warnings (a cache entry rebuilt)
        stored = (self._read(path, key) if extractor.sha256 is not None and path.is_file()
                  else None)
        self.cached = stored is not None
        if self.cached:
            self.features, self.split = stored
        else:
            images, self.split = real_images(dataset, image_size, n, split, seed, crop)
            features, _ = extractor(images)
            self.features = features.astype(np.float32).astype(np.float64)  # as cached
            if extractor.sha256 is not None:
                with runs.atomic_path(path) as tmp, open(tmp, "wb") as f:
                    np.savez(f, features=self.features.astype(np.float32),
                             split=np.array(self.split), key=np.array(key))
        self.n = len(self.features)

    def _read(self, path: Path, key: str) -> tuple[np.ndarray, str] | None:
        """The cached features at `path` if they are whole, finite and made for `key`; else
        None, with a note (they are computed again)."""
        try:
            with np.load(path) as stored:  # arrays only: np.load refuses pickles
                features, split = stored["features"], str(stored["split"])
                if str(stored["key"]) != key:
                    raise ValueError("it was made for other settings")
            if features.ndim != 2 or len(features) < 2 or not np.isfinite(features).all():
                raise ValueError(f"its {features.shape} features are not two or more finite rows")
            return features.astype(np.float64), split
        except Exception as e:
            self.notes.append(f"the cached real features {path} were damaged ({first_line(e)}) "
                              "and were computed again")
            return None

    def compare(self, fake: np.ndarray, labels: np.ndarray | None = None) -> dict:
        """All metrics of `fake` (float images in [-1, 1]) against the reference, with protocol."""
        result = compare(fake, self.features, self.extractor, self.seed, self.split, labels)
        result["protocol"]["real_stats_cached"] = self.cached
        result["protocol"]["warnings"] += self.notes
        return result


def compare(fake: np.ndarray, real_features: np.ndarray, extractor: Extractor, seed: int = 0,
            real_split: str = "test", labels: np.ndarray | None = None) -> dict:
    """All metrics of `fake` against real features, and the protocol that produced them.

    With the `labels` a conditional generator was asked for, and a classifier extractor, also
    `label_accuracy`: the fraction of fakes the classifier puts in their requested class.
    """
    fake_features, fake_probs = extractor(fake)
    kid_mean, kid_std = kid(fake_features, real_features, seed=seed)
    result = {"fid": fid(fake_features, real_features), "kid": kid_mean, "kid_std": kid_std}
    if fake_probs is not None:
        score, score_std = classifier_score(fake_probs)
        result.update(classifier_score=score, classifier_score_std=score_std,
                      coverage=coverage(fake_probs))
        if labels is not None:
            result["label_accuracy"] = float(np.mean(fake_probs.argmax(1) == labels))
    result["protocol"] = {
        "n_fake": len(fake), "n_real": len(real_features), "real_split": real_split,
        "features": extractor.name, "extractor": extractor.info.get("path"),
        "classifier_accuracy": extractor.info.get("test_accuracy"), "seed": seed,
        "kid_subset_size": min(1000, len(fake), len(real_features)), "kid_subsets": 100,
        "real_stats_sha256": array_sha256(real_features.astype(np.float32)),
        **card(extractor, len(fake), len(real_features), real_features.shape[1]),
    }
    return result


def to_float(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 images (what users see and exports serve) -> floats in [-1, 1] for the extractor."""
    return images_uint8.astype(np.float32) / 127.5 - 1.0
