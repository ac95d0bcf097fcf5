"""Checks `ssf serve` against the Open Inference Protocol v2 from outside, with Triton's own client.

Pinned: tritonclient[http]==2.73.0 (pip install "tritonclient[http]==2.73.0" numpy). Start a server,
for example on the demo model with a task directory, then run

    python tools/check_serve_protocol.py --url 127.0.0.1:8000 --task NAME

It runs health (live, ready), server metadata, model metadata and readiness, and infers: a
FP32 [2, 3, S, S] input as JSON and as binary tensor data (the binary-data extension, with binary
outputs), which must give the same logits; encoded PNG images as a binary BYTES input, with
logits and the classification extension's top-k strings; and an unknown task. It checks the
answers' names, shapes, types and values.
"""
import argparse
import struct
import sys
import zlib

import numpy as np
import tritonclient.http as httpclient


def png(width, height, seed):
    """A small RGB PNG of random colours (the image codec is stdlib zlib)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="127.0.0.1:8000")
    parser.add_argument("--task", required=True)
    args = parser.parse_args()
    client = httpclient.InferenceServerClient(url=args.url)
    failures = []

    def check(condition, what):
        print(("ok    " if condition else "FAIL  ") + what)
        if not condition:
            failures.append(what)

    check(client.is_server_live(), "server live")
    check(client.is_server_ready(), "server ready")
    server = client.get_server_metadata()
    check(server.get("name") == "ssf" and "extensions" in server, f"server metadata {server}")
    check(client.is_model_ready(args.task), f"model {args.task} ready")
    meta = client.get_model_metadata(args.task)
    inputs = {i["name"]: i for i in meta["inputs"]}
    outputs = {o["name"]: o for o in meta["outputs"]}
    check(meta["name"] == args.task and "INPUT" in inputs and "logits" in outputs, "model metadata names its input and output")
    shape = inputs["INPUT"]["shape"]
    size = shape[2]
    classes = outputs["logits"]["shape"][1]
    batch = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32)
    tensor = httpclient.InferInput("INPUT", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=False)
    result = client.infer(args.task, [tensor], outputs=[httpclient.InferRequestedOutput("logits", binary_data=False)])
    logits = result.as_numpy("logits")
    check(logits is not None and logits.shape == (2, classes) and logits.dtype == np.float32,
          f"infer: logits {None if logits is None else (logits.shape, logits.dtype)}, expected ((2, {classes}), float32)")
    check(np.isfinite(logits).all(), "infer: finite logits")

    # The same batch as binary tensor data, binary logits back.
    tensor = httpclient.InferInput("INPUT", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=True)
    binary = client.infer(args.task, [tensor], outputs=[httpclient.InferRequestedOutput("logits", binary_data=True)]).as_numpy("logits")
    check(binary is not None and binary.shape == (2, classes) and np.abs(binary - logits).max() <= 1e-5,
          f"binary infer: logits equal the JSON infer's (max |diff| {None if binary is None else float(np.abs(binary - logits).max())})")
    # No outputs named: the client asks for every output in binary.
    default = client.infer(args.task, [tensor]).as_numpy("logits")
    check(default is not None and np.abs(default - logits).max() <= 1e-5, "binary infer with default outputs")

    # Encoded images as a binary BYTES input; logits and top-2 classification strings.
    images = np.array([png(40, 30, 1), png(64, 64, 2), png(17, 23, 3)], dtype=np.object_)
    tensor = httpclient.InferInput("IMAGE", [3], "BYTES")
    tensor.set_data_from_numpy(images, binary_data=True)
    k = min(2, classes)
    result = client.infer(args.task, [tensor], outputs=[httpclient.InferRequestedOutput("logits", binary_data=True),
                                                       httpclient.InferRequestedOutput("labels", binary_data=True, class_count=k)])
    image_logits = result.as_numpy("logits")
    labels = result.as_numpy("labels")
    check(image_logits is not None and image_logits.shape == (3, classes), f"BYTES infer: logits {None if image_logits is None else image_logits.shape}")
    ok = labels is not None and labels.shape == (3, k)
    if ok:
        for row, values in zip(labels, image_logits):
            parts = [item.decode().split(":", 2) for item in row]
            ok = ok and [int(p[1]) for p in parts] == list(np.argsort(-values)[:k])
            ok = ok and all(0 < float(p[0]) <= 1 for p in parts)
    check(ok, f"BYTES infer: classification strings name the top-{k} classes ({None if labels is None else labels.tolist()})")
    try:
        client.get_model_metadata("no-such-task")
        check(False, "unknown task refused")
    except Exception as error:  # the client raises InferenceServerException with the server's message
        check("unknown task" in str(error), f"unknown task refused: {error}")
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
