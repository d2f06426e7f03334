#!/usr/bin/env python3
"""Ask a TensorFlow Serving kgan model for images over gRPC (port 8500).

    pip install tensorflow-serving-api
    python examples/grpc_client.py --model fashion --n 16 --seed 7
"""

from __future__ import annotations

import argparse


def build_request(model: str, n: int, seed: int, truncation: float | None = None):
    """A `PredictRequest` for the `generate_n` signature: `n` int32 and `seed` int64 scalars
    (and a stylegan export's `truncation`, float32)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "generate_n"
    request.inputs["n"].CopyFrom(tf.make_tensor_proto(n, dtype=tf.int32))
    request.inputs["seed"].CopyFrom(tf.make_tensor_proto(seed, dtype=tf.int64))
    if truncation is not None:
        request.inputs["truncation"].CopyFrom(tf.make_tensor_proto(truncation, dtype=tf.float32))
    return request


def main() -> None:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="localhost:8500")
    parser.add_argument("--model", default="kgan")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--truncation", type=float, help="stylegan exports: psi (1 for none)")
    args = parser.parse_args()
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(args.server))
    response = stub.Predict(build_request(args.model, args.n, args.seed, args.truncation),
                            timeout=30.0)
    images = tf.make_ndarray(response.outputs["images"])  # uint8 [n, H, W, C]
    print(images.shape, images.dtype)


if __name__ == "__main__":
    main()
