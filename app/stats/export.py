"""CSV exports of the statistics that open cleanly in Excel with an Indonesian locale.

- UTF-8 with a byte-order mark, so Excel reads "Jumlah" and OPD names with accents correctly.
- Separator ";" by default: Excel in the Indonesian locale expects ";" (its decimal mark is ",").
  "," "|" and tab may be asked for; rates then use "." as decimal mark when the separator is ","
  and "," otherwise, so a number is never split across two columns.
- Headers in Bahasa Indonesia (the readers are the inspectorate and coordinators); CRLF lines.
- Counts exactly as in the API (rounded to multiples of 5); rates as percentages, empty when
  the API gives none.
- Text cells that a spreadsheet would run as a formula (=, +, -, @, tab, CR) get a leading "'".
"""

import csv
import io
from collections.abc import Iterable, Sequence

from app.stats.schemas import MEASURES, RATES, CampaignDaily, CampaignStats, DailyRow, StatsRow

SEPARATORS = {";": ";", ",": ",", "|": "|", "tab": "\t", "\t": "\t"}
BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
TOTAL_LABEL = "Jumlah"


def _text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _rate(value: float | None, decimal: str) -> str:
    if value is None:
        return ""
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
    header = ["Kode OPD", "Nama OPD", *(h for _, h in MEASURES), *(h for _, h in RATES)]

    def line(row: StatsRow, code: str) -> list[str]:
        data = row.model_dump()
        return [
            _text(code),
            _text(row.opd_name),
            *(str(data[key]) for key, _ in MEASURES),
            *(_rate(data[key], decimal) for key, _ in RATES),
        ]

    rows = [line(r, r.opd_code or "") for r in stats.rows]
    rows.append(line(stats.total, TOTAL_LABEL))
    return _render(header, rows, sep)


def daily_csv(daily: CampaignDaily, *, sep: str = ";") -> bytes:
    """One row per closed day (ISO dates, which Excel recognises), figures since the first day."""
    header = ["Tanggal", *(h for _, h in MEASURES)]

    def line(row: DailyRow) -> list[str]:
        data = row.model_dump()
        return [row.day.isoformat(), *(str(data[key]) for key, _ in MEASURES)]

    return _render(header, [line(r) for r in daily.days], sep)
