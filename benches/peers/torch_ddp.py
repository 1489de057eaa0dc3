"""PyTorch's side of the report's data-parallel section: one job of a training step (the
report's MLP or LeNet, as torch_peer.py writes them, from kiln's initial parameters) as one
process, or as `--ranks` processes of DistributedDataParallel over Gloo, each with its share
of the batch and `--threads` intra-op threads (`torch.set_num_threads`), started by
torch.multiprocessing.

    python torch_ddp.py --spec SPEC.json --ranks 2 --threads 1 [--warm-up-steps N]
        [--windows W] [--steps S]

SPEC.json is the workload's description the report writes with its inputs beside it
(benches/src/python.rs, `write_inputs`). The job runs as kiln's rank worker does
(benches/src/distributed.rs): a few steps whose whole-batch losses it keeps, untimed steps,
then W windows of S steps each, timed on rank 0 between barriers; then, with several ranks,
S all_reduces of as many floats as the gradients hold, timed apart (DDP overlaps its own
with the backward pass, so they cannot be told apart within a step). Prints one JSON line:
{"windows": [seconds per step, ...], "allreduce": seconds or null, "losses": [...],
"version": torch's}.
"""

import argparse
import json
import os
import socket
import sys
import time

from common import reply
from torch_peer import make_model, make_optimizer, tensor

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

# Steps whose losses are reported, as kiln's LOSS_STEPS.
LOSS_STEPS = 3


def train(rank, args, spec, spec_dir, port, results):
    """One rank: trains, times, and on rank 0 puts the job's result in `results`."""
    torch.set_num_threads(args.threads)
    ranks = args.ranks
    if ranks > 1:
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(port)
        dist.init_process_group("gloo", rank=rank, world_size=ranks)
    model = make_model(spec, spec_dir)
    model.train()
    opt = make_optimizer(spec, model)
    if ranks > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    share = spec["batch"] // ranks
    rows = slice(rank * share, (rank + 1) * share)
    x = tensor(spec_dir, spec["x"])[rows].contiguous()
    labels = tensor(spec_dir, spec["labels"]).long()[rows].contiguous()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        return loss

    losses = []
    for _ in range(LOSS_STEPS):
        loss = step().detach()
        if ranks > 1:
            dist.all_reduce(loss)
            loss /= ranks
        losses.append(loss.item())
    for _ in range(args.warm_up_steps):
        step()
    windows = []
    for _ in range(args.windows):
        if ranks > 1:
            dist.barrier()
        t = time.perf_counter()
        for _ in range(args.steps):
            step()
        windows.append((time.perf_counter() - t) / args.steps)
    allreduce = None
    if ranks > 1:
        flat = torch.zeros(sum(p.numel() for p in model.parameters()))
        dist.barrier()
        t = time.perf_counter()
        for _ in range(args.steps):
            dist.all_reduce(flat)
        allreduce = (time.perf_counter() - t) / args.steps
        dist.barrier()
    if rank == 0:
        results.put({"windows": windows, "allreduce": allreduce, "losses": losses})
    if ranks > 1:
        dist.barrier()
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True)
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warm-up-steps", type=int, default=100)
    parser.add_argument("--windows", type=int, default=7)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    with open(args.spec) as f:
        spec = json.load(f)
    spec_dir = os.path.dirname(os.path.abspath(args.spec))
    if spec["batch"] % args.ranks:
        raise SystemExit(f"a batch of {spec['batch']} does not split over {args.ranks} ranks")
    ctx = mp.get_context("spawn")
    results = ctx.SimpleQueue()
    job = (args, spec, spec_dir, free_port(), results)
    if args.ranks == 1:
        train(0, *job)
    else:
        try:
            mp.spawn(train, args=job, nprocs=args.ranks, join=True)
        except mp.ProcessExitedException as e:
            # A rank that dies after rank 0 has its result (Gloo now and then aborts one as
            # the job ends) does not undo the measurement.
            if results.empty():
                raise
            print(f"torch_ddp.py: after the measurement: {e}", file=sys.stderr)
    result = results.get()
    result["version"] = torch.__version__
    reply(**result)


if __name__ == "__main__":
    main()
