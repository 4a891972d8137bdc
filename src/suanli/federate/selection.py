"""Compute-aware client selection: which clients train in a round, and how much work each is given, so
that a round ends by its deadline without one slow client setting every round's pace.

The rule, after Oort (Lai et al., OSDI'21), with a guarantee for slow clients' data:

1. Each client's measured speed (seconds per local step, an exponential average of what it reported) and
   statistical utility (|B_i| * its last mean training loss: clients whose data the model fits worst
   teach it most) are kept across rounds, with its availability (replies / requests).
2. The round's pace T is the shortest round in which k of the N clients could all do their full work:
   the k/N quantile of the measured clients' expected full-work times t_i (the k-th smallest once all
   are measured; never above the deadline). It is Oort's preferred round duration, set from the
   measured speeds rather than tuned.
   Utility_i = stat_i * availability_i + sqrt(0.1 ln(round) / last_round_i) (Oort's staleness bonus, so a
   client not heard from for a while is tried again), times (T / t_i)^2 when t_i > T (Oort's penalty,
   alpha = 2).
3. Of k clients a round: first every client not picked for `max_staleness_rounds` rounds (default 2N/k,
   at most half the slots): no client's data is starved; then clients never tried (an `explore` share of
   the slots, all remaining slots while any are untried); then the highest utilities.
4. A client whose full local work would take longer than T is told to stop after the steps that fit
   (`max_steps`): slow clients contribute partial work on time instead of nothing late (as FedProx allows
   variable local work), and a round lasts about T rather than as long as its slowest client.

Random selection (Flower's default) is the baseline it is measured against (benchmarks/federate_selection.py).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass
class ClientStats:
    seconds_per_step: float | None = None
    full_steps: int = 1  # the steps of its full local work (its partition's size over the batch size)
    utility: float | None = None
    last_round: int = 0
    picked_round: int = 0
    requests: int = 0
    replies: int = 0

    @property
    def availability(self) -> float:
        return (self.replies + 1) / (self.requests + 1)


@dataclass(frozen=True)
class Pick:
    node_id: int
    max_steps: int | None  # None: the full local work


class ComputeAwareSelector:
    """Chooses k of the connected clients per round (see the module's rule)."""

    def __init__(
        self, deadline_s: float, *, explore: float = 0.1, max_staleness_rounds: int | None = None,
        seed: int = 0, alpha: float = 2.0,
    ) -> None:  # fmt: skip
        self.deadline_s = deadline_s
        self.explore = explore
        self.max_staleness = max_staleness_rounds
        self.alpha = alpha
        self.rng = random.Random(seed)
        self.stats: dict[int, ClientStats] = {}

    def _expected_s(self, s: ClientStats) -> float | None:
        return None if s.seconds_per_step is None else s.seconds_per_step * s.full_steps

    def pace_s(self, k: int, n: int) -> float:
        """T: the k/n quantile of the measured clients' expected full-work times, at most the deadline."""
        known = sorted(t for s in self.stats.values() if (t := self._expected_s(s)) is not None)
        if not known:
            return self.deadline_s
        return min(self.deadline_s, known[max(0, math.ceil(len(known) * k / max(n, 1)) - 1)])

    def _score(self, s: ClientStats, round_: int, pace: float) -> float:
        stat = (s.utility or 0.0) * s.availability
        stale = math.sqrt(0.1 * math.log(max(round_, 2)) / max(s.last_round, 1))
        score = stat + stale
        t = self._expected_s(s)
        if t is not None and t > pace:
            score *= (pace / t) ** self.alpha
        return score

    def choose(self, node_ids: list[int], k: int, round_: int) -> list[Pick]:
        """k clients (at most all) for this round, each with the local steps it may take."""
        ids = sorted(node_ids)
        for n in ids:
            self.stats.setdefault(n, ClientStats())
        k = min(k, len(ids))
        stale_after = self.max_staleness or max(1, math.ceil(2 * len(ids) / max(k, 1)))
        chosen: list[int] = []
        starving = [n for n in ids if self.stats[n].seconds_per_step is not None
                    and round_ - self.stats[n].picked_round >= stale_after]  # fmt: skip
        starving.sort(key=lambda n: self.stats[n].picked_round)
        chosen += starving[: k // 2]
        untried = [n for n in ids if self.stats[n].seconds_per_step is None and n not in chosen]
        self.rng.shuffle(untried)
        tried = [n for n in ids if self.stats[n].seconds_per_step is not None and n not in chosen]
        explore_slots = max(1, round(self.explore * k)) if untried else 0
        if len(tried) < k - len(chosen):  # early rounds: everyone untried is tried first
            explore_slots = k - len(chosen)
        chosen += untried[:explore_slots]
        pace = self.pace_s(k, len(ids))
        tried.sort(key=lambda n: self._score(self.stats[n], round_, pace), reverse=True)
        chosen += tried[: k - len(chosen)]
        chosen += [n for n in untried if n not in chosen][: k - len(chosen)]
        speeds = sorted(x.seconds_per_step for x in self.stats.values() if x.seconds_per_step is not None)
        typical = speeds[len(speeds) // 2] if speeds else None
        picks = []
        for n in chosen:
            s = self.stats[n]
            s.picked_round = round_
            s.requests += 1
            t = self._expected_s(s)
            if s.seconds_per_step is None:  # untried: the work a typical client does in T
                fits = None if typical is None else max(1, int(pace / typical))
            else:
                fits = None if t is None or t <= pace else max(1, int(pace / s.seconds_per_step))
            picks.append(Pick(n, fits))
        return picks

    def observe(self, node_id: int, round_: int, *, duration_s: float, steps: int, full_steps: int,
                loss: float, examples: int) -> None:  # fmt: skip
        """A client's reply: its reported duration for `steps` local steps (of `full_steps` for its full
        work), mean loss and examples."""
        s = self.stats.setdefault(node_id, ClientStats())
        s.full_steps = max(1, full_steps)
        s.replies += 1
        s.last_round = round_
        per_step = duration_s / max(steps, 1)
        s.seconds_per_step = (
            per_step if s.seconds_per_step is None else 0.5 * s.seconds_per_step + 0.5 * per_step
        )
        if math.isfinite(loss):
            s.utility = examples * abs(loss)
