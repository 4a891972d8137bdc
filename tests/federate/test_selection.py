"""Compute-aware selection: fast, useful clients first; a slow client is given the work that fits the
deadline and is never starved; unknown clients are tried."""

from __future__ import annotations

import itertools

from suanli.federate.selection import ComputeAwareSelector

FAST, SLOW = 0.01, 0.5  # seconds per local step


def play(selector: ComputeAwareSelector, speed: dict[int, float], rounds: int, k: int, steps: int = 20):
    """Rounds of selection where every picked client replies with its emulated duration."""
    history = []
    for r in range(1, rounds + 1):
        picks = selector.choose(list(speed), k, r)
        for p in picks:
            done = p.max_steps or steps
            selector.observe(p.node_id, r, duration_s=done * speed[p.node_id], steps=done, full_steps=steps,
                             loss=1.0, examples=100)  # fmt: skip
        history.append(picks)
    return history


def test_every_client_is_tried_then_slow_ones_get_work_that_fits_the_pace():
    speed = {i: FAST for i in range(8)} | {8: SLOW, 9: SLOW}
    selector = ComputeAwareSelector(deadline_s=1.0, seed=1)
    history = play(selector, speed, rounds=14, k=3)
    tried = {p.node_id for picks in history[:8] for p in picks}
    assert tried == set(speed)  # 3 in the first round, then one exploration slot a round
    for picks in history[8:]:
        for p in picks:
            expected = (p.max_steps or 20) * speed[p.node_id]
            assert expected <= max(0.2, speed[p.node_id])  # the pace: the median full work, 20 x 0.01 s
            if speed[p.node_id] == SLOW:
                assert p.max_steps == 1  # less than one step fits 0.2 s: one step, the least useful work


def test_fast_clients_fill_most_slots_but_slow_clients_are_not_starved():
    speed = {i: FAST for i in range(6)} | {6: SLOW, 7: SLOW}
    selector = ComputeAwareSelector(deadline_s=1.0, seed=0, max_staleness_rounds=5)
    history = play(selector, speed, rounds=30, k=2)
    picked = [p.node_id for picks in history[5:] for p in picks]
    slow_share = sum(speed[n] == SLOW for n in picked) / len(picked)
    assert slow_share < 0.3  # 2 of 8 clients are slow: they get fewer than their 25% ... of slots, at most
    for slow in (6, 7):
        rounds_with = [r for r, picks in enumerate(history, 1) if any(p.node_id == slow for p in picks)]
        gaps = [b - a for a, b in itertools.pairwise(rounds_with)]
        assert rounds_with and max(gaps, default=0) <= 6  # back within max_staleness (+1 for the slot order)


def test_a_client_that_stops_answering_loses_priority():
    speed = {i: FAST for i in range(4)}
    selector = ComputeAwareSelector(deadline_s=1.0, seed=0)
    play(selector, speed, rounds=3, k=4)
    for r in range(4, 8):  # client 0 is asked but never replies
        for p in selector.choose(list(speed), 4, r):
            if p.node_id != 0:
                selector.observe(
                    p.node_id, r, duration_s=0.2, steps=20, full_steps=20, loss=1.0, examples=100
                )
    assert selector.stats[0].availability < min(selector.stats[i].availability for i in (1, 2, 3))
    assert 0 not in {p.node_id for p in selector.choose(list(speed), 2, 8)}
