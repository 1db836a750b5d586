"""Generate batchfed_lab/accounting/prices.csv, the shipped price table (ILLUSTRATIVE prices).

    .venv/bin/python docs/gen_prices.py          # write the table
    .venv/bin/python docs/gen_prices.py --check  # exit 1 if the committed table is stale

The prices are illustrative list prices, not quotes: a pay-as-you-go Linux rate per vCPU-hour
for each VM family (in the range of Azure's published East US rates, e.g. a D2 v3 at about
$0.096/h), times the size's vCPUs from the VM size catalog, times a factor per region. They
were not checked against Azure's retail price API (https://prices.azure.com/api/retail/prices).
On 2026-12-07 the reference corpora were searched for Microsoft's published per-size rates
and spot discounts: no first-party figure was found (docs/accounting.md, *How far the prices
are grounded*), so every figure stays illustrative — replace them with your agreement's prices (federation.yaml ``accounting.prices`` or the
``BATCHFED_PRICES`` variable: a CSV with the same columns). Low-priority (spot) nodes are
charged at ``LOW_PRIORITY_FRACTION`` of the dedicated price.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "batchfed_lab" / "accounting" / "prices.csv"
CATALOG = ROOT / "batchfed_lab" / "scheduler" / "vm_sizes.csv"
AS_OF = "2026-12-07"
SOURCE = "illustrative list prices (docs/gen_prices.py): family rate x vCPUs x region factor; not Azure quotes"
CHECKED = (
    "Checked 2026-12-07: no first-party Azure list price or spot discount found in the reference corpora;"
    " every figure is ILLUSTRATIVE (docs/accounting.md)"
)
LOW_PRIORITY_FRACTION = 0.2

#: USD per vCPU-hour, pay-as-you-go Linux, East US (illustrative)
FAMILY_RATE = {
    "Av2": 0.043,
    "Dv2": 0.057,
    "DSv2": 0.057,
    "Dv3": 0.048,
    "Dsv3": 0.048,
    "Dv4": 0.048,
    "Dsv4": 0.048,
    "Ddv4": 0.0565,
    "Ddsv4": 0.0565,
    "Dv5": 0.048,
    "Dsv5": 0.048,
    "Ddv5": 0.057,
    "Ddsv5": 0.057,
    "Dasv5": 0.043,
    "Dadsv5": 0.052,
    "Ev3": 0.063,
    "Esv3": 0.063,
    "Ev4": 0.063,
    "Esv4": 0.063,
    "Edv4": 0.072,
    "Edsv4": 0.072,
    "Ev5": 0.063,
    "Esv5": 0.063,
    "Edv5": 0.072,
    "Edsv5": 0.072,
    "F": 0.05,
    "Fs": 0.05,
    "Fsv2": 0.0425,
    "M": 0.33,
    "H": 0.12,
    "HB": 0.038,
    "HBv2": 0.03,
    "HBv3": 0.03,
    "HC": 0.073,
    "NC": 0.15,
    "NCv2": 0.34,
    "NCv3": 0.51,
    "NCasT4_v3": 0.13,
    "NC_A100_v4": 0.15,
    "ND": 0.34,
    "NDv2": 0.55,
    "ND_A100_v4": 0.285,
    "NDm_A100_v4": 0.34,
    "NV": 0.19,
    "NVv3": 0.19,
    "NVv4": 0.05,
}
DEFAULT_RATE = 0.05
REGION_FACTOR = {
    "eastus": 1.0,
    "eastus2": 1.0,
    "westus2": 1.0,
    "centralus": 1.05,
    "northeurope": 1.05,
    "westeurope": 1.12,
    "uksouth": 1.12,
    "japaneast": 1.3,
}


def render() -> str:
    out = io.StringIO()
    out.write(f"# batchfed_lab price table as of {AS_OF}, USD per node-hour. Source: {SOURCE}.\n")
    out.write(f"# {CHECKED}\n")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["vm_size", "region", "dedicated_per_hour", "low_priority_per_hour"])
    with CATALOG.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rate = FAMILY_RATE.get(row["family"], DEFAULT_RATE) * int(row["vcpus"])
            for region, factor in REGION_FACTOR.items():
                dedicated = round(rate * factor, 4)
                w.writerow([row["name"], region, dedicated, round(dedicated * LOW_PRIORITY_FRACTION, 4)])
    return out.getvalue()


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        return 0 if OUT.read_text(encoding="utf-8") == text else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} ({text.count(chr(10)) - 2} prices)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
