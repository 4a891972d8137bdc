"""The digits CNN of examples/digits, trained with suanli.train: an ordinary PyTorch loop plus
prepare(), epochs() and checkpoint(). Run it on any number of workers; the global batch stays the same.

Fault injection for tests and benchmarks: --fail-at-epoch E --fail-rank R kills that worker (SIGKILL)
in the middle of epoch E of the first attempt.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import suanli.train as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "digits"))
from train import DigitsCNN, load_data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch", type=int, default=64, help="global batch, split over the workers")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--train-size", type=int, default=1408, help="a multiple of the global batch")
    parser.add_argument("--fail-at-epoch", type=int, default=-1)
    parser.add_argument("--fail-rank", type=int, default=1)
    parser.add_argument("--out", default=os.path.join(os.environ.get("SUANLI_RUN_DIR", "."), "model.pt"))
    args = parser.parse_args()

    world = int(os.environ.get("WORLD_SIZE", 1))
    torch.manual_seed(args.seed)
    x_train, x_test, y_train, y_test = load_data(args.seed)
    train = TensorDataset(x_train[: args.train_size], y_train[: args.train_size])
    loader = DataLoader(train, batch_size=args.batch // world, shuffle=True)
    model = DigitsCNN(dropout=args.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    model, optimizer, loader = st.prepare(model, optimizer, loader, seed=args.seed)
    loss_fn = nn.CrossEntropyLoss()

    started = time.perf_counter()
    steps = 0
    for epoch in st.epochs(args.epochs):
        model.train()
        total, seen = 0.0, 0
        for i, (x, y) in enumerate(loader):
            first_try = os.environ.get("SUANLI_ATTEMPT", "1") == "1"
            this_rank = int(os.environ.get("RANK", 0)) == args.fail_rank
            if epoch == args.fail_at_epoch and i == len(loader) // 2 and first_try and this_rank:
                os.kill(os.getpid(), signal.SIGKILL)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            seen += len(y)
            steps += 1
        st.metric("train_loss", st.mean(total / seen), epoch)  # over all workers' samples
        model.eval()
        with torch.no_grad():
            accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
        st.metric("test_accuracy", accuracy, epoch)
        st.checkpoint()
    elapsed = time.perf_counter() - started
    st.metric("steps_per_second", steps / elapsed if elapsed else 0.0)
    if st.is_main():
        raw = model.module if hasattr(model, "module") else model
        torch.save(raw.state_dict(), args.out)
        print(f"done: {world} workers, final test accuracy {accuracy:.4f}", flush=True)
    st.finish()


if __name__ == "__main__":
    main()
