"""Data-parallel trials: two ranks per trial, gradients averaged with an allreduce.

Each trial trains the digits MLP on two ranks (``resources.ranks_per_trial: 2``): every
mini-batch is split between them, each computes the gradients of its half, and an allreduce
over the trial's own communicator averages them, so both ranks take the same step. Only the
leader's (rank 0's) reports and checkpoints count; every rank calls ``hpctune.report`` so
that all of them pause or stop together.

    python examples/ddp.py            # numpy MLP, allreduce over hpctune.get_comm() (mpi4py)
    python examples/ddp.py --torch    # PyTorch MLP in DistributedDataParallel over gloo (CPU)
    mpiexec -n 5 python examples/ddp.py

The PyTorch trainable calls ``torch.distributed.init_process_group("gloo")`` with nothing
else: hpctune sets ``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK`` in every process of the trial.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the `examples` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hpctune  # noqa: E402
from examples.digits_mlp import MLP, load_digits_split  # noqa: E402

SPACE = {"lr": hpctune.loguniform(0.01, 0.3), "hidden": hpctune.choice([32, 64]), "momentum": 0.9,
         "l2": 1e-4, "batch": 128, "epochs": 6}


def numpy_ddp(config: dict) -> None:
    """The digits MLP in numpy, data parallel over ``hpctune.get_comm()``."""
    from mpi4py import MPI

    comm = hpctune.get_comm()
    x_train, y_train, x_val, y_val = load_digits_split()
    model = MLP([x_train.shape[1], int(config["hidden"]), 10], seed=hpctune.get_trial_id())
    start = 0
    state = hpctune.get_checkpoint()  # the leader's checkpoint, read by every rank
    if state is not None:
        model.load(state["model"])
        start = int(state["epoch"]) + 1

    def average(grads):
        flat = np.concatenate([g.ravel() for g in grads])
        comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        flat /= comm.Get_size()
        out, offset = [], 0
        for g in grads:
            out.append(flat[offset:offset + g.size].reshape(g.shape))
            offset += g.size
        return out

    for epoch in range(start, int(config["epochs"])):
        rng = np.random.default_rng([hpctune.get_trial_id(), epoch])  # the same order on every rank
        model.train_epoch(x_train, y_train, config["lr"], config["momentum"], config["l2"], int(config["batch"]),
                          rng, average=average, shard=(comm.Get_rank(), comm.Get_size()))
        val_loss, val_acc = model.loss(x_val, y_val)
        hpctune.report({"val_loss": val_loss, "val_acc": val_acc, "ranks": comm.Get_size()},
                       checkpoint={"model": model.state(), "epoch": epoch})


def torch_ddp(config: dict) -> None:
    """The same MLP in PyTorch, wrapped in DistributedDataParallel over gloo (CPU)."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # env://: hpctune set MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK
    try:
        rank, size = dist.get_rank(), dist.get_world_size()
        x_train, y_train, x_val, y_val = (torch.as_tensor(a) for a in load_digits_split())
        x_train, x_val = x_train.float(), x_val.float()
        torch.manual_seed(hpctune.get_trial_id())
        net = torch.nn.Sequential(torch.nn.Linear(x_train.shape[1], int(config["hidden"])), torch.nn.ReLU(),
                                  torch.nn.Linear(int(config["hidden"]), 10))
        model = DistributedDataParallel(net)  # averages the gradients across the trial's ranks
        optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"],
                                    weight_decay=config["l2"])
        start = 0
        state = hpctune.get_checkpoint()
        if state is not None:
            net.load_state_dict({name: torch.as_tensor(value) for name, value in state["model"].items()})
            start = int(state["epoch"]) + 1
        batch = int(config["batch"])
        for epoch in range(start, int(config["epochs"])):
            order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(epoch))
            for first in range(0, len(order), batch):
                idx = order[first:first + batch][rank::size]
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
                optimizer.step()
            with torch.no_grad():
                logits = net(x_val)
                val_loss = float(torch.nn.functional.cross_entropy(logits, y_val))
                val_acc = float((logits.argmax(1) == y_val).float().mean())
            hpctune.report({"val_loss": val_loss, "val_acc": val_acc, "ranks": size},
                           checkpoint={"model": {name: t.numpy() for name, t in net.state_dict().items()},
                                       "epoch": epoch})
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", action="store_true", help="the PyTorch DDP (gloo) trainable")
    parser.add_argument("--samples", type=int, default=4, help="trials to run (default: 4)")
    parser.add_argument("--storage", default="runs", help="where the experiment folder goes")
    args = parser.parse_args(argv)
    return hpctune.run(
        torch_ddp if args.torch else numpy_ddp, name="ddp-torch" if args.torch else "ddp-numpy",
        metric="val_loss", mode="min", num_samples=args.samples, space=SPACE,
        scheduler={"type": "asha", "grace_period": 1, "max_t": 6, "reduction_factor": 2},  # paused, resumed
        resources={"ranks_per_trial": 2}, workers=4, storage=args.storage,
    )


if __name__ == "__main__":
    analysis = main()
    if analysis is not None:
        print("best config:", analysis.best_config)
