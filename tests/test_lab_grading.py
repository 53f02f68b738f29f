"""Lab grading per CTCAE v5.0, baseline normal (DOMAIN.md "Lab grading"), table by table.

Every boundary of every analyte is probed at, just above and just below, in the canonical unit
and in alternative units; a value on a boundary takes the lower grade. The expected grades are
written out by hand here, not derived from the module's own thresholds.
"""

from decimal import Decimal
from fractions import Fraction

import pytest

from trialmgr.safety.grading import (
    ANALYTES,
    GradingError,
    MissingLimitError,
    UnitError,
    describe,
    grade,
    hys_law,
    normalise_unit,
    to_canonical,
    uln_multiple,
)

MICRO = "\u00b5"  # MICRO SIGN, as typed on most keyboards
MU = "\u03bc"  # GREEK SMALL LETTER MU, as some lab systems send it
TIMES = "\u00d7"

# (analyte, value, unit, uln, expected grade)
INCREASED_BOUNDARIES = [
    # ALT, U/L, ULN 40: >ULN-3x G1, >3-5x G2, >5-20x G3, >20x G4
    ("ALT", 39, "U/L", 40, 0),
    ("ALT", 40, "U/L", 40, 0),
    ("ALT", 40.1, "U/L", 40, 1),
    ("ALT", 119.9, "U/L", 40, 1),
    ("ALT", 120, "U/L", 40, 1),
    ("ALT", 120.1, "U/L", 40, 2),
    ("ALT", 121, "U/L", 40, 2),
    ("ALT", 199.9, "U/L", 40, 2),
    ("ALT", 200, "U/L", 40, 2),
    ("ALT", 200.1, "U/L", 40, 3),
    ("ALT", 799.9, "U/L", 40, 3),
    ("ALT", 800, "U/L", 40, 3),
    ("ALT", 800.1, "U/L", 40, 4),
    ("ALT", 5000, "U/L", 40, 4),
    # ALT, IU/L
    ("ALT", 40, "IU/L", 40, 0),
    ("ALT", 120, "IU/L", 40, 1),
    ("ALT", 121, "IU/L", 40, 2),
    ("ALT", 800, "IU/L", 40, 3),
    ("ALT", 801, "IU/L", 40, 4),
    # ALT, µkat/L, ULN 0.6 (36 U/L)
    ("ALT", 0.59, f"{MICRO}kat/L", 0.6, 0),
    ("ALT", 0.6, f"{MICRO}kat/L", 0.6, 0),
    ("ALT", 0.61, f"{MICRO}kat/L", 0.6, 1),
    ("ALT", 1.79, f"{MICRO}kat/L", 0.6, 1),
    ("ALT", 1.8, f"{MICRO}kat/L", 0.6, 1),
    ("ALT", 1.81, f"{MICRO}kat/L", 0.6, 2),
    ("ALT", 2.99, f"{MICRO}kat/L", 0.6, 2),
    ("ALT", 3.0, f"{MICRO}kat/L", 0.6, 2),
    ("ALT", 3.01, f"{MICRO}kat/L", 0.6, 3),
    ("ALT", 11.99, f"{MICRO}kat/L", 0.6, 3),
    ("ALT", 12, f"{MICRO}kat/L", 0.6, 3),
    ("ALT", 12.01, f"{MICRO}kat/L", 0.6, 4),
    # ALT, µkat/L: values on a boundary that float arithmetic (x60, or value/ULN) pushes over
    ("ALT", 1.08, "ukat/L", 0.36, 1),
    ("ALT", 1.8, "ukat/L", 0.36, 2),
    ("ALT", 7.2, "ukat/L", 0.36, 3),
    ("ALT", 1.05, "ukat/L", 0.35, 1),
    ("ALT", 1.47, "ukat/L", 0.49, 1),
    # AST, U/L, ULN 33
    ("AST", 32.9, "U/L", 33, 0),
    ("AST", 33, "U/L", 33, 0),
    ("AST", 33.1, "U/L", 33, 1),
    ("AST", 98.9, "U/L", 33, 1),
    ("AST", 99, "U/L", 33, 1),
    ("AST", 99.1, "U/L", 33, 2),
    ("AST", 164.9, "U/L", 33, 2),
    ("AST", 165, "U/L", 33, 2),
    ("AST", 165.1, "U/L", 33, 3),
    ("AST", 659.9, "U/L", 33, 3),
    ("AST", 660, "U/L", 33, 3),
    ("AST", 660.1, "U/L", 33, 4),
    # AST, ukat/L, ULN 0.55
    ("AST", 0.54, "ukat/L", 0.55, 0),
    ("AST", 0.55, "ukat/L", 0.55, 0),
    ("AST", 0.56, "ukat/L", 0.55, 1),
    ("AST", 1.64, "ukat/L", 0.55, 1),
    ("AST", 1.65, "ukat/L", 0.55, 1),
    ("AST", 1.66, "ukat/L", 0.55, 2),
    ("AST", 2.75, "ukat/L", 0.55, 2),
    ("AST", 2.76, "ukat/L", 0.55, 3),
    ("AST", 11, "ukat/L", 0.55, 3),
    ("AST", 11.01, "ukat/L", 0.55, 4),
    ("AST", 99, "IU/L", 33, 1),
    ("AST", 99.1, "IU/L", 33, 2),
    # Total bilirubin, mg/dL, ULN 1.2: >ULN-1.5x G1, >1.5-3x G2, >3-10x G3, >10x G4
    ("BILI", 1.19, "mg/dL", 1.2, 0),
    ("BILI", 1.2, "mg/dL", 1.2, 0),
    ("BILI", 1.21, "mg/dL", 1.2, 1),
    ("BILI", 1.79, "mg/dL", 1.2, 1),
    ("BILI", 1.8, "mg/dL", 1.2, 1),
    ("BILI", 1.81, "mg/dL", 1.2, 2),
    ("BILI", 3.59, "mg/dL", 1.2, 2),
    ("BILI", 3.6, "mg/dL", 1.2, 2),
    ("BILI", 3.61, "mg/dL", 1.2, 3),
    ("BILI", 11.99, "mg/dL", 1.2, 3),
    ("BILI", 12, "mg/dL", 1.2, 3),
    ("BILI", 12.01, "mg/dL", 1.2, 4),
    # Total bilirubin, µmol/L, ULN 21
    ("BILI", 20.9, f"{MICRO}mol/L", 21, 0),
    ("BILI", 21, f"{MICRO}mol/L", 21, 0),
    ("BILI", 21.1, f"{MICRO}mol/L", 21, 1),
    ("BILI", 31.4, f"{MICRO}mol/L", 21, 1),
    ("BILI", 31.5, f"{MICRO}mol/L", 21, 1),
    ("BILI", 31.6, f"{MICRO}mol/L", 21, 2),
    ("BILI", 62.9, f"{MICRO}mol/L", 21, 2),
    ("BILI", 63, f"{MICRO}mol/L", 21, 2),
    ("BILI", 63.1, f"{MICRO}mol/L", 21, 3),
    ("BILI", 209.9, f"{MICRO}mol/L", 21, 3),
    ("BILI", 210, f"{MICRO}mol/L", 21, 3),
    ("BILI", 210.1, f"{MICRO}mol/L", 21, 4),
    # Bilirubin, µmol/L: boundaries that converting each number by /17.1 in floats gets wrong
    ("BILI", 22.8, "umol/L", 15.2, 1),
    ("BILI", 45.6, "umol/L", 15.2, 2),
    ("BILI", 25.35, "umol/L", 16.9, 1),
    ("BILI", 50.7, "umol/L", 16.9, 2),
    ("BILI", 155, "umol/L", 15.5, 3),
    # Creatinine, mg/dL, ULN 1.1: >ULN-1.5x G1, >1.5-3x G2, >3-6x G3, >6x G4
    ("CREAT", 1.09, "mg/dL", 1.1, 0),
    ("CREAT", 1.1, "mg/dL", 1.1, 0),
    ("CREAT", 1.11, "mg/dL", 1.1, 1),
    ("CREAT", 1.64, "mg/dL", 1.1, 1),
    ("CREAT", 1.65, "mg/dL", 1.1, 1),
    ("CREAT", 1.66, "mg/dL", 1.1, 2),
    ("CREAT", 3.29, "mg/dL", 1.1, 2),
    ("CREAT", 3.3, "mg/dL", 1.1, 2),
    ("CREAT", 3.31, "mg/dL", 1.1, 3),
    ("CREAT", 6.59, "mg/dL", 1.1, 3),
    ("CREAT", 6.6, "mg/dL", 1.1, 3),
    ("CREAT", 6.61, "mg/dL", 1.1, 4),
    # Creatinine, µmol/L, ULN 97
    ("CREAT", 96.9, f"{MICRO}mol/L", 97, 0),
    ("CREAT", 97, f"{MICRO}mol/L", 97, 0),
    ("CREAT", 97.1, f"{MICRO}mol/L", 97, 1),
    ("CREAT", 145.4, f"{MICRO}mol/L", 97, 1),
    ("CREAT", 145.5, f"{MICRO}mol/L", 97, 1),
    ("CREAT", 145.6, f"{MICRO}mol/L", 97, 2),
    ("CREAT", 290.9, f"{MICRO}mol/L", 97, 2),
    ("CREAT", 291, f"{MICRO}mol/L", 97, 2),
    ("CREAT", 291.1, f"{MICRO}mol/L", 97, 3),
    ("CREAT", 581.9, f"{MICRO}mol/L", 97, 3),
    ("CREAT", 582, f"{MICRO}mol/L", 97, 3),
    ("CREAT", 582.1, f"{MICRO}mol/L", 97, 4),
    # Creatinine, µmol/L: boundaries that /88.4 in floats gets wrong
    ("CREAT", 91.65, "umol/L", 61.1, 1),
    ("CREAT", 183.3, "umol/L", 61.1, 2),
    ("CREAT", 366.6, "umol/L", 61.1, 3),
]


@pytest.mark.parametrize(("analyte", "value", "unit", "uln", "expected"), INCREASED_BOUNDARIES)
def test_increased_analytes_are_graded_on_uln_multiples(analyte, value, unit, uln, expected):
    assert grade(analyte, value, unit, uln=uln) == expected


# (analyte, value, unit, lln, expected grade)
DECREASED_BOUNDARIES = [
    # Platelets, 10^9/L, LLN 150: <LLN-75 G1, <75-50 G2, <50-25 G3, <25 G4
    ("PLT", 150.1, "10^9/L", 150, 0),
    ("PLT", 150, "10^9/L", 150, 0),
    ("PLT", 149.9, "10^9/L", 150, 1),
    ("PLT", 75.1, "10^9/L", 150, 1),
    ("PLT", 75, "10^9/L", 150, 1),
    ("PLT", 74.9, "10^9/L", 150, 2),
    ("PLT", 50.1, "10^9/L", 150, 2),
    ("PLT", 50, "10^9/L", 150, 2),
    ("PLT", 49.9, "10^9/L", 150, 3),
    ("PLT", 25.1, "10^9/L", 150, 3),
    ("PLT", 25, "10^9/L", 150, 3),
    ("PLT", 24.9, "10^9/L", 150, 4),
    ("PLT", 0, "10^9/L", 150, 4),
    # Platelets, /mm3 (1 x 10^9/L = 1000 /mm3)
    ("PLT", 150000, "/mm3", 150000, 0),
    ("PLT", 149999, "/mm3", 150000, 1),
    ("PLT", 75001, "/mm3", 150000, 1),
    ("PLT", 75000, "/mm3", 150000, 1),
    ("PLT", 74999, "/mm3", 150000, 2),
    ("PLT", 50001, "/mm3", 150000, 2),
    ("PLT", 50000, "/mm3", 150000, 2),
    ("PLT", 49999, "/mm3", 150000, 3),
    ("PLT", 25001, "/mm3", 150000, 3),
    ("PLT", 25000, "/mm3", 150000, 3),
    ("PLT", 24999, "/mm3", 150000, 4),
    # Platelets, other count units
    ("PLT", 75, "10^3/uL", 150, 1),
    ("PLT", 74.9, "10^3/uL", 150, 2),
    ("PLT", 50000, "/uL", 150000, 2),
    ("PLT", 49999, "cells/uL", 150000, 3),
    ("PLT", 25, "G/L", 150, 3),
    ("PLT", 24.9, "G/L", 150, 4),
    ("PLT", 75, "x10^9/L", 150, 1),
    ("PLT", 25000, "/mm\u00b3", 150000, 3),
    # Neutrophils, 10^9/L, LLN 2.0: <LLN-1.5 G1, <1.5-1.0 G2, <1.0-0.5 G3, <0.5 G4
    ("ANC", 2.01, "10^9/L", 2.0, 0),
    ("ANC", 2.0, "10^9/L", 2.0, 0),
    ("ANC", 1.99, "10^9/L", 2.0, 1),
    ("ANC", 1.51, "10^9/L", 2.0, 1),
    ("ANC", 1.5, "10^9/L", 2.0, 1),
    ("ANC", 1.49, "10^9/L", 2.0, 2),
    ("ANC", 1.01, "10^9/L", 2.0, 2),
    ("ANC", 1.0, "10^9/L", 2.0, 2),
    ("ANC", 0.99, "10^9/L", 2.0, 3),
    ("ANC", 0.51, "10^9/L", 2.0, 3),
    ("ANC", 0.5, "10^9/L", 2.0, 3),
    ("ANC", 0.49, "10^9/L", 2.0, 4),
    # Neutrophils, /mm3 and cells/µL
    ("ANC", 2000, "/mm3", 2000, 0),
    ("ANC", 1999, "/mm3", 2000, 1),
    ("ANC", 1500, "/mm3", 2000, 1),
    ("ANC", 1499, "/mm3", 2000, 2),
    ("ANC", 1000, "/mm3", 2000, 2),
    ("ANC", 999, "/mm3", 2000, 3),
    ("ANC", 500, "/mm3", 2000, 3),
    ("ANC", 499, "/mm3", 2000, 4),
    ("ANC", 1800, "cells/uL", 1800, 0),
    ("ANC", 1500, "cells/uL", 1800, 1),
    ("ANC", 1499, "cells/uL", 1800, 2),
    ("ANC", 1.5, "10^3/uL", 1.8, 1),
    ("ANC", 1.49, "10^3/uL", 1.8, 2),
    # Haemoglobin, g/dL, LLN 12: <LLN-10 G1, <10-8 G2, <8 G3, no grade 4
    ("HGB", 12.1, "g/dL", 12, 0),
    ("HGB", 12, "g/dL", 12, 0),
    ("HGB", 11.9, "g/dL", 12, 1),
    ("HGB", 10.1, "g/dL", 12, 1),
    ("HGB", 10, "g/dL", 12, 1),
    ("HGB", 9.9, "g/dL", 12, 2),
    ("HGB", 8.1, "g/dL", 12, 2),
    ("HGB", 8, "g/dL", 12, 2),
    ("HGB", 7.9, "g/dL", 12, 3),
    ("HGB", 3, "g/dL", 12, 3),
    # Haemoglobin, g/L (g/dL x 10)
    ("HGB", 121, "g/L", 120, 0),
    ("HGB", 120, "g/L", 120, 0),
    ("HGB", 119, "g/L", 120, 1),
    ("HGB", 101, "g/L", 120, 1),
    ("HGB", 100, "g/L", 120, 1),
    ("HGB", 99, "g/L", 120, 2),
    ("HGB", 81, "g/L", 120, 2),
    ("HGB", 80, "g/L", 120, 2),
    ("HGB", 79, "g/L", 120, 3),
    # Haemoglobin, mmol/L (x 1.611 -> g/dL); 10 and 8 g/dL are 6.2073... and 4.9658... mmol/L
    ("HGB", 7.51, "mmol/L", 7.5, 0),
    ("HGB", 7.5, "mmol/L", 7.5, 0),
    ("HGB", 7.49, "mmol/L", 7.5, 1),
    ("HGB", 6.21, "mmol/L", 7.5, 1),
    ("HGB", Fraction(10000, 1611), "mmol/L", 7.5, 1),  # exactly 10 g/dL
    ("HGB", 6.207, "mmol/L", 7.5, 2),
    ("HGB", 4.966, "mmol/L", 7.5, 2),
    ("HGB", Fraction(8000, 1611), "mmol/L", 7.5, 2),  # exactly 8 g/dL
    ("HGB", 4.965, "mmol/L", 7.5, 3),
    # WBC, 10^9/L, LLN 4.0: <LLN-3 G1, <3-2 G2, <2-1 G3, <1 G4
    ("WBC", 4.01, "10^9/L", 4.0, 0),
    ("WBC", 4.0, "10^9/L", 4.0, 0),
    ("WBC", 3.99, "10^9/L", 4.0, 1),
    ("WBC", 3.01, "10^9/L", 4.0, 1),
    ("WBC", 3.0, "10^9/L", 4.0, 1),
    ("WBC", 2.99, "10^9/L", 4.0, 2),
    ("WBC", 2.01, "10^9/L", 4.0, 2),
    ("WBC", 2.0, "10^9/L", 4.0, 2),
    ("WBC", 1.99, "10^9/L", 4.0, 3),
    ("WBC", 1.01, "10^9/L", 4.0, 3),
    ("WBC", 1.0, "10^9/L", 4.0, 3),
    ("WBC", 0.99, "10^9/L", 4.0, 4),
    # WBC, /mm3 and K/µL
    ("WBC", 4000, "/mm3", 4000, 0),
    ("WBC", 3999, "/mm3", 4000, 1),
    ("WBC", 3000, "/mm3", 4000, 1),
    ("WBC", 2999, "/mm3", 4000, 2),
    ("WBC", 2000, "/mm3", 4000, 2),
    ("WBC", 1999, "/mm3", 4000, 3),
    ("WBC", 1000, "/mm3", 4000, 3),
    ("WBC", 999, "/mm3", 4000, 4),
    ("WBC", 3, "K/uL", 4, 1),
    ("WBC", 2.99, "K/uL", 4, 2),
    # Lymphocytes, 10^9/L, LLN 1.0: <LLN-0.8 G1, <0.8-0.5 G2, <0.5-0.2 G3, <0.2 G4
    ("LYMPH", 1.01, "10^9/L", 1.0, 0),
    ("LYMPH", 1.0, "10^9/L", 1.0, 0),
    ("LYMPH", 0.99, "10^9/L", 1.0, 1),
    ("LYMPH", 0.81, "10^9/L", 1.0, 1),
    ("LYMPH", 0.8, "10^9/L", 1.0, 1),
    ("LYMPH", 0.79, "10^9/L", 1.0, 2),
    ("LYMPH", 0.51, "10^9/L", 1.0, 2),
    ("LYMPH", 0.5, "10^9/L", 1.0, 2),
    ("LYMPH", 0.49, "10^9/L", 1.0, 3),
    ("LYMPH", 0.21, "10^9/L", 1.0, 3),
    ("LYMPH", 0.2, "10^9/L", 1.0, 3),
    ("LYMPH", 0.19, "10^9/L", 1.0, 4),
    # Lymphocytes, cells/µL and /mm3
    ("LYMPH", 1000, f"cells/{MICRO}L", 1000, 0),
    ("LYMPH", 999, f"cells/{MICRO}L", 1000, 1),
    ("LYMPH", 800, f"cells/{MICRO}L", 1000, 1),
    ("LYMPH", 799, f"cells/{MICRO}L", 1000, 2),
    ("LYMPH", 500, f"cells/{MICRO}L", 1000, 2),
    ("LYMPH", 499, f"cells/{MICRO}L", 1000, 3),
    ("LYMPH", 200, f"cells/{MICRO}L", 1000, 3),
    ("LYMPH", 199, f"cells/{MICRO}L", 1000, 4),
    ("LYMPH", 800, "/mm3", 1000, 1),
    ("LYMPH", 799, "/mm3", 1000, 2),
]


@pytest.mark.parametrize(("analyte", "value", "unit", "lln", "expected"), DECREASED_BOUNDARIES)
def test_decreased_analytes_are_graded_on_absolute_thresholds_and_lln(
    analyte, value, unit, lln, expected
):
    assert grade(analyte, value, unit, lln=lln) == expected


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "limits", "expected"),
    [
        ("ALT", 120, "U/L", {"uln": 40}, 1),  # exactly 3 x ULN: DOMAIN.md's example
        ("ALT", 121, "U/L", {"uln": 40}, 2),
        ("ALT", 40, "U/L", {"uln": 40}, 0),  # equal to the ULN
        ("PLT", 25, "10^9/L", {"lln": 150}, 3),
        ("PLT", 24.9, "10^9/L", {"lln": 150}, 4),
        ("PLT", 75, "10^9/L", {"lln": 150}, 1),
        ("PLT", 150, "10^9/L", {"lln": 150}, 0),  # equal to the LLN
    ],
)
def test_worked_examples(analyte, value, unit, limits, expected):
    assert grade(analyte, value, unit, **limits) == expected


@pytest.mark.parametrize("value", [24.9, Decimal("24.9"), Decimal("24.90"), Fraction(249, 10)])
def test_a_value_just_below_a_boundary_grades_the_same_whatever_its_number_type(value):
    assert grade("PLT", value, "10^9/L", lln=150) == 4


@pytest.mark.parametrize("value", [25, 25.0, Decimal("25"), Decimal("25.000"), Fraction(25)])
def test_a_value_on_a_boundary_grades_the_same_whatever_its_number_type(value):
    assert grade("PLT", value, "10^9/L", lln=150) == 3


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "expected"),
    [
        ("PLT", 74.9, "10^9/L", 2),
        ("PLT", 24.9, "10^9/L", 4),
        ("PLT", 49999, "/mm3", 3),
        ("ANC", 1.49, "10^9/L", 2),
        ("ANC", 0.49, "10^9/L", 4),
        ("HGB", 9.9, "g/dL", 2),
        ("HGB", 79, "g/L", 3),
        ("WBC", 2.99, "10^9/L", 2),
        ("LYMPH", 0.19, "10^9/L", 4),
    ],
)
def test_a_value_below_the_grade_2_threshold_is_graded_without_an_lln(
    analyte, value, unit, expected
):
    assert grade(analyte, value, unit) == expected


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "missing"),
    [
        ("ALT", 50, "U/L", "uln"),
        ("AST", 20, "U/L", "uln"),
        ("BILI", 1.0, "mg/dL", "uln"),
        ("CREAT", 0.9, "mg/dL", "uln"),
        ("PLT", 75, "10^9/L", "lln"),  # grade 1 or 0: only the LLN can tell
        ("PLT", 100, "10^9/L", "lln"),
        ("ANC", 1.5, "10^9/L", "lln"),
        ("HGB", 10, "g/dL", "lln"),
        ("HGB", 13, "g/dL", "lln"),
        ("WBC", 3, "10^9/L", "lln"),
        ("LYMPH", 0.8, "10^9/L", "lln"),
    ],
)
def test_a_missing_limit_the_grade_depends_on_is_refused(analyte, value, unit, missing):
    with pytest.raises(MissingLimitError, match=missing) as refused:
        grade(analyte, value, unit)
    assert isinstance(refused.value, ValueError)


@pytest.mark.parametrize(
    ("analyte", "value", "limits", "expected"),
    [
        ("ALT", 50, {"uln": 40, "lln": 7}, 1),
        ("PLT", 100, {"uln": 400, "lln": 150}, 1),
        ("PLT", 100, {"uln": 90, "lln": 150}, 1),
    ],
)
def test_the_limit_an_analyte_does_not_use_is_ignored(analyte, value, limits, expected):
    unit = ANALYTES[analyte].unit
    assert grade(analyte, value, unit, **limits) == expected


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "lln"),
    [
        ("HGB", 0, "g/dL", 12),
        ("HGB", 0.1, "g/dL", 12),
        ("HGB", 5, "g/dL", 12),
        ("HGB", 7.9, "g/dL", 12),
        ("HGB", 0, "g/L", 120),
        ("HGB", 50, "g/L", 120),
        ("HGB", 0, "mmol/L", 7.5),
        ("HGB", 2, "mmol/L", 7.5),
        ("HGB", 3, "g/dL", None),
    ],
)
def test_haemoglobin_is_never_grade_4(analyte, value, unit, lln):
    assert grade(analyte, value, unit, lln=lln) == 3


# Hand-written: code -> (CTCAE v5.0 term, direction, canonical unit, UCUM, LOINC, accepted units)
CATALOGUE = {
    "ALT": (
        "Alanine aminotransferase increased",
        "increased",
        "U/L",
        "U/L",
        "1742-6",
        {"U/L", "IU/L", f"{MICRO}kat/L"},
    ),
    "AST": (
        "Aspartate aminotransferase increased",
        "increased",
        "U/L",
        "U/L",
        "1920-8",
        {"U/L", "IU/L", f"{MICRO}kat/L"},
    ),
    "BILI": (
        "Blood bilirubin increased",
        "increased",
        "mg/dL",
        "mg/dL",
        "1975-2",
        {"mg/dL", f"{MICRO}mol/L"},
    ),
    "CREAT": (
        "Creatinine increased",
        "increased",
        "mg/dL",
        "mg/dL",
        "2160-0",
        {"mg/dL", f"{MICRO}mol/L"},
    ),
    "PLT": (
        "Platelet count decreased",
        "decreased",
        "10^9/L",
        "10*9/L",
        "777-3",
        {"10^9/L", "G/L", f"10^3/{MICRO}L", "/mm3", f"/{MICRO}L"},
    ),
    "ANC": (
        "Neutrophil count decreased",
        "decreased",
        "10^9/L",
        "10*9/L",
        "751-8",
        {"10^9/L", "G/L", f"10^3/{MICRO}L", "/mm3", f"/{MICRO}L"},
    ),
    "HGB": ("Anemia", "decreased", "g/dL", "g/dL", "718-7", {"g/dL", "g/L", "mmol/L"}),
    "WBC": (
        "White blood cell decreased",
        "decreased",
        "10^9/L",
        "10*9/L",
        "6690-2",
        {"10^9/L", "G/L", f"10^3/{MICRO}L", "/mm3", f"/{MICRO}L"},
    ),
    "LYMPH": (
        "Lymphocyte count decreased",
        "decreased",
        "10^9/L",
        "10*9/L",
        "731-0",
        {"10^9/L", "G/L", f"10^3/{MICRO}L", "/mm3", f"/{MICRO}L"},
    ),
}


def test_the_nine_analytes_are_graded():
    assert set(ANALYTES) == set(CATALOGUE)


@pytest.mark.parametrize("code", CATALOGUE)
def test_each_analyte_carries_its_term_direction_units_and_codes(code):
    label, direction, unit, ucum, loinc, units = CATALOGUE[code]
    a = ANALYTES[code]
    assert (a.code, a.label, a.direction, a.unit, a.ucum, a.loinc) == (
        code,
        label,
        direction,
        unit,
        ucum,
        loinc,
    )
    assert set(a.units) == units
    assert a.units[a.unit] == 1


def _loinc_check_digit(number: str) -> int:
    # LOINC's mod 10: from the right, odd-position digits doubled, digit sum rounded up to 10.
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit // 10 + digit % 10
    return -total % 10


@pytest.mark.parametrize("code", CATALOGUE)
def test_each_loinc_code_has_a_valid_check_digit(code):
    number, check = ANALYTES[code].loinc.split("-")
    assert _loinc_check_digit(number) == int(check)


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "expected"),
    [
        ("BILI", 17.1, f"{MICRO}mol/L", "1"),
        ("BILI", 51.3, "umol/L", "3"),
        ("BILI", 1.2, "mg/dL", "1.2"),
        ("CREAT", 88.4, f"{MICRO}mol/L", "1"),
        ("CREAT", 265.2, "umol/L", "3"),
        ("CREAT", 0.9, "mg/dL", "0.9"),
        ("ALT", 1, f"{MICRO}kat/L", "60"),
        ("ALT", 0.5, "ukat/L", "30"),
        ("AST", 35, "IU/L", "35"),
        ("AST", 35, "U/L", "35"),
        ("PLT", 150000, "/mm3", "150"),
        ("PLT", 150, "10^3/uL", "150"),
        ("PLT", 150, "10^9/L", "150"),
        ("ANC", 1500, "cells/uL", "1.5"),
        ("WBC", 4.5, "G/L", "4.5"),
        ("WBC", 4500, "/uL", "4.5"),
        ("LYMPH", 800, f"/{MICRO}L", "0.8"),
        ("HGB", 120, "g/L", "12"),
        ("HGB", 1, "mmol/L", "1.611"),
        ("HGB", 7.5, "mmol/L", "12.0825"),
        ("HGB", 12.5, "g/dL", "12.5"),
    ],
)
def test_to_canonical_converts_into_the_canonical_unit(analyte, value, unit, expected):
    result = to_canonical(analyte, value, unit)
    assert isinstance(result, Decimal)
    assert result == Decimal(expected)


def test_to_canonical_rounds_a_non_terminating_conversion_for_display():
    # 20 µmol/L bilirubin = 20/17.1 mg/dL = 1.169590643274853801...
    assert to_canonical("BILI", 20, "umol/L").quantize(Decimal("0.0001")) == Decimal("1.1696")


@pytest.mark.parametrize(
    ("spelling", "analyte", "expected"),
    [
        (f"{MICRO}mol/L", "BILI", f"{MICRO}mol/L"),
        (f"{MU}mol/L", "BILI", f"{MICRO}mol/L"),
        ("umol/L", "BILI", f"{MICRO}mol/L"),
        ("umol/l", "BILI", f"{MICRO}mol/L"),
        ("UMOL/L", "CREAT", f"{MICRO}mol/L"),
        (f" {MICRO}mol / L ", "CREAT", f"{MICRO}mol/L"),
        ("mg/dl", "CREAT", "mg/dL"),
        ("MG/DL", "BILI", "mg/dL"),
        ("u/l", "ALT", "U/L"),
        ("iu/l", "AST", "IU/L"),
        ("[IU]/L", "AST", "IU/L"),
        ("ukat/L", "ALT", f"{MICRO}kat/L"),
        (f"{MU}kat/l", "AST", f"{MICRO}kat/L"),
        ("/mm3", "PLT", "/mm3"),
        ("/mm\u00b3", "PLT", "/mm3"),
        ("cells/mm3", "ANC", "/mm3"),
        ("/uL", "WBC", f"/{MICRO}L"),
        (f"/{MICRO}L", "WBC", f"/{MICRO}L"),
        ("cells/uL", "LYMPH", f"/{MICRO}L"),
        (f"cells/{MU}L", "LYMPH", f"/{MICRO}L"),
        ("10^3/uL", "PLT", f"10^3/{MICRO}L"),
        (f"10\u00b3/{MICRO}L", "PLT", f"10^3/{MICRO}L"),
        ("10*3/uL", "ANC", f"10^3/{MICRO}L"),
        ("K/uL", "WBC", f"10^3/{MICRO}L"),
        ("x10^3/uL", "WBC", f"10^3/{MICRO}L"),
        ("10^9/L", "PLT", "10^9/L"),
        ("x10^9/L", "PLT", "10^9/L"),
        (f"{TIMES}10\u2079/L", "ANC", "10^9/L"),
        (f"{TIMES} 10^9 /L", "ANC", "10^9/L"),
        ("10*9/L", "WBC", "10^9/L"),
        ("10E9/L", "LYMPH", "10^9/L"),
        ("G/L", "PLT", "G/L"),
        ("Gpt/L", "WBC", "G/L"),
        ("g/dL", "HGB", "g/dL"),
        ("g/dl", "HGB", "g/dL"),
        ("g/L", "HGB", "g/L"),
        ("g/l", "HGB", "g/L"),
        ("mmol/L", "HGB", "mmol/L"),
        ("MMOL/l", "HGB", "mmol/L"),
        ("mg/dL", "bili", "mg/dL"),  # analyte codes in any case
    ],
)
def test_common_spellings_of_a_unit_are_accepted(spelling, analyte, expected):
    assert normalise_unit(analyte, spelling) == expected


@pytest.mark.parametrize(
    ("analyte", "unit"),
    [
        ("ALT", "mg/L"),
        ("ALT", "furlongs"),
        ("ALT", ""),
        ("AST", "kat/L"),
        ("BILI", "mg/L"),
        ("CREAT", "mmol/L"),
        ("PLT", "10^6/uL"),
        ("ANC", "%"),
        ("HGB", "g/mL"),
        ("WBC", "10^12/L"),
        ("LYMPH", "/L"),
    ],
)
def test_an_unknown_unit_is_refused_with_the_accepted_units(analyte, unit):
    with pytest.raises(UnitError) as refused:
        grade(analyte, 1, unit, uln=1, lln=1)
    assert isinstance(refused.value, ValueError)
    for accepted in CATALOGUE[analyte][5]:
        assert accepted in str(refused.value)


@pytest.mark.parametrize(
    ("analyte", "unit", "measures"),
    [
        ("PLT", "mg/dL", "BILI"),
        ("PLT", "g/L", "HGB"),  # grams per litre, not giga per litre
        ("PLT", "g/l", "HGB"),
        ("HGB", "G/L", "PLT"),
        ("HGB", "10^9/L", "PLT"),
        ("ALT", "g/dL", "HGB"),
        ("ALT", "mg/dL", "CREAT"),
        ("AST", f"{MICRO}mol/L", "BILI"),
        ("BILI", "U/L", "ALT"),
        ("BILI", "mmol/L", "HGB"),
        ("CREAT", "/mm3", "WBC"),
        ("CREAT", f"{MICRO}kat/L", "AST"),
        ("ANC", "mmol/L", "HGB"),
        ("WBC", "g/dL", "HGB"),
        ("LYMPH", "IU/L", "ALT"),
    ],
)
def test_a_unit_of_another_analyte_is_refused(analyte, unit, measures):
    with pytest.raises(UnitError, match=measures) as refused:
        grade(analyte, 1, unit, uln=1, lln=1)
    for accepted in CATALOGUE[analyte][5]:
        assert accepted in str(refused.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda: to_canonical("PLT", 1, "mg/dL"),
        lambda: uln_multiple("ALT", 1, "g/L", 1),
        lambda: normalise_unit("HGB", "U/L"),
    ],
)
def test_every_entry_point_checks_the_unit(call):
    with pytest.raises(UnitError):
        call()


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "uln", "expected"),
    [
        ("ALT", 120, "U/L", 40, Decimal(3)),
        ("ALT", 121, "U/L", 40, Decimal("3.025")),
        ("ALT", 1.8, f"{MICRO}kat/L", 0.6, Decimal(3)),
        ("AST", 20, "IU/L", 40, Decimal("0.5")),
        ("BILI", 63, f"{MICRO}mol/L", 21, Decimal(3)),
        ("BILI", 2.41, "mg/dL", 1.2, Decimal("2.008333333333333333333333333")),
        ("CREAT", 1.65, "mg/dL", 1.1, Decimal("1.5")),
        ("ALT", 50, "U/L", None, None),
    ],
)
def test_uln_multiple(analyte, value, unit, uln, expected):
    assert uln_multiple(analyte, value, unit, uln) == expected


def test_uln_multiple_is_refused_for_an_analyte_graded_on_absolute_thresholds():
    with pytest.raises(GradingError, match="absolute"):
        uln_multiple("PLT", 100, "10^9/L", 400)


@pytest.mark.parametrize(
    ("alt", "ast", "bili", "expected"),
    [
        (3.01, 1, 2.01, True),
        (1, 3.01, 2.01, True),
        (3.01, None, 2.01, True),
        (None, 3.01, 2.01, True),
        (4, 4, 2.5, True),
        (Decimal("3.0000001"), 0, Decimal("2.0000001"), True),
        (3, 3, 2.01, False),  # transaminases exactly 3 x ULN
        (3.01, 3.01, 2, False),  # bilirubin exactly 2 x ULN
        (3, 3, 10, False),
        (10, 10, 2, False),
        (2.99, 2.99, 5, False),
        (10, 10, 1.99, False),
        (10, 10, None, False),
        (None, None, 5, False),
        (None, None, None, False),
    ],
)
def test_hys_law_needs_alt_or_ast_above_3_and_bilirubin_above_2_uln(alt, ast, bili, expected):
    assert hys_law(alt, ast, bili) is expected


@pytest.mark.parametrize(
    ("alt", "bili", "expected"),
    [
        ((121, "U/L", 40), (2.41, "mg/dL", 1.2), True),
        ((121, "U/L", 40), (2.4, "mg/dL", 1.2), False),
        ((120, "U/L", 40), (3, "mg/dL", 1.2), False),
        ((1.08, "ukat/L", 0.36), (63, "umol/L", 21), False),  # ALT exactly 3 x ULN in µkat/L
        ((1.09, "ukat/L", 0.36), (42.1, "umol/L", 21), True),
    ],
)
def test_hys_law_on_multiples_from_uln_multiple(alt, bili, expected):
    alt_x = uln_multiple("ALT", *alt)
    bili_x = uln_multiple("BILI", *bili)
    assert hys_law(alt_x, None, bili_x) is expected


@pytest.mark.parametrize(
    ("analyte", "grade_", "expected"),
    [
        ("ALT", 3, "Grade 3 Alanine aminotransferase increased"),
        ("AST", 1, "Grade 1 Aspartate aminotransferase increased"),
        ("BILI", 4, "Grade 4 Blood bilirubin increased"),
        ("CREAT", 2, "Grade 2 Creatinine increased"),
        ("PLT", 4, "Grade 4 Platelet count decreased"),
        ("ANC", 3, "Grade 3 Neutrophil count decreased"),
        ("HGB", 3, "Grade 3 Anemia"),
        ("WBC", 1, "Grade 1 White blood cell decreased"),
        ("LYMPH", 2, "Grade 2 Lymphocyte count decreased"),
        ("ALT", 0, "No alanine aminotransferase increased (grade 0)"),
        ("HGB", 0, "No anemia (grade 0)"),
    ],
)
def test_describe_names_the_grade_and_ctcae_term(analyte, grade_, expected):
    assert describe(analyte, grade_) == expected


@pytest.mark.parametrize(("analyte", "grade_"), [("HGB", 4), ("ALT", 5), ("PLT", -1), ("ANC", 2.0)])
def test_describe_refuses_a_grade_the_analyte_does_not_have(analyte, grade_):
    with pytest.raises(GradingError):
        describe(analyte, grade_)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"analyte": "ALP", "value": 100, "unit": "U/L", "uln": 120}, GradingError),
        ({"analyte": "ALT", "value": -1, "unit": "U/L", "uln": 40}, GradingError),
        ({"analyte": "ALT", "value": float("nan"), "unit": "U/L", "uln": 40}, GradingError),
        ({"analyte": "ALT", "value": float("inf"), "unit": "U/L", "uln": 40}, GradingError),
        ({"analyte": "ALT", "value": Decimal("NaN"), "unit": "U/L", "uln": 40}, GradingError),
        ({"analyte": "ALT", "value": Decimal("sNaN"), "unit": "U/L", "uln": 40}, GradingError),
        ({"analyte": "ALT", "value": 50, "unit": "U/L", "uln": 0}, GradingError),
        ({"analyte": "ALT", "value": 50, "unit": "U/L", "uln": -40}, GradingError),
        ({"analyte": "PLT", "value": 100, "unit": "10^9/L", "lln": 0}, GradingError),
        ({"analyte": "PLT", "value": 10, "unit": "10^9/L", "lln": -150}, GradingError),
        ({"analyte": "PLT", "value": 100, "unit": "10^9/L", "uln": -400, "lln": 150}, GradingError),
        ({"analyte": "ALT", "value": "50", "unit": "U/L", "uln": 40}, TypeError),
        ({"analyte": "ALT", "value": True, "unit": "U/L", "uln": 40}, TypeError),
        ({"analyte": "ALT", "value": 50, "unit": None, "uln": 40}, TypeError),
    ],
)
def test_a_value_that_is_not_a_lab_result_is_refused(kwargs, error):
    with pytest.raises(error):
        grade(**kwargs)


def test_analyte_codes_are_case_insensitive():
    assert grade("alt", 121, "U/L", uln=40) == 2
