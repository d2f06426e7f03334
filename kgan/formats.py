"""A generator in a file format other than SavedModel (`kgan export --format keras|litert|onnx`):
one file per forward path, checked by the format's own runtime in a separate process.

The forward paths are the family's (`Family.forward_paths`): a noise GAN's `generator` (z, and
the labels and truncation psi where the model takes them -> images in [-1, 1]); pix2pix's
`translate`, CycleGAN's `a2b` and `b2a` (images in [-1, 1] -> images in [-1, 1]). Noise is an
input, never a random op inside the file, so LiteRT needs no TensorFlow Select ops.

Every file computes in float32: a run trained in mixed precision (bfloat16 on CPUs that have
it) is rebuilt in float32 with the same weights, because LiteRT would need TensorFlow ops for
bfloat16 and onnxruntime has no bfloat16 kernels for these layers. `kgan.json` records how far
that float32 generator is from the run's own (`run_difference`, in gray levels).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from kgan.errors import KganError, first_line


@dataclass(frozen=True)
class Format:
    suffix: str
    runtime: str  # what runs the file in the check, by its import name
    needs: tuple[str, ...] = ()  # import names of the packages that write and run it


FORMATS = {
    "keras": Format(".keras", "keras"),
    "litert": Format(".tflite", "ai_edge_litert", ("ai_edge_litert",)),
    "onnx": Format(".onnx", "onnxruntime", ("tf2onnx", "onnxruntime")),
}
METADATA = "kgan.json"  # beside the files


def check_installed(format: str) -> None:
    """Refuses a format whose packages are not installed, naming kgan's extra that installs
    them."""
    missing = [name for name in FORMATS[format].needs if importlib.util.find_spec(name) is None]
    if missing:
        raise KganError(f"--format {format} needs the {' and '.join(missing)} "
                        f"package{'s' * (len(missing) > 1)}: pip install 'kgan[{format}]'")


def float32(model: keras.Model) -> keras.Model:
    """`model` itself where it computes in float32, else a float32 copy with its weights."""
    if all(layer.dtype_policy.compute_dtype == "float32" for layer in model.layers):
        return model

    def clone(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def write(format: str, paths: list, folder: Path, verify: bool = True) -> dict:
    """Writes each forward path `(name, model, inputs)` of `paths` as `folder/<name><suffix>`
    in float32 and, with `verify`, checks the files (`_check`). Returns what `kgan.json` says
    of them: per file, its inputs (names, shapes and dtypes, in order) and how far its float32
    model is from `model` on `inputs` (`run_difference`, gray levels); and what was verified."""
    files, calls, expected = {}, [], {}
    for name, model, inputs in paths:
        exact = float32(model)
        target = folder / f"{name}{FORMATS[format].suffix}"
        expected[target.name] = _call(exact, inputs)  # also what the ONNX converter traces
        try:
            if format == "keras":
                exact.save(target)
            else:
                exact.export(str(target), format=format, verbose=False)
            missing = _missing_ops(format, target)
        except Exception as e:  # a converter refusing a layer or an op: its own words
            missing = _missing_ops(format, e)
            if not missing:
                raise KganError(f"--format {format} cannot express the {name} path "
                                f"({first_line(e)}); use --format savedmodel or keras") from None
        if missing:
            lacks = (f"LiteRT has no builtin {', '.join(missing)} op (only TensorFlow Select "
                     "ops, which need TensorFlow on the device)" if format == "litert" else
                     f"ONNX has no {', '.join(missing)} op")
            raise KganError(f"--format {format} cannot express the {name} path: {lacks}; use "
                            "--format savedmodel or keras")
        names = [x.name for x in model.inputs]
        calls.append((target.name, dict(zip(names, inputs))))
        files[target.name] = {
            "inputs": [{"name": x.name, "shape": list(x.shape), "dtype": str(x.dtype)}
                       for x in model.inputs],
            "run_difference": _gray_levels(expected[target.name], _call(model, inputs))}
    about = {"files": files}
    if verify:
        about["verified"] = _check(format, folder, calls, expected)
    return about


# Runs in a fresh interpreter with the format's runtime: LiteRT and onnxruntime without
# TensorFlow, Keras or kgan (as on a phone or an ONNX server); a .keras file in Keras with kgan's
# layers registered (`import kgan.nn`). Feeds each file its inputs (argv[3]) by name, batched and
# the first row alone, and saves the answers in argv[4].
_RUN = r"""
import json, sys
format, folder, requests_file, out_file = sys.argv[1:5]
if format != "keras":
    sys.modules["tensorflow"] = sys.modules["keras"] = sys.modules["kgan"] = None
import numpy as np
requests = np.load(requests_file)
out = {}
for file, names in json.loads(str(requests["files"])):
    path = f"{folder}/{file}"
    if format == "keras":
        import keras, kgan.nn
        model = keras.saving.load_model(path)
        assert getattr(model, "optimizer", None) is None, "a generator holds no optimizer"
        run = lambda feed: np.asarray(model([feed[name] for name in names], training=False))
        version = keras.__version__
    elif format == "litert":
        import ai_edge_litert
        from ai_edge_litert.interpreter import Interpreter
        runner = Interpreter(model_path=path).get_signature_runner()
        run = lambda feed: next(iter(runner(**feed).values()))
        version = ai_edge_litert.__version__
    else:
        import onnxruntime
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        run = lambda feed: session.run(None, feed)[0]
        version = onnxruntime.__version__
    feed = {name: requests[f"{file}/{name}"] for name in names}
    out[file] = run(feed)
    out[f"{file}/alone"] = run({name: value[:1] for name, value in feed.items()})
out["version"] = np.array(version)
np.savez(out_file, **out)
"""


def _check(format: str, folder: Path, calls: list, expected: dict) -> dict:
    """Runs every file of `calls` (`(file, {input name: array})`) in the format's own runtime,
    in a separate process, batched and one row alone: each answer must be finite and within 1
    gray level of `expected` (the float32 generator's). Raises `KganError` naming the first
    failing file; returns the runtime and the largest differences."""
    got = answers(_RUN, [format, str(folder)], {
        "files": np.array(json.dumps([[file, list(feed)] for file, feed in calls])),
        **{f"{file}/{key}": value for file, feed in calls for key, value in feed.items()}},
        f"{FORMATS[format].runtime} could not run the export")
    differences = within_a_gray_level(got, {**expected, **{
        f"{file}/alone": want[:1] for file, want in expected.items()}})
    return {"runtime": f"{FORMATS[format].runtime} {got['version']}",
            "max_difference": max(differences.values()),
            "batch_of_one": max(v for k, v in differences.items() if k.endswith("/alone"))}


def _missing_ops(format: str, written) -> list[str]:
    """The ops the format lacks: from LiteRT's converter error `written`, or read from the ONNX
    file `written` (tf2onnx writes an op it cannot convert as it is, which onnxruntime
    refuses to load)."""
    if format == "litert" and isinstance(written, Exception):
        return sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op",
                                     str(written))))
    if format == "onnx" and isinstance(written, Path):
        import onnx  # tf2onnx's own dependency

        return sorted({node.op_type for node in onnx.load(str(written)).graph.node
                       if not onnx.defs.has(node.op_type, node.domain)})
    return []


def answers(script: str, args: list[str], requests: dict, failure: str) -> dict:
    """Runs `script` in a fresh interpreter with `args`, then the paths of `requests` (saved as
    .npz) and of the .npz it answers in; returns its answers. A failed run raises `KganError`:
    "Export check failed: `failure` (its last line)"."""
    with tempfile.TemporaryDirectory(prefix="kgan-check-") as work:
        asked, answered = Path(work) / "requests.npz", Path(work) / "answers.npz"
        np.savez(asked, **requests)
        done = subprocess.run([sys.executable, "-c", script, *args, str(asked), str(answered)],
                              capture_output=True, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise KganError(f"Export check failed: {failure} ({last}); nothing was published")
        with np.load(answered) as got:
            return {key: got[key] for key in got.files}


def within_a_gray_level(got: dict, expected: dict) -> dict:
    """The largest difference of each answer in `got` from `expected` (by key), in gray levels
    (floats in [-1, 1]: 127.5 a level; uint8: 1); raises `KganError` for an answer that is not
    finite or is more than 1 gray level off."""
    differences = {}
    for key, want in expected.items():
        if not np.isfinite(got[key].astype(np.float64)).all():
            raise KganError(f"Export check failed: {key} answered NaN or inf; nothing was "
                            "published")
        scale = 127.5 if want.dtype.kind == "f" else 1.0
        differences[key] = round(float(np.max(np.abs(got[key].astype(np.float64) - want)))
                                 * scale, 4)
        if differences[key] > 1.0:
            raise KganError(f"Export check failed: {key} differs from the run's generator by "
                            f"{differences[key]:.1f} gray levels (at most 1 allowed); nothing "
                            "was published")
    return differences


def _call(model: keras.Model, inputs: list) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(inputs[0] if len(inputs) == 1 else inputs,
                                            training=False))


def _gray_levels(a: np.ndarray, b: np.ndarray) -> float:
    """The largest difference of two image batches in [-1, 1], in gray levels (127.5 each)."""
    return round(float(np.max(np.abs(a.astype(np.float64) - b))) * 127.5, 4)
