"""Shared by the Python peers: the workloads the kiln report wrote, its timing harness, and
the JSON lines the report reads (see benches/src/python.rs).

A peer script runs as `python3 SCRIPT SPEC_DIR`; SPEC_DIR holds spec.json and the inputs as
.npy files (kiln's initial parameters and the MNIST batch for the training steps).
"""

import json
import math
import os
import sys
import time
import traceback

import numpy as np


def emit(**fields):
    """Prints one JSON line for the report."""
    print(json.dumps(fields), flush=True)


def measure(run, warm_up_s, samples, min_sample_s):
    """Times `run` (one iteration, returning once its result is ready) as the Rust harness
    does: warm up, pick iterations per sample, take samples; seconds per iteration."""
    start = time.perf_counter()
    warm = 0
    while warm == 0 or time.perf_counter() - start < warm_up_s:
        run()
        warm += 1
    per = (time.perf_counter() - start) / warm
    iterations = max(1, min(1 << 24, math.ceil(min_sample_s / max(per, 1e-9))))
    seconds = []
    for _ in range(max(1, samples)):
        t = time.perf_counter()
        for _ in range(iterations):
            run()
        seconds.append((time.perf_counter() - t) / iterations)
    return seconds, iterations


def load(spec_dir, name):
    """An input array the report wrote."""
    return np.load(os.path.join(spec_dir, name))


def params(spec_dir, w):
    """kiln's initial parameters by name (linear weights [in, out], convolutions [out, in, k, k])."""
    return {p["name"]: load(spec_dir, p["file"]) for p in w["params"]}


def mlp_layers(w):
    """The names of an MLP's fully connected layers: fc1, fc2, ..."""
    return [f"fc{i}" for i in range(1, len(w["sizes"]))]


# The models the Python peers write: kiln's MLPs and its LeNet-5 (ReLU, max pooling).
NETS = ("mlp", "lenet")


# How many compiles a compile-time workload times, each from scratch.
COMPILE_SAMPLES = 3


def main(engines):
    """Runs every workload of the spec in every engine.

    `engines` maps an engine's name to `make(workload, spec_dir)`, which gives a function
    running one iteration (a training step returns its loss as a float; a compile workload
    compiles anew each call), or None when the engine has no version of the workload."""
    spec_dir = sys.argv[1]
    with open(os.path.join(spec_dir, "spec.json")) as f:
        spec = json.load(f)
    for w in spec["workloads"]:
        for name, make in engines.items():
            wid = w["id"]
            try:
                if w["kind"] in ("train", "compile") and w["net"] not in NETS:
                    emit(workload=wid, engine=name, skipped="this model is not written for the Python peers")
                    continue
                run = make(w, spec_dir)
                if run is None:  # the engine has no version of this workload
                    continue
                if w["kind"] == "train":
                    losses = [float(run()) for _ in range(spec["trajectory_steps"])]
                    emit(workload=wid, engine=name, losses=losses)
                if w["kind"] == "compile":
                    seconds, iterations = measure(run, 0.0, COMPILE_SAMPLES, 0.0)
                else:
                    seconds, iterations = measure(
                        run, spec["warm_up_s"], spec["samples"], spec["min_sample_s"]
                    )
                emit(workload=wid, engine=name, seconds=seconds, iterations=iterations)
            except Exception as e:  # a failing engine is reported, the others go on
                traceback.print_exc(file=sys.stderr)
                emit(workload=wid, engine=name, skipped=f"failed: {type(e).__name__}: {e}")
