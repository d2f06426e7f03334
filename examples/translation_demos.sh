#!/usr/bin/env bash
# Trains and measures the README's image-to-image demos on Fashion-MNIST (about 25 minutes on
# 2 CPU cores): three pix2pix tasks and one CycleGAN pair, each evaluated on 5000 held-out test
# images with `kgan eval --json`.
#
#   bash examples/translation_demos.sh [OUT]   # writes OUT/runs/, OUT/<demo>.json, OUT/<demo>.png
#
# Larger batches than the papers' 1 (pix2pix 16, CycleGAN 4, at 32 filters): on a CPU a batch
# of one leaves most of the cores idle (pix2pix: 42 images/s at batch 1, 160 at batch 16).
set -euo pipefail
out=${1:-translation-demos}
kgan=${KGAN:-kgan}
python=${PYTHON:-python}
mkdir -p "$out"

demo() {
  local name=$1; shift
  local run
  run=$("$kgan" train --runs-dir "$out/runs" --name "$name" --quiet --no-tensorboard "$@")
  "$kgan" eval "$run" --n 5000 --json > "$out/$name.json"
  cp "$(ls "$run"/samples/epoch-*.png | tail -n 1)" "$out/$name.png"
  "$python" - "$run" "$out/$name.json" <<'PY'
import json, sys
records = [json.loads(line) for line in open(sys.argv[1] + "/metrics.jsonl")]
seconds = sum(r.get("seconds", 0) for r in records if "seconds" in r)
r = json.load(open(sys.argv[2]))
shown = {k: round(v, 4) for k, v in r.items() if isinstance(v, float)}
print(f"{sys.argv[2]}: {r['step']} steps, {seconds:.0f} s training, {shown}")
PY
}

demo inpaint --arch pix2pix --dataset fashion_mnist:inpaint --batch-size 16 \
  --epochs 3 --steps-per-epoch 1000
demo superres --arch pix2pix --dataset fashion_mnist:superres --batch-size 16 \
  --epochs 3 --steps-per-epoch 1000
demo edges --arch pix2pix --dataset fashion_mnist:edges --batch-size 16 \
  --epochs 3 --steps-per-epoch 1000
demo sandals2sneakers --arch cyclegan --dataset fashion_mnist:sandals2sneakers \
  --base-filters 32 --batch-size 4 --epochs 2 --steps-per-epoch 750
