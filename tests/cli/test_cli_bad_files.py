"""Files a new user gets wrong: not UTF-8, a directory, empty. Each ends in one line naming the field,
the file and what is wrong (for text, the line and byte offset where decoding failed), exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobhelpers import invoke

NOT_UTF8 = b"a,b\n\xff\xfe,1\n"  # decoding fails on line 2, at byte offset 4


def one_line(args: list[str]) -> str:
    r = invoke(*args)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("name", "args", "field"),
    [
        ("demand.yaml", ["plan", "--horizon", "12mo", "--demand", "{f}"], "demand"),
        ("trace.csv", ["simulate", "--trace", "{f}", "--cluster", "2x4"], "trace"),
        ("cluster.yaml", ["simulate", "--trace", "synthetic:5", "--cluster", "{f}"], "cluster"),
        (
            "t.json",
            ["simulate", "--trace", "synthetic:5", "--cluster", "2x4", "--throughputs", "{f}"],
            "throughputs",
        ),
        ("offers.csv", ["plan", "--params", "7e9", "--tokens", "1e12", "--offers", "{f}"], "offers"),
        ("offers.yaml", ["catalog", "import", "yaml", "{f}"], "offers"),
        ("config.json", ["estimate", "infer", "--model", "{f}"], "model"),
        ("eval.csv", ["compress", "m.py:f", "--task", "similarity", "--eval", "{f}"], "eval"),
    ],
)
def test_a_file_that_is_not_utf8_is_named_with_line_and_offset(tmp_path: Path, name, args, field):
    f = tmp_path / name
    f.write_bytes(NOT_UTF8)
    line = one_line([a.format(f=f) for a in args])
    assert line.startswith(f"error: {field}={f}: must be UTF-8 text"), line
    assert "line 2" in line and "byte offset 4" in line


def test_a_job_file_that_is_not_utf8_is_one_line(tmp_path: Path):
    f = tmp_path / "job.yaml"
    f.write_bytes(b"name: x\nrun: \xff\n")
    line = one_line(["plan", str(f)])
    assert "UTF-8" in line


@pytest.mark.parametrize(
    "args",
    [
        ["estimate", "infer", "--model", "{d}"],
        ["estimate", "train", "--model", "{d}", "--tokens", "1T"],
        ["plan", "--model", "{d}", "--tokens", "1e12"],
        ["plan", "{d}"],
        ["plan", "--horizon", "12mo", "--demand", "{d}"],
        ["simulate", "--trace", "{d}", "--cluster", "2x4"],
        ["plan", "--params", "7e9", "--tokens", "1e12", "--offers", "{d}"],
        ["compress", "{d}", "--task", "classification", "--eval", "{d}"],
    ],
)
def test_a_directory_where_a_file_belongs_is_one_line(tmp_path: Path, args):
    d = tmp_path / "folder"
    d.mkdir()
    line = one_line([a.format(d=d) for a in args])
    assert str(d) in line and "directory" in line


def test_a_model_folder_is_pointed_at_its_config_json(tmp_path: Path):
    (tmp_path / "config.json").write_text("{}")
    line = one_line(["estimate", "infer", "--model", str(tmp_path)])
    assert (
        line
        == f"error: model={tmp_path}: is a directory, not a file (did you mean {tmp_path / 'config.json'}?)"
    )


def test_an_empty_demand_file_says_so(tmp_path: Path):
    f = tmp_path / "demand.yaml"
    f.write_text("")
    assert "is empty" in one_line(["plan", "--horizon", "12mo", "--demand", str(f)])


def test_eval_rows_shorter_than_the_header_are_one_line(tmp_path: Path):
    f = tmp_path / "pairs.csv"
    f.write_text("sentence1,sentence2,score\na,b,1\nc,d\n")
    from suanli.compress.data import load_data
    from suanli.core.errors import BadInput

    with pytest.raises(BadInput, match="row 3 has 2 field"):
        load_data(f)
