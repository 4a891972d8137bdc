"""Every bad input is one line, exit code 2, and leaves no output directory behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _check(run_cli, tmp_path: Path, *args: str, expect: str) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(*args, "--out", str(out), "--repeats", "3", "--threads", "1")
    assert code == 2, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert expect in lines[0], lines[0]
    assert stdout == ""
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp")]


def test_unloadable_model_file(run_cli, tmp_path: Path, digits):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a torch file")
    _check(run_cli, tmp_path, str(bad), "--task", "classification", "--eval", digits["eval"], expect="model=")


def test_state_dict_without_factory(run_cli, tmp_path: Path, digits):
    _check(
        run_cli,
        tmp_path,
        digits["weights"],
        "--task",
        "classification",
        "--eval",
        digits["eval"],
        expect="state_dict",
    )


def test_wrong_columns(run_cli, tmp_path: Path, digits):
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, inputs=np.zeros((4, 1, 8, 8), np.float32), labels=np.zeros(4, np.int64))
    _check(
        run_cli,
        tmp_path,
        digits["model"],
        "--weights",
        digits["weights"],
        "--task",
        "classification",
        "--eval",
        str(wrong),
        expect="needs an array named x",
    )


def test_wrong_shapes(run_cli, tmp_path: Path, digits):
    wrong = tmp_path / "flat.npz"
    np.savez(wrong, x=np.zeros((6, 64), np.float32), y=np.zeros(6, np.int64))
    _check(
        run_cli,
        tmp_path,
        digits["model"],
        "--weights",
        digits["weights"],
        "--task",
        "classification",
        "--eval",
        str(wrong),
        expect="does not fit the model",
    )


def test_sentences_for_an_array_model(run_cli, tmp_path: Path, digits):
    csv = tmp_path / "pairs.csv"
    csv.write_text("sentence1,sentence2,score\na,b,1\nc,d,2\n")
    _check(
        run_cli,
        tmp_path,
        digits["model"],
        "--weights",
        digits["weights"],
        "--task",
        "similarity",
        "--eval",
        str(csv),
        expect="holds text data",
    )


def test_unknown_method(run_cli, tmp_path: Path, digits):
    _check(
        run_cli,
        tmp_path,
        digits["model"],
        "--weights",
        digits["weights"],
        "--task",
        "classification",
        "--eval",
        digits["eval"],
        "--methods",
        "int8-dynamc",
        expect="did you mean: int8-dynamic",
    )


@pytest.mark.parametrize("budget", ["-1%", "150%", "lots"])
def test_malformed_budget(run_cli, tmp_path: Path, digits, budget):
    _check(
        run_cli,
        tmp_path,
        digits["model"],
        "--task",
        "classification",
        "--eval",
        digits["eval"],
        "--budget",
        budget,
        expect="budget=",
    )


def test_impossible_budget(run_cli, tmp_path: Path, digits):
    _check(
        run_cli,
        tmp_path,
        digits["model"],
        "--weights",
        digits["weights"],
        "--task",
        "fidelity",
        "--eval",
        digits["eval"],
        "--budget",
        "0%",
        "--methods",
        "int8-dynamic",
        "--runtime",
        "onnx",
        expect="best quality reached",
    )


def test_unknown_task(run_cli, tmp_path: Path, digits):
    _check(run_cli, tmp_path, digits["model"], "--task", "acuracy", "--eval", digits["eval"], expect="task=")
