"""`suanli plan` and `suanli catalog` through Typer: one JSON document, tables, plots, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobhelpers import invoke

REPO = Path(__file__).resolve().parents[2]
EX = REPO / "examples" / "plan"


def run(*args: str) -> tuple[int, str, str]:
    r = invoke(*args)
    return r.exit_code, r.stdout, r.stderr


def test_plan_json_from_flags() -> None:
    code, out, _ = run(
        "plan",
        "--params",
        "1e9",
        "--tokens",
        "2e10",
        "--deadline",
        "2d",
        "--providers",
        "lambda,runpod",
        "--max-gpus",
        "64",
        "--json",
    )
    assert code == 0
    d = json.loads(out)
    assert d["recommended"] in d["options"] and d["explanation"].startswith("Recommended:")
    assert {o["provider"] for o in d["options"]} <= {"lambda", "runpod"}
    assert any(o["pareto"] for o in d["options"])
    for k in ("wall_hours", "cost_usd", "energy_kwh", "co2_kg", "layout", "instances", "devices", "mode"):
        assert k in d["recommended"]


def test_plan_job_yaml_table_and_plot(tmp_path: Path) -> None:
    png = tmp_path / "plan.png"
    code, out, err = run(
        "plan",
        str(EX / "job.yaml"),
        "--deadline",
        "30d",
        "--budget",
        "250000",
        "--offers",
        str(EX / "offers.yaml"),
        "--plot",
        str(png),
    )
    assert code == 0, err
    assert "Recommended:" in out and "H100" in out
    assert png.stat().st_size > 1000


def test_plan_serving_json() -> None:
    code, out, _ = run(
        "plan",
        "--infer",
        "--params",
        "7e9",
        "--tokens-per-second",
        "2000",
        "--duration",
        "30d",
        "--batch",
        "16",
        "--providers",
        "runpod",
        "--json",
    )
    assert code == 0
    d = json.loads(out)
    assert d["recommended"]["layout"]["replicas"] >= 1


def test_portfolio_json_and_plot(tmp_path: Path) -> None:
    png = tmp_path / "pf.png"
    code, out, _ = run(
        "plan", "--horizon", "12mo", "--demand", str(EX / "demand.yaml"), "--plot", str(png), "--json"
    )
    assert code == 0
    d = json.loads(out)
    assert d["horizon_months"] == 12 and d["total_cost_usd"] <= d["all_rent_cost_usd"]
    assert d["break_even_utilisation"] is not None and png.stat().st_size > 1000


def test_catalog_list_show_import(tmp_path: Path, suanli_home: Path) -> None:
    code, out, _ = run("catalog", "list", "--json")
    d = json.loads(out)
    assert code == 0 and len(d["accelerators"]) >= 15 and len(d["providers"]) >= 8
    code, out, _ = run("catalog", "show", "H100", "--json")
    assert code == 0 and all(o["accelerator"] == "H100" and o["source"] for o in json.loads(out)["offers"])
    code, out, _ = run("catalog", "import", "yaml", str(EX / "offers.yaml"), "--json")
    assert code == 0 and (suanli_home / "catalogs" / "user-offers.csv").exists()
    code, out, _ = run("catalog", "show", "examplecloud", "--json")
    assert code == 0 and json.loads(out)["offers"][0]["price_usd_per_hour"] == 17.6


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("plan", "--params", "7e9", "--tokens", "1e12", "--providers", "lamda"), "did you mean: lambda"),
        (("plan", "--params", "7e9", "--tokens", "1e12", "--accelerators", "H1000"), "accelerators=H1000"),
        (("plan", "--params", "7e9", "--tokens", "1e12", "--regions", "atlantis"), "regions=atlantis"),
        (("plan", "--params", "7e9", "--tokens", "1e12", "--spot", "--modes", "on-demand"), "spot"),
        (("plan", "--params", "7e9", "--tokens", "1e12", "--budget", "-1"), "budget"),
        (("plan", "--params", "7e9", "--tokens", "1e12", "--deadline", "soon"), "deadline"),
        (("plan", "--params", "7e9"), "tokens"),
        (("plan", "--horizon", "12mo"), "demand"),
        (("catalog", "show", "lambada"), "did you mean"),
        (("catalog", "import", "skypilott", "."), "kind"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needle, tmp_path: Path) -> None:
    code, out, err = run(*args, "--plot", str(tmp_path / "x.png")) if args[0] == "plan" else run(*args)
    assert code == 2, (out, err)
    assert err.startswith("error: ") and "\n" not in err.strip() and needle in err
    assert not (tmp_path / "x.png").exists()


def test_bad_offers_file_names_file_line_column(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(
        "offers:\n  - provider: x\n    instance_type: y\n    accelerator: H100\n    accelerator_count: 8\n"
        "    mode: on-demand\n    price_usd_per_hour: -3\n    source: s\n    date: d\n"
    )
    code, _, err = run("plan", "--params", "7e9", "--tokens", "1e12", "--offers", str(f))
    assert code == 2 and "bad.yaml:2" in err and "price_usd_per_hour" in err


def test_bad_skypilot_import_writes_nothing(tmp_path: Path, suanli_home: Path) -> None:
    d = tmp_path / "v7" / "acme"
    d.mkdir(parents=True)
    (d / "vms.csv").write_text(
        "InstanceType,AcceleratorName,AcceleratorCount,Price,Region\ni,H100,1,2.0,r\nj,H100,one,2.0,r\n"
    )
    code, _, err = run("catalog", "import", "skypilot", str(tmp_path))
    assert code == 2 and "v7/acme/vms.csv:3" in err and "AcceleratorCount" in err
    assert not (suanli_home / "catalogs").exists() or not any((suanli_home / "catalogs").iterdir())


def test_cli_modules_import_no_heavy_libraries() -> None:
    code = (
        "import sys, suanli.cli.plan, suanli.cli.catalog; "
        "bad = [m for m in ('numpy', 'scipy', 'matplotlib') if m in sys.modules]; print(bad); "
        "sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- a new user's mistakes -----------------------------------------------------------------------
SMALL = ("--providers", "lambda", "--max-gpus", "8", "--json")


@pytest.mark.parametrize("budget", ["250000", "250k", "$250k", "250,000", "$250,000", "0.25M"])
def test_budget_takes_the_magnitudes_params_take(budget: str) -> None:
    code, out, err = run("plan", "--params", "1B", "--tokens", "20B", "--budget", budget, *SMALL)
    assert code == 0, err
    assert json.loads(out)["constraints"]["budget_usd"] == 250_000


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--params", "7", "--tokens", "1e12"),
            "error: params=7: must be between 1e+05 and 1e+15 parameters (did you mean 7B?)",
        ),
        (
            ("--params", "7e9", "--tokens", "3"),
            "error: tokens=3: must be between 1e+04 and 1e+16 tokens (did you mean 3T?)",
        ),
        (("--params", "7e9", "--tokens", "1e12", "--budget", "nan"), "error: budget=nan"),
        (
            ("--params", "7e9", "--tokens", "1e12", "--pue", "nan"),
            "error: pue=nan: must be a finite number >= 1",
        ),
        (
            ("--params", "7e9", "--tokens", "1e12", "--layers", "0"),
            "error: layers=0: must be a whole number >= 1",
        ),
        (
            ("--params", "7e9", "--tokens", "1e12", "--plot", "plan.txt"),
            "error: plot=plan.txt: must end in .png",
        ),
        (("--params", "7e9", "--tokens", "1e12", "--spot-share", "0.5"), "error: spot_share=0.5"),
        (
            ("--infer", "--params", "7e9", "--tokens-per-second", "inf", "--duration", "30d"),
            "error: tokens_per_second=inf",
        ),
    ],
)
def test_implausible_or_non_finite_numbers_are_one_line(args: tuple[str, ...], expected: str) -> None:
    code, out, err = run("plan", *args)
    assert code == 2 and out == ""
    assert err.startswith(expected) and len(err.strip().splitlines()) == 1, err


def test_a_job_file_workload_with_a_bare_params_count_is_refused(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: x\nrun: python train.py\nworkload:\n  params: 7\n  tokens: 1T\n")
    code, _, err = run("plan", str(job))
    assert code == 2 and "params=7" in err and "did you mean 7B?" in err


def test_flags_fill_a_job_file_without_a_workload_block(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: x\nrun: python train.py\n")
    code, out, err = run("plan", str(job), "--params", "1e9", "--tokens", "2e10", *SMALL)
    assert code == 0, err
    assert json.loads(out)["workload"] == "train 1e9 on 2e10 tokens"
    code, _, err = run("plan", str(job))
    assert code == 2 and "no `workload:` block" in err and "--params" in err


def test_flags_override_the_job_files_workload_field_by_field(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: x\nrun: python train.py\nworkload:\n  params: 1e9\n  tokens: 2e10\n")
    code, out, err = run("plan", str(job), "--tokens", "4e10", *SMALL)
    assert code == 0, err
    assert json.loads(out)["workload"] == "train 1e9 on 4e10 tokens"


def _piped(*args: str) -> list[str]:
    """stdout of the real command piped (no terminal, no COLUMNS: Rich's 80 columns)."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.run(
        [sys.executable, "-m", "suanli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.parametrize(
    "args",
    [
        ("plan", "--params", "7e9", "--tokens", "1e12", "--deadline", "30d"),
        ("plan", "--params", "7e9", "--tokens", "1e12", "--objective", "carbon", "--top", "5"),
        (
            "plan",
            "--infer",
            "--params",
            "7e9",
            "--tokens-per-second",
            "5k",
            "--duration",
            "30d",
            "--batch",
            "32",
        ),
        ("plan", "--horizon", "12mo", "--demand", str(EX / "demand.yaml")),
        ("catalog", "list"),
        ("catalog", "show", "H100"),
    ],
)
def test_human_tables_fit_80_columns_when_piped(args: tuple[str, ...]) -> None:
    lines = _piped(*args)
    assert lines and max(len(line.rstrip()) for line in lines) <= 80, "\n".join(lines)
    if args[0] == "plan" and "--horizon" not in args:
        assert "Recommended:" in "\n".join(lines) and "provider" in lines[1] and "USD" in lines[1]
    if "carbon" in args:  # the objective's own column is never left out
        assert "kg CO2" in lines[1]
