"""A peer without a framework, for kiln-bench's tests of the protocol (benches/src/python.rs):
engine `echo` runs any workload of a model the peers write, each iteration sleeping 1 ms, a
training step's losses counting down from 2 by 0.5; `echo compile` has no version of
anything. Needs only Python's standard library."""

import time

from common import serve


def make_echo(w, spec_dir):
    loss = [2.5]

    def run():
        time.sleep(1e-3)
        loss[0] -= 0.5
        return loss[0]

    return run


if __name__ == "__main__":
    serve("echo", "0", {"echo": make_echo, "echo compile": lambda w, spec_dir: None})
