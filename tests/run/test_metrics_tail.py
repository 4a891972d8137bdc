"""Reading a job's log for metrics: memory stays bounded whatever the job prints, and points are read
again rather than lost when storing them fails."""

from __future__ import annotations

import json

from suanli.run.metrics import READ_BYTES, LogTail, parse_line


def test_a_huge_log_is_read_in_bounded_pieces(tmp_path):
    log = tmp_path / "output.log"
    line = json.dumps({"metric": "loss", "value": 1.0}) + "\n"
    log.write_text(line * (3 * READ_BYTES // len(line) + 10))
    tail = LogTail(log)
    total, reads = 0, 0
    while points := tail.read():
        assert tail._next is not None and tail._next[0] - tail.offset <= READ_BYTES
        tail.commit()
        total += len(points)
        reads += 1
    assert total == log.read_text().count("\n") and reads >= 3


def test_one_endless_line_is_skipped_not_held(tmp_path):
    log = tmp_path / "output.log"
    log.write_bytes(b"x" * (2 * READ_BYTES) + b'\n{"metric": "m", "value": 2}\n')
    tail = LogTail(log)
    seen = []
    for _ in range(5):
        seen += tail.read()
        tail.commit()
    assert [(p.name, p.value) for p in seen] == [("m", 2.0)]


def test_points_not_committed_are_read_again(tmp_path):
    log = tmp_path / "output.log"
    log.write_text('{"metric": "a", "value": 1}\n')
    tail = LogTail(log)
    assert [p.name for p in tail.read()] == ["a"]
    assert [p.name for p in tail.read()] == ["a"]  # the store failed: nothing was committed
    tail.commit()
    assert tail.read() == []


def test_parse_line_keeps_what_it_can_and_never_raises():
    assert parse_line('{"metric": "x", "value": 1, "step": 1e23}', 0.0)[0].step is None
    assert parse_line('{"metric": "x", "value": 1, "step": 2.5}', 0.0)[0].step is None
    assert parse_line('{"metric": "x", "value": 1, "step": 7.0}', 0.0)[0].step == 7
    assert parse_line('{"metric": "x", "value": Infinity}', 0.0) == []
    assert parse_line('{"metric": "x", "value": ' + "9" * 400 + "}", 0.0) == []
    assert parse_line('{"metric": "", "value": 1}', 0.0) == []
    assert parse_line('{"metric": ' + "[" * 100_000 + "]" * 100_000 + ', "value": 1}', 0.0) == []
    assert parse_line('{"metrics": {"a": 1, "b": NaN, "c": true, "d": 2}}', 0.0)[1].name == "d"
