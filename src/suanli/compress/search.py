"""The accuracy-driven search: build candidates from cheapest to most aggressive, evaluate each in its
own process, fall back sensitive layers to fp32 when a candidate breaks the budget on the validation
split, and return the fastest (or smallest) candidate that also holds on the held-out split.

The output directory is written under a temporary name next to the target and renamed at the end, so
a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from suanli.compress import spec as S
from suanli.compress.data import Data, load_data, save_eval, split
from suanli.compress.evaluate import run_evaluation
from suanli.core.errors import BadInput, SuanliError

FALLBACK_FRACTIONS = (0.1, 0.25, 0.5)
DEFAULT_RECIPES = "int8-weight,int8-dynamic,int8-static,int4-weight,prune:0.3"


@dataclass
class Candidate:
    """One evaluated variant; `reference` rows (the original, its fp32 ONNX export) are never chosen."""

    name: str
    runtime: str
    recipe: str
    reference: bool = False
    path: Path | None = None
    result: dict = field(default_factory=dict)
    holds_val: bool = False
    holds_heldout: bool = False
    chosen: bool = False
    note: str = ""

    def row(self) -> dict:
        return {
            "name": self.name,
            "runtime": self.runtime,
            "recipe": self.recipe,
            "reference": self.reference,
            "holds_budget_val": self.holds_val,
            "holds_budget_heldout": self.holds_heldout,
            "chosen": self.chosen,
            "note": self.note,
            **self.result,
        }


class _Search:
    def __init__(
        self,
        source: Any,
        opts: S.CompressOptions,
        data_file: Path,
        calib: Data,
        val: Data,
        work: Path,
        progress: Callable[[str], None],
    ) -> None:
        self.src = source
        self.opts = opts
        self.data_file = data_file
        self.calib = calib
        self.val = val
        self.work = work
        self.say = progress
        self.candidates: list[Candidate] = []
        self.baseline: dict = {}
        self.reference_outputs = work / "reference.npz"
        self.structs: dict[str, Any] = {}
        self.onnx_fp32: Path | None = None

    # ------------------------------------------------------------------ building blocks

    def manifest(self, recipe: str, module: Any = None) -> dict:
        params = None
        if module is not None:
            params = int(sum(p.numel() for p in module.parameters()))
        elif self.src.module is not None:
            params = int(sum(p.numel() for p in self.src.module.parameters()))
        return {
            "io": self.src.io,
            "normalize": self.src.normalize,
            "max_length": self.src.max_length,
            "import_paths": self.src.import_paths,
            "recipe": recipe,
            "parameters": params,
        }

    def new_dir(self, name: str) -> Path:
        d = (
            self.work
            / f"c{len(self.candidates):02d}-{''.join(ch if ch.isalnum() else '_' for ch in name)[:40]}"
        )
        d.mkdir(parents=True)
        return d

    def save_onnx(self, onnx_file: Path, d: Path, manifest: dict) -> Path:
        from suanli.compress.models import MANIFEST, save_tokenizer

        if onnx_file.parent != d:
            shutil.copy(onnx_file, d / "model.onnx")
            onnx_file = d / "model.onnx"
        (d / MANIFEST).write_text(
            json.dumps({**manifest, "format": "onnx", "files": [onnx_file.name]}, indent=2)
        )
        save_tokenizer(self.src, d)
        return d

    def save_module(self, module: Any, skeleton: Any, d: Path, manifest: dict) -> Path:
        from suanli.compress.models import save_tokenizer, save_torch

        save_torch(module, skeleton, d, manifest)
        save_tokenizer(self.src, d)
        return d

    def example(self, n: int = 2) -> Any:
        return self.val.a[:n] if self.src.io == "text" else self.val.x[:n]

    def export(self, module: Any, d: Path) -> Path:
        from suanli.compress.methods.export import export_onnx

        return export_onnx(
            module,
            self.src.io,
            self.example(),
            d / "model.onnx",
            tokenizer=self.src.tokenizer,
            normalize=self.src.normalize,
        )

    def calib_feeds(self, n: int = 128, batch: int = 16) -> list[dict]:
        if self.src.io == "text":
            sents = self.calib.sentences()[:n]
            feeds = []
            for i in range(0, len(sents), batch):
                enc = self.src.tokenizer(
                    sents[i : i + batch],
                    padding=True,
                    truncation=True,
                    max_length=self.src.max_length,
                    return_tensors="np",
                )
                feeds.append({k: v.astype(np.int64) for k, v in enc.items()})
            return feeds
        import onnxruntime as ort

        name = (
            ort.InferenceSession(str(self.onnx_fp32), providers=["CPUExecutionProvider"]).get_inputs()[0].name
        )
        x = self.calib.x[:n]
        return [{name: np.ascontiguousarray(x[i : i + batch])} for i in range(0, len(x), batch)]

    def evaluate(self, cand: Candidate, *, save_reference: bool = False) -> Candidate:
        self.say(f"evaluating {cand.name}")
        out = cand.path / "result.json"
        cand.result = run_evaluation(
            cand.path,
            self.data_file,
            self.opts.task,
            out,
            threads=self.opts.threads,
            device=self.opts.target,
            repeats=self.opts.repeats,
            reference=None if save_reference else self.reference_outputs,
            save_outputs=self.reference_outputs if save_reference else None,
        )
        with contextlib.suppress(FileNotFoundError):
            out.unlink()
        if "error" not in cand.result and self.baseline:
            floor_val = self.opts.budget.floor(self.baseline["quality_val"])
            floor_hold = self.opts.budget.floor(self.baseline["quality_heldout"])
            cand.holds_val = cand.result["quality_val"] >= floor_val - 1e-12
            cand.holds_heldout = cand.result["quality_heldout"] >= floor_hold - 1e-12
            for split_name in ("val", "heldout"):
                cand.result[f"drop_{split_name}"] = self.opts.budget.drop(
                    self.baseline[f"quality_{split_name}"], cand.result[f"quality_{split_name}"]
                )
        self.candidates.append(cand)
        return cand

    # ------------------------------------------------------------------ the search

    def run(self, recipes: list[S.Recipe], runtimes: list[str]) -> None:
        src = self.src
        d = self.new_dir("original")
        if src.format == "onnx":
            self.save_onnx(src.onnx_path, d, self.manifest("original"))
        else:
            self.save_module(src.module, src.module, d, self.manifest("original"))
        orig = self.evaluate(
            Candidate(f"original ({src.format} fp32)", src.format, "original", True, d), save_reference=True
        )
        if "error" in orig.result:
            raise SuanliError(f"the original model could not be evaluated: {orig.result['error']}")
        self.baseline = dict(orig.result)
        orig.holds_val = orig.holds_heldout = True
        orig.result.update({"drop_val": 0.0, "drop_heldout": 0.0})
        if self.opts.task == "fidelity":
            orig.result.update({"quality_val": 1.0, "quality_heldout": 1.0})
            self.baseline.update({"quality_val": 1.0, "quality_heldout": 1.0})
        if "onnx" in runtimes:
            if src.format == "onnx":
                self.onnx_fp32 = src.onnx_path
            else:
                d = self.new_dir("onnx fp32")
                self.say("exporting to ONNX")
                self.onnx_fp32 = self.export(src.module, d)
                self.save_onnx(self.onnx_fp32, d, self.manifest("export"))
                self.evaluate(Candidate("onnx fp32", "onnx", "export", True, d))
        for recipe in recipes:
            for runtime in runtimes:
                self.try_recipe(recipe, runtime)

    def structural(self, step: S.Method) -> Any:
        """The pruned or distilled fp32 module for a structural step (built once, reused by runtimes)."""
        if step.text in self.structs:
            return self.structs[step.text]
        from suanli.compress.methods import distill, prune

        src = self.src
        inputs = list(dict.fromkeys(self.calib.sentences())) if src.io == "text" else self.calib.x
        if step.name == "prune":
            self.say(f"pruning {step.arg} of the units")
            module, _info = prune.prune(src.module, float(step.arg), src.io)
            epochs = self.opts.distill_epochs or (1 if src.io == "text" else 20)
        else:
            self.say(f"building student {step.arg}")
            module = distill.make_student(src.module, step.arg, src.io)
            epochs = self.opts.distill_epochs or (2 if src.io == "text" else 30)
        self.say(f"distilling {step.text} on {len(inputs)} calibration inputs")
        module = distill.train(
            module,
            src.module,
            inputs,
            src.io,
            tokenizer=src.tokenizer,
            normalize=src.normalize,
            epochs=epochs,
            seed=self.opts.seed,
            log=self.say,
        )
        self.structs[step.text] = module
        return module

    def try_recipe(
        self, recipe: S.Recipe, runtime: str, exclude_fraction: float = 0.0, per_channel: bool = False
    ) -> Candidate | None:
        q = recipe.quant
        st = recipe.structural
        if runtime == "onnx" and q is not None and q.name == "int8-weight":
            return None  # ONNX Runtime has no int8 weight-only CPU kernel: not a candidate
        if runtime == "torch" and q is not None and q.name in ("int8-static", "int4-weight"):
            return None  # torchao has no CPU kernel for these here: ONNX Runtime covers them
        if q is not None and q.name == "int8-static" and self.calib is None:
            return None
        if runtime == "torch" and self.src.format == "onnx":
            return None
        label = f"{runtime} {recipe.text}"
        if per_channel:
            label += " per-channel"
        if exclude_fraction:
            label += f", {exclude_fraction:.0%} layers fp32"
        d = self.new_dir(label)
        cand = Candidate(label, runtime, recipe.text, path=d)
        try:
            base = self.src.module
            if st is not None:
                base = self.structural(st)
            self.say(f"building {label}")
            if runtime == "torch":
                module, skip = base, []
                if q is not None:
                    from suanli.compress.methods import torchao_quant

                    ranked = torchao_quant.sensitivity(base)
                    skip = ranked[: round(len(ranked) * exclude_fraction)]
                    module = torchao_quant.quantize(base, q.name, skip=skip)
                self.save_module(module, base, d, self.manifest(recipe.text, base))
            else:
                from suanli.compress.methods import ort_quant

                fp32 = self.onnx_fp32 if st is None else self.export(base, d / "fp32")
                if st is not None:
                    fp32 = d / "fp32" / "model.onnx"
                ranked = ort_quant.sensitivity(fp32)
                skip = ranked[: round(len(ranked) * exclude_fraction)]
                dst = d / "model.onnx"
                if q is None:
                    shutil.copy(fp32, dst)
                elif q.name == "int8-dynamic":
                    ort_quant.int8_dynamic(fp32, dst, per_channel=per_channel, exclude=skip)
                elif q.name == "int8-static":
                    ort_quant.int8_static(
                        fp32, dst, self.calib_feeds(), per_channel=per_channel, exclude=skip
                    )
                else:
                    ort_quant.int4_weight(fp32, dst, exclude=skip)
                if st is not None:
                    shutil.rmtree(d / "fp32", ignore_errors=True)
                self.save_onnx(dst, d, self.manifest(recipe.text, base))
        except Exception as e:
            cand.result = {
                "error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"[:300]
            }
            self.say(f"{label}: {cand.result['error']}")
            self.candidates.append(cand)
            return cand
        self.evaluate(cand)
        if cand.holds_val or "error" in cand.result:
            return cand
        # Fall back: per-channel scales, then the most sensitive layers in fp32, then a milder prune.
        if (
            q is not None
            and q.name != "int8-weight"
            and not per_channel
            and runtime == "onnx"
            and q.name != "int4-weight"
        ):
            cand.note = "broke the budget; retried per-channel"
            nxt = self.try_recipe(recipe, runtime, 0.0, True)
            if nxt is not None and nxt.holds_val:
                return nxt
        if q is not None:
            for frac in FALLBACK_FRACTIONS:
                if frac > exclude_fraction:
                    cand.note = "broke the budget; sensitive layers fall back to fp32"
                    nxt = self.try_recipe(recipe, runtime, frac, per_channel or runtime == "onnx")
                    return nxt
        if st is not None and st.name == "prune" and float(st.arg) > 0.1 and q is None:
            milder = S.Recipe((S.Method("prune", f"{float(st.arg) / 2:g}"),))
            cand.note = "broke the budget; retried with half the pruning ratio"
            return self.try_recipe(milder, runtime)
        return cand

    def choose(self) -> Candidate | None:
        key = {
            "latency": lambda c: c.result["latency_b1_p50_ms"],
            "throughput": lambda c: -c.result["throughput_b32_per_s"],
            "size": lambda c: c.result["size_bytes"],
        }[self.opts.objective]
        ok = [c for c in self.candidates if not c.reference and "error" not in c.result and c.holds_val]
        for c in sorted(ok, key=key):
            if c.holds_heldout:
                c.chosen = True
                return c
            c.note = (c.note + "; " if c.note else "") + "held on validation but not on the held-out split"
        return None


def _default_recipes(calib_given: bool) -> list[S.Recipe]:
    recipes = S.parse_methods(DEFAULT_RECIPES)
    return [r for r in recipes if calib_given or r.text != "int8-static"]


def _with_combos(recipes: list[S.Recipe]) -> list[S.Recipe]:
    """Each structural step alone and followed by int8-dynamic; cheapest (quantisation only) first."""
    out: list[S.Recipe] = []
    seen = set()
    for r in sorted(
        recipes, key=lambda r: (r.structural is not None, r.structural is not None and r.quant is not None)
    ):
        for cand in (
            [r, S.Recipe((*r.steps, S.Method("int8-dynamic")))] if r.quant is None and r.structural else [r]
        ):
            if cand.text not in seen:
                seen.add(cand.text)
                out.append(cand)
    return out


def compress(
    model: str,
    *,
    task: str,
    eval_data: str,
    calib: str | None = None,
    holdout: str | None = None,
    budget: str = "1%",
    methods: str | None = None,
    target: str = "cpu",
    runtime: str = "auto",
    objective: str = "latency",
    out: str | None = None,
    weights: str | None = None,
    threads: int = 2,
    repeats: int = 30,
    seed: int = 0,
    distill_epochs: int | None = None,
    plot: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Compress MODEL to the budget; writes OUT (model/, report.json, quality_vs_latency.png) and returns the
    report. Raises BadInput (nothing written) for bad input or a budget no candidate holds."""
    say = progress or (lambda _m: None)
    opts = S.CompressOptions(
        task=S.parse_task(task),
        budget=S.parse_budget(budget),
        recipes=S.parse_methods(methods),
        target=S.choose("target", target, S.TARGETS),
        runtime=S.choose("runtime", runtime, S.RUNTIMES),
        objective=S.choose("objective", objective, S.OBJECTIVES),
        threads=threads,
        repeats=repeats,
        seed=seed,
        distill_epochs=distill_epochs,
    )
    if threads < 1:
        raise BadInput("threads", threads, "must be at least 1")
    out_dir = Path(out) if out else Path(f"{Path(model.split(':')[0]).stem or 'model'}-compressed")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise BadInput(
            "out", str(out_dir), "already exists and is not empty", hint="remove it or pick another --out"
        )
    data = load_data(eval_data, "eval")
    from suanli.compress.tasks import check_task

    check_task(opts.task, data, "eval")
    if holdout:
        hold = load_data(holdout, "holdout")
        check_task(opts.task, hold, "holdout")
        if hold.kind != data.kind:
            raise BadInput("holdout", holdout, f"holds {hold.kind} data but --eval holds {data.kind} data")
        val = data
    else:
        val, hold = split(data, seed)
    calib_data = load_data(calib, "calib") if calib else None
    if calib_data is not None and calib_data.kind != data.kind:
        raise BadInput("calib", calib, f"holds {calib_data.kind} data but --eval holds {data.kind} data")
    if opts.target == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise BadInput("target", "cuda", "no CUDA device is visible here", hint="use --target cpu")
    from suanli.compress.models import load_source

    if not model.endswith(".onnx"):
        import torch

        torch.set_num_threads(threads)
    say("loading the model")
    source = load_source(model, weights)
    _probe(source, val, opts.task, eval_data)
    runtimes = _runtimes(source, opts)
    if opts.runtime == "torch" and source.format == "onnx":
        raise BadInput("runtime", "torch", "an ONNX model can only be compressed for ONNX Runtime")
    recipes = _with_combos(opts.recipes or _default_recipes(calib_data is not None))
    if any(r.quant and r.quant.name == "int8-static" for r in recipes) and calib_data is None:
        raise BadInput("calib", "missing", "int8-static needs calibration data", hint="give --calib DATA")
    if source.format == "onnx" and any(r.structural for r in recipes):
        raise BadInput(
            "methods",
            ",".join(r.text for r in recipes if r.structural),
            "prune and distill need a PyTorch model, not an ONNX file",
        )

    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="suanli-compress-"))
    try:
        tmp.mkdir()
        data_file = save_eval(work / "eval", val, hold)
        search = _Search(source, opts, data_file, calib_data or val, val, work, say)
        search.run(recipes, runtimes)
        chosen = search.choose()
        if chosen is None:
            best = max(
                (c for c in search.candidates if not c.reference and "error" not in c.result),
                key=lambda c: min(c.result["quality_val"], c.result["quality_heldout"]),
                default=None,
            )
            reached = (
                "no candidate could be evaluated"
                if best is None
                else (
                    f"no candidate holds it; the best quality reached was {best.result['quality_val']:.4f} "
                    f"(validation) / {best.result['quality_heldout']:.4f} (held-out) by {best.name}, against "
                    f"{search.baseline['quality_val']:.4f} / {search.baseline['quality_heldout']:.4f} "
                    "for the original"
                )
            )
            raise BadInput("budget", opts.budget.text, reached, hint="raise --budget or add methods")
        shutil.copytree(chosen.path, tmp / "model", ignore=shutil.ignore_patterns("result.json"))
        from suanli.compress.report import build_report, plot_quality_latency

        report = build_report(model, opts, search.candidates, chosen, search.baseline, out_dir)
        (tmp / "report.json").write_text(json.dumps(report, indent=2))
        if plot:
            with contextlib.suppress(ImportError):
                plot_quality_latency(report, tmp / "quality_vs_latency.png")
        if out_dir.exists():
            out_dir.rmdir()
        tmp.rename(out_dir)
        _record(out_dir, model, weights, [eval_data, holdout, calib], opts, report)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _record(
    out_dir: Path,
    model: str,
    weights: str | None,
    data: list[str | None],
    opts: S.CompressOptions,
    report: dict,
) -> None:
    """The compressed model's ledger entry (its files, report.json, the model card, included), from
    the model and data it was made from; spooled, and signed by the next ledger command or agent pass.
    A ledger that cannot be written is a warning: the model is there."""
    from suanli.ledger import provenance as P
    from suanli.ledger import spool

    try:
        deps = []
        sources = [("model", model.split(":")[0]), ("weights", weights), *(("data", d) for d in data)]
        for name, source in [(n, src) for n, src in sources if src]:
            path = Path(source)
            if path.exists():
                hashed = P.artifact(path)[1]
                deps.append(P.dependency(f"{name}:{path.name}", hashed.digest, P.path_uri(path)))
        chosen = report.get("chosen_candidate") or {}
        doc = P.provenance(
            "model",
            P.artifact(out_dir)[0],
            external={
                "task": opts.task,
                "budget": opts.budget.text,
                "target": opts.target,
                "runtime": opts.runtime,
                "objective": opts.objective,
                "model": model,
                "chosen": report.get("chosen"),
                "user": os.environ.get("SUANLI_USER") or getpass.getuser(),
            },
            dependencies=deps,
            builder="suanli compress",
            finished=time.time(),
            byproducts={"metrics": {k: v for k, v in chosen.items() if type(v) in (int, float)}},
        )
        spool.record("model", doc)
    except Exception as e:
        warnings.warn(f"{out_dir}: not recorded in the ledger: {e}", stacklevel=2)


def _runtimes(source: Any, opts: S.CompressOptions) -> list[str]:
    if source.format == "onnx":
        return ["onnx"]
    if opts.runtime != "auto":
        if opts.runtime == "onnx" and opts.target == "cuda":
            raise BadInput("runtime", "onnx", "ONNX Runtime candidates are built for --target cpu here")
        return [opts.runtime]
    return ["onnx", "torch"] if opts.target == "cpu" else ["torch"]


def _probe(source: Any, val: Data, task: str, eval_path: str) -> None:
    """Run the original on two rows, so a task/data mismatch is one clear line before any work."""
    if source.io != val.kind:
        raise BadInput(
            "eval",
            eval_path,
            f"holds {val.kind} data but the model takes "
            + ("sentences" if source.io == "text" else "arrays"),
        )
    if source.io == "text":
        return
    x = np.ascontiguousarray(val.x[:2])
    try:
        if source.format == "onnx":
            import onnxruntime as ort

            sess = ort.InferenceSession(str(source.onnx_path), providers=["CPUExecutionProvider"])
            y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        else:
            import torch

            with torch.no_grad():
                y = source.module(torch.from_numpy(x)).numpy()
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadInput(
            "eval", eval_path, f"x with shape {tuple(val.x.shape)} does not fit the model ({msg[:160]})"
        ) from None
    if task == "classification":
        classes = y.reshape(len(y), -1).shape[1]
        top = int(np.max(val.y))
        if top >= classes:
            raise BadInput("eval", eval_path, f"labels go up to {top} but the model has {classes} outputs")
