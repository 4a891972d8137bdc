"""Where a job's slices go. Shared by every policy, live and simulated."""

from __future__ import annotations

from suanli.schedule.policy import JobRequest, NodeState, Slice


class FreeSpace:
    """A private copy of free capacity, so a policy can place several jobs in one decision without
    mutating the cluster state it was given."""

    def __init__(self, nodes: list[NodeState]) -> None:
        self.nodes = nodes
        self.gpus = {n.name: n.free_gpus for n in nodes}
        self.cpus = {n.name: n.free_cpus for n in nodes}
        self.memory = {n.name: n.free_memory_bytes for n in nodes}

    def _node_ok(self, job: JobRequest, node: NodeState) -> bool:
        return job.gpu_type is None or job.gpu_type == node.gpu_type

    def place(self, job: JobRequest, *, consolidate: bool = True) -> tuple[Slice, ...] | None:
        """Slices for `job`, or None when it does not fit now. Does not reserve them (see `take`)."""
        if job.num_nodes is not None:
            return self._place_gang(job)
        return self._place_split(job, consolidate=consolidate)

    def _place_gang(self, job: JobRequest) -> tuple[Slice, ...] | None:
        slices = []
        # Best fit: the node with the least free GPUs that still fits, to keep large blocks whole.
        candidates = sorted(
            (n for n in self.nodes if self._node_ok(job, n)),
            key=lambda n: (self.gpus[n.name], self.cpus[n.name], n.name),
        )
        for node in candidates:
            if (
                self.gpus[node.name] >= job.gpus
                and self.cpus[node.name] >= job.cpus - 1e-9
                and self.memory[node.name] >= job.memory_bytes
            ):
                slices.append(Slice(node.name, job.gpus, job.cpus, job.memory_bytes))
                if len(slices) == job.num_nodes:
                    return tuple(slices)
        return None

    def _place_split(self, job: JobRequest, *, consolidate: bool) -> tuple[Slice, ...] | None:
        nodes = [n for n in self.nodes if self._node_ok(job, n) and self.gpus[n.name] > 0]
        if sum(self.gpus[n.name] for n in nodes) < job.gpus:
            return None
        if consolidate:
            # One node if any can hold it (best fit), else the fewest nodes: largest free blocks first.
            single = [n for n in nodes if self.gpus[n.name] >= job.gpus]
            if single:
                node = min(single, key=lambda n: (self.gpus[n.name], n.name))
                return (Slice(node.name, job.gpus, 0.0, 0),)
            nodes.sort(key=lambda n: (-self.gpus[n.name], n.name))
        need, slices = job.gpus, []
        for node in nodes:
            take = min(need, self.gpus[node.name])
            slices.append(Slice(node.name, take, 0.0, 0))
            need -= take
            if need == 0:
                return tuple(slices)
        return None

    def take(self, placement: tuple[Slice, ...]) -> None:
        for s in placement:
            self.gpus[s.node] -= s.gpus
            self.cpus[s.node] -= s.cpus
            self.memory[s.node] -= s.memory_bytes

    def largest_block(self, job: JobRequest) -> str:
        """Why `job` does not fit, in words (for `suanli queue`)."""
        nodes = [n for n in self.nodes if self._node_ok(job, n)]
        if not nodes:
            return f"needs {job.gpu_type} GPUs; no node has them"
        if job.num_nodes is None:
            free = sum(self.gpus[n.name] for n in nodes)
            return f"needs {job.gpus} GPUs; {free} free"
        best = max(nodes, key=lambda n: (self.gpus[n.name], self.cpus[n.name], self.memory[n.name]))
        want = []
        if job.gpus:
            want.append(f"{job.gpus} GPUs")
        want.append(f"{job.cpus:g} CPUs")
        if job.memory_bytes:
            want.append(f"{job.memory_bytes / 1024**3:.1f} GiB")
        where = "one node" if job.num_nodes == 1 else f"each of {job.num_nodes} nodes"
        return (
            f"needs {', '.join(want)} on {where}; largest free block is "
            f"{self.gpus[best.name]} GPUs, {self.cpus[best.name]:g} CPUs, "
            f"{self.memory[best.name] / 1024**3:.1f} GiB on {best.name}"
        )
