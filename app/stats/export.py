"""CSV exports of the statistics that open cleanly in Excel with an Indonesian locale.

- UTF-8 with a byte-order mark, so Excel reads "Jumlah" and OPD names with accents correctly.
- Separator ";" by default: Excel in the Indonesian locale expects ";" (its decimal mark is ",").
  "," "|" and tab may be asked for; rates then use "." as decimal mark when the separator is ","
  and "," otherwise, so a number is never split across two columns.
- Headers in Bahasa Indonesia (the readers are the inspectorate and coordinators); CRLF lines.
- Withheld counts appear exactly as in the API ("<5", "x"); rates as percentages.
- Text cells that a spreadsheet would run as a formula (=, +, -, @, tab, CR) get a leading "'".
"""

import csv
import io
from collections.abc import Iterable, Sequence

from app.stats.schemas import (
    CAMPAIGN_COUNTS,
    CAMPAIGN_RATES,
    DAILY_COUNTS,
    CampaignDaily,
    CampaignStats,
    DailyRow,
    StatsRow,
)

SEPARATORS = {";": ";", ",": ",", "|": "|", "tab": "\t", "\t": "\t"}
BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
TOTAL_LABEL = "Jumlah"


def _text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _count(value: int | str) -> str:
    return str(value)


def _rate(value: float | str | None, decimal: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return f"{value * 100:.2f}".replace(".", decimal)


def _render(header: Sequence[str], rows: Iterable[Sequence[str]], sep: str) -> bytes:
    delimiter = SEPARATORS[sep]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return (BOM + out.getvalue()).encode("utf-8")


def campaign_csv(stats: CampaignStats, *, sep: str = ";") -> bytes:
    """One row per OPD and a total row."""
    decimal = "." if SEPARATORS[sep] == "," else ","
    header = ["Kode OPD", "Nama OPD", *(h for _, h in CAMPAIGN_COUNTS)]
    header += [h for _, h in CAMPAIGN_RATES]

    def line(row: StatsRow, code: str) -> list[str]:
        data = row.model_dump()
        return [
            _text(code),
            _text(row.opd_name),
            *(_count(data[key]) for key, _ in CAMPAIGN_COUNTS),
            *(_rate(data[key], decimal) for key, _ in CAMPAIGN_RATES),
        ]

    rows = [line(r, r.opd_code or "") for r in stats.rows]
    rows.append(line(stats.total, TOTAL_LABEL))
    return _render(header, rows, sep)


def daily_csv(daily: CampaignDaily, *, sep: str = ";") -> bytes:
    """One row per day (ISO dates, which Excel recognises) and a total row."""
    header = ["Tanggal", *(h for _, h in DAILY_COUNTS)]

    def line(row: DailyRow) -> list[str]:
        data = row.model_dump()
        day = row.day.isoformat() if row.day else TOTAL_LABEL
        return [day, *(_count(data[key]) for key, _ in DAILY_COUNTS)]

    return _render(header, [*(line(r) for r in daily.days), line(daily.total)], sep)
