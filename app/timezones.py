"""The four Indonesian time zones an OPD may be in, and their everyday aliases."""

from zoneinfo import ZoneInfo

ALLOWED_TIMEZONES = ("Asia/Jakarta", "Asia/Pontianak", "Asia/Makassar", "Asia/Jayapura")
ALIASES = {"WIB": "Asia/Jakarta", "WITA": "Asia/Makassar", "WIT": "Asia/Jayapura"}


def normalise_timezone(name: str) -> str:
    """The IANA name for an allowed zone or alias (WIB/WITA/WIT); ValueError otherwise."""
    cleaned = name.strip()
    alias = ALIASES.get(cleaned.upper())
    if alias:
        return alias
    for tz in ALLOWED_TIMEZONES:
        if tz.lower() == cleaned.lower():
            return tz
    raise ValueError(
        f"Unknown time zone {name!r}; use one of {', '.join(ALLOWED_TIMEZONES)} or WIB/WITA/WIT"
    )


def zone(name: str) -> ZoneInfo:
    """ZoneInfo for an allowed zone or alias."""
    return ZoneInfo(normalise_timezone(name))
