"""Data-parallel training in an ordinary PyTorch loop: `prepare` does the distributed plumbing.

    model, optimizer, loader = suanli.train.prepare(model, optimizer, loader)
    for epoch in suanli.train.epochs(10):          # resumes after the last checkpoint
        for x, y in loader:                         # this rank's share, on the right device
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(); loss.backward(); optimizer.step()
        suanli.train.checkpoint()                   # atomic; rank 0 writes, every rank resumes from it

The job's spec (or environment) chooses gradient accumulation, mixed precision, gradient compression
(fp16/bf16 or PowerSGD through DDP communication hooks) and local SGD; see docs/distributed.md.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from suanli.train import checkpoints as ckpt

COMPRESSIONS = ("none", "fp16", "bf16", "powersgd")


@dataclass(frozen=True)
class TrainConfig:
    """Read from the environment suanli sets for each worker (SUANLI_TRAIN_*, RANK, WORLD_SIZE, ...)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    grad_accum_steps: int = 1
    mixed_precision: str = "auto"  # auto | none | bf16 | fp16
    compression: str = "none"
    powersgd_rank: int = 2
    local_sgd_steps: int = 0
    seed: int = 0

    @classmethod
    def from_env(cls, **overrides: Any) -> TrainConfig:
        env = os.environ
        values = {
            "world_size": int(env.get("WORLD_SIZE", 1)),
            "rank": int(env.get("RANK", 0)),
            "local_rank": int(env.get("LOCAL_RANK", 0)),
            "grad_accum_steps": int(env.get("SUANLI_TRAIN_GRAD_ACCUM_STEPS", 1)),
            "mixed_precision": env.get("SUANLI_TRAIN_MIXED_PRECISION", "auto"),
            "compression": env.get("SUANLI_TRAIN_GRADIENT_COMPRESSION", "none"),
            "powersgd_rank": int(env.get("SUANLI_TRAIN_POWERSGD_RANK", 2)),
            "local_sgd_steps": int(env.get("SUANLI_TRAIN_LOCAL_SGD_STEPS", 0)),
            "seed": int(env.get("SUANLI_TRAIN_SEED", 0)),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)
        if config.compression not in COMPRESSIONS:
            raise ValueError(f"gradient_compression={config.compression!r}: must be one of {COMPRESSIONS}")
        return config


@dataclass
class CommStats:
    """Bytes this rank sent into all-reduce, per optimizer step and in total."""

    bytes_total: int = 0
    uncompressed_bytes_total: int = 0
    steps: int = 0
    last_step_bytes: int = 0
    _at_last_step: int = 0

    def step_done(self) -> None:
        self.steps += 1
        self.last_step_bytes = self.bytes_total - self._at_last_step
        self._at_last_step = self.bytes_total

    def as_metrics(self) -> dict[str, float]:
        """Per step: the latest step's bytes (steady state: PowerSGD sends full gradients for its first
        two steps); the mean over all steps and the total include warm-up."""
        per = max(self.steps, 1)
        return {
            "comm_bytes_per_step": float(self.last_step_bytes),
            "comm_bytes_mean_per_step": self.bytes_total / per,
            "comm_bytes_total": float(self.bytes_total),
            "comm_uncompressed_bytes_per_step": self.uncompressed_bytes_total / per,
        }


@dataclass
class _Session:
    config: TrainConfig
    device: torch.device
    raw_model: nn.Module
    model: nn.Module
    optimizer: _Optimizer
    loader: _Loader | None
    grad_bytes: int
    comm: CommStats = field(default_factory=CommStats)
    micro_step: int = 0
    epoch: int = 0
    start_epoch: int = 0
    skip_batches: int = 0
    checkpoints: int = 0
    averager: Any = None


_session: _Session | None = None


def _current() -> _Session:
    if _session is None:
        raise RuntimeError("call suanli.train.prepare(model, optimizer, loader) first")
    return _session


def is_main() -> bool:
    """True on the rank that writes checkpoints and reports metrics."""
    return int(os.environ.get("RANK", 0)) == 0


def metric(name: str, value: float, step: int | None = None) -> None:
    """Report a metric to suanli (printed once, by rank 0, as a JSON line)."""
    if is_main():
        print(json.dumps({"metric": name, "value": float(value), "step": step}), flush=True)


def mean(value: float) -> float:
    """The mean of `value` over all workers (for reporting a metric of the whole batch, not one shard)."""
    session = _current()
    if session.config.world_size == 1:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=session.device)
    dist.all_reduce(t)
    session.comm.bytes_total -= t.numel() * t.element_size()  # reporting, not training traffic
    return t.item() / session.config.world_size


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, list | tuple):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


class _Loader:
    """The user's DataLoader rebuilt with a DistributedSampler (this rank's share, a deterministic
    order per epoch), its own generator (so iterating never consumes the model's random numbers, which
    keeps resumed runs identical), device placement, and skipping of batches done before a resume."""

    def __init__(self, loader: DataLoader, config: TrainConfig, device: torch.device) -> None:
        shuffle = isinstance(loader.sampler, RandomSampler)
        self.sampler = DistributedSampler(
            loader.dataset,
            num_replicas=config.world_size,
            rank=config.rank,
            shuffle=shuffle,
            seed=config.seed,
            drop_last=loader.drop_last,
        )
        self.loader = DataLoader(
            loader.dataset,
            batch_size=loader.batch_size,
            sampler=self.sampler,
            num_workers=loader.num_workers,
            collate_fn=loader.collate_fn,
            pin_memory=loader.pin_memory,
            drop_last=loader.drop_last,
            generator=torch.Generator().manual_seed(config.seed),
        )
        self.device = device
        self.batches_done = 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        session = _current()
        self.sampler.set_epoch(session.epoch)
        skip, session.skip_batches = session.skip_batches, 0
        self.batches_done = skip
        for batch in itertools.islice(self.loader, skip, None):
            self.batches_done += 1
            yield _to_device(batch, self.device)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


class _Optimizer:
    """Steps only at gradient-accumulation boundaries (averaging the accumulated gradients), and
    averages the model every k steps under local SGD. Everything else is the user's optimizer."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer

    def _boundary(self) -> bool:
        session = _current()
        return session.micro_step % session.config.grad_accum_steps == 0

    def step(self, *args: Any, **kwargs: Any) -> Any:
        session = _current()
        if not self._boundary():
            return None
        accum = session.config.grad_accum_steps
        if accum > 1:
            for group in self.optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.div_(accum)
        result = self.optimizer.step(*args, **kwargs)
        if session.config.world_size > 1 and session.config.compression == "none" and not session.averager:
            session.comm.bytes_total += session.grad_bytes
        if session.config.world_size > 1:
            session.comm.uncompressed_bytes_total += session.grad_bytes
        if session.averager is not None:
            session.averager.average_parameters(session.model.parameters())
        session.comm.step_done()
        return result

    def zero_grad(self, set_to_none: bool = True) -> None:
        if self._boundary():
            self.optimizer.zero_grad(set_to_none=set_to_none)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)


def _count_all_reduce(session_ref: list[_Session]) -> None:
    """Count the bytes every all-reduce sends (hooks and model averaging call dist.all_reduce)."""
    original = dist.all_reduce
    if getattr(original, "_suanli_counting", False):
        return

    def counting(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        group = kwargs.get("group") or (args[1] if len(args) > 1 else None)
        if session_ref and dist.get_world_size(group) > 1:
            session_ref[0].comm.bytes_total += tensor.numel() * tensor.element_size()
        return original(tensor, *args, **kwargs)

    counting._suanli_counting = True  # type: ignore[attr-defined]
    dist.all_reduce = counting


def _register_compression(ddp: nn.Module, config: TrainConfig) -> None:
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook

    if config.compression == "fp16":
        ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)
    elif config.compression == "bf16":
        # torch's bf16_compress_hook is refused without NCCL; the same compression works on gloo.
        def bf16_hook(state, bucket):  # type: ignore[no-untyped-def]
            return default_hooks._compress_hook(torch.bfloat16, state, bucket)

        # DDP checks real annotation objects; this module's annotations are strings.
        bf16_hook.__annotations__ = {"bucket": dist.GradBucket, "return": torch.futures.Future[torch.Tensor]}
        ddp.register_comm_hook(None, bf16_hook)
    elif config.compression == "powersgd":
        state = powerSGD_hook.PowerSGDState(
            process_group=None,
            matrix_approximation_rank=config.powersgd_rank,
            start_powerSGD_iter=2,
            use_error_feedback=True,
            warm_start=True,
            random_seed=config.seed,
        )
        ddp.register_comm_hook(state, powerSGD_hook.powerSGD_hook)


def _autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if config.mixed_precision == "none" or device.type != "cuda":
        return None  # CPU autocast is slower than fp32 on most CPUs; it is left off there
    if config.mixed_precision == "fp16":
        return torch.float16
    if config.mixed_precision in ("bf16", "auto") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def prepare(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    dataloader: DataLoader | None = None,
    *,
    grad_accum_steps: int | None = None,
    mixed_precision: str | None = None,
    seed: int | None = None,
) -> tuple[nn.Module, Any, Any]:
    """Make an ordinary training loop data-parallel and resumable.

    Joins the process group (gloo on CPU, nccl on GPUs) when there is more than one worker, places the
    model on this worker's device and wraps it in DDP with the configured gradient compression,
    shards the data with a DistributedSampler, and loads the latest complete checkpoint if one exists
    (model, optimizer, random states, data position). Returns (model, optimizer, dataloader).
    """
    global _session
    config = TrainConfig.from_env(
        grad_accum_steps=grad_accum_steps, mixed_precision=mixed_precision, seed=seed
    )
    if torch.cuda.is_available():
        device = torch.device("cuda", config.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if config.world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    model = model.to(device)
    # Optimizer state created before the move would point at the old tensors; the user built it
    # over the same Parameter objects, which .to() moves in place for modules.
    wrapped: nn.Module = model
    if config.world_size > 1:
        wrapped = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
        _register_compression(wrapped, config)
    grad_bytes = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    session = _Session(
        config=config,
        device=device,
        raw_model=model,
        model=wrapped,
        optimizer=_Optimizer(optimizer),
        loader=None,
        grad_bytes=grad_bytes,
    )
    _session = session
    if dataloader is not None:
        session.loader = _Loader(dataloader, config, device)
    if config.world_size > 1:
        _count_all_reduce([session])
        if config.local_sgd_steps > 0:
            from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager

            session.averager = PeriodicModelAverager(period=config.local_sgd_steps, warmup_steps=0)

    def before_forward(module: nn.Module, _inputs: Any) -> None:
        if module.training and torch.is_grad_enabled():
            session.micro_step += 1
            if isinstance(module, nn.parallel.DistributedDataParallel):
                boundary = session.micro_step % config.grad_accum_steps == 0
                module.require_backward_grad_sync = boundary and session.averager is None

    wrapped.register_forward_pre_hook(before_forward)
    dtype = _autocast_dtype(config, device)
    if dtype is not None:
        wrapped.forward = torch.autocast(device_type=device.type, dtype=dtype)(wrapped.forward)
    _resume(session)
    return wrapped, session.optimizer, session.loader


def epochs(n: int) -> Iterator[int]:
    """range(start, n), where start follows the last checkpoint; keeps the sampler's epoch in step."""
    session = _current()
    for epoch in range(session.start_epoch, n):
        session.epoch = epoch
        yield epoch
        metrics = session.comm.as_metrics()
        if session.config.world_size > 1:
            for name, value in metrics.items():
                metric(name, value, epoch)


def comm_stats() -> CommStats:
    return _current().comm


def _rng_state() -> dict[str, Any]:
    import numpy as np

    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np

    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint(**extra: Any) -> Path | None:
    """Save model, optimizer, every rank's random state and the data position, atomically.

    Call it at the end of an epoch or anywhere in one; a resumed run continues from exactly there.
    Returns the path on rank 0 (None on the others)."""
    session = _current()
    loader = session.loader
    done = loader.batches_done if loader is not None else 0
    epoch_complete = loader is None or done >= len(loader)
    rng = _rng_state()
    if session.config.world_size > 1:
        gathered: list[Any] = [None] * session.config.world_size
        dist.all_gather_object(gathered, rng)
    else:
        gathered = [rng]
    session.checkpoints += 1
    path = None
    if is_main():
        state = {
            "model": session.raw_model.state_dict(),
            "optimizer": session.optimizer.optimizer.state_dict(),
            "rng": gathered,
            "world_size": session.config.world_size,
            "epoch": session.epoch + 1 if epoch_complete else session.epoch,
            "batches_done": 0 if epoch_complete else done,
            "micro_step": session.micro_step,
            "comm": session.comm.__dict__.copy(),
            "averager_step": getattr(session.averager, "step", 0),
            "extra": extra,
        }
        serial = state["epoch"] * 1_000_000 + state["batches_done"]
        path = ckpt.save_atomic(state, serial)
        _record_checkpoint(path, state, extra)
    if session.config.world_size > 1:
        dist.barrier()
    return path


def _record_checkpoint(path: Path, state: dict, extra: dict) -> None:
    """The checkpoint's ledger entry, spooled for the agent to sign at the attempt's end; a ledger
    that cannot be written is a warning, never a failed training step."""
    from suanli.ledger import provenance as P
    from suanli.ledger import spool
    from suanli.ledger.digest import file_sha256

    try:
        job = os.environ.get("SUANLI_JOB_ID")
        attempt = os.environ.get("SUANLI_ATTEMPT")
        scalars = {k: v for k, v in extra.items() if isinstance(v, int | float | str | bool)}
        doc = P.provenance(
            "checkpoint",
            {path.name: file_sha256(path)},
            external={
                "job_id": int(job) if job and job.isdigit() else None,
                "attempt": int(attempt) if attempt and attempt.isdigit() else None,
                "epoch": state["epoch"],
                "batches_done": state["batches_done"],
                "world_size": state["world_size"],
            },
            invocation=f"job/{job}/attempt/{attempt}" if job else None,
            finished=time.time(),
            byproducts={"metrics": scalars} if scalars else None,
        )
        spool.record("checkpoint", doc)
    except Exception as e:
        warnings.warn(f"checkpoint {path.name} not recorded in the ledger: {e}", stacklevel=3)


def _resume(session: _Session) -> None:
    path = ckpt.latest()
    if path is None:
        return
    state = ckpt.load(path)
    session.raw_model.load_state_dict(state["model"])
    session.optimizer.optimizer.load_state_dict(state["optimizer"])
    session.start_epoch = session.epoch = state["epoch"]
    session.skip_batches = state["batches_done"]
    session.micro_step = state["micro_step"]
    session.comm = CommStats(**state["comm"])
    if session.averager is not None:
        session.averager.step = state.get("averager_step", 0)
    rng = state["rng"]
    if len(rng) == session.config.world_size:
        _set_rng_state(rng[session.config.rank])
    if is_main():
        print(
            f"suanli.train: resumed from {path.name} (epoch {state['epoch']}, batch {state['batches_done']})",
            flush=True,
        )


def last_extra() -> dict[str, Any]:
    """The `extra` values of the checkpoint this run resumed from ({} on a fresh start)."""
    path = ckpt.latest()
    return ckpt.load(path).get("extra", {}) if path is not None else {}


def finish() -> None:
    """Leave the process group (call at the end of training)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
