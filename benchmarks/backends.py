"""Steps per second of `kgan train` (default `mlp`, batch 64, Fashion-MNIST) on each backend.

    .venv/bin/python benchmarks/backends.py [--steps 300]

Each backend trains in its own process through the real CLI path (input pipeline, callbacks,
checkpoints); the second epoch's rate from metrics.jsonl is reported, so compilation is not
counted. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def measure(backend: str, steps: int, runs_dir: Path) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(
        [sys.executable, "-m", "kgan", "train", "--backend", backend, "--dataset",
         "fashion_mnist", "--epochs", "2", "--steps-per-epoch", str(steps), "--runs-dir",
         str(runs_dir), "--name", backend, "--quiet", "--no-tensorboard"],
        env=env, capture_output=True, text=True, check=True)
    last = json.loads((Path(done.stdout.strip()) / "metrics.jsonl").read_text().splitlines()[-1])
    return {"steps_per_sec": round(steps / last["seconds"], 1),
            "images_per_sec": last["images_per_sec"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = {backend: measure(backend, args.steps, Path(tmp))
                  for backend in ("tensorflow", "jax", "torch")}
    print(json.dumps({"benchmark": "kgan train, mlp, batch 64, fashion_mnist",
                      "cpu_count": os.cpu_count(), "backends": result}, indent=2))


if __name__ == "__main__":
    main()
