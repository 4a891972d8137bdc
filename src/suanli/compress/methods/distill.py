"""Knowledge distillation: a smaller student (fewer layers, narrower, or the user's own) learns to
reproduce the teacher's outputs on the user's (unlabelled) data. Also used to recover after pruning.

Runs inside the compress payload, or on its own as a job:
`python -m suanli.compress.methods.distill --teacher MODEL --student layers=3 --data train.csv --out DIR`.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from suanli.compress.methods import NotApplicable


def make_student(teacher: Any, spec: str, io: str) -> Any:
    """`layers=N` keeps N evenly spaced encoder layers, `width=F` keeps a fraction F of the units,
    `file.py:factory` builds the user's student."""
    key, eq, val = spec.partition("=")
    if eq and key == "layers":
        if not hasattr(teacher, "encoder") or not hasattr(teacher.encoder, "layer"):
            raise NotApplicable("distill:layers=N needs a transformer encoder (model.encoder.layer)")
        import torch

        student = copy.deepcopy(teacher)
        total = len(student.encoder.layer)
        n = int(float(val))
        if n >= total:
            raise NotApplicable(f"the teacher has {total} layers; the student needs fewer")
        keep = sorted({round(i) for i in np.linspace(0, total - 1, n)})
        student.encoder.layer = torch.nn.ModuleList([student.encoder.layer[i] for i in keep])
        student.config.num_hidden_layers = len(keep)
        return student
    if eq and key == "width":
        from suanli.compress.methods.prune import prune

        return prune(teacher, 1 - float(val), io)[0]
    from suanli.compress.tasks import load_function

    return load_function(spec, "methods")()


def train(
    student: Any,
    teacher: Any,
    inputs: Any,
    io: str,
    *,
    tokenizer: Any = None,
    normalize: bool = False,
    max_length: int = 128,
    epochs: int = 3,
    lr: float | None = None,
    batch: int = 32,
    seed: int = 0,
    log: Any = None,
) -> Any:
    """Fit `student` to `teacher`'s outputs on `inputs` (arrays or sentences); returns the student."""
    import torch

    from suanli.compress.models import mean_pool

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    teacher.eval()

    def forward(model: Any, rows: Any) -> Any:
        if io == "text":
            enc = tokenizer(
                list(rows), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            return mean_pool(model(**enc).last_hidden_state, enc["attention_mask"], normalize)
        return model(torch.from_numpy(np.ascontiguousarray(rows)))

    n = len(inputs)
    targets = []
    with torch.no_grad():
        for i in range(0, n, 128):
            targets.append(forward(teacher, inputs[i : i + 128]))
    target = torch.cat(targets)
    lr = lr or (1e-4 if io == "text" else 1e-3)
    opt = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.0)
    steps = epochs * ((n + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1)
    student.train()
    started = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(n)
        total = 0.0
        for i in range(0, n, batch):
            idx = order[i : i + batch]
            rows = [inputs[j] for j in idx] if io == "text" else inputs[idx]
            out = forward(student, rows)
            if io == "text":
                loss = (1 - torch.nn.functional.cosine_similarity(out, target[idx], dim=-1)).mean()
            else:
                loss = torch.nn.functional.mse_loss(out, target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if log:
            log(
                f"distill epoch {epoch + 1}/{epochs}: loss {total / n:.5f} "
                f"({time.perf_counter() - started:.0f} s)"
            )
    student.eval()
    return student


def main(argv: list[str] | None = None) -> int:
    """Distil a teacher into a student as a standalone job; prints JSON-line metrics."""
    from suanli.compress.data import load_data
    from suanli.compress.models import load_source, save_tokenizer, save_torch
    from suanli.core.errors import SuanliError

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--teacher", required=True)
    p.add_argument("--weights")
    p.add_argument("--student", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    try:
        src = load_source(a.teacher, a.weights)
        data = load_data(a.data, "data")
        inputs = data.sentences() if data.kind == "text" else data.x
        student = make_student(src.module, a.student, src.io)
        student = train(
            student,
            src.module,
            inputs,
            src.io,
            tokenizer=src.tokenizer,
            normalize=src.normalize,
            epochs=a.epochs,
            log=lambda m: print(m, file=sys.stderr),
        )
    except SuanliError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    out = Path(a.out)
    save_torch(
        student,
        student,
        out,
        {
            "io": src.io,
            "normalize": src.normalize,
            "max_length": src.max_length,
            "import_paths": src.import_paths,
            "recipe": f"distill:{a.student}",
        },
    )
    save_tokenizer(src, out)
    params = sum(t.numel() for t in student.parameters())
    print(json.dumps({"metric": "student_parameters", "value": params, "step": a.epochs}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
