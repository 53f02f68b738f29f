"""IANA time zones for sites: the names zoneinfo knows, and a suggestion from the country.

The suggestion is the zone of the country's capital or largest population centre; a site in
another zone of a large country (a Los Angeles site in the US) picks its own. Countries not
listed get no suggestion: the form asks.
"""

from __future__ import annotations

import functools
import zoneinfo

# Files of a zoneinfo directory that are not zones a site can be in.
_NOT_SITE_ZONES = frozenset({"Factory", "localtime", "posixrules", "posix", "right"})

COUNTRY_ZONES = {
    # European Union, EEA, and the rest of Europe
    "AT": "Europe/Vienna",
    "BE": "Europe/Brussels",
    "BG": "Europe/Sofia",
    "CH": "Europe/Zurich",
    "CY": "Asia/Nicosia",
    "CZ": "Europe/Prague",
    "DE": "Europe/Berlin",
    "DK": "Europe/Copenhagen",
    "EE": "Europe/Tallinn",
    "ES": "Europe/Madrid",
    "FI": "Europe/Helsinki",
    "FR": "Europe/Paris",
    "GB": "Europe/London",
    "GR": "Europe/Athens",
    "HR": "Europe/Zagreb",
    "HU": "Europe/Budapest",
    "IE": "Europe/Dublin",
    "IS": "Atlantic/Reykjavik",
    "IT": "Europe/Rome",
    "LT": "Europe/Vilnius",
    "LU": "Europe/Luxembourg",
    "LV": "Europe/Riga",
    "MT": "Europe/Malta",
    "NL": "Europe/Amsterdam",
    "NO": "Europe/Oslo",
    "PL": "Europe/Warsaw",
    "PT": "Europe/Lisbon",
    "RO": "Europe/Bucharest",
    "RS": "Europe/Belgrade",
    "SE": "Europe/Stockholm",
    "SI": "Europe/Ljubljana",
    "SK": "Europe/Bratislava",
    "TR": "Europe/Istanbul",
    "UA": "Europe/Kyiv",
    # elsewhere
    "AE": "Asia/Dubai",
    "AR": "America/Argentina/Buenos_Aires",
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "CL": "America/Santiago",
    "CN": "Asia/Shanghai",
    "CO": "America/Bogota",
    "EG": "Africa/Cairo",
    "HK": "Asia/Hong_Kong",
    "IL": "Asia/Jerusalem",
    "IN": "Asia/Kolkata",
    "JP": "Asia/Tokyo",
    "KR": "Asia/Seoul",
    "MX": "America/Mexico_City",
    "NZ": "Pacific/Auckland",
    "RU": "Europe/Moscow",
    "SA": "Asia/Riyadh",
    "SG": "Asia/Singapore",
    "TW": "Asia/Taipei",
    "US": "America/New_York",
    "ZA": "Africa/Johannesburg",
}


@functools.cache
def known_zones() -> frozenset[str]:
    """The IANA zone names zoneinfo can load here."""
    return frozenset(zoneinfo.available_timezones() - _NOT_SITE_ZONES)


# The areas of canonical IANA names (legacy aliases such as US/Pacific are accepted, not offered).
_AREAS = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)


@functools.cache
def zone_choices() -> tuple[str, ...]:
    """The zones a form offers: Area/Location names, sorted, then UTC."""
    offered = sorted(z for z in known_zones() if z.split("/", 1)[0] in _AREAS and "/" in z)
    return (*offered, "UTC")


def suggested_zone(country: str | None) -> str | None:
    """The zone to suggest for a site in `country` (ISO 3166-1 alpha-2), if there is one."""
    zone = COUNTRY_ZONES.get((country or "").strip().upper())
    return zone if zone in known_zones() else None
