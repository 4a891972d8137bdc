"""The shipped catalog, user YAML offers, and the SkyPilot importer on the real shared CSVs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from suanli.catalog.offers import COLUMNS, load_catalog, read_offer_csv, read_offer_yaml, shipped_offers
from suanli.catalog.skypilot import find_vms_files, import_skypilot, read_vms_csv
from suanli.core.errors import BadInput

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "plan"


def shared_skypilot() -> Path:
    base = os.environ.get("SUANLI_SHARED_DATA")
    root = Path(base) if base else REPO.parent / "shared" / "data"
    path = root / "catalogs" / "skypilot"
    if not path.is_dir():
        pytest.skip("shared SkyPilot catalogs not found (set SUANLI_SHARED_DATA)")
    return path


def test_shipped_catalog_is_sourced_and_broad() -> None:
    rows = shipped_offers()
    assert all(o.source and o.date for o in rows)
    priced = [o for o in rows if o.mode != "owned"]
    assert len({o.accelerator for o in priced}) >= 15
    assert len({o.provider for o in priced}) >= 8
    modes = {o.mode for o in rows}
    assert {"on-demand", "spot", "reserved-1y", "reserved-3y", "marketplace", "owned"} <= modes
    owned = [o for o in rows if o.mode == "owned"]
    assert all(o.purchase_usd and o.depreciation_years and o.electricity_usd_per_kwh for o in owned)


def test_user_yaml_offers_and_owned_hardware() -> None:
    rows = read_offer_yaml(EXAMPLES / "offers.yaml")
    assert {o.mode for o in rows} == {"owned", "reserved-1y"}
    cat = load_catalog(user_files=[EXAMPLES / "offers.yaml"])
    assert any(o.provider == "examplecloud" for o in cat.offers)


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("p,i,H100,8,on-demand,-1,,,,,,,,,,,s,2026", "price_usd_per_hour"),
        ("p,i,H100,8,on-demand,abc,,,,,,,,,,,s,2026", "price_usd_per_hour"),
        ("p,i,H100,0,on-demand,1,,,,,,,,,,,s,2026", "accelerator_count"),
        ("p,i,H10,8,on-demand,1,,,,,,,,,,,s,2026", "accelerator"),
        ("p,i,H100,8,rented,1,,,,,,,,,,,s,2026", "mode"),
        ("p,i,H100,8,on-demand,,,,,,,,,,,,s,2026", "price_usd_per_hour"),
        ("p,i,H100,8,owned,,,,,,1000,,,,,,s,2026", "depreciation_years"),
        ("p,i,H100,8,on-demand,1,,,,,,,,,,,,2026", "source"),
    ],
)
def test_bad_offer_rows_name_file_line_column(tmp_path: Path, row: str, column: str) -> None:
    f = tmp_path / "mine.csv"
    f.write_text(",".join(COLUMNS[:18]) + "\np,ok,H100,8,on-demand,1,,,,,,,,,,,s,2026\n" + row + "\n")
    with pytest.raises(BadInput) as e:
        read_offer_csv(f)
    assert e.value.field == column
    assert str(e.value).startswith("mine.csv:3: ")


def test_bad_yaml_offer_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "o.yaml"
    f.write_text(
        "owned:\n  - instance_type: x\n    accelerator: H100\n    accelerator_count: 8\n"
        "    purchase_usd: -5\n    depreciation_years: 5\n    electricity_usd_per_kwh: 0.1\n"
        "    source: s\n    date: d\n"
    )
    with pytest.raises(BadInput) as e:
        read_offer_yaml(f)
    assert e.value.field == "purchase_usd" and "o.yaml:2" in str(e.value)


def test_import_real_skypilot_catalogs(tmp_path: Path) -> None:
    src = shared_skypilot()
    files = find_vms_files(src)
    assert {"lambda", "runpod", "cudo", "nebius", "vast", "fluidstack", "paperspace"} <= set(files)
    res = import_skypilot(src, tmp_path / "catalogs", date="2026-11-22")
    assert res.rows_read > 3000 and len(res.offers) > 300
    assert not res.skipped_unknown_accelerator
    assert sorted(p.name for p in (tmp_path / "catalogs").iterdir()) == sorted(res.written)
    cat = load_catalog(imported_dir=tmp_path / "catalogs", include_shipped=False)
    by = {(o.provider, o.instance_type, o.mode): o for o in cat.offers}
    # runpod's column order is ...,GpuInfo,Region,SpotPrice,Price,...: price and spot must not swap
    assert by[("runpod", "1x_A100-80GB_SECURE", "on-demand")].price_usd_per_hour == pytest.approx(1.64)
    assert by[("runpod", "1x_A100-80GB_SECURE", "spot")].price_usd_per_hour == pytest.approx(1.19)
    # lambda (CRLF, Price before Region) and cudo (LF)
    assert by[("lambda", "gpu_8x_h100_sxm5", "on-demand")].price_usd_per_hour == pytest.approx(23.92)
    assert any(o.provider == "cudo" for o in cat.offers)
    assert all(o.mode == "marketplace" for o in cat.offers if o.provider == "vast")


def _copy_with(src: Path, tmp: Path, provider: str, edit) -> Path:
    root = tmp / "sky"
    shutil.copytree(src, root)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    f = find_vms_files(root)[provider]
    lines = f.read_bytes().decode().split("\n")
    f.write_bytes("\n".join(edit(lines)).encode())
    return root


def test_malformed_row_imports_nothing(tmp_path: Path) -> None:
    src = shared_skypilot()

    def corrupt(lines: list[str]) -> list[str]:
        lines[5] = lines[5].replace(",1.64,", ",1.6x4,", 1) if ",1.64," in lines[5] else lines[5]
        return lines

    root = _copy_with(src, tmp_path, "runpod", corrupt)
    f = find_vms_files(root)["runpod"]
    assert ",1.6x4," in f.read_text()
    store = tmp_path / "catalogs"
    with pytest.raises(BadInput) as e:
        import_skypilot(root, store)
    assert e.value.field == "Price" and "v7/runpod/vms.csv:6" in str(e.value)
    assert not store.exists() or not any(store.iterdir())


def test_negative_price_and_missing_column(tmp_path: Path) -> None:
    f = tmp_path / "v7" / "x" / "vms.csv"
    f.parent.mkdir(parents=True)
    f.write_text("InstanceType,AcceleratorName,AcceleratorCount,Price,Region\r\ni,H100,1,-2,r\r\n")
    with pytest.raises(BadInput, match="negative"):
        read_vms_csv(f)
    f.write_text("InstanceType,AcceleratorName,AcceleratorCount,Region\ni,H100,1,r\n")
    with pytest.raises(BadInput) as e:
        read_vms_csv(f)
    assert e.value.field == "Price" and "vms.csv:1" in str(e.value)
