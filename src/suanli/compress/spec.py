"""What a compression asks for: the budget, the methods, the task, the objective. Pure parsing, no torch."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from suanli.core.errors import BadInput, did_you_mean

QUANT_METHODS = ("int8-dynamic", "int8-static", "int8-weight", "int4-weight")
STRUCT_METHODS = ("prune", "distill")
METHOD_NAMES = (*QUANT_METHODS, "prune:RATIO", "distill:STUDENT")
TASKS = ("classification", "similarity", "fidelity")
TASK_ALIASES = {
    "accuracy": "classification",
    "classify": "classification",
    "spearman": "similarity",
    "regression": "similarity",
    "correlation": "similarity",
    "embedding": "fidelity",
    "cosine": "fidelity",
}
OBJECTIVES = ("latency", "throughput", "size")
TARGETS = ("cpu", "cuda")
RUNTIMES = ("auto", "onnx", "torch")


@dataclass(frozen=True)
class Budget:
    """How much quality may be lost: relative (`1%` of the original) or absolute points (`1pt` = 0.01)."""

    value: float
    relative: bool
    text: str

    def floor(self, baseline: float) -> float:
        """The lowest quality that still holds the budget."""
        return baseline * (1 - self.value) if self.relative else baseline - self.value

    def drop(self, baseline: float, quality: float) -> float:
        """The loss in the budget's own unit (a fraction for relative budgets, quality units for points)."""
        if self.relative:
            return (baseline - quality) / abs(baseline) if baseline else 0.0
        return baseline - quality


def parse_budget(text: str) -> Budget:
    """`1%` (relative to the original's quality) or `1pt` (absolute; accuracy 0.97 -> 0.96 is 1pt)."""
    raw = str(text).strip().lower()
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(%|pt|pts|points?)", raw)
    if not m:
        raise BadInput(
            "budget",
            text,
            "must be a percentage of the original quality (1%) or points (1pt)",
            hint="e.g. 1%",
        )
    number = float(m.group(1))
    if m.group(2) == "%":
        if not 0 <= number < 100:
            raise BadInput("budget", text, "must be at least 0% and below 100%")
        return Budget(number / 100, True, text)
    if not 0 <= number < 100:
        raise BadInput("budget", text, "must be at least 0pt and below 100pt")
    return Budget(number / 100, False, text)


@dataclass(frozen=True)
class Method:
    """One step of a recipe: a quantisation (`int8-dynamic`) or a structural change (`prune:0.3`)."""

    name: str
    arg: str | None = None

    @property
    def text(self) -> str:
        return f"{self.name}:{self.arg}" if self.arg is not None else self.name

    @property
    def structural(self) -> bool:
        return self.name in STRUCT_METHODS


def _parse_one(text: str) -> Method:
    name, _, arg = text.strip().partition(":")
    name = name.strip().lower()
    if name in QUANT_METHODS:
        if arg:
            raise BadInput("methods", text, f"{name} takes no argument")
        return Method(name)
    if name == "prune":
        try:
            ratio = float(arg)
        except ValueError:
            raise BadInput("methods", text, "prune needs a ratio in (0, 1)", hint="e.g. prune:0.3") from None
        if not 0 < ratio < 1:
            raise BadInput("methods", text, "prune needs a ratio in (0, 1)", hint="e.g. prune:0.3")
        return Method("prune", f"{ratio:g}")
    if name == "distill":
        if not arg:
            raise BadInput(
                "methods",
                text,
                "distill needs a student: layers=N, width=F (0<F<1) or a factory file.py:function",
                hint="e.g. distill:layers=3",
            )
        key, eq, val = arg.partition("=")
        if eq and key in ("layers", "width"):
            try:
                number = float(val)
            except ValueError:
                raise BadInput("methods", text, f"distill:{key}= needs a number") from None
            if (key == "layers" and (number < 1 or number != int(number))) or (
                key == "width" and not 0 < number < 1
            ):
                raise BadInput("methods", text, "layers must be a whole number >= 1, width in (0, 1)")
        elif ":" not in arg:
            raise BadInput("methods", text, "distill student must be layers=N, width=F or file.py:function")
        return Method("distill", arg)
    hint = did_you_mean(name, [*QUANT_METHODS, *STRUCT_METHODS])
    raise BadInput(
        "methods", text, "is not a known method (known: " + ", ".join(METHOD_NAMES) + ")", hint=hint
    )


@dataclass(frozen=True)
class Recipe:
    """A chain of methods applied in order: at most one structural step, then at most one quantisation."""

    steps: tuple[Method, ...]

    @property
    def text(self) -> str:
        return "+".join(s.text for s in self.steps)

    @property
    def structural(self) -> Method | None:
        return next((s for s in self.steps if s.structural), None)

    @property
    def quant(self) -> Method | None:
        return next((s for s in self.steps if not s.structural), None)


def parse_methods(text: str | None) -> list[Recipe]:
    """`int8-dynamic,prune:0.3,distill:layers=3+int8-dynamic`: comma-separated recipes, `+` chains steps."""
    if text is None or not text.strip():
        return []
    recipes = []
    for part in text.split(","):
        if not part.strip():
            continue
        steps = tuple(_parse_one(s) for s in part.split("+"))
        structs = [s for s in steps if s.structural]
        quants = [s for s in steps if not s.structural]
        if len(structs) > 1 or len(quants) > 1 or (structs and quants and steps[0].structural is False):
            raise BadInput(
                "methods", part, "a chain has at most one prune/distill step first, then one quantisation"
            )
        recipes.append(Recipe(steps))
    return recipes


def parse_task(text: str) -> str:
    """A named task or a user's function `module:function` / `file.py:function` (higher is better)."""
    raw = text.strip()
    low = raw.lower()
    if low in TASKS:
        return low
    if low in TASK_ALIASES:
        return TASK_ALIASES[low]
    if ":" in raw and not raw.startswith(":") and not raw.endswith(":"):
        return raw
    hint = did_you_mean(low, [*TASKS, *TASK_ALIASES])
    raise BadInput(
        "task", text, "must be classification, similarity, fidelity or a function module:function", hint=hint
    )


def choose(field_name: str, value: str, allowed: tuple[str, ...]) -> str:
    """Check a value against a small set of names, with a near-name hint."""
    low = value.strip().lower()
    if low not in allowed:
        raise BadInput(
            field_name, value, "must be one of " + ", ".join(allowed), hint=did_you_mean(low, allowed)
        )
    return low


@dataclass
class CompressOptions:
    """Everything `compress` needs besides the model and the data."""

    task: str
    budget: Budget
    recipes: list[Recipe] = field(default_factory=list)
    target: str = "cpu"
    runtime: str = "auto"
    objective: str = "latency"
    threads: int = 2
    repeats: int = 30
    seed: int = 0
    distill_epochs: int | None = None

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise BadInput("repeats", self.repeats, "must be a whole number >= 1 (timed runs per candidate)")
        if self.distill_epochs is not None and self.distill_epochs < 1:
            raise BadInput("distill_epochs", self.distill_epochs, "must be a whole number >= 1")
