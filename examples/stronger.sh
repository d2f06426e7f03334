#!/usr/bin/env bash
# Measures the README's "Stronger generators" rows (hours on 2 CPU cores; minutes on a GPU):
#
#   bash examples/stronger.sh [OUT]    # writes OUT/runs/, OUT/<run>.json (kgan eval --json)
#
# 1. resnet vs dcgan on 32x32 Fashion-MNIST at equal steps (13,500 of batch 32), both with the
#    same recipe (bce loss, no spectral norm, R1 1, --ema 0.999), FID every 750 steps (2,000
#    images) and at 9,000 and 13,500 steps with `kgan eval --n 5000` against the test set.
# 2. Plain training vs --augment ada on a small dataset: 1,000 Fashion-MNIST training images (a
#    seeded draw) in an .npz whose test split is the full test set, so FID (every 50 epochs)
#    measures the generator against images D never saw; 600 epochs (9,000 steps of batch 64),
#    seeds 0 and 1, and at the end `kgan eval --n 5000` with part 1's Fashion-MNIST classifier.
set -euo pipefail
out=${1:-stronger}
kgan=${KGAN:-kgan}
python=${PYTHON:-python}
mkdir -p "$out"

"$python" - "$out" <<'PY'
import sys
from pathlib import Path

import numpy as np
from kgan import data
from kgan.images import to_uint8

small = Path(sys.argv[1]) / "fm1000.npz"
if not small.exists():
    train, test = data.load("fashion_mnist"), data.load("fashion_mnist", split="test")
    pick = np.random.default_rng(0).choice(len(train.x), 1000, replace=False)
    np.savez(small, x_train=to_uint8(train.x[pick, ..., 0]), y_train=train.y[pick],
             x_test=to_uint8(test.x[..., 0]), y_test=test.y)
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

# 2. The small dataset, plain and with adaptive augmentation (default target 0.6), two seeds.
fm_classifier=$("$python" -c "from kgan import metrics
print(metrics.classifier('fashion_mnist', 32).info['path'])")
small() {
  local name=$1; shift
  run=$("$kgan" train --arch dcgan --dataset "$out/fm1000.npz" --image-size 32 --epochs 600 \
        --eval-every 50 --eval-n 2000 --sample-every 50 --checkpoint-every 50 \
        --runs-dir "$out/runs" --name "$name" --quiet "$@")
  "$kgan" eval "$run" --n 5000 --classifier "$fm_classifier" --json > "$out/$name.json"
}
for seed in 0 1; do
  small "small-plain-s$seed" --seed "$seed"
  small "small-ada-s$seed" --seed "$seed" --augment ada
done

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
    trained = [r for r in records if "r_t" in r]  # not the evaluations
    fids = " ".join(f"{r['epoch']}:{r['fid']:.2f}" for r in trained if "fid" in r)
    print(f"{run.name}: FID by epoch {fids}; last r_t {trained[-1]['r_t']:.2f}, "
          f"p {trained[-1].get('ada_p', 0):.3f}")
PY
