"""Names and reasons come from users and jobs: tables show them literally, and nothing in them reaches
the terminal as markup or escape codes."""

from __future__ import annotations

from jobhelpers import cli, cli_json, write_job


def test_markup_and_escape_codes_in_a_name_are_shown_literally(tmp_path):
    job = write_job(tmp_path, "name: '[/bold] x [red]y'\nrun: printf 'a\\033[2Jb\\n'; exit 3\n")
    job_id = cli_json("submit", str(job))["id"]
    from suanli import Client

    Client(start_agent=False).wait(job_id, timeout_s=300)
    for args in (("status",), ("status", str(job_id)), ("status", "--all")):
        proc = cli(*args, env={"COLUMNS": "200"})
        assert proc.returncode == 0, proc.stderr
        assert "[/bold] x [red]y" in proc.stdout
        assert "\x1b" not in proc.stdout  # the log tail's escape code was not passed to the terminal


def test_escape_codes_in_a_name_are_refused_at_submit(tmp_path):
    job = write_job(tmp_path, 'name: "evil\\e[2J\\e]0;title\\a"\nrun: "true"\n')
    proc = cli("submit", str(job))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "name=evil\\x1b[2J" in proc.stderr  # shown escaped, never raw
