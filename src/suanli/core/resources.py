"""What a job asks for and what a node has, in one type."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resources:
    """CPUs, memory and accelerators. The accelerator map holds at most one type."""

    cpus: float = 0.0
    memory_bytes: int = 0
    accelerators: dict[str, int] = field(default_factory=dict)

    @property
    def accelerator(self) -> str | None:
        return next(iter(self.accelerators), None)

    @property
    def accelerator_count(self) -> int:
        return sum(self.accelerators.values())

    def fits_in(self, other: Resources) -> bool:
        """True when this request fits in `other` (capacity or free space)."""
        if self.cpus > other.cpus + 1e-9 or self.memory_bytes > other.memory_bytes:
            return False
        return all(other.accelerators.get(name, 0) >= n for name, n in self.accelerators.items())

    def describe(self) -> str:
        parts = [f"{self.cpus:g} CPUs", f"{self.memory_bytes / 1024**3:.1f} GiB memory"]
        if self.accelerators:
            parts += [f"{n}x {name}" for name, n in self.accelerators.items()]
        else:
            parts.append("no accelerators")
        return ", ".join(parts)
