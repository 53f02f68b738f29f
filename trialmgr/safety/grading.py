"""Lab values graded per CTCAE v5.0 with the baseline assumed normal (DOMAIN.md, "Lab grading").

"Increased" analytes (ALT, AST, bilirubin, creatinine) are graded on multiples of the upper
limit of normal; "decreased" ones (platelets, neutrophils, haemoglobin, WBC, lymphocytes) on
absolute thresholds in their canonical unit, and on the lower limit of normal for grade 1.
A value exactly on a boundary takes the lower grade: ALT at 3 x ULN is grade 1, platelets at
25 x 10^9/L are grade 3, a value equal to the ULN or LLN is grade 0.

All arithmetic is exact (`fractions.Fraction`): a float is read as the decimal it prints as,
so 24.9 means 24.9, and no unit conversion can push a value across a boundary by rounding.
ULN multiples are taken between value and limit in the unit they were given in (the factor
cancels); absolute thresholds are compared after converting the value exactly.

Pure functions: no database, no Flask.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Final, Literal

Number = Decimal | Fraction | int | float
Direction = Literal["increased", "decreased"]

INCREASED: Final = "increased"
DECREASED: Final = "decreased"

# Decimals handed out for display (to_canonical, uln_multiple); grading never rounds.
_DISPLAY = Context(prec=28)


class GradingError(ValueError):
    """A lab value that cannot be graded as given (unknown analyte, bad number, bad grade)."""


class UnitError(GradingError):
    """A unit that is unknown, or that does not measure the analyte it was given for."""


class MissingLimitError(GradingError):
    """The ULN or LLN needed to grade this value was not given."""


@dataclass(frozen=True)
class Analyte:
    """One graded lab analyte: its CTCAE term, grading rule, units and codes.

    `units` maps each accepted unit (display spelling) to its factor into the canonical unit
    (value_in_unit * factor = value_in_canonical_unit). `bounds` are the lower edges of grades
    2, 3, (4): ULN multiples that must be exceeded for "increased" analytes, canonical-unit
    values that must be undercut for "decreased" ones.
    """

    code: str
    label: str
    direction: Direction
    unit: str
    ucum: str
    loinc: str
    loinc_display: str
    units: Mapping[str, Fraction]
    bounds: tuple[Fraction, ...]
    _aliases: Mapping[str, str] = field(repr=False, compare=False)

    @property
    def max_grade(self) -> int:
        return len(self.bounds) + 1


# Unit spellings after `_unit_key` (NFKC, micro -> "u", no spaces, lower case except g/L vs G/L).
_ENZYME_UNITS = {
    "U/L": (Fraction(1), ("u/l",)),
    "IU/L": (Fraction(1), ("iu/l", "[iu]/l")),
    "µkat/L": (Fraction(60), ("ukat/l",)),
}
_COUNT_UNITS = {
    "10^9/L": (Fraction(1), ("10^9/l", "x10^9/l", "10*9/l", "10e9/l", "x10e9/l")),
    # Giga per litre; case matters: g/L is grams per litre (a haemoglobin unit).
    "G/L": (Fraction(1), ("G/L", "G/l", "gpt/l")),
    "10^3/µL": (
        Fraction(1),
        ("10^3/ul", "x10^3/ul", "10*3/ul", "10e3/ul", "k/ul", "10^3/mm3", "x10^3/mm3"),
    ),
    "/mm3": (Fraction(1, 1000), ("/mm3", "cells/mm3")),
    "/µL": (Fraction(1, 1000), ("/ul", "cells/ul")),
}


def _mass_or_molar(micromol_per_mg_dl: str) -> dict[str, tuple[Fraction, tuple[str, ...]]]:
    return {
        "mg/dL": (Fraction(1), ("mg/dl",)),
        "µmol/L": (1 / Fraction(micromol_per_mg_dl), ("umol/l",)),
    }


_HGB_UNITS = {
    "g/dL": (Fraction(1), ("g/dl",)),
    "g/L": (Fraction(1, 10), ("g/L", "g/l")),
    "mmol/L": (Fraction("1.611"), ("mmol/l",)),
}


def _analyte(
    code: str,
    label: str,
    direction: Direction,
    ucum: str,
    loinc: str,
    loinc_display: str,
    units: dict[str, tuple[Fraction, tuple[str, ...]]],
    bounds: tuple[str, ...],
) -> Analyte:
    return Analyte(
        code=code,
        label=label,
        direction=direction,
        unit=next(iter(units)),
        ucum=ucum,
        loinc=loinc,
        loinc_display=loinc_display,
        units=MappingProxyType({name: factor for name, (factor, _) in units.items()}),
        bounds=tuple(Fraction(b) for b in bounds),
        _aliases=MappingProxyType({key: name for name, (_, keys) in units.items() for key in keys}),
    )


_ALL = (
    _analyte(
        "ALT",
        "Alanine aminotransferase increased",
        INCREASED,
        "U/L",
        "1742-6",
        "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        _ENZYME_UNITS,
        ("3", "5", "20"),
    ),
    _analyte(
        "AST",
        "Aspartate aminotransferase increased",
        INCREASED,
        "U/L",
        "1920-8",
        "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        _ENZYME_UNITS,
        ("3", "5", "20"),
    ),
    _analyte(
        "BILI",
        "Blood bilirubin increased",
        INCREASED,
        "mg/dL",
        "1975-2",
        "Bilirubin.total [Mass/volume] in Serum or Plasma",
        _mass_or_molar("17.1"),
        ("1.5", "3", "10"),
    ),
    _analyte(
        "CREAT",
        "Creatinine increased",
        INCREASED,
        "mg/dL",
        "2160-0",
        "Creatinine [Mass/volume] in Serum or Plasma",
        _mass_or_molar("88.4"),
        ("1.5", "3", "6"),
    ),
    _analyte(
        "PLT",
        "Platelet count decreased",
        DECREASED,
        "10*9/L",
        "777-3",
        "Platelets [#/volume] in Blood by Automated count",
        _COUNT_UNITS,
        ("75", "50", "25"),
    ),
    _analyte(
        "ANC",
        "Neutrophil count decreased",
        DECREASED,
        "10*9/L",
        "751-8",
        "Neutrophils [#/volume] in Blood by Automated count",
        _COUNT_UNITS,
        ("1.5", "1.0", "0.5"),
    ),
    _analyte(
        "HGB",
        # CTCAE v5.0 names low haemoglobin "Anemia"; it has no laboratory grade 4.
        "Anemia",
        DECREASED,
        "g/dL",
        "718-7",
        "Hemoglobin [Mass/volume] in Blood",
        _HGB_UNITS,
        ("10", "8"),
    ),
    _analyte(
        "WBC",
        "White blood cell decreased",
        DECREASED,
        "10*9/L",
        "6690-2",
        "Leukocytes [#/volume] in Blood by Automated count",
        _COUNT_UNITS,
        ("3", "2", "1"),
    ),
    _analyte(
        "LYMPH",
        "Lymphocyte count decreased",
        DECREASED,
        "10*9/L",
        "731-0",
        "Lymphocytes [#/volume] in Blood by Automated count",
        _COUNT_UNITS,
        ("0.8", "0.5", "0.2"),
    ),
)

ANALYTES: Final[Mapping[str, Analyte]] = MappingProxyType({a.code: a for a in _ALL})


def _get(analyte: str) -> Analyte:
    try:
        return ANALYTES[analyte.strip().upper()]
    except (KeyError, AttributeError):
        raise GradingError(
            f"unknown analyte {analyte!r}; graded analytes: {', '.join(ANALYTES)}"
        ) from None


_SUPERSCRIPT_POWER = re.compile("10([\u2070\u00b9\u00b2\u00b3\u2074-\u2079]+)")


def _unit_key(unit: str) -> str:
    text = _SUPERSCRIPT_POWER.sub(r"10^\1", unit)  # 10⁹ -> 10^⁹ (NFKC would make it 109)
    text = unicodedata.normalize("NFKC", text)  # µ -> μ, ³ -> 3, ⁹ -> 9
    text = text.replace("\u03bc", "u").replace("\u00d7", "x").replace("\u00b7", "")
    text = "".join(text.split())
    # Only g/L vs G/L (grams vs giga) differ by case alone among the accepted units.
    return text if text.lower() == "g/l" else text.lower()


def normalise_unit(analyte: str, unit: str) -> str:
    """The accepted unit `unit` stands for, in its display spelling (e.g. "umol/l" -> "µmol/L").

    Spacing, micro (µ, μ, u), superscripts, a leading "x" or multiplication sign, and letter
    case are forgiven, except that g/L (grams) and G/L (giga) are told apart by case. An unknown
    unit, or one that measures another analyte, raises UnitError naming the accepted units.
    """
    a = _get(analyte)
    if not isinstance(unit, str):
        raise TypeError(f"unit must be a string, not {type(unit).__name__}")
    key = _unit_key(unit)
    if key in a._aliases:
        return a._aliases[key]
    accepted = ", ".join(a.units)
    others = [other.code for other in _ALL if key in other._aliases]
    hint = f" ({unit} measures {', '.join(others)})" if others else ""
    raise UnitError(f"unit {unit!r} is not accepted for {a.code}{hint}; accepted units: {accepted}")


def _exact(value: Number, name: str, *, positive: bool = False) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, Decimal | Fraction | int | float):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if not (value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)):
        raise GradingError(f"{name} must be a finite number, got {value}")
    # A float is taken as the decimal it prints as (24.9, not 24.899999999999998578...).
    exact = Fraction(repr(value)) if isinstance(value, float) else Fraction(value)
    if exact < 0 or (positive and exact == 0):
        raise GradingError(f"{name} must be {'positive' if positive else 'non-negative'}: {value}")
    return exact


def _decimal(value: Fraction) -> Decimal:
    return _DISPLAY.divide(Decimal(value.numerator), Decimal(value.denominator))


def to_canonical(analyte: str, value: Number, unit: str) -> Decimal:
    """`value` in `unit` expressed in the analyte's canonical unit (e.g. 17.1 µmol/L bilirubin
    -> 1 mg/dL). Exact where the result is a finite decimal, else rounded to 28 digits; for
    display only, grading never uses the rounded value."""
    a = _get(analyte)
    factor = a.units[normalise_unit(a.code, unit)]
    return _decimal(_exact(value, "value") * factor)


def grade(
    analyte: str,
    value: Number,
    unit: str,
    uln: Number | None = None,
    lln: Number | None = None,
) -> int:
    """CTCAE v5.0 grade (0 = within limits, 1-4; haemoglobin stops at 3), baseline normal.

    `uln` and `lln` are in the same unit as `value`. Increased analytes need `uln`; a value
    equal to it is grade 0. Decreased analytes are graded 2 and up on the absolute thresholds
    alone; telling grade 1 from 0 needs `lln`. A missing limit raises MissingLimitError. A value
    exactly on a boundary takes the lower grade. A limit the analyte does not use is checked
    but ignored.
    """
    a = _get(analyte)
    factor = a.units[normalise_unit(a.code, unit)]
    v = _exact(value, "value")
    upper = None if uln is None else _exact(uln, "uln", positive=True)
    lower = None if lln is None else _exact(lln, "lln", positive=True)
    if a.direction == INCREASED:
        if upper is None:
            raise MissingLimitError(f"{a.code} is graded on multiples of the ULN; give uln")
        multiple = v / upper
        if multiple <= 1:
            return 0
        return 1 + sum(multiple > bound for bound in a.bounds)
    below = sum(v * factor < threshold for threshold in a.bounds)
    if below:
        return 1 + below
    if lower is None:
        raise MissingLimitError(
            f"{a.code} {value} {unit} is grade 0 or 1 depending on the LLN; give lln"
        )
    return 1 if v < lower else 0


def uln_multiple(analyte: str, value: Number, unit: str, uln: Number | None) -> Decimal | None:
    """`value` as a multiple of the ULN ("ALT 3.2 x ULN"), for charts and the Hy's law screen;
    None when no ULN is known. Only for analytes graded on ULN multiples."""
    a = _get(analyte)
    normalise_unit(a.code, unit)
    if a.direction != INCREASED:
        raise GradingError(f"{a.code} is graded on absolute thresholds, not on ULN multiples")
    v = _exact(value, "value")
    if uln is None:
        return None
    return _decimal(v / _exact(uln, "uln", positive=True))


def hys_law(alt_x_uln: Number | None, ast_x_uln: Number | None, bili_x_uln: Number | None) -> bool:
    """Hy's law screen on one draw: ALT or AST above 3 x ULN with total bilirubin above 2 x ULN
    (both strictly). Arguments are ULN multiples (see `uln_multiple`); None = not measured,
    which cannot meet its part of the rule."""

    def above(multiple: Number | None, name: str, limit: int) -> bool:
        return multiple is not None and _exact(multiple, name) > limit

    transaminase = above(alt_x_uln, "alt_x_uln", 3) or above(ast_x_uln, "ast_x_uln", 3)
    return transaminase and above(bili_x_uln, "bili_x_uln", 2)


def describe(analyte: str, grade: int) -> str:
    """The event as a report names it: "Grade 3 Alanine aminotransferase increased";
    grade 0 reads "No anemia (grade 0)"."""
    a = _get(analyte)
    if isinstance(grade, bool) or not isinstance(grade, int) or not 0 <= grade <= a.max_grade:
        raise GradingError(f"{a.code} grades run from 0 to {a.max_grade}, not {grade!r}")
    if grade == 0:
        return f"No {a.label[0].lower()}{a.label[1:]} (grade 0)"
    return f"Grade {grade} {a.label}"
