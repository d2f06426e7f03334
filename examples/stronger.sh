#!/usr/bin/env bash
# Measures the README's "Stronger generators" rows (hours on 2 CPU cores; minutes on a GPU):
#
#   bash examples/stronger.sh [OUT]    # writes OUT/runs/, OUT/<run>.json (kgan eval --json)
#
# 1. resnet vs dcgan on 32x32 Fashion-MNIST at equal steps (13,500 of batch 32), both with the
#    same recipe (bce loss, no spectral norm, R1 1, --ema 0.999), FID every 750 steps (2,000
#    images) and at 9,000 and 13,500 steps with `kgan eval --n 5000` against the test set.
# 2. Plain training vs --augment ada on a small folder: 2,000 Fashion-MNIST PNGs (a seeded
#    draw of the training set, one sub-folder per class), 250 epochs, FID every 25 epochs.
set -euo pipefail
out=${1:-stronger}
kgan=${KGAN:-kgan}
python=${PYTHON:-python}
mkdir -p "$out"

"$python" - "$out" <<'PY'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from kgan import data

folder = Path(sys.argv[1]) / "fm2k"
if not folder.exists():
    train = data.load("fashion_mnist")
    for i in np.random.default_rng(0).choice(len(train.x), 2000, replace=False):
        (folder / f"class{train.y[i]}").mkdir(parents=True, exist_ok=True)
        image = np.round((train.x[i, ..., 0] + 1) * 127.5).astype(np.uint8)
        Image.fromarray(image).save(folder / f"class{train.y[i]}" / f"{i:05d}.png")
PY

# 1. Equal steps, equal batch: the residual GAN against the DCGAN.
fashion32() {
  local name=$1; shift
  run=$("$kgan" train "$@" --dataset fashion_mnist --image-size 32 --batch-size 32 \
        --epochs 12 --steps-per-epoch 750 --eval-every 1 --eval-n 2000 --runs-dir "$out/runs" \
        --name "$name" --quiet)
  "$kgan" eval "$run" --n 5000 --json > "$out/$name-9000.json"
  "$kgan" train --resume "$run" --epochs 18 --quiet > /dev/null  # resume is exact
  "$kgan" eval "$run" --n 5000 --json > "$out/$name.json"
}
fashion32 dcgan-r1-ema --arch dcgan --r1 1 --ema 0.999
fashion32 resnet-r1-ema --arch resnet --base-filters 16 --loss bce --no-spectral-norm --r1 1 \
  --ema 0.999

# 2. The small folder, plain and with adaptive augmentation (a target near this DCGAN's r_t
#    while its FID still improves, and the default one).
small() {
  local name=$1; shift
  "$kgan" train --arch dcgan --dataset "$out/fm2k" --image-size 32 --epochs 250 \
    --eval-every 25 --eval-n 2000 --sample-every 25 --runs-dir "$out/runs" --name "$name" \
    --quiet "$@" > /dev/null
}
small small-plain
small small-ada-0.45 --augment ada --ada-target 0.45
small small-ada --augment ada

"$python" - "$out" <<'PY'
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
for path in sorted(out.glob("*.json")):
    r = json.loads(path.read_text())
    print(f"{path.stem}: FID {r['fid']:.2f}, KID {r['kid']:.3f} at step {r['step']}")
for run in sorted((out / "runs").glob("*")):
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    fids = " ".join(f"{r['epoch']}:{r['fid']:.2f}" for r in records if "fid" in r)
    print(f"{run.name}: FID by epoch {fids}; last r_t {records[-1]['r_t']:.2f}, "
          f"p {records[-1].get('ada_p', 0):.3f}")
PY
