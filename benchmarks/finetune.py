"""Fine-tuning (`kgan train --init-from`) against training from scratch, at equal steps.

    .venv/bin/python benchmarks/finetune.py [--work DIR] [--source-epochs 2] [--per-class 150]
                                            [--stages 10,25,50,100]

1. A source run: the DCGAN on all of Fashion-MNIST (28 px, unconditional) for
   `--source-epochs` epochs.
2. A small folder: `--per-class` images each of two classes (sandals, bags) from the
   Fashion-MNIST *test* set (images the source never saw), as PNGs in one sub-folder per class.
3. Two runs on that folder with the same recipe and seed: one `--init-from` the source, one from
   fresh weights. Each trains in stages (`--resume --epochs E`) and is measured after each.

FID and KID compare 1,000 generated images with the folder's images in the feature space of
the Fashion-MNIST evaluation classifier (`kgan eval --classifier`): the folder's own 300 images
would train a weak classifier. Prints one JSON object; the README's table comes from it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
KGAN = [str(Path(sys.executable).parent / "kgan")]
FASHION = Path("/usr/share/datasets/fashion-mnist")
CLASSES = {"sandal": 5, "bag": 8}
RECIPE = ["--arch", "dcgan", "--batch-size", "32", "--seed", "1", "--quiet", "--no-tensorboard",
          "--no-curves"]


def kgan(*args) -> str:
    done = subprocess.run([*KGAN, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode:
        sys.exit(f"kgan {' '.join(map(str, args))} failed:\n{done.stderr}")
    return done.stdout


def idx(name: str) -> np.ndarray:
    with gzip.open(FASHION / name) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def make_folder(folder: Path, per_class: int) -> None:
    x, y = idx("t10k-images-idx3-ubyte.gz"), idx("t10k-labels-idx1-ubyte.gz")
    for name, label in CLASSES.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i, row in enumerate(np.flatnonzero(y == label)[:per_class]):
            Image.fromarray(x[row]).save(folder / name / f"{i:04d}.png")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path("/tmp/kgan-finetune"))
    parser.add_argument("--source-epochs", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--stages", default="10,25,50,100")
    args = parser.parse_args()
    work, stages = args.work, [int(s) for s in args.stages.split(",")]
    os.environ["KGAN_CACHE"] = str(work / "cache")
    runs, folder = work / "runs", work / "sandals_bags"
    if not folder.exists():
        make_folder(folder, args.per_class)
    start = time.time()
    source = kgan("train", "--dataset", "fashion_mnist", "--epochs", args.source_epochs,
                  "--runs-dir", runs, "--name", "source", *RECIPE).strip()
    source_seconds = time.time() - start
    kgan("eval", "--dataset", "fashion_mnist", "--n", 100)  # trains the classifier (cached)
    classifier = next((work / "cache" / "classifiers").glob("*.keras"))
    result = {"source": {"run": source, "epochs": args.source_epochs,
                         "seconds": round(source_seconds)},
              "folder": {"images": len(CLASSES) * args.per_class, "classes": list(CLASSES)},
              "runs": {}}
    for arm, extra in (("fine-tuned", ["--init-from", source]), ("scratch", [])):
        run, rows = None, []
        for epochs in stages:
            begin = time.time()
            if run is None:
                run = kgan("train", "--dataset", folder, "--image-size", 28, "--epochs", epochs,
                           "--runs-dir", runs, "--name", arm, *RECIPE, *extra).strip()
            else:
                kgan("train", "--resume", run, "--epochs", epochs, "--quiet")
            seconds = time.time() - begin
            measured = json.loads(kgan("eval", run, "--n", 1000, "--classifier", classifier,
                                       "--json"))
            rows.append({"epochs": epochs, "step": measured["step"],
                         "fid": round(measured["fid"], 2), "kid": round(measured["kid"], 4),
                         "seconds": round(seconds)})
            print(json.dumps({arm: rows[-1]}), file=sys.stderr)
        result["runs"][arm] = rows
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
