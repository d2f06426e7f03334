#!/usr/bin/env python3
"""Send PNG files to a TensorFlow Serving kgan model and write the PNGs it answers.

For the `*_png` signatures: `translate_png` (pix2pix), `a2b_png` / `b2a_png` (cyclegan). REST
needs nothing beyond Python; gRPC needs `pip install tensorflow-serving-api`.

    python examples/png_client.py --url http://localhost:8501/v1/models/inpaint:predict \\
        --signature translate_png --out translated/ masked/*.png
    python examples/png_client.py --server localhost:8500 --model inpaint \\
        --signature translate_png --out translated/ masked/*.png
"""

from __future__ import annotations

import argparse
import base64
import json
import urllib.request
from pathlib import Path


def rest_body(signature: str, pngs: list[bytes]) -> dict:
    """The REST request: row format, one `{"b64": ...}` per image (binary goes as base64)."""
    return {"signature_name": signature,
            "instances": [{"b64": base64.b64encode(png).decode()} for png in pngs]}


def rest_pngs(response: dict) -> list[bytes]:
    """The PNG files of a REST response: TF Serving base64-encodes outputs whose name ends in
    `_bytes` (`png_bytes`), as `{"b64": ...}`."""
    return [base64.b64decode(item["b64"]) for item in response["predictions"]]


def grpc_request(model: str, signature: str, pngs: list[bytes]):
    """A `PredictRequest` with the files as the string tensor `png_bytes`."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    request.inputs["png_bytes"].CopyFrom(tf.make_tensor_proto(pngs, dtype=tf.string))
    return request


def grpc_pngs(response) -> list[bytes]:
    return list(response.outputs["png_bytes"].string_val)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="PNG (or JPEG) files to send.")
    parser.add_argument("--url", help="REST predict URL, e.g. "
                        "http://localhost:8501/v1/models/inpaint:predict")
    parser.add_argument("--server", help="gRPC host:port instead, e.g. localhost:8500")
    parser.add_argument("--model", default="kgan", help="Model name (gRPC).")
    parser.add_argument("--signature", default="translate_png")
    parser.add_argument("--out", type=Path, default=Path("translated"))
    args = parser.parse_args()
    pngs = [path.read_bytes() for path in args.files]
    if args.server:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(args.server))
        answers = grpc_pngs(stub.Predict(grpc_request(args.model, args.signature, pngs),
                                         timeout=60.0))
    else:
        body = json.dumps(rest_body(args.signature, pngs)).encode()
        request = urllib.request.Request(args.url or "http://localhost:8501/v1/models/kgan:predict",
                                         body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answers = rest_pngs(json.load(response))
    args.out.mkdir(parents=True, exist_ok=True)
    for path, png in zip(args.files, answers):
        target = args.out / path.with_suffix(".png").name
        target.write_bytes(png)
        print(target)


if __name__ == "__main__":
    main()
