"""The first worksheet of an XLSX upload, streamed row by row within the spreadsheet limits."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TypeVar

from openpyxl.packaging.manifest import Manifest
from openpyxl.reader.excel import ExcelReader
from openpyxl.styles.stylesheet import apply_stylesheet
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet._reader import WorkSheetParser
from openpyxl.xml.constants import ARC_CONTENT_TYPES, SHARED_STRINGS
from openpyxl.xml.functions import fromstring

from app.enrolment.limits import (
    BoundedZip,
    FileFormatError,
    LimitExceeded,
    SpreadsheetLimits,
    check_shared_strings,
)

# Logged under the rows module, where coordinators' upload problems are looked for.
logger = logging.getLogger("app.enrolment.rows")
_T = TypeVar("_T")
# catch_warnings mutates process-wide state; serialise our own uses of it.
_WARNINGS_LOCK = threading.Lock()
_DAMAGED = (
    "Berkas Excel rusak atau bukan buku kerja .xlsx (berkas .ods atau .xls: simpan sebagai "
    ".xlsx atau CSV)."
)


@dataclass
class OpenSheet:
    """A workbook read as far as its first worksheet, which is parsed only when iterated."""

    workbook: Workbook
    archive: BoundedZip
    path: str
    shared_strings: list[str]

    def close(self) -> None:
        self.archive.close()


def open_first_sheet(stream: IO[bytes], limits: SpreadsheetLimits) -> OpenSheet:
    """Open the workbook through a BoundedZip; FileFormatError when it cannot be read."""
    try:
        return _quietly(lambda: _open(stream, limits))
    except Exception as exc:  # openpyxl raises many unrelated types for damaged files
        if (over := _limit_behind(exc)) is not None:
            raise over from None
        if isinstance(exc, FileFormatError):
            raise
        raise FileFormatError(_DAMAGED) from exc


def _open(stream: IO[bytes], limits: SpreadsheetLimits) -> OpenSheet:
    archive = BoundedZip(stream, limits)
    try:
        manifest = Manifest.from_tree(fromstring(archive.read(ARC_CONTENT_TYPES)))
        strings = manifest.find(SHARED_STRINGS)
        if strings is not None:
            check_shared_strings(archive, strings.PartName[1:])
        stream.seek(0)
        reader = ExcelReader(stream, read_only=True, data_only=True)
        # The reader opened the archive once more; read everything through the bounded one.
        reader.archive.close()
        reader.archive = archive
        reader.valid_files = archive.namelist()
        # openpyxl's own read() would also scan every worksheet in full for its size when the
        # <dimension> element is missing; only the parts needed here are read.
        reader.read_manifest()
        reader.read_strings()
        reader.read_workbook()
        apply_stylesheet(archive, reader.wb)
        for _sheet, rel in reader.parser.find_sheets():
            if rel.target in reader.valid_files and "chartsheet" not in rel.Type:
                return OpenSheet(reader.wb, archive, rel.target, reader.shared_strings)
    except BaseException:
        archive.close()
        raise
    archive.close()
    raise FileFormatError("Berkas Excel tidak memuat lembar kerja.")


def sheet_rows(
    sheet: OpenSheet, limits: SpreadsheetLimits
) -> Iterator[tuple[int, list[str | None]]]:
    """(row number, cell texts) of each row present in the sheet, refusing over-wide rows."""
    workbook = sheet.workbook
    with sheet.archive.open(sheet.path) as source:
        parser = WorkSheetParser(
            source,
            sheet.shared_strings,
            data_only=True,
            epoch=workbook.epoch,
            date_formats=workbook._date_formats,
            timedelta_formats=workbook._timedelta_formats,
        )
        rows = _quiet_iter(parser.parse())
        while True:
            try:
                row_number, cells = next(rows)
            except StopIteration:
                return
            except Exception as exc:  # a damaged sheet: a bad shared-string index, bad XML
                if (over := _limit_behind(exc)) is not None:
                    raise over from None
                raise FileFormatError(_DAMAGED) from exc
            width = max((c["column"] for c in cells if c["value"] is not None), default=0)
            if width > limits.columns:
                raise limits.too_many_columns(row_number)
            texts: list[str | None] = [None] * width
            for cell in cells:
                if cell["column"] <= width:
                    texts[cell["column"] - 1] = _cell_text(cell["value"])
            yield row_number, texts


def _cell_text(value: object) -> str | None:
    """Render an XLSX cell value as the text a coordinator would expect to see."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value).strip() or None


def _limit_behind(exc: BaseException) -> LimitExceeded | None:
    """The LimitExceeded that openpyxl re-raised as a ValueError of its own, if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, LimitExceeded):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _quietly(call: Callable[[], _T]) -> _T:
    """Run an openpyxl call, logging its warnings about unsupported workbook features."""
    with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", module=r"openpyxl(\..*)?")
        result = call()
    for warning in caught:
        logger.debug("openpyxl: %s", warning.message)
    return result


def _quiet_iter(iterator: Iterator[_T]) -> Iterator[_T]:
    """Iterate an openpyxl generator with each step's warnings logged, not raised."""
    while True:
        try:
            item = _quietly(lambda: next(iterator))
        except StopIteration:
            return
        yield item
