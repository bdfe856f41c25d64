"""Hostile spreadsheets, written part by part with zipfile so that none is held in memory."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.worksheet+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_CT}.sharedStrings+xml"/>'
    "</Types>"
)
PARTS = {
    "[Content_Types].xml": CONTENT_TYPES,
    "_rels/.rels": (
        f'<Relationships xmlns="{_PKG_REL}"><Relationship Id="rId1" '
        f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
        '<sheet name="Pegawai" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        f'<Relationships xmlns="{_PKG_REL}">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
        "</Relationships>"
    ),
}

Chunks = Callable[[], Iterable[str]]
SST_START = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{_MAIN}">'
SHEET_START = f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_MAIN}"><sheetData>'


def shared_strings(texts: Iterable[str], *, repeat: int = 0) -> Iterable[str]:
    """A shared-string table of `texts`, then `repeat` more copies of one short string."""
    yield SST_START
    for text in texts:
        yield f"<si><t>{text}</t></si>"
    for start in range(0, repeat, 100_000):
        yield "<si><t>Pegawai</t></si>" * min(100_000, repeat - start)
    yield "</sst>"


def sheet(rows: Iterable[str]) -> Iterable[str]:
    """A worksheet of the given <row> elements."""
    yield SHEET_START
    yield from rows
    yield "</sheetData></worksheet>"


def header_row() -> str:
    """Row 1: 'nomor_hp' and 'nama' as inline strings."""
    return (
        '<row r="1"><c r="A1" t="inlineStr"><is><t>nomor_hp</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t>nama</t></is></c></row>'
    )


def phone_rows(count: int, *, first: int = 2, named: bool = True) -> Iterable[str]:
    """Rows of a phone number (a number cell) and, if named, a shared-string name (index 0)."""
    name = '<c t="s"><v>0</v></c>' if named else ""
    for r in range(first, first + count):
        yield f'<row r="{r}"><c><v>812{r:08d}</v></c>{name}</row>'


def write_xlsx(path: Path, *, sheet_xml: Chunks, strings_xml: Chunks | None = None) -> Path:
    """An XLSX whose worksheet and shared strings are streamed from the given chunks."""
    strings_xml = strings_xml or (lambda: shared_strings(["Pegawai"]))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, text in PARTS.items():
            archive.writestr(name, text)
        for name, chunks in (
            ("xl/worksheets/sheet1.xml", sheet_xml),
            ("xl/sharedStrings.xml", strings_xml),
        ):
            with archive.open(name, "w") as part:
                buffer: list[str] = []
                size = 0
                for chunk in chunks():
                    buffer.append(chunk)
                    size += len(chunk)
                    if size > 1 << 20:
                        part.write("".join(buffer).encode())
                        buffer, size = [], 0
                part.write("".join(buffer).encode())
    return path


def lie_about_sizes(path: Path, name: str, declared: int) -> None:
    """Rewrite the uncompressed size that the archive declares for `name` (a zip bomb's trick)."""
    data = bytearray(path.read_bytes())
    encoded = name.encode()
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
        real = info.file_size
    # (signature, offset of the size, of the name's length, of the name) in a local header
    # and in a central directory entry.
    for signature, size_at, length_at, name_at in (
        (b"PK\x03\x04", 22, 26, 30),
        (b"PK\x01\x02", 24, 28, 46),
    ):
        at = data.find(signature)
        while at >= 0:
            name_len = int.from_bytes(data[at + length_at : at + length_at + 2], "little")
            if bytes(data[at + name_at : at + name_at + name_len]) == encoded:
                stored = int.from_bytes(data[at + size_at : at + size_at + 4], "little")
                assert stored == real, "sizes of 4 GiB or more need ZIP64 records"
                data[at + size_at : at + size_at + 4] = declared.to_bytes(4, "little")
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))
