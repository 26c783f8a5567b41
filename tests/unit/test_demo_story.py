"""The demo tells one true story: what README promises is what the demo's shift makes, everything
stays coal, and the lab's analytes are those of Taebaek anthracite and add up with the grade."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from provenance.clients.demo import DemoError, coal_analytes, kept_commodity, mean_grade, shift_plan
from provenance.domain.assay_certificate import analytes_of, build_certificate
from provenance.domain.trips import RejectedRecord, check_weighbridge, simulate_fleet

README = Path(__file__).resolve().parents[2] / "README.md"


def passing_weighbridge(day: datetime) -> int:
    count = 0
    for trip in simulate_fleet(shift_plan(day)):
        try:
            check_weighbridge(trip)
        except RejectedRecord:
            continue
        count += 1
    return count


@pytest.mark.parametrize("day", [datetime(2026, 11, 3, tzinfo=UTC), datetime(2031, 2, 28, tzinfo=UTC)])
def test_the_readme_counts_the_truckloads_the_demo_registers(day: datetime) -> None:
    promised = re.search(r"provenance demo\s+# (\d+) truckloads of coal", README.read_text(encoding="utf-8"))
    assert promised is not None, "README's demo line names its truckloads"
    assert passing_weighbridge(day) == int(promised.group(1))


def test_the_demo_shift_is_coal_from_shaft_2() -> None:
    trips = simulate_fleet(shift_plan(datetime(2026, 11, 3, tzinfo=UTC)))
    assert {trip.commodity for trip in trips} == {"COAL"}
    assert {trip.site for trip in trips} == {"SH2"}


def test_crushing_and_blending_keep_the_one_commodity_and_weigh_the_grade_by_mass() -> None:
    assert kept_commodity(["COAL", "COAL"]) == "COAL"
    with pytest.raises(DemoError):
        kept_commodity(["COAL", "FE-ORE"])
    assert mean_grade([(3, 600_000), (1, 700_000)]) == 625_000


@pytest.mark.parametrize("grade_ppm", [620_000, 660_000, 690_000])
def test_the_labs_analytes_are_taebaek_anthracites_and_add_up_with_the_grade(grade_ppm: int) -> None:
    fixed_carbon_ppm, items = coal_analytes(grade_ppm, random.Random(grade_ppm))
    build_certificate("SH2-LOT", analytes_of(items))  # a valid certificate
    value = {item["analyte"]: Decimal(item["value"]) for item in items}
    unit = {item["analyte"]: item["unit"] for item in items}
    # Lee and Jung (1965), about 40 Korean anthracite collieries
    assert Decimal(4) <= value["moisture"] <= Decimal(7)
    assert Decimal(20) <= value["ash"] <= Decimal(30)
    assert Decimal(3) <= value["volatile_matter"] <= Decimal(5)
    assert Decimal("0.2") <= value["total_sulphur"] <= Decimal("0.5")
    assert Decimal(5_200) <= value["gross_calorific_value"] <= Decimal(6_100)
    assert unit["gross_calorific_value"] == "kcal/kg"
    assert value["total_moisture"] > value["moisture"]
    proximate = value["moisture"] + value["ash"] + value["volatile_matter"] + value["fixed_carbon"]
    assert proximate == 100
    assert fixed_carbon_ppm == value["fixed_carbon"] * 10_000
    assert abs(fixed_carbon_ppm - grade_ppm) <= 15_000
    methods = {item["analyte"]: item["method"] for item in items}
    assert methods["ash"].startswith("ISO 1171")
    assert methods["volatile_matter"].startswith("ISO 562")
    assert methods["total_moisture"].startswith("ISO 589")
    assert methods["total_sulphur"].startswith("ISO 19579")
    assert methods["gross_calorific_value"].startswith("ISO 1928")
