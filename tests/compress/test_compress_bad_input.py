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


def _wrong_columns(tmp_path: Path) -> str:
    path = tmp_path / "wrong.npz"
    np.savez(path, inputs=np.zeros((4, 1, 8, 8), np.float32), labels=np.zeros(4, np.int64))
    return str(path)


def _flat_images(tmp_path: Path) -> str:
    path = tmp_path / "flat.npz"
    np.savez(path, x=np.zeros((6, 64), np.float32), y=np.zeros(6, np.int64))
    return str(path)


def _sentence_pairs(tmp_path: Path) -> str:
    path = tmp_path / "pairs.csv"
    path.write_text("sentence1,sentence2,score\na,b,1\nc,d,2\n")
    return str(path)


@pytest.mark.parametrize(
    ("make_eval", "task", "extra", "expect"),
    [
        (_wrong_columns, "classification", [], "needs an array named x"),
        (_flat_images, "classification", [], "does not fit the model"),
        (_sentence_pairs, "similarity", [], "holds text data"),
        (None, "classification", ["--methods", "int8-dynamc"], "did you mean: int8-dynamic"),
    ],
    ids=["wrong-columns", "wrong-shapes", "sentences-for-an-array-model", "unknown-method"],
)
def test_data_and_method_mismatch(run_cli, tmp_path: Path, digits, make_eval, task, extra, expect):
    data = make_eval(tmp_path) if make_eval else digits["eval"]
    model = [digits["model"], "--weights", digits["weights"]]
    _check(run_cli, tmp_path, *model, "--task", task, "--eval", data, *extra, expect=expect)


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
