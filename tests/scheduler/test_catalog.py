"""The VM size catalog (batchfed_lab/scheduler/vm_sizes.csv + catalog.py)."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from importlib import resources

import pytest

from batchfed_lab.scheduler import catalog
from batchfed_lab.scheduler.catalog import is_gpu, is_rdma, known_sizes, lookup
from batchfed_lab.scheduler.types import VmSize

GIB = 1024

# name, family, vCPUs, memory GiB, GPUs, RDMA — Azure's published values.
SAMPLES = [
    # A v2
    ("Standard_A1_v2", "Av2", 1, 2, 0, False),
    ("Standard_A8_v2", "Av2", 8, 16, 0, False),
    ("Standard_A2m_v2", "Av2", 2, 16, 0, False),
    ("Standard_A8m_v2", "Av2", 8, 64, 0, False),
    # D v2 / DS v2
    ("Standard_D1_v2", "Dv2", 1, 3.5, 0, False),
    ("Standard_D2_v2", "Dv2", 2, 7, 0, False),
    ("Standard_D5_v2", "Dv2", 16, 56, 0, False),
    ("Standard_D11_v2", "Dv2", 2, 14, 0, False),
    ("Standard_D15_v2", "Dv2", 20, 140, 0, False),
    ("Standard_DS3_v2", "DSv2", 4, 14, 0, False),
    ("Standard_DS14_v2", "DSv2", 16, 112, 0, False),
    # D v3 .. v5
    ("Standard_D2_v3", "Dv3", 2, 8, 0, False),
    ("Standard_D64s_v3", "Dsv3", 64, 256, 0, False),
    ("Standard_D48_v4", "Dv4", 48, 192, 0, False),
    ("Standard_D16s_v4", "Dsv4", 16, 64, 0, False),
    ("Standard_D8d_v4", "Ddv4", 8, 32, 0, False),
    ("Standard_D32ds_v4", "Ddsv4", 32, 128, 0, False),
    ("Standard_D2_v5", "Dv5", 2, 8, 0, False),
    ("Standard_D96s_v5", "Dsv5", 96, 384, 0, False),
    ("Standard_D4d_v5", "Ddv5", 4, 16, 0, False),
    ("Standard_D64ds_v5", "Ddsv5", 64, 256, 0, False),
    ("Standard_D2as_v5", "Dasv5", 2, 8, 0, False),
    ("Standard_D96ads_v5", "Dadsv5", 96, 384, 0, False),
    # E v3 .. v5
    ("Standard_E2_v3", "Ev3", 2, 16, 0, False),
    ("Standard_E64_v3", "Ev3", 64, 432, 0, False),
    ("Standard_E64is_v3", "Esv3", 64, 432, 0, False),
    ("Standard_E20s_v3", "Esv3", 20, 160, 0, False),
    ("Standard_E64_v4", "Ev4", 64, 504, 0, False),
    ("Standard_E80is_v4", "Esv4", 80, 504, 0, False),
    ("Standard_E16d_v4", "Edv4", 16, 128, 0, False),
    ("Standard_E80ids_v4", "Edsv4", 80, 504, 0, False),
    ("Standard_E64_v5", "Ev5", 64, 512, 0, False),
    ("Standard_E96s_v5", "Esv5", 96, 672, 0, False),
    ("Standard_E104id_v5", "Edv5", 104, 672, 0, False),
    ("Standard_E104ids_v5", "Edsv5", 104, 672, 0, False),
    # F
    ("Standard_F1", "F", 1, 2, 0, False),
    ("Standard_F16", "F", 16, 32, 0, False),
    ("Standard_F4s", "Fs", 4, 8, 0, False),
    ("Standard_F2s_v2", "Fsv2", 2, 4, 0, False),
    ("Standard_F72s_v2", "Fsv2", 72, 144, 0, False),
    # NC family
    ("Standard_NC6", "NC", 6, 56, 1, False),
    ("Standard_NC12", "NC", 12, 112, 2, False),
    ("Standard_NC24", "NC", 24, 224, 4, False),
    ("Standard_NC24r", "NC", 24, 224, 4, True),
    ("Standard_NC6s_v2", "NCv2", 6, 112, 1, False),
    ("Standard_NC24rs_v2", "NCv2", 24, 448, 4, True),
    ("Standard_NC6s_v3", "NCv3", 6, 112, 1, False),
    ("Standard_NC12s_v3", "NCv3", 12, 224, 2, False),
    ("Standard_NC24s_v3", "NCv3", 24, 448, 4, False),
    ("Standard_NC24rs_v3", "NCv3", 24, 448, 4, True),
    ("Standard_NC4as_T4_v3", "NCasT4_v3", 4, 28, 1, False),
    ("Standard_NC16as_T4_v3", "NCasT4_v3", 16, 110, 1, False),
    ("Standard_NC64as_T4_v3", "NCasT4_v3", 64, 440, 4, False),
    ("Standard_NC24ads_A100_v4", "NC_A100_v4", 24, 220, 1, False),
    ("Standard_NC96ads_A100_v4", "NC_A100_v4", 96, 880, 4, False),
    # ND family
    ("Standard_ND6s", "ND", 6, 112, 1, False),
    ("Standard_ND24rs", "ND", 24, 448, 4, True),
    ("Standard_ND40rs_v2", "NDv2", 40, 672, 8, True),
    ("Standard_ND96asr_v4", "ND_A100_v4", 96, 900, 8, True),
    ("Standard_ND96amsr_A100_v4", "NDm_A100_v4", 96, 1900, 8, True),
    # NV family (NVv4 fractional GPUs are recorded as 1)
    ("Standard_NV6", "NV", 6, 56, 1, False),
    ("Standard_NV24", "NV", 24, 224, 4, False),
    ("Standard_NV12s_v3", "NVv3", 12, 112, 1, False),
    ("Standard_NV48s_v3", "NVv3", 48, 448, 4, False),
    ("Standard_NV4as_v4", "NVv4", 4, 14, 1, False),
    ("Standard_NV32as_v4", "NVv4", 32, 112, 1, False),
    # H family
    ("Standard_H8", "H", 8, 56, 0, False),
    ("Standard_H16", "H", 16, 112, 0, False),
    ("Standard_H8m", "H", 8, 112, 0, False),
    ("Standard_H16m", "H", 16, 224, 0, False),
    ("Standard_H16r", "H", 16, 112, 0, True),
    ("Standard_H16mr", "H", 16, 224, 0, True),
    ("Standard_HB60rs", "HB", 60, 228, 0, True),
    ("Standard_HB60-15rs", "HB", 15, 228, 0, True),
    ("Standard_HB120rs_v2", "HBv2", 120, 456, 0, True),
    ("Standard_HB120rs_v3", "HBv3", 120, 448, 0, True),
    ("Standard_HB120-16rs_v3", "HBv3", 16, 448, 0, True),
    ("Standard_HC44rs", "HC", 44, 352, 0, True),
    # M
    ("Standard_M8ms", "M", 8, 218.75, 0, False),
    ("Standard_M16ms", "M", 16, 437.5, 0, False),
    ("Standard_M32ts", "M", 32, 192, 0, False),
    ("Standard_M64s", "M", 64, 1024, 0, False),
    ("Standard_M128s", "M", 128, 2048, 0, False),
]

# Series where memory is a fixed number of GiB per vCPU for every size.
GIB_PER_VCPU = {
    **dict.fromkeys(("Dv3", "Dsv3", "Dv4", "Dsv4", "Ddv4", "Ddsv4", "Dv5", "Dsv5", "Ddv5", "Ddsv5", "Dasv5", "Dadsv5"), 4),
    **dict.fromkeys(("F", "Fs", "Fsv2"), 2),
}
E_FAMILIES = {"Ev3", "Esv3", "Ev4", "Esv4", "Edv4", "Edsv4", "Ev5", "Esv5", "Edv5", "Edsv5"}
RDMA_FAMILIES = {"NDv2", "ND_A100_v4", "NDm_A100_v4", "HB", "HBv2", "HBv3", "HC"}
# Azure's naming: [family][vCPUs][-constrained vCPUs][additive feature letters][_accelerator][_version];
# "r" among the feature letters means an RDMA (InfiniBand) back-end network.
NAME_RE = re.compile(r"^standard_(?P<family>[a-z]+)(?P<cpus>\d+)(?:-\d+)?(?P<features>[a-z]*)(?:_.*)?$")


def _rows() -> list[dict[str, str]]:
    text = resources.files("batchfed_lab.scheduler").joinpath("vm_sizes.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


ROWS = _rows()


def _features(name: str) -> str:
    m = NAME_RE.match(name.lower())
    assert m, f"{name} does not follow Azure's size naming"
    return m["features"]


# --- exact values -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "family", "cores", "gib", "gpus", "rdma"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_sample_sizes_have_published_values(name, family, cores, gib, gpus, rdma):
    size = lookup(name)
    assert size == VmSize(name=name, cores=cores, memory_mib=int(gib * GIB), gpus=gpus, rdma=rdma, family=family)
    assert is_gpu(name) is (gpus > 0)
    assert is_rdma(name) is rdma


def test_row_count_and_every_requested_family_present():
    assert 200 <= len(ROWS) <= 300
    families = {r["family"] for r in ROWS}
    assert families >= {s[1] for s in SAMPLES}


# --- name matching --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "Standard_D2s_v3",
        "standard_d2s_v3",
        "STANDARD_D2S_V3",
        "D2s_v3",
        "d2s_v3",
        "D2S_V3",
        "  Standard_D2s_v3 ",
        "sTaNdArD_d2S_v3",
    ],
)
def test_lookup_is_case_and_prefix_insensitive(spelling):
    size = lookup(spelling)
    assert size is not None
    assert size.name == "Standard_D2s_v3"  # always the canonical spelling
    assert (size.cores, size.memory_mib) == (2, 8 * GIB)


@pytest.mark.parametrize(
    "name",
    ["Standard_D3_v9", "standard_nope", "Standard_", "standard", "", "   ", "D2s_v3_extra", "Basic_A1", "Standard_B2ms"],
)
def test_unknown_sizes_are_none(name):
    assert lookup(name) is None
    assert is_gpu(name) is None
    assert is_rdma(name) is None


@pytest.mark.parametrize("bad", [None, 42, 3.5, b"Standard_D2s_v3", ["Standard_D2s_v3"]])
def test_lookup_never_raises_on_a_non_string(bad):
    assert lookup(bad) is None  # type: ignore[arg-type]


# --- overrides ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "overrides", "expected"),
    [
        # no-op overrides
        ("Standard_D2s_v3", None, (2, 8192, 0, False)),
        ("Standard_D2s_v3", {}, (2, 8192, 0, False)),
        ("Standard_D2s_v3", {"cores": None, "memory_mib": None, "gpus": None, "rdma": None}, (2, 8192, 0, False)),
        # partial replacement of catalog values
        ("Standard_D2s_v3", {"cores": 1}, (1, 8192, 0, False)),
        ("Standard_D2s_v3", {"memory_mib": 7000}, (2, 7000, 0, False)),
        ("Standard_NC24rs_v3", {"rdma": False}, (24, 458752, 4, False)),
        ("Standard_NC6s_v3", {"gpus": 0}, (6, 114688, 0, False)),
        ("Standard_F2s_v2", {"cores": 2, "memory_mib": 4096, "gpus": 1, "rdma": True}, (2, 4096, 1, True)),
        # an unknown size becomes known with cores and memory
        ("Standard_X99_v9", {"cores": 8, "memory_mib": 32768}, (8, 32768, 0, False)),
        ("Standard_X99_v9", {"cores": 8, "memory_mib": 32768, "gpus": 2, "rdma": True}, (8, 32768, 2, True)),
    ],
)
def test_overrides(name, overrides, expected):
    size = lookup(name, overrides)
    assert size is not None
    assert (size.cores, size.memory_mib, size.gpus, size.rdma) == expected


def test_override_keeps_catalog_name_and_family():
    size = lookup("nc6s_v3", {"gpus": 0})
    assert size is not None and (size.name, size.family) == ("Standard_NC6s_v3", "NCv3")
    assert is_gpu("nc6s_v3", {"gpus": 0}) is False
    assert is_gpu("nc6s_v3") is True  # the catalog itself is untouched


def test_override_of_unknown_size_uses_the_given_name_and_no_family():
    size = lookup(" Standard_X99_v9 ", {"cores": 8, "memory_mib": 32768})
    assert size == VmSize(name="Standard_X99_v9", cores=8, memory_mib=32768, gpus=0, rdma=False, family="")


@pytest.mark.parametrize(
    "overrides",
    [{"cores": 8}, {"memory_mib": 1024}, {"gpus": 1, "rdma": True}, {"cores": 8, "memory_mib": None}],
)
def test_partial_override_does_not_make_an_unknown_size_known(overrides):
    assert lookup("Standard_X99_v9", overrides) is None
    assert is_gpu("Standard_X99_v9", overrides) is None


def test_override_accepts_a_config_model():
    class FakeOverride:  # stands in for batchfed_lab.config.pool.VmSizeOverride
        def model_dump(self):
            return {"cores": 4, "memory_mib": 16384, "gpus": None, "rdma": None}

    size = lookup("Standard_X99_v9", FakeOverride())  # type: ignore[arg-type]
    assert size is not None and (size.cores, size.memory_mib, size.gpus, size.rdma) == (4, 16384, 0, False)


@pytest.mark.parametrize(
    "overrides",
    [
        {"vcpus": 4},  # unknown key (the CSV column name is not an override key)
        {"cores": 0},
        {"cores": -1},
        {"memory_mib": 0},
        {"gpus": -1},
        {"cores": True},
        {"cores": "4"},
        {"memory_mib": 1.5},
        {"rdma": "yes"},
        {"rdma": 1},
    ],
)
def test_malformed_override_is_a_value_error(overrides):
    with pytest.raises(ValueError):
        lookup("Standard_D2s_v3", overrides)
    with pytest.raises(ValueError):
        catalog.normalize_override(overrides)


# --- whole-table consistency ----------------------------------------------------------------------


def test_csv_header():
    text = resources.files("batchfed_lab.scheduler").joinpath("vm_sizes.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "name,family,vcpus,memory_mib,gpus,rdma"


@pytest.mark.parametrize("row", ROWS, ids=[r["name"] for r in ROWS])
def test_every_row_is_consistent(row):
    name, family = row["name"], row["family"]
    cores, mib, gpus = int(row["vcpus"]), int(row["memory_mib"]), int(row["gpus"])
    assert row["rdma"] in ("true", "false")
    rdma = row["rdma"] == "true"
    assert name.startswith("Standard_") and family
    assert cores > 0 and mib > 0 and gpus >= 0
    # GPU families (N*) have GPUs; nothing else does.
    assert (gpus > 0) is family.startswith("N"), name
    # "r" in the additive features ⇔ RDMA; the RDMA families are RDMA throughout.
    assert ("r" in _features(name)) is rdma, name
    if family in RDMA_FAMILIES:
        assert rdma, name
    # the number in the name is the vCPU count (the second one for constrained-core sizes);
    # Dv2/DSv2 are the exception: their numbers are model numbers (D3_v2 has 4 vCPUs).
    m = NAME_RE.match(name.lower())
    assert m is not None
    if "-" in name:
        assert cores == int(re.search(r"-(\d+)", name)[1]), name
    elif family not in ("Dv2", "DSv2"):
        assert int(m["cpus"]) == cores, name
    # fixed-ratio series
    if family in GIB_PER_VCPU:
        assert mib == cores * GIB_PER_VCPU[family] * GIB, name
    if family in E_FAMILIES and cores <= 48:
        assert mib == cores * 8 * GIB, name
    # the lookup agrees with the file
    size = lookup(name)
    assert size == VmSize(name=name, cores=cores, memory_mib=mib, gpus=gpus, rdma=rdma, family=family)


def test_names_are_unique_case_insensitively_with_and_without_prefix():
    lowered = [r["name"].lower() for r in ROWS]
    assert len(lowered) == len(set(lowered))
    short = [n.removeprefix("standard_") for n in lowered]
    assert len(short) == len(set(short))
    assert len({tuple(r.values()) for r in ROWS}) == len(ROWS)


def test_known_sizes_all_look_up():
    names = known_sizes()
    assert names == [r["name"] for r in ROWS]
    for name in names:
        size = lookup(name)
        assert isinstance(size, VmSize) and size.name == name
        assert lookup(name.lower()) is size
        assert lookup(name.upper().removeprefix("STANDARD_")) is size


def test_known_sizes_returns_a_copy():
    names = known_sizes()
    names.clear()
    assert known_sizes()


# --- loading --------------------------------------------------------------------------------------


def test_catalog_is_loaded_once_and_lookups_hit_the_cache():
    catalog._catalog.cache_clear()
    first = lookup("Standard_D2s_v3")
    for _ in range(1000):
        assert lookup("standard_d2s_v3") is first
    info = catalog._catalog.cache_info()
    assert info.misses == 1 and info.currsize == 1


def test_import_does_no_io():
    code = (
        "import batchfed_lab.scheduler.catalog as c\n"
        "assert c._catalog.cache_info().currsize == 0, 'catalog loaded at import'\n"
        "assert c.lookup('D2s_v3').cores == 2\n"
        "assert c._catalog.cache_info().currsize == 1\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_corrupt_table_is_rejected():
    header = "name,family,vcpus,memory_mib,gpus,rdma\n"
    with pytest.raises(ValueError, match="duplicate"):
        catalog._parse(header + "Standard_A1_v2,Av2,1,2048,0,false\nA1_V2,Av2,1,2048,0,false\n")
    with pytest.raises(ValueError, match="positive"):
        catalog._parse(header + "Standard_A1_v2,Av2,0,2048,0,false\n")
    with pytest.raises(ValueError, match="rdma"):
        catalog._parse(header + "Standard_A1_v2,Av2,1,2048,0,maybe\n")
    with pytest.raises(ValueError, match="columns"):
        catalog._parse("name,cores\nStandard_A1_v2,1\n")
