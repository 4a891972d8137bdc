"""The privacy spent by a federation, after every round, and the stop at its budget.

Central DP (Flower's DifferentialPrivacyServerSideFixedClipping, or ...ClientSideFixedClipping with
`fixedclipping_mod` on the clients): each round releases the average of k clipped updates (norm <= C)
plus Gaussian noise of std sigma * C / k, i.e. the sum's sensitivity C under noise sigma * C: the sampled
Gaussian mechanism of DP-FedAvg (McMahan et al. 2018) at client level, with sampling rate q = k / N. It is
accounted with opacus's RDP accountant (`RDPAccountant.step(noise_multiplier=sigma, sample_rate=q)`),
which assumes Poisson sampling of clients; Flower samples k of N without replacement, for which the same
q is the usual approximation. epsilon is reported at the stated delta.

Local DP (Flower's LocalDpMod): each participating client clips and noises its own update, a release of
epsilon_per_round each time; over the rounds a client took part in, basic composition bounds its loss by
rounds * epsilon_per_round (and delta by rounds * delta). The largest over the clients is reported.

The budget is checked before each round: a round whose release would take epsilon past `max_epsilon` is
not started, so the spent epsilon never exceeds the budget.
"""

from __future__ import annotations

import copy

from suanli.federate.spec import PrivacySpec


class PrivacyAccount:
    """epsilon spent so far and whether one more round fits the budget."""

    def __init__(self, spec: PrivacySpec, population: int) -> None:
        self.spec = spec
        self.population = population
        self.rounds_by_client: dict[int, int] = {}
        self.rounds = 0
        if spec.mode != "local":
            from opacus.accountants import RDPAccountant

            self._rdp = RDPAccountant()

    def _epsilon_of(self, rdp: object) -> float:
        if self.spec.noise_multiplier == 0:
            return float("inf")
        return float(rdp.get_epsilon(delta=self.spec.delta))  # type: ignore[attr-defined]

    @property
    def epsilon(self) -> float:
        if self.spec.mode == "local":
            eps = self.spec.epsilon_per_round or 0.0
            return max(self.rounds_by_client.values(), default=0) * eps
        return 0.0 if self.rounds == 0 else self._epsilon_of(self._rdp)

    def epsilon_after(self, sampled: int, clients: list[int] | None = None) -> float:
        """epsilon if one more round released `sampled` clients' updates (`clients` for local DP)."""
        if self.spec.mode == "local":
            eps = self.spec.epsilon_per_round or 0.0
            counts = dict(self.rounds_by_client)
            for c in clients or []:
                counts[c] = counts.get(c, 0) + 1
            return max(counts.values(), default=0) * eps
        trial = copy.deepcopy(self._rdp)
        trial.step(noise_multiplier=self.spec.noise_multiplier, sample_rate=self.rate(sampled))
        return self._epsilon_of(trial)

    def rate(self, sampled: int) -> float:
        return min(1.0, sampled / max(self.population, 1))

    def fits(self, sampled: int, clients: list[int] | None = None) -> bool:
        budget = self.spec.max_epsilon
        return budget is None or self.epsilon_after(sampled, clients) <= budget

    def spend(self, sampled: int, clients: list[int] | None = None) -> float:
        """Record one round's release; the epsilon spent after it."""
        self.rounds += 1
        if self.spec.mode == "local":
            for c in clients or []:
                self.rounds_by_client[c] = self.rounds_by_client.get(c, 0) + 1
        else:
            self._rdp.step(noise_multiplier=self.spec.noise_multiplier, sample_rate=self.rate(sampled))
        return self.epsilon
