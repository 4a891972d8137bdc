"""Hostile or broken job files cost one line, never the agent's memory or a traceback: alias bombs,
deep nesting, oversized and non-UTF-8 files, and environments that no process could be started with."""

from __future__ import annotations

from pathlib import Path

import pytest

from suanli.core.errors import BadInput
from suanli.core.specfile import MAX_ALIAS_NODES, MAX_DEPTH, MAX_FILE_BYTES, read_yaml, yaml_lines
from suanli.jobs.spec import MAX_ARG_BYTES, load_spec

# "Billion laughs": 9 levels of 9 aliases each, 10^9 strings once expanded, in a few hundred bytes.
LAUGHS = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
]
BOMB = "\n".join(LAUGHS) + "\n"
# Four levels: 9^4 = 6561 strings, inside the alias budget, so only the field rules can refuse it.
SMALL_BOMB = "\n".join(LAUGHS[:4]) + "\n"


def write(tmp_path: Path, text: str | bytes, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def one_line(err: pytest.ExceptionInfo[BadInput]) -> str:
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == 2
    return message


def test_alias_bomb_is_refused_at_once_by_the_reader(tmp_path):
    assert len(BOMB) < 400
    path = write(tmp_path, "run: echo\nlaughs:\n" + "".join(f"  {line}\n" for line in LAUGHS))
    with pytest.raises(BadInput) as e:  # before expanding anything: the process would not come back
        read_yaml(path, "job file")
    message = one_line(e)
    assert message.startswith(f"{path}:") and f"more than {MAX_ALIAS_NODES} nodes" in message


def test_alias_bomb_under_envs_or_labels_is_refused(tmp_path):
    for section in ("envs", "labels"):
        text = f"run: echo\n{section}:\n" + "".join(f"  {line.upper()[0]}{line[1:]}\n" for line in LAUGHS)
        with pytest.raises(BadInput) as e:
            load_spec(write(tmp_path, text))
        assert f"more than {MAX_ALIAS_NODES} nodes" in one_line(e)


@pytest.mark.parametrize("section", ["labels", "envs"])
def test_a_structure_under_labels_or_envs_is_refused_not_stored_as_text(tmp_path, section):
    """A bomb within the alias budget used to be accepted and stored as the text of 6561 strings."""
    text = f"run: echo\n{section}:\n" + "".join(
        f"  {line.upper()[0]}{line[1:]}\n" for line in SMALL_BOMB.splitlines()
    )
    with pytest.raises(BadInput) as e:
        load_spec(write(tmp_path, text))
    message = one_line(e)
    assert f"{section}.A=" in message and "must be a string, a number or a boolean" in message
    assert len(message) < 300


def test_yaml_lines_enters_a_repeated_node_once(tmp_path):
    lines = yaml_lines(SMALL_BOMB)
    assert ("a", "0") in lines and ("d",) in lines
    assert len(lines) < 50  # not one entry per expanded string
    assert yaml_lines(BOMB) == {}  # refused by counting, not by expanding it


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path):
    with pytest.raises(BadInput) as e:
        load_spec(write(tmp_path, "run: echo\nlabels: &x {a: *x}\n"))
    assert "(a cycle)" in one_line(e)
    assert yaml_lines("a: &x [*x]\n") == {}


def test_deep_nesting_is_refused_without_recursion(tmp_path):
    text = "run: echo\nworkload: " + "[" * 500 + "]" * 500 + "\n"
    assert len(text) < 1100
    with pytest.raises(BadInput) as e:
        load_spec(write(tmp_path, text))
    assert f"nests deeper than {MAX_DEPTH} levels" in one_line(e)
    assert yaml_lines(text) == {}
    deep = MAX_DEPTH - 3  # the document, `resources` and `accelerator_args` are three levels
    nested = "run: echo\nresources:\n  accelerator_args: " + "{a: " * deep + "1" + "}" * deep + "\n"
    load_spec(write(tmp_path, nested))  # within the limit


def test_deep_nesting_through_aliases_is_refused(tmp_path):
    half = MAX_DEPTH // 2 + 4
    text = (
        "deep: &d "
        + "[" * half
        + "]" * half
        + "\nrun: echo\nworkload: "
        + "[" * half
        + "*d"
        + "]" * half
        + "\n"
    )
    with pytest.raises(BadInput) as e:
        load_spec(write(tmp_path, text))
    assert "counting what aliases repeat" in one_line(e)


def test_an_oversized_file_is_refused_before_parsing(tmp_path):
    path = write(tmp_path, "run: echo\n# " + "x" * MAX_FILE_BYTES + "\n")
    with pytest.raises(BadInput) as e:
        load_spec(path)
    assert "larger than 1024 KiB" in one_line(e)


def test_a_non_utf8_file_names_the_line_and_byte(tmp_path):
    path = write(tmp_path, b"name: x\nrun: echo\nenvs: {A: caf\xe9}\n")
    with pytest.raises(BadInput) as e:
        load_spec(path)
    message = one_line(e)
    assert str(path) in message and "line 3" in message and "byte 0xe9 at byte offset 31" in message
    utf16 = write(tmp_path, "run: echo\n".encode("utf-16"), "utf16.yaml")
    with pytest.raises(BadInput, match="UTF-16"):
        load_spec(utf16)


def test_a_control_character_in_the_yaml_names_its_line(tmp_path):
    with pytest.raises(BadInput) as e:
        load_spec(write(tmp_path, "name: x\nrun: echo\x01\n"))
    assert ":2: yaml: not valid YAML" in one_line(e)


def test_a_multi_document_file_is_one_line(tmp_path):
    with pytest.raises(BadInput) as e:
        load_spec(write(tmp_path, "run: a\n---\nrun: b\n"))
    assert ":2: yaml: holds more than one YAML document" in one_line(e)


@pytest.mark.parametrize(
    ("key", "shown"),
    [("A=B", "envs.A=B"), ("1ABC", "envs.1ABC"), ("''", "envs."), ("A-B", "envs.A-B"),
     ("'A B'", "envs.A B"), ('"NUL\\0"', "envs.NUL\\x00"), ("Ä", "envs.Ä")],
)  # fmt: skip
def test_env_names_a_process_cannot_have_are_refused(tmp_path, key, shown):
    with pytest.raises(BadInput) as e:
        load_spec(write(tmp_path, f"run: echo\nenvs:\n  {key}: x\n"))
    message = one_line(e)
    assert f"{shown}: is not a valid environment variable name" in message
    assert message.startswith((f"{tmp_path / 'job.yaml'}:3:", f"{tmp_path / 'job.yaml'}:2:"))  # key, or envs


def test_env_overrides_and_secrets_are_checked_too(tmp_path):
    path = write(tmp_path, "run: echo\nsecrets:\n  TOKEN: null\n")
    with pytest.raises(BadInput, match=r"envs\.BAD=NAME: is not a valid"):
        load_spec(path, env_overrides={"BAD=NAME": "x", "TOKEN": "t"})
    with pytest.raises(BadInput, match=r"secrets\.1X: is not a valid"):
        load_spec(write(tmp_path, "run: echo\nsecrets:\n  1X: y\n"))


def test_env_values_with_nul_are_refused(tmp_path):
    with pytest.raises(BadInput) as e:
        load_spec(write(tmp_path, 'run: echo\nenvs:\n  A: "x\\0y"\n'))
    assert "envs.A=x\\x00y: must not contain a NUL byte" in one_line(e)
    with pytest.raises(BadInput, match=r"run=.*NUL byte"):
        load_spec(write(tmp_path, 'run: "echo \\0"\n'))


def test_a_run_longer_than_one_exec_argument_is_refused(tmp_path):
    big = "echo " + "x" * MAX_ARG_BYTES
    with pytest.raises(BadInput) as e:
        load_spec(write(tmp_path, f"run: {big}\n"))
    message = one_line(e)
    assert "MAX_ARG_STRLEN" in message and message.startswith(f"{tmp_path / 'job.yaml'}:1: run=echo xxx")
    assert len(message) < 400
    with pytest.raises(BadInput, match=r"setup=.*MAX_ARG_STRLEN"):
        load_spec(write(tmp_path, f"run: echo\nsetup: {big}\n"))
    load_spec(write(tmp_path, f"run: {big[: MAX_ARG_BYTES - 10]}\n"))  # one argument can be that long


def test_an_env_value_longer_than_exec_takes_is_refused(tmp_path):
    with pytest.raises(BadInput) as e:
        load_spec(write(tmp_path, f"run: echo\nenvs:\n  BIG: {'x' * MAX_ARG_BYTES}\n"))
    assert "envs.BIG=xxxx" in one_line(e) and "MAX_ARG_STRLEN" in str(e.value)
    with pytest.raises(BadInput) as e:
        load_spec(write(tmp_path, f"run: echo\nsecrets:\n  BIG: {'s' * MAX_ARG_BYTES}\n"))
    assert "secrets.BIG=***" in one_line(e) and "sss" not in str(e.value)


def test_envs_too_large_together_are_refused(tmp_path):
    """A 100 kB file can repeat one value through aliases: 11 variables of 100 kB each."""
    envs = f"  V0: &big {'x' * 100_000}\n" + "".join(f"  V{i}: *big\n" for i in range(1, 11))
    with pytest.raises(BadInput) as e:
        load_spec(write(tmp_path, f"run: echo\nenvs:\n{envs}"))
    assert "ARG_MAX" in one_line(e) and ":2: envs: envs, secrets and the longer of run/setup" in str(e.value)
    with pytest.raises(BadInput, match="ARG_MAX"):  # or from the command line
        load_spec(write(tmp_path, "run: echo\n"), env_overrides={f"V{i}": "x" * 100_000 for i in range(11)})


def test_labels_and_name_are_bounded(tmp_path):
    many = "".join(f"  k{i}: v\n" for i in range(65))
    with pytest.raises(BadInput, match="at most 64 labels"):
        load_spec(write(tmp_path, f"run: echo\nlabels:\n{many}"))
    with pytest.raises(BadInput, match="1 to 128 printable"):
        load_spec(write(tmp_path, f"run: echo\nlabels:\n  {'k' * 129}: v\n"))
    with pytest.raises(BadInput, match=r"labels\.k=vvv.*at most 256"):
        load_spec(write(tmp_path, f"run: echo\nlabels:\n  k: {'v' * 257}\n"))
    with pytest.raises(BadInput, match="at most 128 printable"):
        load_spec(write(tmp_path, f"run: echo\nname: {'n' * 129}\n"))
    with pytest.raises(BadInput, match="at most 128 printable"):
        load_spec(write(tmp_path, 'run: echo\nname: "a\\nb"\n'))
    spec = load_spec(write(tmp_path, "run: echo\nlabels: {team: ml, tier: 2, up: true}\n"))
    assert spec.labels == {"team": "ml", "tier": "2", "up": "true"}


@pytest.mark.parametrize("value", ["!!bool", '!!int ""', "2001-02-29", "!!timestamp x", "!!float x"])
def test_a_value_yaml_cannot_build_is_one_line_at_its_line(tmp_path, value):
    """PyYAML's constructors raise KeyError, ValueError, IndexError... for these; they are bad YAML."""
    with pytest.raises(BadInput) as e:
        load_spec(write(tmp_path, f"run: echo\nlabels:\n  day: {value}\n"))
    assert ":3: yaml: not valid YAML: cannot read" in one_line(e)


def test_a_path_the_file_system_cannot_look_up_is_one_line(tmp_path):
    with pytest.raises(BadInput) as e:
        load_spec(write(tmp_path, f"run: echo\nworkdir: {'w' * 300}\n"))
    assert "cannot be used as a path" in one_line(e)
    with pytest.raises(BadInput) as e:
        load_spec(write(tmp_path, f"run: echo\nfile_mounts:\n  {'t' * 300}: .\n"))
    assert "longer than a path may be" in one_line(e)
