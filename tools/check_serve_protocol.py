"""Checks `ssf serve` against the Open Inference Protocol v2 from outside, with Triton's own client.

Pinned: tritonclient[http]==2.73.0 (pip install "tritonclient[http]==2.73.0" numpy). Start a server,
for example on the demo model with a task directory, then run

    python tools/check_serve_protocol.py --url 127.0.0.1:8000 --task NAME

It runs health (live, ready), server metadata, model metadata and readiness, and an infer with a
FP32 [2, 3, S, S] input and JSON outputs, and checks the answers' names, shapes and types.
Binary tensor data (the protocol's binary-data extension) is not served yet: the infer uses
`binary_data=False` on both sides.
"""
import argparse
import sys

import numpy as np
import tritonclient.http as httpclient


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
    try:
        client.get_model_metadata("no-such-task")
        check(False, "unknown task refused")
    except Exception as error:  # the client raises InferenceServerException with the server's message
        check("unknown task" in str(error), f"unknown task refused: {error}")
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
