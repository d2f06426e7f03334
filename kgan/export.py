"""`export()`: a run's generator -> a TensorFlow SavedModel that TensorFlow Serving loads, or
its forward paths as Keras, LiteRT or ONNX files (`kgan.formats`).

This module is TensorFlow by nature (SavedModel, `tf.function` signatures), so the CLI runs it
on the TensorFlow backend whatever backend trained the run: checkpoints hold plain weights.

Layout written (TF Serving's model base path is `saved_models/<name>`):

    saved_models/<name>/<version>/saved_model.pb, variables/
    saved_models/<name>/<version>/assets.extra/tf_serving_warmup_requests
    saved_models/<name>/<version>/assets.extra/kgan.json
    saved_models/models.config, saved_models/batching_parameters.txt   (`write_server_config`)

and for the other formats (beside TF Serving's versions, which it does not read):

    saved_models/<name>/<format>/<version>/<path>.keras|.tflite|.onnx, kgan.json
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
from filelock import FileLock

from kgan import families, formats, runs, serving, trackers
from kgan.checkpoint import load_gan
from kgan.errors import KganError, first_line

WARMUP = "assets.extra/tf_serving_warmup_requests"
SERVER_CONFIG, BATCHING = "models.config", "batching_parameters.txt"  # in the export root
LOCK = ".kgan-export.lock"  # in saved_models/<name>/: held while a version is claimed


def export(run_dir: str | Path, out_dir: str | Path = "saved_models", name: str | None = None,
           version: int | None = None, force: bool = False, max_batch: int = 1024,
           best: bool = False, ema: bool = True, verify: bool = True,
           format: str = "savedmodel") -> Path:
    """Writes the run's generator as `out_dir/<name>/<version>/` and returns that path
    (`format` other than savedmodel: `out_dir/<name>/<format>/<version>/`, see
    `kgan.formats`).

    The SavedModel is written to a temporary folder beside its target and renamed into place,
    so TF Serving (which watches `out_dir/<name>`) never sees a half-written version. With
    `verify` (default) it is first checked in a TensorFlow-only process (`check`): a failed
    check raises `KganError` and publishes nothing; the result is in `kgan.json`'s `verified`.

    The signatures are the family's (`kgan.families.noise.serving`,
    `kgan.families.translation.serving`), all `tensorflow/serving/predict`. With `ema`
    (default), a run trained with `--ema` exports the moving average of its generator's
    weights.
    """
    if format != "savedmodel":
        if format not in formats.FORMATS:
            raise KganError(f"`format` must be one of savedmodel, {', '.join(formats.FORMATS)}. "
                            f"Received: format={format}")
        formats.check_installed(format)
    if not 0 < max_batch < 2**31:  # the `generate` signature's n is an int32
        raise KganError(f"`max_batch` must be an integer in [1, 2**31). Received: "
                        f"max_batch={max_batch}")
    if version is not None and not 0 < version < 2**63:  # TF Serving's versions are int64
        raise KganError(f"`version` must be an integer in [1, 2**63). Received: version={version}")
    run_dir, config = runs.open_run(run_dir)
    name = name or re.sub(r"^\d{5}-", "", run_dir.name)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise KganError(f"`name` may only use letters, digits, '.', '_' and '-'. Received: "
                        f"name={name}")
    base = Path(out_dir) / name / ("" if format == "savedmodel" else format)
    # Before the slow part; checked again when it is published.
    if version is not None:
        _check_free(base / str(version), force)
    else:
        _next_version(base)  # no version above the last one TF Serving reads
    gan, config = load_gan(run_dir, best, ema=ema)
    try:
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=base, prefix=".export-"))
    except OSError as e:
        raise KganError(f"Cannot write to {base}: {e.strerror or e}") from None
    try:
        family = families.of(config.arch)
        if format == "savedmodel":
            about = {"format": format, **family.write_export(gan, config, tmp, max_batch, ema)}
            # The check's calls, inputs and answers (computed once): also the warm-up requests.
            checks = family.export_checks(gan, min(serving.CHECK_N, max_batch))
            _write_warmup(tmp / WARMUP, name, *checks[:2])
            if verify:
                about["verified"] = check(tmp, *checks)
        else:
            about = {"format": format, "ema": bool(ema and config.ema),
                     **formats.write(format, family.forward_paths(gan, serving.CHECK_N), tmp,
                                     verify)}
        metadata = {
            "name": name, "family": family.name, **about,
            "image_shape": list(config.image_shape),
            # The run's folder name, not the build machine's path to it.
            "dataset": config.dataset, "step": gan.steps, "run": run_dir.resolve().name,
            "checkpoint": runs.BEST if best else runs.CHECKPOINT,
            "training_config": json.loads(config.to_json()),
        }
        published = publish(tmp, base, version, force, metadata,
                            serving.METADATA if format == "savedmodel" else formats.METADATA)
        if format == "savedmodel":
            write_server_config(Path(out_dir), max_batch)
        try:
            trackers.record(run_dir, config, gan.steps,
                            tags={"export": str(published.resolve())})
        except KganError as e:
            raise KganError(f"{e} ({published} is published; the tracker does not know "
                            "it)") from None
        return published
    except OSError as e:
        raise KganError(f"Cannot write to {base}: {e.strerror or e}") from None
    except tf.errors.OpError as e:  # TensorFlow's own writes: "<file>; No space left on device"
        raise KganError(f"Cannot write to {base}: {first_line(e).rpartition('; ')[2]}; "
                        "nothing was published") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# Runs in a fresh interpreter where Keras and kgan cannot be imported: TensorFlow alone, as TF
# Serving would. Calls signatures with the inputs in argv[2] and saves what they answer in
# argv[3]; PNG answers are decoded as a client would.
_CALL_SIGNATURES = r"""
import json, sys
sys.modules["keras"] = sys.modules["kgan"] = None
import numpy as np
import tensorflow as tf
path, requests_file, out_file = sys.argv[1:4]
model = tf.saved_model.load(path)
requests = np.load(requests_file)
out = {}
for call, signature, names in json.loads(str(requests["calls"])):
    answer = model.signatures[signature](**{k: tf.constant(requests[f"{call}/{k}"])
                                            for k in names})
    for key, value in answer.items():
        value = value.numpy()
        if value.dtype == object:
            value = np.stack([tf.io.decode_png(png).numpy() for png in value])
        out[f"{call}/{key}"] = value
np.savez(out_file, **out)
"""
def check(path: Path, calls: list, inputs: dict, expected: dict) -> dict:
    """Checks the SavedModel at `path` against the model it was exported from (with its
    moving average, if exported so), in a separate TensorFlow-only process: `calls`,
    `inputs` and `expected` are that model's answers (`Family.export_checks`).

    Every signature gets fixed inputs (seeded noise and labels, or seeded images; PNG files
    for the `*_png` ones); each answer must be finite and within 1 gray level of the run's own
    generator, and one image alone must match it within a batch (BatchNorm in inference
    mode). Raises `KganError` naming the first failing call; returns what was checked and the
    largest difference in gray levels.
    """
    got = formats.answers(_CALL_SIGNATURES, [str(path)], {
        "calls": np.array(json.dumps(calls)), **inputs},
        "TensorFlow alone could not call the export's signatures")
    differences = formats.within_a_gray_level(got, expected)
    return {"signatures": sorted({signature for _, signature, _ in calls}),
            "max_difference": round(max(differences.values()), 4),
            "batch_of_one": round(max(v for k, v in differences.items()
                                      if k.split("/")[0].endswith("alone")), 4)}


def publish(tmp: Path, base: Path, version: int | None, force: bool, metadata: dict,
            metadata_file: str = serving.METADATA) -> Path:
    """Renames the finished export `tmp` to `base/<version>` (with `version` None, the next
    free one), its `metadata` in `metadata_file`, and returns that path.

    Under a lock on `base`: two exports at once get two versions, where both would otherwise
    take the same one and the second would silently replace the first.
    """
    with FileLock(base / LOCK):
        version = version or _next_version(base)
        target = base / str(version)
        _check_free(target, force)
        metadata = {"name": metadata["name"], "version": version, **metadata}
        (tmp / metadata_file).write_text(json.dumps(metadata, indent=2) + "\n")
        os.chmod(tmp, runs.mode(directory=True))  # mkdtemp's 0700 would lock TF Serving out
        if target.exists():  # --force: swap the new version in, then drop the old one
            old = Path(tempfile.mkdtemp(dir=base, prefix=".export-old-"))
            os.replace(target, old / "v")
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    return target


def write_server_config(root: Path, max_batch: int = 1024) -> None:
    """Writes, beside the models in the export root `root`, what TF Serving is started with:

    - `models.config`: a `ModelServerConfig` listing every model there (each folder with a
      version), its base path relative to the root, serving the latest version;
    - `batching_parameters.txt`: a `BatchingParameters` template for `--enable_batching`
      (batches of up to 64 requests, or the exports' `max_batch` if that is lower, formed
      within 5 ms, on 4 threads: tune it to the server).

    TF Serving resolves the relative paths against its working folder: start it in the root
    (`docker run ... -w /models`)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    with FileLock(root / LOCK):
        listing = model_server_config_pb2.ModelServerConfig()
        for model in sorted(p for p in root.iterdir() if p.is_dir()):
            if any(v.name.isascii() and v.name.isdigit() and (v / "saved_model.pb").is_file()
                   for v in model.iterdir()):
                entry = listing.model_config_list.config.add(
                    name=model.name, base_path=model.name, model_platform="tensorflow")
                entry.model_version_policy.latest.num_versions = 1
        with runs.atomic_path(root / SERVER_CONFIG) as out:
            out.write_text(text_format.MessageToString(listing))
        batching = (f"max_batch_size {{ value: {min(64, max_batch)} }}\n"
                    "batch_timeout_micros { value: 5000 }\n"
                    "max_enqueued_batches { value: 100 }\n"
                    "num_batch_threads { value: 4 }\n")  # tune to the server's cores
        with runs.atomic_path(root / BATCHING) as out:
            out.write_text(batching)


def _check_free(target: Path, force: bool) -> None:
    if target.exists() and not force:
        raise KganError(f"{target} already exists. Use --force to replace it, or another "
                        "--version.")


def _next_version(base: Path) -> int:
    """One above the highest version in `base` (1 for none); there is none above 2**63 - 1."""
    # ASCII digits only: "²" is a digit to str.isdigit, and int() refuses it.
    versions = [int(p.name) for p in base.iterdir() if p.name.isascii() and p.name.isdigit()
                ] if base.is_dir() else []
    highest = max(versions, default=0)
    if highest >= 2**63 - 1:  # TF Serving's versions are int64
        raise KganError(f"{base} holds version {highest}, the highest TF Serving reads: give "
                        "--version a free one below it")
    return highest + 1


def _write_warmup(path: Path, model_name: str, calls: list, inputs: dict) -> None:
    """TF Serving's warm-up file: one `PredictionLog` per signature (`serving_default` first)
    at batch 1 and at the largest batch of `inputs` (`serving.CHECK_N`), from the export check's
    own inputs (`calls` and `inputs` as `Family.export_checks` gives them), so a server's first
    requests of either size find the signature loaded and traced."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    first = {}
    for call, signature, keys in calls:
        first.setdefault(signature, (call, keys))
    largest = max(len(value) for value in inputs.values() if np.ndim(value))
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature in sorted(first, key=lambda name: name != "serving_default"):
            call, keys = first[signature]
            for batch in sorted({1, largest}):
                request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(
                    name=model_name, signature_name=signature))
                for key in keys:
                    value = inputs[f"{call}/{key}"]
                    value = (np.array(batch, value.dtype) if key == "n" else
                             value if np.ndim(value) == 0 else value[:batch])
                    request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
                writer.write(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2
                             .PredictLog(request=request)).SerializeToString())
