"""Fuzzing metric lines: `parse_line` on generated lines (JSON objects with metric/metrics/value/step of
every JSON type, huge numbers, NaN/Infinity tokens, long names, broken JSON, plain text) never raises, and
every point it returns can be stored: a name of 1..255 characters that UTF-8 (and PostgreSQL, which
refuses NUL) can hold, a finite float, a step that is None or a 32-bit integer. `LogTail` over a file of
such lines, written in pieces and read as it grows, never raises and returns exactly the points of its
complete lines.

Seeded (derandomize=True) so CI is reproducible; benchmarks/bench_fuzz.py runs the same properties with
far more examples and a random seed.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz_spec import EXAMPLES, FUZZ, Known, regressions, tolerating

from suanli.run.metrics import MAX_LINE, MAX_NAME, READ_BYTES, LogTail, parse_line

MAX_STEP = 2**31 - 1

# ---- lines ------------------------------------------------------------------------------------------

SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
ANY_CHAR = st.characters(codec=None) | SURROGATES | st.sampled_from("\x00\n\r\t\x0b\x0c\x1c\x85\u2028")
NAMES = st.one_of(
    st.sampled_from(["loss", "accuracy", "lr", "", " ", "a" * 255, "a" * 256, "é" * 255, "🚀" * 200]),
    st.sampled_from(["\ud800", "x\udfffy", "\x00", "a\x00b", "\x1b[31m", "a\nb", "\u2028"]),
    st.text(ANY_CHAR, max_size=20),
    st.integers(1, 400).map(lambda n: "n" * n),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.integers(),
    st.sampled_from([2**31 - 1, 2**31, -(2**31) + 1, -(2**31), 2**53 + 1, 2**63, 2**64, 10**308, 10**309]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, -0.0, 2147483647.0, 2147483648.0, 1e23, 0.5]),
)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | st.text(ANY_CHAR, max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(NAMES, children, max_size=3),
    max_leaves=6,
)
KEYS = st.sampled_from(["metric", "metrics", "value", "step", "Metric", "metric ", "values", "x"])


SHAPES = st.integers(0, 3)
NAME_OR_ANY = NAMES | JSON
NUMBER_OR_ANY = NUMBERS | JSON
METRICS = st.dictionaries(NAMES, NUMBER_OR_ANY, max_size=5) | JSON
MORE_KEYS = st.lists(KEYS, max_size=2)


@st.composite
def metric_object(draw: st.DrawFn) -> dict:
    """A JSON object shaped like a metric line, with fields of every JSON type."""
    doc: dict = {}
    shape = draw(SHAPES)
    if shape in (0, 2):
        doc["metric"] = draw(NAME_OR_ANY)
        doc["value"] = draw(NUMBER_OR_ANY)
    if shape in (1, 2):
        doc["metrics"] = draw(METRICS)
    if draw(st.booleans()):
        doc["step"] = draw(NUMBER_OR_ANY)
    for key in draw(MORE_KEYS):
        doc[key] = draw(JSON)
    return doc


METRIC_OBJECTS = metric_object()


# Raw JSON number tokens that json.dumps never writes but a job may print.
RAW_NUMBERS = st.sampled_from(
    ["NaN", "-NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e-999", "9" * 400, "-" + "9" * 5000,
     "0" * 20, "1.0e+10", "2147483648", "-2147483648", "1E400", "+1", ".5", "1.", "0x10", "nan", "inf"]
)  # fmt: skip


LINE_KINDS = st.integers(0, 9)
BEFORE, AFTER = st.sampled_from(["", " ", "\t", "\ufeff"]), st.sampled_from(["", " ", "\r"])
NUMBER_TEXT = RAW_NUMBERS | NUMBERS.map(str)
TEXT_LINES = st.text(ANY_CHAR, max_size=60) | st.sampled_from(['{"metric', "{}", "{metric}", '{"metric"}'])
DEPTHS = st.sampled_from([10, 1000, 100_000])


@st.composite
def metric_line(draw: st.DrawFn) -> str:
    kind = draw(LINE_KINDS)
    if kind <= 4:  # a metric object as json.dumps writes it (NaN/Infinity included), maybe spaced out
        text = json.dumps(draw(METRIC_OBJECTS), ensure_ascii=draw(st.booleans()))
        return draw(BEFORE) + text + draw(AFTER)
    if kind == 5:  # hand-written numbers and names
        name = json.dumps(draw(NAMES), ensure_ascii=draw(st.booleans()))
        value, step = draw(NUMBER_TEXT), draw(NUMBER_TEXT)
        return draw(st.sampled_from([
            f'{{"metric": {name}, "value": {value}, "step": {step}}}',
            f'{{"metrics": {{{name}: {value}}}, "step": {step}}}',
            f'{{"metric": {name}, "value": {value}, "metric": "again", "value": {value}}}',
        ]))  # fmt: skip
    if kind == 6:  # broken JSON around the marker parse_line looks for
        text = json.dumps(draw(METRIC_OBJECTS))
        cut = draw(st.integers(0, len(text)))
        return draw(st.sampled_from([text[:cut] + "}", "{" + text[cut:], text[:cut] + text[cut + 1 :]]))
    if kind == 7:  # deep, long or huge
        depth = draw(DEPTHS)
        return draw(st.sampled_from([
            '{"metric": "deep", "value": 1, "x": ' + "[" * depth + "]" * depth + "}",
            '{"metrics": ' + '{"a": ' * depth + "1" + "}" * depth + "}",
            '{"metric": "long", "value": 1, "pad": "' + "x" * (MAX_LINE - 30) + '"}',
            '{"metric": "long", "value": 1, "pad": "' + "x" * MAX_LINE + '"}',
        ]))  # fmt: skip
    return draw(TEXT_LINES)


# ---- the properties ---------------------------------------------------------------------------------


def check_point(point, at: float) -> None:  # type: ignore[no-untyped-def]
    name, value, step = point.name, point.value, point.step
    assert isinstance(name, str) and 1 <= len(name) <= MAX_NAME, f"bad name: {name!r:.80}"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise AssertionError(f"a name UTF-8 cannot encode (a lone surrogate): {name!r:.80}") from None
    assert "\x00" not in name, f"a name PostgreSQL cannot store (a NUL): {name!r:.80}"
    assert type(value) is float and math.isfinite(value), f"bad value: {value!r}"
    assert step is None or (type(step) is int and -MAX_STEP <= step <= MAX_STEP), f"bad step: {step!r}"
    assert point.at == at


def check_parse_line(_context: object, line: str) -> None:
    points = parse_line(line, 12.5)
    assert isinstance(points, list)
    for p in points:
        check_point(p, 12.5)


def expected_points(data: bytes, skip: int) -> list[tuple]:
    """What LogTail must return for a file of `data`: the points of each complete line, after `skip`
    points. A line longer than a read (READ_BYTES) is log output, never metrics; no such line is made
    here (see huge_line_log)."""
    complete = data[: data.rfind(b"\n") + 1]
    points = [
        (p.name, p.value, p.step)
        for line in complete.decode(errors="replace").splitlines()
        for p in parse_line(line, 0.0)
    ]
    return points[skip:]


def check_log_tail(path: Path, example: tuple[list[bytes], int, list[bool]]) -> None:
    """Write the pieces one by one, reading after each (and sometimes reading again before committing:
    an uncommitted read must be returned again); the points read are those of the complete lines."""
    pieces, skip, commits = example
    path.unlink(missing_ok=True)
    tail = LogTail(path, skip_points=skip)
    assert tail.read() == []  # no file yet
    tail.commit()
    got = []
    data = b""
    for i, piece in enumerate(pieces):
        data += piece
        with path.open("ab") as f:
            f.write(piece)
        points = tail.read()
        for p in points:
            check_point(p, p.at)
        if not commits[i % len(commits)]:
            again = tail.read()
            assert _same(
                [(p.name, p.value, p.step) for p in again], [(p.name, p.value, p.step) for p in points]
            ), "an uncommitted read is not returned again"
        tail.commit()
        got += [(p.name, p.value, p.step) for p in points]
    while points := tail.read():  # more than READ_BYTES was written at once
        tail.commit()
        got += [(p.name, p.value, p.step) for p in points]
    tail.commit()
    want = expected_points(data, skip)
    assert _same(got, want), (
        f"points read differ from the lines': read {got[:5]!r:.300}, want {want[:5]!r:.300}"
    )


def _same(a: list[tuple], b: list[tuple]) -> bool:
    return len(a) == len(b) and all(x == y for x, y in zip(a, b, strict=True))


def _encode(line: str) -> bytes:
    return line.encode("utf-8", errors="surrogatepass")  # a lone surrogate: bytes that are not UTF-8


LOG_LINE = st.one_of(
    metric_line().map(_encode),
    st.binary(max_size=40),
    st.sampled_from([b"\xff\xfe", b"\xe2\x82", b"\r", b"\x00", b'{"metric": "a", "value": 1}']),
)
PIECES = st.lists(
    st.lists(LOG_LINE, max_size=5).map(lambda lines: b"\n".join(lines))
    | st.tuples(LOG_LINE, st.sampled_from([b"\n", b"\r\n", b""])).map(b"".join),
    min_size=1,
    max_size=5,
)
LOG_TAIL = st.tuples(PIECES, st.integers(0, 3), st.lists(st.booleans(), min_size=1, max_size=3))
LINES = metric_line()

# name -> (strategy, check, share of the entry point's examples); benchmarks/bench_fuzz.py runs these too
PROPERTIES = {
    "parse_line": (LINES, check_parse_line, 0.7),
    "LogTail": (LOG_TAIL, check_log_tail, 0.3),
}


@contextlib.contextmanager
def bench_context(base: Path) -> Iterator[Path]:
    yield base / "job.log"


def bench_after(_context: object) -> str:
    return ""


def examples(name: str) -> int:
    return max(int(EXAMPLES * PROPERTIES[name][2]), 20)


@pytest.fixture(scope="module")
def log_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with bench_context(tmp_path_factory.mktemp("fuzz-metrics")) as path:
        yield path


_LINE_THEN_METRIC = (
    b"x" * READ_BYTES + b'{"metric": "loss", "value": 1.0}\n{"metric": "next", "value": 2.0}\n'
)
# Inputs that broke a property once (property, example); each runs as a test.
REGRESSIONS: dict[str, tuple[str, object]] = {
    "lone surrogate in a name": ("parse_line", '{"metric": "\\ud800", "value": 1}'),
    "NUL in a name": ("parse_line", '{"metrics": {"a\\u0000b": 1.5}, "step": 3}'),
    "a line longer than a read ends in a metric": ("LogTail", ([_LINE_THEN_METRIC], 0, [True])),
}
KNOWN: dict[str, Known] = {}  # open bugs found by fuzzing: none (each found one is a regression test)


@settings(FUZZ, max_examples=examples("parse_line"))
@given(line=LINES)
def test_parse_line_never_raises_and_every_point_can_be_stored(line):
    tolerating(KNOWN, check_parse_line)(None, line)


@settings(FUZZ, max_examples=examples("LogTail"))
@given(example=LOG_TAIL)
def test_log_tail_returns_the_points_of_complete_lines(log_path, example):
    tolerating(KNOWN, check_log_tail)(log_path, example)


@pytest.mark.parametrize(("prop", "example"), regressions(REGRESSIONS, KNOWN))
def test_regression(log_path, prop, example):
    PROPERTIES[prop][1](log_path, example)
