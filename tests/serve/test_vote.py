"""The vote and the drop rule as pure functions: what the front answers and when it drops a replica."""

from __future__ import annotations

import numpy as np
import pytest

from suanli.serve.spec import DropRule
from suanli.serve.vote import Tracker, combine


def onehot(labels: list[int], classes: int = 3, sure: float = 1.0) -> np.ndarray:
    rest = (1 - sure) / (classes - 1)
    out = np.full((len(labels), classes), rest)
    out[np.arange(len(labels)), labels] = sure
    return out


def test_majority_counts_votes_not_confidence():
    # Two replicas 60% sure of label 0 outvote one that is certain of label 1.
    answers = [onehot([0], sure=0.6), onehot([0], sure=0.6), onehot([1], sure=1.0)]
    majority = combine(answers, [1, 1, 1], "majority")
    assert majority.labels.tolist() == [0] and majority.agreed.tolist() == [2]
    # The soft vote weighs confidence: 0.4 + 0.4 + 0 for label 0 against 0.2 + 0.2 + 1 for label 1.
    soft = combine(answers, [1, 1, 1], "soft")
    assert soft.labels.tolist() == [1] and soft.agreed.tolist() == [1]


def test_weights_count_and_a_tie_goes_to_the_surer_label():
    answers = [onehot([0], sure=0.9), onehot([1], sure=0.5)]
    assert combine(answers, [1, 1], "majority").labels.tolist() == [0]  # a tie in votes: 0.9 beats 0.5
    assert combine(answers, [1, 3], "majority").labels.tolist() == [1]  # weight 3 outvotes weight 1
    assert combine(answers, [1, 3], "soft").labels.tolist() == [0]  # 0.9 + 3 x 0.25 beats 0.05 + 3 x 0.5
    assert combine(answers, [1, 9], "soft").labels.tolist() == [1]


def test_rows_are_voted_independently():
    answers = [onehot([0, 1, 2]), onehot([0, 1, 1]), onehot([2, 1, 1])]
    c = combine(answers, [1, 1, 1], "majority")
    assert c.labels.tolist() == [0, 1, 1] and c.agreed.tolist() == [2, 3, 2]
    assert np.allclose(c.scores.sum(axis=1), 1.0)


def test_unknown_vote_and_no_answers_are_refused():
    with pytest.raises(ValueError):
        combine([onehot([0])], [1], "plurality")
    with pytest.raises(ValueError):
        combine([], [], "majority")


def test_a_replica_that_disagrees_over_the_window_is_dropped_once_the_window_is_full():
    t = Tracker(["a", "b", "c"], DropRule(window=10, disagreement=0.5))
    assert t.answered("c", np.ones(9, dtype=bool), 0.0) is None  # 9 of 9, but the window holds 10
    reason = t.answered("c", np.ones(1, dtype=bool), 1.0)
    assert reason is not None and "10 of its last 10" in reason
    assert t.live() == ["a", "b"] and t.replicas["c"].dropped_at == 1.0
    # An honest replica that disagrees now and then stays.
    assert t.answered("a", np.array([True] * 5 + [False] * 5), 2.0) is None


def test_timeouts_in_a_row_drop_and_an_answer_resets_the_count():
    t = Tracker(["a", "b"], DropRule(timeouts=2))
    assert t.failed("b", "timed out", 0.0) is None
    assert t.answered("b", np.zeros(3, dtype=bool), 0.0) is None
    assert t.failed("b", "timed out", 0.0) is None
    assert "2 requests in a row" in (t.failed("b", "timed out", 0.0) or "")
    assert t.live() == ["a"]


def test_the_last_live_replica_is_never_dropped_and_the_rule_can_be_off():
    t = Tracker(["a"], DropRule(timeouts=1))
    assert t.failed("a", "timed out", 0.0) is None and t.live() == ["a"]
    off = Tracker(["a", "b"], DropRule(timeouts=1, enabled=False))
    assert off.failed("a", "timed out", 0.0) is None and off.live() == ["a", "b"]
