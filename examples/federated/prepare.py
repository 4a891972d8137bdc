"""Split scikit-learn's digits into participants' partitions and the server's test set.

    python prepare.py --participants 5            # IID partitions in data/
    python prepare.py --participants 10 --shards 2   # non-IID: each participant holds 2 label shards

The partitions shipped in data/ were made with the defaults (5 participants, IID, seed 0).
"""

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--participants", type=int, default=5)
    parser.add_argument("--shards", type=int, default=0, help="label shards per participant (0: IID)")
    parser.add_argument("--test", type=int, default=397, help="images the server keeps for evaluation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "data"))
    args = parser.parse_args()
    x, y = load_digits(return_X_y=True)
    x, y = x.astype(np.uint8), y.astype(np.uint8)
    order = np.random.default_rng(args.seed).permutation(len(y))
    test, train = order[: args.test], order[args.test :]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "test.npz", x=x[test], y=y[test])
    if args.shards:
        train = train[np.argsort(y[train], kind="stable")]
        shards = np.array_split(train, args.participants * args.shards)
        picks = np.random.default_rng(args.seed).permutation(len(shards)).reshape(args.participants, -1)
        parts = [np.concatenate([shards[s] for s in row]) for row in picks]
    else:
        parts = np.array_split(train, args.participants)
    for i, part in enumerate(parts):
        np.savez_compressed(out / f"part-{i}.npz", x=x[part], y=y[part])
    print(f"{len(parts)} partitions of {len(train)} images and a test set of {len(test)} in {out}")


if __name__ == "__main__":
    main()
