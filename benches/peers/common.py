"""Shared by the Python peers: the long-lived process the kiln report talks to over JSON lines
(the protocol is documented in benches/src/python.rs), its timing, and the helpers the
peers' models share.

A peer script runs as `python3 SCRIPT`, reads one request per line on stdin and writes one
reply per request on stdout. Workload inputs (kiln's initial parameters, the batch) are .npy
files in the directory each `setup` request names.
"""

import gc
import json
import os
import sys
import time
import traceback

# Replies go to the original stdout; anything else printed, by Python or by a library's C
# code, goes to stderr so that it cannot be taken for a reply.
_REPLIES = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr


def reply(**fields):
    """Writes one reply line."""
    _REPLIES.write(json.dumps(fields) + "\n")
    _REPLIES.flush()


def status_kib(key):
    """A field of /proc/self/status in KiB (VmHWM: the peak resident memory, VmRSS: now);
    0 where /proc cannot tell."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_kib():
    return status_kib("VmHWM")


def load(spec_dir, name):
    """An input array the report wrote."""
    import numpy as np

    return np.load(os.path.join(spec_dir, name))


def params(spec_dir, w):
    """kiln's initial parameters (and batch norm's running statistics) by name: linear
    weights [in, out], convolutions [out, in, k, k], LSTM weights [in, 4 hidden] with the
    gates in the order i, f, g, o."""
    return {p["name"]: load(spec_dir, p["file"]) for p in w["params"]}


def mlp_layers(w):
    """The names of an MLP's fully connected layers: fc1, fc2, ..."""
    return [f"fc{i}" for i in range(1, len(w["sizes"]))]


# The models the Python peers write: kiln's MLPs, its LeNet-5 (ReLU, max pooling), its LSTMs
# (`lstm`: 28 steps of an MNIST digit's rows; `lstm_32x32`: the digit padded to 32x32), and
# the image models (the course's Keras CNN, the CIFAR CNN, ResNet-18's layout).
NETS = ("mlp", "lenet", "lstm", "lstm_32x32", "keras_cnn", "cifar_cnn", "resnet18")

# The models whose compile time the Python peers do not measure: compiling them takes tens of
# seconds per sample in torch.compile.
NO_COMPILE_TIME = ("keras_cnn", "cifar_cnn", "resnet18")

# CIFAR CNN's convolutions: (name, in channels, out channels); a 2x2 max pool after the
# second and the fourth.
CIFAR_CONVS = [("conv1", 3, 64), ("conv2", 64, 64), ("conv3", 64, 128), ("conv4", 128, 128)]


def resnet18_blocks():
    """ResNet-18's basic blocks as (name, in channels, out channels, stride), in order."""
    blocks, c_in = [], 64
    for stage, c in enumerate([64, 128, 256, 512]):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            blocks.append((f"layer{stage + 1}.{block}", c_in, c, stride))
            c_in = c
    return blocks


def lstm_rows(w):
    """(steps, features, padding on each side) of an LSTM model's sequence of rows."""
    return (28, 28, 0) if w["net"] == "lstm" else (32, 32, 2)


class Runner:
    """One engine's version of one workload: `run()` is one iteration."""

    def __init__(self, run, train):
        self.run = run
        self.train = train

    def step(self):
        out = self.run()
        return float(out) if self.train else None

    def warm_up(self, seconds):
        start = time.perf_counter()
        n = 0
        while n == 0 or time.perf_counter() - start < seconds:
            self.run()
            n += 1
        return (time.perf_counter() - start) / n, n

    def sample(self, iterations):
        t = time.perf_counter()
        for _ in range(iterations):
            self.run()
        return (time.perf_counter() - t) / max(1, iterations)


def serve(framework, version, engines):
    """Answers the report's requests until `quit` or the end of stdin.

    `engines` maps an engine's name to `make(workload, spec_dir)`, which gives a function
    running one iteration (a training step returns its loss; a compile workload compiles
    anew each call), or None when the engine has no version of the workload's kind."""
    reply(framework=framework, version=version, engines=list(engines), rss_kib=status_kib("VmRSS"))
    runners = {}
    next_handle = 0
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            op = req.get("op")
            if op == "setup":
                w, name = req["workload"], req["engine"]
                if w["kind"] in ("train", "compile") and w["net"] not in NETS:
                    reply(skipped=f"the model {w['net']} is not written for the Python peers")
                    continue
                run = engines[name](w, req["dir"])
                if run is None:
                    reply(absent=True)
                    continue
                if w["kind"] == "compile" and w["net"] in NO_COMPILE_TIME:
                    reply(skipped="compile time of this model not measured in the Python peers")
                    continue
                runners[next_handle] = Runner(run, w["kind"] == "train")
                reply(handle=next_handle)
                next_handle += 1
            elif op == "run":
                reply(loss=runners[req["handle"]].step())
            elif op == "warm_up":
                per, n = runners[req["handle"]].warm_up(req["seconds"])
                reply(seconds=per, iterations=n)
            elif op == "sample":
                reply(seconds=runners[req["handle"]].sample(req["iterations"]))
            elif op == "drop":
                runners.pop(req["handle"], None)
                gc.collect()
                reply()
            elif op == "peak_rss":
                reply(peak_kib=peak_kib())
            elif op == "quit":
                reply()
                break
            else:
                reply(error=f"unknown request {op!r} in {line}")
        except Exception as e:  # a failing request is reported; the process goes on
            traceback.print_exc(file=sys.stderr)
            reply(error=f"{type(e).__name__}: {e}")
