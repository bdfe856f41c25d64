"""Bounds on what an uploaded spreadsheet may unpack to, checked while it is read."""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from typing import IO, Any
from xml.etree.ElementTree import iterparse

from app.config import Settings


class FileFormatError(ValueError):
    """The uploaded file as a whole cannot be read as a coordinator spreadsheet."""


class LimitExceeded(FileFormatError):
    """The file is over one of the configured bounds; the message names the bound."""


@dataclass(frozen=True)
class SpreadsheetLimits:
    """How much one upload may unpack to (SPI_IMPORT_MAX_*)."""

    rows: int = 50_000  # data rows (blank ones are not counted)
    columns: int = 256
    cell_chars: int = 2_000
    line_chars: int = 64 * 1024  # one CSV line
    xlsx_bytes: int = 128 * 1024 * 1024  # all parts of an XLSX, uncompressed
    xlsx_part_bytes: int = 64 * 1024 * 1024  # one part (a worksheet, the shared strings)
    xlsx_parts: int = 1_000
    shared_strings: int = 500_000

    @classmethod
    def from_settings(cls, settings: Settings) -> SpreadsheetLimits:
        """The limits configured for this service."""
        return cls(
            rows=settings.import_max_rows,
            columns=settings.import_max_columns,
            cell_chars=settings.import_max_cell_chars,
            line_chars=settings.import_max_line_chars,
            xlsx_bytes=settings.import_max_xlsx_bytes,
            xlsx_part_bytes=settings.import_max_xlsx_part_bytes,
            xlsx_parts=settings.import_max_xlsx_parts,
            shared_strings=settings.import_max_shared_strings,
        )

    def too_many_rows(self) -> LimitExceeded:
        return LimitExceeded(
            f"Berkas memuat lebih dari {_n(self.rows)} baris data (batas impor "
            f"{_n(self.rows)} baris); bagi daftar menjadi beberapa berkas."
        )

    def too_many_columns(self, row_number: int) -> LimitExceeded:
        return LimitExceeded(
            f"Baris {row_number} memuat lebih dari {_n(self.columns)} kolom (batas "
            f"{_n(self.columns)} kolom)."
        )

    def cell_too_long(self, where: str) -> LimitExceeded:
        return LimitExceeded(
            f"{where}: sebuah sel lebih panjang dari {_n(self.cell_chars)} karakter (batas "
            f"{_n(self.cell_chars)} karakter per sel)."
        )

    def line_too_long(self, row_number: int) -> LimitExceeded:
        return LimitExceeded(
            f"Baris {row_number} lebih panjang dari {_n(self.line_chars)} karakter (batas "
            f"{_n(self.line_chars)} karakter per baris CSV)."
        )


def _n(value: int) -> str:
    """A count written the Indonesian way (50.000)."""
    return f"{value:,}".replace(",", ".")


def _mb(value: int) -> str:
    return f"{value / (1024 * 1024):g} MB"


class BoundedZip(zipfile.ZipFile):
    """A read-only XLSX archive whose parts cannot unpack to more than the limits allow.

    The declared sizes are checked when the archive is opened, and the bytes actually inflated
    are counted while each part is read, so a part that lies about its size is stopped too.
    """

    def __init__(self, file: IO[bytes], limits: SpreadsheetLimits) -> None:
        _check_entry_count(file, limits)
        super().__init__(file, "r")
        self.limits = limits
        self.inflated = 0
        declared = 0
        for info in self.infolist():
            if info.file_size > limits.xlsx_part_bytes:
                raise self.part_too_large(info.filename)
            declared += info.file_size
        if declared > limits.xlsx_bytes:
            raise self.archive_too_large()

    def open(self, name: Any, mode: Any = "r", pwd: Any = None, **kwargs: Any) -> Any:
        """A part, read through a counter (only reading is supported)."""
        if mode != "r":
            raise ValueError("a BoundedZip is read-only")
        return _CountingPart(super().open(name, mode, pwd, **kwargs), self, str(name))

    def read(self, name: Any, pwd: Any = None) -> bytes:
        with self.open(name, "r", pwd) as part:
            data: bytes = part.read()
            return data

    def part_too_large(self, name: str) -> LimitExceeded:
        return LimitExceeded(
            f"Berkas Excel tidak dapat dibaca: bagian {name!r} melebihi "
            f"{_mb(self.limits.xlsx_part_bytes)} setelah dibuka (batas per bagian)."
        )

    def archive_too_large(self) -> LimitExceeded:
        return LimitExceeded(
            f"Berkas Excel tidak dapat dibaca: isinya melebihi {_mb(self.limits.xlsx_bytes)} "
            "setelah dibuka (batas ukuran XLSX)."
        )


class _CountingPart:
    """A file-like part that raises LimitExceeded once it inflates past its limits."""

    def __init__(self, raw: IO[bytes], archive: BoundedZip, name: str) -> None:
        self._raw = raw
        self._archive = archive
        self._name = name
        self._size = 0
        # Text in XML cannot contain '<'; a longer run without one is an over-long cell.
        self._run = 0
        self._max_run = archive.limits.cell_chars * 8  # characters escaped as &#...; or UTF-8

    def read(self, size: int = -1) -> bytes:
        limits = self._archive.limits
        # Never inflate more than one byte beyond what the limits allow in one call.
        room = limits.xlsx_part_bytes - self._size + 1
        data = self._raw.read(room if size is None or size < 0 else min(size, room))
        self._size += len(data)
        self._archive.inflated += len(data)
        if self._size > limits.xlsx_part_bytes:
            raise self._archive.part_too_large(self._name)
        if self._archive.inflated > limits.xlsx_bytes:
            raise self._archive.archive_too_large()
        self._check_runs(data)
        return data

    def _check_runs(self, data: bytes) -> None:
        pieces = data.split(b"<")
        longest = self._run + len(pieces[0])
        if len(pieces) > 1:
            longest = max(longest, *map(len, pieces[1:-1]), len(pieces[-1]))
            self._run = len(pieces[-1])
        else:
            self._run = longest
        if longest > self._max_run:
            raise self._archive.limits.cell_too_long(f"Bagian {self._name!r} berkas Excel")

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> _CountingPart:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_shared_strings(archive: BoundedZip, name: str) -> None:
    """Count the shared strings and measure each one before openpyxl keeps them all."""
    limits = archive.limits
    count = 0
    root = None
    with archive.open(name) as part:
        for event, node in iterparse(part, events=("start", "end")):
            if root is None:
                root = node
            if event != "end" or node.tag.rsplit("}", 1)[-1] != "si":
                continue
            count += 1
            if count > limits.shared_strings:
                raise LimitExceeded(
                    f"Berkas Excel memuat lebih dari {_n(limits.shared_strings)} teks berbeda "
                    f"(batas {_n(limits.shared_strings)} teks bersama)."
                )
            if sum(map(len, node.itertext())) > limits.cell_chars:
                raise limits.cell_too_long("Berkas Excel")
            root.clear()  # nothing read so far is needed again


_EOCD = struct.Struct("<4s4H2LH")


def _check_entry_count(file: IO[bytes], limits: SpreadsheetLimits) -> None:
    """Refuse an archive listing more parts than the limit before zipfile reads its directory."""
    file.seek(0, 2)
    size = file.tell()
    tail_size = min(size, _EOCD.size + 65535)
    file.seek(size - tail_size)
    tail = file.read(tail_size)
    file.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        return  # not a zip at all: zipfile reports it
    entries = _EOCD.unpack_from(tail, at)[4]
    # 0xFFFF means "see the ZIP64 record": more than an XLSX ever needs.
    if entries > limits.xlsx_parts:
        raise LimitExceeded(
            f"Berkas Excel tidak dapat dibaca: memuat lebih dari {_n(limits.xlsx_parts)} bagian."
        )
