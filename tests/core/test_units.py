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
