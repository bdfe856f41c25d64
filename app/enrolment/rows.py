"""Streaming readers for coordinator spreadsheets (CSV and XLSX)."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, BinaryIO, Literal

from app.enrolment import xlsx
from app.enrolment.limits import FileFormatError, SpreadsheetLimits

Field = Literal["phone", "label", "consent_method", "consent_date"]
_FIELDS: tuple[Field, ...] = ("phone", "label", "consent_method", "consent_date")

_ALIASES: dict[Field, tuple[str, ...]] = {
    "phone": (
        "nomor_hp", "no_hp", "nomor hp", "nomor_wa", "no_wa", "whatsapp", "telepon", "hp",
        "phone", "phone_number", "mobile", "nomor whatsapp", "no whatsapp",
    ),
    "label": ("nama", "label", "name", "keterangan"),
    "consent_method": ("metode_persetujuan", "persetujuan", "consent_method", "consent"),
    "consent_date": ("tanggal_persetujuan", "tgl_persetujuan", "consent_date", "tanggal"),
}  # fmt: skip


def _header_key(text: str) -> str:
    """Fold a header so that case, spaces, underscores, dashes and dots do not matter."""
    return re.sub(r"[\s_\-.]+", "", text.replace("\ufeff", "").casefold())


_FIELD_NAMES: dict[Field, str] = {
    "phone": "nomor HP",
    "label": "nama/label",
    "consent_method": "metode persetujuan",
    "consent_date": "tanggal persetujuan",
}
_HEADER_LOOKUP: dict[str, Field] = {
    _header_key(alias): field for field, aliases in _ALIASES.items() for alias in aliases
}
_PHONE_HEADERS = "nomor_hp, no_hp, nomor_wa, no_wa, whatsapp, telepon, hp, phone, mobile"
# Government templates often put a title ("DAFTAR PEGAWAI ...") above the real header.
_HEADER_SEARCH_ROWS = 10
_CHUNK = 64 * 1024
_MAX_RECORD_CHARS = 1024 * 1024
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
# Indonesian-locale Excel writes ";", other locales ",", "Unicode Text" exports a tab.
_DELIMITERS = (";", ",", "\t")
_SEP_LINE = re.compile(r'"?sep=(.)"?\s*', re.IGNORECASE)

_PAPER = {"formulir kertas", "kertas", "paper", "paper form", "formulir", "form kertas"}
_DIGITAL = {"formulir digital", "digital", "online", "digital form", "daring", "form digital"}
# Excel's own maximum; a sheet claiming more rows is not one Excel wrote.
_EXCEL_MAX_ROWS = 1_048_576
_DAY_FIRST = re.compile(r"(\d{1,2})([/.\-])(\d{1,2})\2(\d{4})")
_ISO_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})")


@dataclass(frozen=True)
class RawRow:
    """One data row as written in the file, before validation."""

    row_number: int
    phone: str | None
    label: str | None
    consent_method: str | None
    consent_date: str | None


def iter_rows(
    stream: BinaryIO, *, filename: str | None = None, limits: SpreadsheetLimits | None = None
) -> Iterator[RawRow]:
    """Yield the data rows of a CSV or XLSX upload one at a time (errors raise on iteration).

    Every bound of `limits` (rows, columns, cell and line length, what an XLSX unpacks to) is
    checked while the file streams; going over one raises LimitExceeded, naming the bound.
    """
    limits = limits or SpreadsheetLimits()
    owned: IO[bytes] | None = None
    source: IO[bytes] = stream
    if not source.seekable():
        # Both the encoding pre-scan and zipfile need to seek; spool to disk, not memory.
        owned = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115
        shutil.copyfileobj(source, owned, _CHUNK)
        owned.seek(0)
        source = owned
    try:
        start = source.tell()
        magic = source.read(8)
        source.seek(start)
        if not magic:
            raise FileFormatError("Berkas kosong.")
        if magic.startswith(b"\xd0\xcf\x11\xe0"):
            raise FileFormatError(
                "Berkas Excel lama (.xls, Excel 97-2003) tidak didukung; simpan sebagai .xlsx "
                "atau CSV."
            )
        is_xlsx = magic.startswith(b"PK\x03\x04")
        if is_xlsx or (filename or "").lower().endswith((".xlsx", ".xlsm")):
            if not is_xlsx:
                raise FileFormatError("Berkas bernama .xlsx tetapi bukan berkas Excel yang valid.")
            yield from _iter_xlsx(source, limits)
        else:
            yield from _iter_csv(source, start, limits)
    finally:
        if owned is not None:
            owned.close()


def parse_consent_method(raw: str | None) -> str | None:
    """Map a written consent method to 'paper_form' or 'digital_form'; None means invalid."""
    if raw is None:
        return None
    key = " ".join(re.sub(r"[_\-]+", " ", raw.casefold()).split())
    # 'whatsapp' consent is recorded only by the webhook, never claimed by a file.
    if key in _PAPER:
        return "paper_form"
    if key in _DIGITAL:
        return "digital_form"
    return None


def parse_consent_date(raw: str | None) -> dt.date | None:
    """Parse an ISO or Indonesian day-first date (15/07/2026, 15-07-2026, 15.07.2026)."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        if match := _DAY_FIRST.fullmatch(text):
            return dt.date(int(match[4]), int(match[3]), int(match[1]))
        if match := _ISO_DATE.fullmatch(text):
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
        return dt.datetime.fromisoformat(text.replace(" ", "T", 1)).date()
    except ValueError:
        pass
    raise ValueError(
        "Tanggal persetujuan tidak dapat dibaca; tulis seperti 15/07/2026 (hari dahulu) atau "
        "2026-07-15."
    )


def _iter_csv(stream: IO[bytes], start: int, limits: SpreadsheetLimits) -> Iterator[RawRow]:
    """Stream CSV records from a seekable binary stream."""
    encoding = _detect_encoding(stream, start)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    lines = _BoundedLines(text, limits)
    try:
        first = _read_record(lines, 1)
        forced = _SEP_LINE.fullmatch(first)
        # Excel hides a leading "sep=;" line, so it does not count as a spreadsheet row.
        blocks = [] if forced or not first else [first]
        while sum(1 for b in blocks if b.strip()) < _HEADER_SEARCH_ROWS and (
            block := _read_record(lines, len(blocks) + 1)
        ):
            blocks.append(block)
        delimiter = forced.group(1) if forced else _sniff_delimiter(blocks)
        # strict: a quote left open at the end of the file is an error, not one giant last cell.
        reader = csv.reader(itertools.chain(blocks, lines), delimiter=delimiter, strict=True)
        yield from _rows_after_header(_bounded(_numbered(reader), limits), limits)
    except UnicodeDecodeError:
        raise FileFormatError("Pengodean teks berkas tidak dapat dibaca.") from None
    finally:
        # Detach so the caller's stream is not closed together with our wrapper.
        text.detach()


def _numbered(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str | None]]]:
    """Number CSV records as spreadsheet rows (blank lines included) and strip cells."""
    for row_number in itertools.count(1):
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileFormatError(f"Baris {row_number} bukan CSV yang valid ({exc}).") from None
        yield row_number, [cell.strip() or None for cell in record]


def _detect_encoding(stream: IO[bytes], start: int) -> str:
    """Pick utf-16, utf-8-sig or cp1252 by scanning the whole file in chunks."""
    head = stream.read(4)
    stream.seek(start)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8_ok = cp1252_ok = True
    while chunk := stream.read(_CHUNK):
        if b"\x00" in chunk:
            raise FileFormatError("Berkas ini bukan tabel CSV atau XLSX.")
        if utf8_ok:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                utf8_ok = False
        cp1252_ok = cp1252_ok and not _CP1252_UNDEFINED.search(chunk)
    if utf8_ok:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_ok = False
    stream.seek(start)
    if utf8_ok:
        return "utf-8-sig"
    if cp1252_ok:
        return "cp1252"
    raise FileFormatError("Pengodean teks berkas tidak dapat dibaca; simpan sebagai CSV UTF-8.")


class _BoundedLines:
    """The lines of a CSV text stream, none of them read past the line limit."""

    def __init__(self, text: io.TextIOWrapper, limits: SpreadsheetLimits) -> None:
        self._text = text
        self._limits = limits
        self._count = 0

    def readline(self) -> str:
        # Two more characters than the limit, so that a line ending in CR LF fits whole.
        line = self._text.readline(self._limits.line_chars + 2)
        if line:
            self._count += 1
            if len(line.rstrip("\r\n")) > self._limits.line_chars:
                raise self._limits.line_too_long(self._count)
        return line

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if line := self.readline():
            return line
        raise StopIteration


def _read_record(text: _BoundedLines, row_number: int) -> str:
    """Read one physical record, joining lines while a quoted field is still open."""
    block = text.readline()
    while block.count('"') % 2 == 1:
        line = text.readline()
        if not line or len(block) > _MAX_RECORD_CHARS:
            raise FileFormatError(f"Baris {row_number} memuat tanda kutip yang tidak ditutup.")
        block += line
    return block


def _sniff_delimiter(blocks: Sequence[str]) -> str:
    """Pick the delimiter that reveals a phone header earliest, with the most columns."""
    candidates = [(len(blocks), 0, 0)]
    for rank, delimiter in enumerate(_DELIMITERS):
        for index, block in enumerate(blocks):
            try:
                cells = next(csv.reader([block], delimiter=delimiter), [])
                found = _map_header(cells, index + 1) is not None
            except csv.Error:
                continue
            except FileFormatError:  # a header, if an ambiguous one; reported later
                found = True
            if found:
                candidates.append((index, -len(cells), rank))
                break
    return _DELIMITERS[min(candidates)[2]]


def _iter_xlsx(stream: IO[bytes], limits: SpreadsheetLimits) -> Iterator[RawRow]:
    """Stream rows from the first worksheet of an XLSX workbook."""
    sheet = xlsx.open_first_sheet(stream, limits)
    try:
        yield from _rows_after_header(_bounded(xlsx.sheet_rows(sheet, limits), limits), limits)
    finally:
        sheet.close()


def _bounded(
    rows: Iterable[tuple[int, Sequence[str | None]]], limits: SpreadsheetLimits
) -> Iterator[tuple[int, Sequence[str | None]]]:
    """Refuse a row over the column or cell-length limit, or beyond Excel's last row."""
    for row_number, cells in rows:
        if row_number > _EXCEL_MAX_ROWS:
            raise limits.too_many_rows()
        width = len(cells)
        while width and cells[width - 1] is None:
            width -= 1
        if width > limits.columns:
            raise limits.too_many_columns(row_number)
        if width and max(len(c) for c in cells[:width] if c is not None) > limits.cell_chars:
            raise limits.cell_too_long(f"Baris {row_number}")
        yield row_number, cells


def _rows_after_header(
    rows: Iterable[tuple[int, Sequence[str | None]]], limits: SpreadsheetLimits
) -> Iterator[RawRow]:
    """Find the header among the first rows, then yield the data rows after it."""
    columns: dict[Field, int] | None = None
    non_blank = 0
    data_rows = 0
    for row_number, cells in rows:
        if columns is None:
            if not any(cells):
                continue
            columns = _map_header(cells, row_number)
            non_blank += 1
            if columns is None and non_blank >= _HEADER_SEARCH_ROWS:
                break
            continue
        if any(cells):
            data_rows += 1
            if data_rows > limits.rows:
                raise limits.too_many_rows()
        row = _make_row(row_number, cells, columns)
        if row is not None:
            yield row
    if columns is None:
        if non_blank == 0:
            raise FileFormatError("Berkas kosong.")
        raise FileFormatError(
            f"Kolom nomor HP tidak ditemukan. Beri judul kolom salah satu dari: {_PHONE_HEADERS}."
        )


def _map_header(cells: Sequence[str | None], row_number: int) -> dict[Field, int] | None:
    """Map known header names to column indexes; None if there is no phone column."""
    columns: dict[Field, int] = {}
    for index, cell in enumerate(cells):
        field = _HEADER_LOOKUP.get(_header_key(cell or ""))
        if field is None:
            continue
        if field in columns:
            raise FileFormatError(
                f"Baris {row_number} memuat lebih dari satu kolom {_FIELD_NAMES[field]}; "
                "sisakan satu saja."
            )
        columns[field] = index
    return columns if "phone" in columns else None


def _make_row(
    row_number: int, cells: Sequence[str | None], columns: dict[Field, int]
) -> RawRow | None:
    """Build a RawRow from stripped cells, or None when every recognised column is empty."""
    width = len(cells)
    values = [cells[i] if (i := columns.get(f, width)) < width else None for f in _FIELDS]
    # Templates often pre-number rows ("No" column) with nothing else filled in.
    return RawRow(row_number, *values) if any(values) else None
