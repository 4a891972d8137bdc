"""The vote and the drop rule, as pure functions of the replicas' answers: the front calls them, tests and
the benchmark check them without a network.

Majority: each answering replica votes its own top label with its weight; the label with the most weight
wins, a tie going to the label with the larger weighted probability. Soft: the label with the largest
weighted mean probability. Either way a row's `agreed` is how many answering replicas had that label on
top. A malicious replica changes the answer only if it (with its colluders) outweighs the honest ones on
that row; soft voting is the more exposed, as a confident wrong answer counts fully until it is dropped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from suanli.serve.spec import DropRule


@dataclass
class Combined:
    labels: np.ndarray  # (rows,) the ensemble's label per row
    agreed: np.ndarray  # (rows,) answering replicas whose top label is the ensemble's
    scores: np.ndarray  # (rows, classes) the vote's weight per label, normalised to sum to 1 per row


def combine(probs: list[np.ndarray], weights: list[float], vote: str) -> Combined:
    """Combine the answers of the replicas that answered (`probs[i]`: rows x classes, `weights[i]`)."""
    if not probs:
        raise ValueError("no answers to combine")
    stack = np.stack([np.asarray(p, dtype=np.float64) for p in probs])  # (replicas, rows, classes)
    w = np.asarray(weights, dtype=np.float64)[:, None, None]
    tops = stack.argmax(axis=2)  # (replicas, rows)
    soft = (stack * w).sum(axis=0) / w.sum()
    if vote == "soft":
        scores = soft
        labels = scores.argmax(axis=1)
    elif vote == "majority":
        scores = (np.eye(stack.shape[2])[tops] * w).sum(axis=0)  # each label's weight of votes
        # A tie in weight goes to the tied label the replicas were surer of.
        tied = np.isclose(scores, scores.max(axis=1, keepdims=True), rtol=1e-12, atol=0.0)
        labels = np.where(tied, soft, -np.inf).argmax(axis=1)
    else:
        raise ValueError(f"unknown vote {vote!r}")
    agreed = (tops == labels[None, :]).sum(axis=0)
    return Combined(labels, agreed, scores / scores.sum(axis=1, keepdims=True))


@dataclass
class ReplicaRecord:
    """What the front knows of one replica; `state` is live or dropped."""

    name: str
    state: str = "live"
    reason: str | None = None
    dropped_at: float | None = None
    requests: int = 0
    answered: int = 0  # requests answered in time
    failed: int = 0  # timed out or answered with an error
    failed_in_a_row: int = 0
    rows: int = 0
    disagreed: int = 0
    window: deque = field(default_factory=deque)  # 1 per recent row on which it disagreed, else 0
    last_error: str | None = None

    def disagreement_rate(self) -> float | None:
        return sum(self.window) / len(self.window) if self.window else None

    def to_json(self) -> dict:
        rate = self.disagreement_rate()
        return {
            "name": self.name, "state": self.state, "reason": self.reason, "dropped_at": self.dropped_at,
            "requests": self.requests, "answered": self.answered, "failed": self.failed,
            "failed_in_a_row": self.failed_in_a_row, "rows": self.rows, "disagreed": self.disagreed,
            "recent_disagreement": None if rate is None else round(rate, 4), "last_error": self.last_error,
        }  # fmt: skip


class Tracker:
    """Applies the drop rule to each request's outcome. Never drops the last live replica: with one left
    there is nothing to disagree with, and an empty ensemble answers nothing."""

    def __init__(self, names: list[str], rule: DropRule) -> None:
        self.rule = rule
        self.replicas = {n: ReplicaRecord(n, window=deque(maxlen=rule.window)) for n in names}

    def live(self) -> list[str]:
        return [n for n, r in self.replicas.items() if r.state == "live"]

    def failed(self, name: str, error: str, now: float) -> str | None:
        """A replica did not answer in time (or answered an error); the drop reason if it is dropped now."""
        r = self.replicas[name]
        r.requests += 1
        r.failed += 1
        r.failed_in_a_row += 1
        r.last_error = error
        if r.failed_in_a_row >= self.rule.timeouts:
            return self._drop(r, f"{r.failed_in_a_row} requests in a row not answered ({error})", now)
        return None

    def answered(self, name: str, disagreed: np.ndarray, now: float) -> str | None:
        """A replica answered; `disagreed` says per row whether its top label was not the ensemble's."""
        r = self.replicas[name]
        r.requests += 1
        r.answered += 1
        r.failed_in_a_row = 0
        r.rows += len(disagreed)
        r.disagreed += int(np.sum(disagreed))
        r.window.extend(int(d) for d in disagreed)
        rate = r.disagreement_rate()
        if len(r.window) >= self.rule.window and rate is not None and rate > self.rule.disagreement:
            why = (f"disagreed with the ensemble on {sum(r.window)} of its last {len(r.window)} rows "
                   f"(more than {self.rule.disagreement:g})")  # fmt: skip
            return self._drop(r, why, now)
        return None

    def drop(self, name: str, reason: str, now: float) -> str | None:
        """Drop a replica for `reason` (one that never started); the reason if it was dropped."""
        return self._drop(self.replicas[name], reason, now)

    def _drop(self, r: ReplicaRecord, reason: str, now: float) -> str | None:
        if not self.rule.enabled or r.state != "live" or len(self.live()) <= 1:
            return None
        r.state, r.reason, r.dropped_at = "dropped", reason, now
        return reason
