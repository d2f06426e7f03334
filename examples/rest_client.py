#!/usr/bin/env python3
"""Ask a TensorFlow Serving kgan model for images over REST and save them as PNG files.

Needs only NumPy and Pillow (no TensorFlow, no kgan):

    python examples/rest_client.py --url http://localhost:8501/v1/models/fashion:predict \
        --n 16 --seed 7 --out generated/

`--response FILE` reads a saved JSON response instead of calling a server.
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image


def request_images(url: str, n: int, seed: int, truncation: float | None = None) -> dict:
    """POSTs a `generate_n` request (columnar `inputs` format) and returns the JSON response;
    `truncation`: the psi a stylegan export needs (1 for none)."""
    inputs = {"n": n, "seed": seed}
    if truncation is not None:
        inputs["truncation"] = truncation
    body = json.dumps({"signature_name": "generate_n", "inputs": inputs}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def response_to_images(response: dict) -> np.ndarray:
    """TF Serving answers `inputs` requests with `outputs`, `instances` ones with `predictions`.

    Either holds uint8 images [N, H, W, C] as nested lists (a single-output signature gives the
    array itself, a multi-output one a dict keyed by output name).
    """
    result = response.get("outputs", response.get("predictions"))
    if result is None:
        raise ValueError(f"Not a TF Serving predict response: {str(response)[:200]}")
    if isinstance(result, dict):
        result = result["images"]
    return np.asarray(result, dtype=np.uint8)


def save_pngs(images: np.ndarray, out_dir: Path, prefix: str = "image") -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = out_dir / f"{prefix}-{i:04d}.png"
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://localhost:8501/v1/models/kgan:predict")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("generated"))
    parser.add_argument("--truncation", type=float, help="stylegan exports: psi (1 for none)")
    parser.add_argument("--response", type=Path, help="read this saved JSON response instead")
    args = parser.parse_args()
    if args.response:
        response = json.loads(args.response.read_text())
    else:
        response = request_images(args.url, args.n, args.seed, args.truncation)
    for path in save_pngs(response_to_images(response), args.out, f"seed{args.seed}"):
        print(path)


if __name__ == "__main__":
    main()
