"""Where a job's slices go. Shared by every policy, live and simulated.

Free capacity is kept in buckets (free GPUs -> node names, sorted), per GPU type, so that finding the
best-fit node or proving that a job cannot fit costs a few dictionary lookups instead of a scan of
every node: one decision over 10,000 pending jobs on 1,000 nodes stays well under 100 ms.

Placement rules (all-or-nothing, so a gang never holds part of its nodes while waiting):
* a gang (`num_nodes=k`) gets `gpus` GPUs on each of k distinct nodes, best fit (the nodes with the
  least free GPUs that still fit), so large free blocks stay whole;
* a split job (`num_nodes=None`) gets its GPUs on one node when one can hold them (best fit), else on
  the largest free blocks (fewest nodes), never on more than `max_nodes` nodes when that is set;
  all its GPUs are of one type (a job does not straddle GPU generations).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence

from suanli.schedule.policy import JobRequest, NodeState, Slice

GpuType = str | None


class FreeSpace:
    """A private copy of free capacity, so a policy can place several jobs in one decision without
    mutating the cluster state it was given."""

    def __init__(self, nodes: list[NodeState], *, full: bool = False) -> None:
        self.nodes = nodes
        if full:  # the whole capacity, as if nothing ran (for "who should run" passes)
            self.gpus = {n.name: n.gpus for n in nodes}
            self.cpus = {n.name: n.cpus for n in nodes}
            self.memory = {n.name: n.memory_bytes for n in nodes}
        else:
            self.gpus = {n.name: n.free_gpus for n in nodes}
            self.cpus = {n.name: n.free_cpus for n in nodes}
            self.memory = {n.name: n.free_memory_bytes for n in nodes}
        self.node_type: dict[str, GpuType] = {n.name: n.gpu_type for n in nodes}
        self._order = {n.name: i for i, n in enumerate(nodes)}
        self.types: list[GpuType] = list(dict.fromkeys(n.gpu_type for n in nodes))
        self._buckets: dict[GpuType, dict[int, list[str]]] = {t: {} for t in self.types}
        self._total: dict[GpuType, int] = dict.fromkeys(self.types, 0)
        for n in nodes:
            self._buckets[n.gpu_type].setdefault(self.gpus[n.name], []).append(n.name)
            self._total[n.gpu_type] += self.gpus[n.name]
        for levels in self._buckets.values():
            for names in levels.values():
                names.sort()
        self._version = 0
        self._block_cache: dict[tuple, tuple[int, str | None]] = {}
        self._fit_cache: dict[tuple, int] = {}

    # ---- queries -------------------------------------------------------------------------------
    def _types_for(self, job: JobRequest, types: Sequence[GpuType] | None = None) -> list[GpuType]:
        if job.gpu_type is not None:
            return [job.gpu_type] if job.gpu_type in self._buckets else []
        if types is not None:
            return [t for t in types if t in self._buckets]
        return self.types

    def free_gpus(self, gpu_type: GpuType | None = None, *, any_type: bool = True) -> int:
        """Free GPUs of one type, or of all types when `any_type` and no type is given."""
        if gpu_type is None and any_type:
            return sum(self._total.values())
        return self._total.get(gpu_type, 0)

    def fits(self, job: JobRequest, *, consolidate: bool = True) -> bool:
        return self.place(job, consolidate=consolidate) is not None

    def place(
        self, job: JobRequest, *, consolidate: bool = True, types: Sequence[GpuType] | None = None
    ) -> tuple[Slice, ...] | None:
        """Slices for `job`, or None when it does not fit now. Does not reserve them (see `take`).
        `types` is an order of preference over GPU types for jobs that do not name one."""
        eligible = self._types_for(job, types)
        if not eligible:
            return None
        if job.num_nodes is not None:
            return self._place_gang(job, eligible)
        if types is not None:  # preference order: the first type that fits wins
            for t in eligible:
                got = self._place_split(job, t, consolidate=consolidate)
                if got is not None:
                    return got
            return None
        best: tuple[Slice, ...] | None = None
        best_key: tuple[int, str] | None = None
        for t in eligible:
            got = self._place_split(job, t, consolidate=consolidate)
            if got is None:
                continue
            if not consolidate or len(got) > 1:
                return got
            key = (self.gpus[got[0].node], got[0].node)
            if best_key is None or key < best_key:
                best, best_key = got, key
        return best

    def _place_gang(self, job: JobRequest, eligible: list[GpuType]) -> tuple[Slice, ...] | None:
        need_nodes = job.num_nodes or 1
        levels = sorted({lv for t in eligible for lv in self._buckets[t] if lv >= job.gpus})
        if (
            not job.nodes
            and sum(len(self._buckets[t].get(lv, ())) for t in eligible for lv in levels) < need_nodes
        ):
            return None
        slices: list[Slice] = []
        for lv in levels:
            candidates = [name for t in eligible for name in self._buckets[t].get(lv, ())]
            if job.nodes:
                candidates = [name for name in candidates if name in job.nodes]
                if not candidates:
                    continue
            if need_nodes - len(slices) == 1 and not job.cpus and not job.memory_bytes:
                candidates = [min(candidates, key=lambda n: (self.cpus[n], n))]
            else:
                # Best fit: least free GPUs, then least free CPUs, then name (deterministic).
                candidates.sort(key=lambda n: (self.cpus[n], n))
            for name in candidates:
                if self.cpus[name] >= job.cpus - 1e-9 and self.memory[name] >= job.memory_bytes:
                    slices.append(Slice(name, job.gpus, job.cpus, job.memory_bytes))
                    if len(slices) == need_nodes:
                        return tuple(slices)
        return None

    def _place_split(self, job: JobRequest, t: GpuType, *, consolidate: bool) -> tuple[Slice, ...] | None:
        need = job.gpus
        buckets = self._buckets[t]
        if job.nodes:  # pinned: the same search over the named nodes only
            buckets = {
                lv: kept for lv, names in buckets.items() if (kept := [n for n in names if n in job.nodes])
            }
            if sum(lv * len(names) for lv, names in buckets.items()) < need:
                return None
        elif self._total[t] < need:
            return None
        if need == 0:
            for lv in sorted(buckets):
                if buckets[lv]:
                    return (Slice(buckets[lv][0], 0, 0.0, 0),)
            return None
        if consolidate:
            fitting = [lv for lv in buckets if lv >= need and buckets[lv]]
            if fitting:
                return (Slice(buckets[min(fitting)][0], need, 0.0, 0),)
        cap = job.max_nodes if job.max_nodes else None
        slices: list[Slice] = []
        for lv in sorted((lv for lv in buckets if lv > 0 and buckets[lv]), reverse=True):
            for name in buckets[lv]:
                take = min(need, lv)
                slices.append(Slice(name, take, 0.0, 0))
                need -= take
                if need == 0:
                    return tuple(slices)
                if cap is not None and len(slices) >= cap:
                    return None
        return None

    # ---- updates -------------------------------------------------------------------------------
    def _move(self, name: str, new_gpus: int) -> None:
        t = self.node_type[name]
        old = self.gpus[name]
        if old == new_gpus:
            return
        buckets = self._buckets[t]
        names = buckets[old]
        del names[bisect_left(names, name)]
        if not names:
            del buckets[old]
        insort(buckets.setdefault(new_gpus, []), name)
        self._total[t] += new_gpus - old
        self.gpus[name] = new_gpus

    def take(self, placement: tuple[Slice, ...]) -> None:
        """Reserve `placement` in this copy."""
        self._version += 1
        for s in placement:
            self._move(s.node, self.gpus[s.node] - s.gpus)
            self.cpus[s.node] -= s.cpus
            self.memory[s.node] -= s.memory_bytes

    def release(self, placement: tuple[Slice, ...]) -> None:
        """Give `placement` back to this copy (e.g. to ask "would it fit if that job stopped?")."""
        self._version += 1
        for s in placement:
            self._move(s.node, self.gpus[s.node] + s.gpus)
            self.cpus[s.node] += s.cpus
            self.memory[s.node] += s.memory_bytes

    def can_take(self, placement: tuple[Slice, ...]) -> bool:
        """Whether every slice of `placement` is free here (a running job keeping its place)."""
        need: dict[str, list[float]] = {}
        for s in placement:
            acc = need.setdefault(s.node, [0, 0.0, 0])
            acc[0] += s.gpus
            acc[1] += s.cpus
            acc[2] += s.memory_bytes
        return all(
            node in self.gpus
            and self.gpus[node] >= g
            and self.cpus[node] >= c - 1e-9
            and self.memory[node] >= m
            for node, (g, c, m) in need.items()
        )

    # ---- explanations --------------------------------------------------------------------------
    def _largest(self, eligible: list[GpuType]) -> tuple[int, str | None]:
        key = (self._version, tuple(eligible))
        if key not in self._block_cache:
            top = max((lv for t in eligible for lv, names in self._buckets[t].items() if names), default=0)
            names = [n for t in eligible for n in self._buckets[t].get(top, ())]
            best = (
                max(names, key=lambda n: (self.cpus[n], self.memory[n], -self._order[n])) if names else None
            )
            self._block_cache = {key: (top, best)}
        return self._block_cache[key]

    def _count_fitting(self, job: JobRequest, eligible: list[GpuType]) -> int:
        """Nodes that could take one slice of `job` now (cached per shape while nothing changes)."""
        key = (self._version, tuple(eligible), job.gpus, job.cpus, job.memory_bytes)
        if key not in self._fit_cache:
            self._fit_cache = {
                key: sum(
                    1
                    for t in eligible
                    for level, names in self._buckets[t].items()
                    if level >= job.gpus
                    for n in names
                    if self.cpus[n] >= job.cpus - 1e-9 and self.memory[n] >= job.memory_bytes
                )
            }
        return self._fit_cache[key]

    def largest_block(self, job: JobRequest) -> str:
        """Why `job` does not fit, in words (for `suanli queue`)."""
        eligible = self._types_for(job)
        if not eligible:
            return f"needs {job.gpu_type} GPUs; no node has them"
        if job.nodes:
            return f"runs only on {', '.join(sorted(job.nodes))}; not enough is free there"
        top, best = self._largest(eligible)
        if job.num_nodes is None:
            free = sum(self._total[t] for t in eligible)
            if job.max_nodes:
                where = "one node" if job.max_nodes == 1 else f"at most {job.max_nodes} nodes"
                return f"needs {job.gpus} GPUs on {where}; {free} free, largest free block is {top}"
            return f"needs {job.gpus} GPUs; {free} free"
        want = []
        if job.gpus:
            want.append(f"{job.gpus} GPUs")
        want.append(f"{job.cpus:g} CPUs")
        if job.memory_bytes:
            want.append(f"{job.memory_bytes / 1024**3:.1f} GiB")
        if job.num_nodes > 1:  # a gang: how many nodes could take one slice each
            kind = f" {job.gpu_type}" if job.gpu_type else ""
            extra = [f"{job.cpus:g} CPUs"] + (
                [f"{job.memory_bytes / 1024**3:.1f} GiB"] if job.memory_bytes else []
            )
            shape = f"{job.gpus} free{kind} GPUs" if job.gpus else ", ".join(extra)
            return (
                f"needs {job.num_nodes} nodes with {shape} each; "
                f"{self._count_fitting(job, eligible)} such node(s) free"
            )
        where = "one node"
        if best is None:
            return f"needs {', '.join(want)} on {where}; no node is free"
        return (
            f"needs {', '.join(want)} on {where}; largest free block is "
            f"{self.gpus[best]} GPUs, {self.cpus[best]:g} CPUs, "
            f"{self.memory[best] / 1024**3:.1f} GiB on {best}"
        )
