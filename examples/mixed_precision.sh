#!/usr/bin/env bash
# Measures the README's float32-vs-bfloat16 FID table (Several devices, Mixed precision): the
# DCGAN on Fashion-MNIST at equal steps (3 epochs of at most 500 steps of batch 128: 1,404),
# two seeds, each run measured with `kgan eval --n 5000` (about 40 minutes on 2 CPU cores).
#
#   bash examples/mixed_precision.sh [OUT]    # writes OUT/runs/ and OUT/<run>.json
set -euo pipefail
out=${1:-mixed_precision}
kgan=${KGAN:-kgan}
mkdir -p "$out"
for seed in 0 1; do
  for precision in --no-mixed-precision --mixed-precision; do
    name=dcgan-seed$seed${precision#--}
    run=$("$kgan" train --arch dcgan --dataset fashion_mnist --batch-size 128 --epochs 3 \
          --steps-per-epoch 500 --seed "$seed" "$precision" --runs-dir "$out/runs" \
          --name "$name" --quiet)
    "$kgan" eval "$run" --n 5000 --json > "$out/$name.json"
    echo "$name: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(f"FID {r[\"fid\"]:.1f} KID {r[\"kid\"]:.2f}")' "$out/$name.json")"
  done
done
