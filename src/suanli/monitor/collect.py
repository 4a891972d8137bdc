"""Reading what a process tree uses: CPU time, resident memory, disk bytes (psutil), and GPU utilisation
and memory per process (NVML, where a GPU exists).

One scan of the process table per sample serves every attempt on the node (a scan per attempt would
cost 50x more with 50 jobs running). Counters are cumulative and never go backwards:

- CPU time of a tree = the sum over its live processes of their own time plus that of the children
  they reaped (`children_user`/`children_system`), so a worker that exited is still counted once its
  parent (the supervisor, a subreaper) has waited for it. Between a child's exit and its reaping its
  time is briefly missing; the counter holds its last value rather than dip.
- Disk bytes come from /proc/PID/io per process (storage actually read and written, not page-cache
  hits); the bytes of processes that ended are kept by this collector, so they survive their process
  but not an agent restart.
- Network bytes cannot be attributed to a process without eBPF or a network namespace per job: the
  node's counters are reported beside each sample, named as the node's.

Standard library, psutil and (when loaded) pynvml only: Ray workers on other machines import this too.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reading:
    """Cumulative use of one process tree at `at`."""

    at: float
    cpu_seconds: float
    rss_bytes: int
    read_bytes: int
    write_bytes: int
    processes: int
    gpu_util: float | None = None  # 0-1, summed over the tree's processes, per GPU held
    gpu_memory_bytes: int | None = None
    gpu_energy_j: float | None = None  # of the devices the tree holds, since this collector started
    net_bytes: int | None = None  # the node's, sent + received

    def to_json(self) -> dict:
        return self.__dict__.copy()


@dataclass
class _Tree:
    cpu_seconds: float = 0.0
    io: dict[int, tuple[int, int]] = field(default_factory=dict)  # live pid -> (read, written)
    retired_read: int = 0
    retired_write: int = 0


class Collector:
    """Samples process trees on this node; keeps what must outlive a process (disk bytes, the last CPU
    total). `gpus`: read NVML when it loads (no GPU or no driver: GPU fields stay None)."""

    def __init__(self, *, gpus: bool = True) -> None:
        self._trees: dict[Hashable, _Tree] = {}
        self._procs: dict[int, Any] = {}  # psutil.Process by pid, reused between scans
        self.nvml = Nvml() if gpus else None

    def sample(
        self,
        roots: Mapping[Hashable, int],
        gpu_indices: Mapping[Hashable, list[int]] | None = None,
        *,
        supervised: bool = False,
    ) -> dict[Hashable, Reading]:
        """A Reading per key whose root process is alive (or has live descendants). `supervised`: each
        root is a job's supervisor, whose own CPU and memory are not the job's (the CPU of the workers
        it reaped is)."""
        import psutil

        now = time.time()
        children = children_map()
        trees = {key: subtree(root, children) for key, root in roots.items()}
        live: dict[int, Any] = {}  # psutil reads only the jobs' processes
        for pid in {pid for pids in trees.values() for pid in pids}:
            try:
                live[pid] = self._procs.get(pid) or psutil.Process(pid)
            except psutil.Error:
                continue
        self._procs = live
        gpu = self.nvml.read() if self.nvml is not None and self.nvml.ok else None
        net = None
        with contextlib.suppress(Exception):
            counters = psutil.net_io_counters()
            net = counters.bytes_sent + counters.bytes_recv
        out: dict[Hashable, Reading] = {}
        for key, root in roots.items():
            tree_pids = [pid for pid in trees[key] if pid in live]
            reading = self._read(key, tree_pids, live, now, root if supervised else None)
            if reading is None:
                continue
            reading.net_bytes = net
            if gpu is not None:
                held = (gpu_indices or {}).get(key) or []
                reading.gpu_util, reading.gpu_memory_bytes, reading.gpu_energy_j = gpu.attribute(
                    set(tree_pids), held
                )
            out[key] = reading
        for key in set(self._trees) - set(roots):
            del self._trees[key]
        return out

    def _read(
        self, key: Hashable, pids: list[int], live: dict[int, Any], now: float, supervisor: int | None
    ) -> Reading | None:
        import psutil

        if not pids:
            return None
        tree = self._trees.setdefault(key, _Tree())
        cpu = 0.0
        rss = 0
        io: dict[int, tuple[int, int]] = {}
        for pid in pids:
            proc = live[pid]
            try:
                with proc.oneshot():
                    t = proc.cpu_times()
                    cpu += t.children_user + t.children_system
                    if pid == supervisor:
                        continue
                    cpu += t.user + t.system
                    rss += proc.memory_info().rss
                    with contextlib.suppress(psutil.AccessDenied, AttributeError):
                        c = proc.io_counters()
                        io[pid] = (c.read_bytes, c.write_bytes)
            except psutil.Error:
                continue
        for pid, (r, w) in tree.io.items():
            if pid not in io:  # it ended: keep what it did
                tree.retired_read += r
                tree.retired_write += w
        tree.io = io
        tree.cpu_seconds = max(tree.cpu_seconds, cpu)
        return Reading(
            at=now,
            cpu_seconds=tree.cpu_seconds,
            rss_bytes=rss,
            read_bytes=tree.retired_read + sum(r for r, _ in io.values()),
            write_bytes=tree.retired_write + sum(w for _, w in io.values()),
            processes=len(pids) - (supervisor in pids),
        )


def pids() -> list[int]:
    """Every process id on this machine (Linux /proc)."""
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def children_map() -> dict[int, list[int]]:
    """Parent -> children of every process, from /proc/PID/stat: one small read per process, a
    quarter of what psutil's ppid() costs, for the scan that every sample makes of the whole table."""
    children: dict[int, list[int]] = {}
    for pid in pids():
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: the fields after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split(maxsplit=2)
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(pid)
    return children


def subtree(root: int, children: dict[int, list[int]]) -> list[int]:
    """`root` and every process below it."""
    out, stack = [root], [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            out.append(child)
            stack.append(child)
    return out


@dataclass
class GpuReading:
    """One read of every device: per-process utilisation (SM %, averaged over NVML's samples since the
    last read) and memory, each device's own utilisation, and its energy counter."""

    process_util: dict[tuple[int, int], float]  # (device, pid) -> 0-100
    process_memory: dict[tuple[int, int], int]  # (device, pid) -> bytes
    device_util: dict[int, float]  # device -> 0-100
    device_energy_j: dict[int, float]  # device -> joules since the collector started

    def attribute(self, pids: set[int], held: list[int]) -> tuple[float | None, int | None, float | None]:
        """(utilisation 0-1 per GPU held, memory bytes, energy J) of a tree. Per-process figures where
        NVML gives them; else (per-process utilisation unsupported, or the job's processes live in a
        container whose pids NVML does not see) the whole device, for the devices the job holds:
        suanli gives a job's GPUs to it alone, so the device's figure is the job's."""
        mine = {d for d, pid in self.process_memory if pid in pids} | set(held)
        if not mine:
            return None, None, None
        memory = sum(b for (d, pid), b in self.process_memory.items() if pid in pids)
        util = 0.0
        for d in mine:
            per_process = [u for (dev, pid), u in self.process_util.items() if dev == d and pid in pids]
            if per_process:
                util += min(100.0, sum(per_process))
            elif d in held and d in self.device_util:
                util += self.device_util[d]
        energy = sum(self.device_energy_j.get(d, 0.0) for d in mine if d in held) or None
        return util / 100.0 / len(mine), memory, energy


class Nvml:
    """NVML, loaded once; `ok` is False where there is no NVIDIA driver or GPU."""

    def __init__(self) -> None:
        self.ok = False
        self._last_seen: dict[int, int] = {}
        self._energy_start: dict[int, float] = {}
        try:
            import pynvml

            pynvml.nvmlInit()
            self.count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(self.count)]
        except Exception:
            return
        self._nv = pynvml
        self.ok = self.count > 0

    def read(self) -> GpuReading:
        nv = self._nv
        out = GpuReading({}, {}, {}, {})
        for d, handle in enumerate(self._handles):
            with contextlib.suppress(nv.NVMLError):
                out.device_util[d] = float(nv.nvmlDeviceGetUtilizationRates(handle).gpu)
            for getter in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
                with contextlib.suppress(nv.NVMLError, AttributeError):
                    for p in getattr(nv, getter)(handle):
                        used = p.usedGpuMemory if isinstance(p.usedGpuMemory, int) else 0
                        out.process_memory[(d, p.pid)] = out.process_memory.get((d, p.pid), 0) + used
            with contextlib.suppress(nv.NVMLError, AttributeError):
                # Samples newer than the last one read: NVML keeps a short ring of them per device.
                samples = nv.nvmlDeviceGetProcessUtilization(handle, self._last_seen.get(d, 0))
                per_pid: dict[int, list[float]] = {}
                for s in samples:
                    per_pid.setdefault(s.pid, []).append(float(s.smUtil))
                    self._last_seen[d] = max(self._last_seen.get(d, 0), int(s.timeStamp))
                for pid, values in per_pid.items():
                    out.process_util[(d, pid)] = sum(values) / len(values)
            with contextlib.suppress(nv.NVMLError, AttributeError):
                joules = nv.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0  # millijoules
                start = self._energy_start.setdefault(d, joules)
                out.device_energy_j[d] = joules - start
        return out
