#!/usr/bin/env bash
# Trains and measures the README's three recipes (about 35 minutes on 2 CPU cores).
#
#   bash examples/recipes.sh [OUT]     # writes OUT/runs/, OUT/<recipe>.json (kgan eval --json)
#
# Offline stand-ins where the real data cannot be downloaded (this machine reaches no dataset
# hosts): "cifar-like" is Fashion-MNIST padded to 32x32 and tinted with a random colour pair per
# image (RGB, 10 classes, 60k images), "small-folder" is 2000 PNGs of 4 Fashion-MNIST classes in
# one sub-folder per class. Both are built from Debian's dataset-fashion-mnist.
set -euo pipefail
out=${1:-recipes}
kgan=${KGAN:-kgan}
python=${PYTHON:-python}
mkdir -p "$out"

"$python" - "$out" <<'PY'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from kgan import data

out = Path(sys.argv[1])
train = data.load("fashion_mnist")
if not (out / "cifar_like.npz").exists():
    rng = np.random.default_rng(0)
    gray = (np.pad(train.x[..., 0], ((0, 0), (2, 2), (2, 2)), constant_values=-1) + 1) / 2
    ink, paper = rng.uniform(0, 1, (2, len(gray), 1, 1, 3))
    rgb = gray[..., None] * ink + (1 - gray[..., None]) * paper * 0.6
    np.savez(out / "cifar_like.npz", x_train=np.round(rgb * 255).astype(np.uint8),
             y_train=train.y)
folder = out / "small_folder"
if not folder.exists():
    for label, name in enumerate(["tshirt", "trouser", "pullover", "dress"]):
        (folder / name).mkdir(parents=True)
        picks = np.flatnonzero(train.y == label)[:500]
        for i in picks:
            image = np.round((train.x[i, ..., 0] + 1) * 127.5).astype(np.uint8)
            Image.fromarray(image).save(folder / name / f"{i:05d}.png")
PY

recipe() {
  local name=$1; shift
  local run
  run=$("$kgan" train --runs-dir "$out/runs" --name "$name" --quiet "$@")
  "$kgan" eval "$run" --n 5000 --json > "$out/$name.json"
  "$python" - "$out/$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[1]}: FID {r['fid']:.1f}, KID {r['kid']:.3f} ± {r['kid_std']:.3f}, "
      f"label accuracy {r.get('label_accuracy')}, {r['step']} steps")
PY
}

# MNIST-like (28x28 gray, labelled): the MLP GAN trains fast on CPUs; conditional + EMA.
recipe mnist-like --dataset fashion_mnist --conditional --ema 0.999 --epochs 10
# CIFAR-10-like (32x32 RGB, labelled): DCGAN with a projection D, DiffAugment and an average.
recipe cifar-like --dataset "$out/cifar_like.npz" --arch dcgan --conditional \
  --augment translation,color --ema 0.99 --ema-start 800 --epochs 4 --steps-per-epoch 400
# A small custom folder (2000 images): DiffAugment keeps D from memorizing it; R1 steadies D.
recipe small-folder --dataset "$out/small_folder" --image-size 32 --arch dcgan --spectral-norm \
  --augment translation,cutout,color --r1 1 --ema 0.999 --ema-start 300 --epochs 40
