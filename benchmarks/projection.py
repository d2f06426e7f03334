"""How close `kgan project` gets: held-out Fashion-MNIST test images projected into a run,
against the trivial baseline (the nearest of 10,000 random samples), and the run's own images
recovered. Prints JSON.

    python benchmarks/projection.py RUN [RUN ...] [--n 500] [--steps 500]

Measured per run and distance: PSNR (dB) and SSIM at uint8, and the perceptual distance in the
evaluation classifier's features (unit-normalized, squared: the same yardstick for every
distance searched with), means over the images; seconds per image.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kgan import metrics  # noqa: E402
from kgan import project as projection  # noqa: E402

BASELINE_N = 10_000
OWN_N = 100


def measure(images, targets, yardstick) -> dict:
    scores = projection.quality(images, targets)
    perceptual = np.sum((keras.ops.convert_to_numpy(yardstick.features(images))
                         - keras.ops.convert_to_numpy(yardstick.features(targets))) ** 2, 1)
    return {"psnr": round(float(scores["psnr"].mean()), 2),
            "ssim": round(float(scores["ssim"].mean()), 4),
            "perceptual": round(float(perceptual.mean()), 4),
            "psnr_min": round(float(scores["psnr"].min()), 2)}


def nearest_samples(gan, targets, n=BASELINE_N, seed=1):
    """Per target, the nearest (least squared pixel error) of `n` random samples."""
    flat = targets.reshape(len(targets), -1).astype(np.float64)
    best, chosen = np.full(len(targets), np.inf), np.zeros_like(targets)
    for start in range(0, n, 1000):
        samples = keras.ops.convert_to_numpy(gan.generate(1000, seed=seed + start))
        flat_s = samples.reshape(1000, -1).astype(np.float64)
        errors = (flat ** 2).sum(1)[:, None] + (flat_s ** 2).sum(1)[None] - 2 * flat @ flat_s.T
        k = errors.argmin(1)
        better = errors[np.arange(len(targets)), k] < best
        best[better] = errors[np.arange(len(targets)), k][better]
        chosen[better] = samples[k[better]]
    return chosen


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--distances", default="classifier,discriminator")
    args = parser.parse_args()
    out = {"cpu": cpu_name(), "n": args.n, "steps": args.steps, "runs": {}}
    for run in args.runs:
        run_dir, gan, config = projection.load(run)
        targets, _ = metrics.real_images(config.dataset, config.image_size, args.n, "test", 0)
        yardstick = projection.distance("classifier", gan, config)
        result = {"arch": config.arch, "image_shape": list(config.image_shape),
                  "step": int(gan.steps),
                  "nearest_of_10000_samples": measure(nearest_samples(gan, targets), targets,
                                                      yardstick)}
        for kind in args.distances.split(","):
            search = projection.distance(kind, gan, config)
            start, found = time.perf_counter(), []
            for i in range(0, args.n, args.batch):
                found.append(projection.project(gan, targets[i : i + args.batch], search,
                                                steps=args.steps, frames=0).images)
            seconds = (time.perf_counter() - start) / args.n
            result[f"projected, {kind} distance"] = {
                **measure(np.concatenate(found), targets, yardstick),
                "seconds_per_image": round(seconds, 3)}
            print(json.dumps({run: result}), file=sys.stderr, flush=True)
        own = keras.ops.convert_to_numpy(gan.generate(OWN_N, seed=123))
        found = projection.project(gan, own, projection.distance(args.distances.split(",")[0],
                                                                 gan, config),
                                   steps=args.steps, frames=0).images
        result["own_samples_recovered"] = measure(found, own, yardstick)
        out["runs"][str(run_dir)] = result
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
