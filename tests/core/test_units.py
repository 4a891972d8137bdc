import pytest

from suanli.core import BadInput, Resources, parse_accelerators, parse_bytes, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16GB", 16 * 10**9),
        ("512MiB", 512 * 2**20),
        (32, 32 * 2**30),
        ("1.5GiB", int(1.5 * 2**30)),
        ("2TB", 2 * 10**12),
    ],
)
def test_sizes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("90", 90), ("30m", 1800), ("2h", 7200), ("30d", 30 * 86400), (5, 5)]
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("A100:8", {"A100": 8}), ("T4", {"T4": 1}), ({"H100": 4}, {"H100": 4}), (None, {})],
)
def test_accelerators(value, expected):
    assert parse_accelerators(value) == expected


@pytest.mark.parametrize("bad", ["-1GB", "0", "lots", "16XB", True])
def test_bad_sizes_name_the_field(bad):
    with pytest.raises(BadInput) as e:
        parse_bytes(bad, "resources.memory")
    assert e.value.exit_code == 2
    assert str(e.value).startswith("resources.memory=")


@pytest.mark.parametrize("bad", ["A100:0", "A100:-2", "A100:x", {"A100": 1.5}, {"A100": 1, "T4": 1}, ":4"])
def test_bad_accelerators(bad):
    with pytest.raises(BadInput):
        parse_accelerators(bad)


def test_resources_fit():
    node = Resources(cpus=8, memory_bytes=64 * 2**30, accelerators={"A100": 8})
    assert Resources(4, 2**30, {"A100": 8}).fits_in(node)
    assert not Resources(4, 2**30, {"A100": 9}).fits_in(node)
    assert not Resources(4, 2**30, {"H100": 1}).fits_in(node)
    assert not Resources(9, 0).fits_in(node)
    assert "8x A100" in node.describe()


# ---- counts and money: one set of magnitude suffixes (k, M, B/G, T), "$", thousands commas ----------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7B", 7e9),
        ("7b", 7e9),
        ("7 G", 7e9),
        ("1.4T", 1.4e12),
        ("300M", 3e8),
        ("250k", 2.5e5),
        ("250,000", 2.5e5),
        ("1_000_000", 1e6),
        ("2e12", 2e12),
        (7e9, 7e9),
    ],
)
def test_counts_take_magnitudes(text, expected):
    from suanli.core.units import parse_count

    assert parse_count(text, "n") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250000", 2.5e5),
        ("250k", 2.5e5),
        ("$250k", 2.5e5),
        ("$250,000", 2.5e5),
        ("1.5M USD", 1.5e6),
        (99.5, 99.5),
    ],
)
def test_money_takes_the_same_magnitudes(text, expected):
    from suanli.core.units import parse_usd

    assert parse_usd(text, "budget") == expected


@pytest.mark.parametrize("bad", ["nan", "inf", "-5", "0", "1,5", "7X", "", "$", float("nan"), True])
def test_bad_counts_and_money_name_the_field(bad):
    from suanli.core.units import parse_count, parse_usd

    for parse in (parse_count, parse_usd):
        with pytest.raises(BadInput) as e:
            parse(bad, "budget")
        assert e.value.field == "budget" and "\n" not in str(e.value)


def test_a_dollar_sign_is_money_not_a_count():
    from suanli.core.units import parse_count

    with pytest.raises(BadInput):
        parse_count("$7B", "params")


@pytest.mark.parametrize(
    ("parse", "text", "hint"),
    [
        ("parse_params", "7", "did you mean 7B?"),
        ("parse_params", 70, "did you mean 70B?"),
        ("parse_tokens", "2", "did you mean 2T?"),
        ("parse_tokens", "300", "did you mean 300B?"),
    ],
)
def test_implausible_model_and_token_counts_get_a_hint(parse, text, hint):
    from suanli.core import units

    with pytest.raises(BadInput) as e:
        getattr(units, parse)(text)
    assert e.value.hint == hint and "between" in e.value.allowed


@pytest.mark.parametrize(
    ("parse", "text"), [("parse_params", "1e20"), ("parse_tokens", "1e20"), ("parse_params", "5k")]
)
def test_implausible_counts_with_a_magnitude_get_no_guess(parse, text):
    from suanli.core import units

    with pytest.raises(BadInput) as e:
        getattr(units, parse)(text)
    assert e.value.hint is None


def test_plausible_counts_pass():
    from suanli.core.units import parse_params, parse_tokens

    assert parse_params("7B") == 7e9 and parse_params("125M") == 1.25e8 and parse_tokens("15T") == 1.5e13


@pytest.mark.parametrize(
    ("value", "kw", "ok"),
    [
        (1.2, {"lo": 1}, True),
        (float("nan"), {"lo": 1}, False),
        (float("inf"), {}, False),
        (0.0, {"lo": 0, "lo_open": True}, False),
        (1.5, {"lo": 0, "hi": 1}, False),
        (None, {"lo": 1}, True),
    ],
)
def test_check_range_refuses_nan_inf_and_out_of_range(value, kw, ok):
    from suanli.core.units import check_range

    if ok:
        assert check_range(value, "pue", **kw) == value or value is None
    else:
        with pytest.raises(BadInput, match="must be a finite number"):
            check_range(value, "pue", **kw)


# ---- reading a user's file: one BadInput naming the file and where it stops being UTF-8 -------------
def test_read_text_names_the_line_and_byte_offset(tmp_path):
    from suanli.core.errors import read_text

    f = tmp_path / "trace.csv"
    f.write_bytes(b"a,b\n1,2\n3,\xff\n")
    with pytest.raises(BadInput) as e:
        read_text(f, "trace")
    assert e.value.field == "trace" and e.value.value == str(f)
    assert "line 3" in e.value.allowed and "byte offset 10" in e.value.allowed and "0xff" in e.value.allowed


def test_read_text_says_utf16_and_directories(tmp_path):
    from suanli.core.errors import read_text

    f = tmp_path / "win.yaml"
    f.write_bytes("months: []\n".encode("utf-16"))
    with pytest.raises(BadInput, match="UTF-16"):
        read_text(f, "demand")
    with pytest.raises(BadInput, match="is a directory"):
        read_text(tmp_path, "demand")
    with pytest.raises(BadInput, match="does not exist"):
        read_text(tmp_path / "nope", "demand")


def test_input_file_points_a_model_folder_at_its_config(tmp_path):
    from suanli.core.errors import input_file

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BadInput) as e:
        input_file(tmp_path, "model", inside="config.json")
    assert e.value.hint == f"did you mean {tmp_path / 'config.json'}?"
