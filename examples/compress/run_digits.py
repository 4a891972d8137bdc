"""Compress the digits CNN as a suanli job: train it (or take --weights), write the data, run the search,
and report the result as JSON-line metrics (`suanli run examples/compress/job.yaml`)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def metric(name: str, value: float) -> None:
    print(json.dumps({"metric": name, "value": round(value, 6), "step": 1}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", help="a trained DigitsCNN state_dict (default: train one now)")
    p.add_argument("--out", default=os.path.join(os.environ.get("SUANLI_RUN_DIR", "."), "digits-compressed"))
    p.add_argument("--budget", default="1pt")
    p.add_argument("--objective", default="size")
    p.add_argument("--methods", default=None)
    a = p.parse_args()
    work = Path(a.out).resolve().parent
    work.mkdir(parents=True, exist_ok=True)
    weights = a.weights
    if weights is None:
        weights = str(work / "digits_cnn.pt")
        subprocess.run(
            [sys.executable, str(HERE.parent / "digits" / "train.py"), "--out", weights], check=True
        )
    subprocess.run([sys.executable, str(HERE / "prepare_digits.py"), "--out", str(work)], check=True)

    from suanli.compress import compress

    report = compress(
        f"{HERE / 'digits_model.py'}:build",
        weights=weights,
        task="classification",
        eval_data=str(work / "eval.npz"),
        calib=str(work / "calib.npz"),
        budget=a.budget,
        methods=a.methods,
        objective=a.objective,
        out=a.out,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
    )
    chosen = report["chosen_candidate"]
    print(f"chosen: {chosen['name']}; saved to {report['out_dir']}", flush=True)
    metric("baseline_accuracy_heldout", report["baseline_quality_heldout"])
    metric("compressed_accuracy_heldout", chosen["quality_heldout"])
    metric("size_ratio", chosen["size_ratio"])
    metric("speedup_b1_vs_original", chosen["speedup_b1_vs_original"])


if __name__ == "__main__":
    main()
