"""The files a coordinator downloads: the import template (XLSX) and an import's report (CSV)."""

import csv
import io
from collections.abc import Iterable, Iterator

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation

# Headers the importer recognises (app/enrolment/rows.py folds case, spaces and underscores).
HEADERS = ("Nomor HP", "Nama", "Metode Persetujuan", "Tanggal Persetujuan")
CONSENT_CHOICES = ("formulir kertas", "formulir digital")
# Rows covered by the consent-method drop-down. The columns themselves are formatted as Text
# (a column style, so no empty rows are written): Excel then keeps 0812… as typed instead of
# turning it into 8,12E+11.
TEXT_ROWS = 20000
OUTCOME_LABELS = {
    "enrolled": "terdaftar",
    "duplicate": "sudah ada",
    "invalid": "bermasalah",
    "not_applied": "tidak diterapkan",
}

INSTRUCTIONS = (
    ("Petunjuk pengisian daftar pegawai", True),
    ("", False),
    ("1. Isi lembar «Daftar» mulai baris 2, satu pegawai per baris. Jangan mengubah judul "
     "kolom.", False),
    ("2. Nomor HP: nomor WhatsApp pegawai, boleh ditulis 0812-3456-7890, 081234567890 atau "
     "+62 812 3456 7890. Kolom ini sudah berformat Teks agar Excel tidak mengubahnya menjadi "
     "6,28E+12; bila menempel dari berkas lain, gunakan «Tempel Nilai» (Paste Values).", False),
    ("3. Nama: nama, jabatan atau unit untuk mengenali pegawai (opsional, paling banyak 80 "
     "karakter). Jangan menulis catatan tentang pengisian SPI atau jawaban.", False),
    ("4. Metode Persetujuan: «formulir kertas» atau «formulir digital» — bagaimana pegawai "
     "menyatakan setuju menerima pengingat. Simpan bukti persetujuannya.", False),
    ("5. Tanggal Persetujuan: tanggal pegawai menyatakan setuju, misalnya 15/07/2026 (hari "
     "dahulu). Kosongkan bila persetujuan diberikan hari ini.", False),
    ("6. Daftarkan hanya pegawai yang sudah setuju. Setiap pegawai dapat berhenti kapan saja "
     "dengan membalas BERHENTI.", False),
    ("7. Simpan sebagai .xlsx lalu unggah di halaman Impor. Anda akan melihat pemeriksaan setiap "
     "baris sebelum ada yang didaftarkan.", False),
    ("", False),
    ("Contoh baris:", True),
)  # fmt: skip
EXAMPLE = ("0812-3456-7890", "Budi Santoso, Bagian Umum", "formulir kertas", "15/07/2026")


def template_xlsx() -> bytes:
    """The import template: a «Daftar» sheet with text-formatted columns and a «Petunjuk» sheet."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    # The importer reads the first worksheet: the list must come first.
    sheet.title = "Daftar"
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF1")
    for col, header in enumerate(HEADERS, start=1):
        cell = sheet.cell(row=1, column=col, value=header)
        cell.font, cell.fill, cell.number_format = bold, fill, "@"
    for letter, width in zip("ABCD", (22, 36, 24, 22), strict=True):
        sheet.column_dimensions[letter].width = width
        sheet.column_dimensions[letter].number_format = "@"
    choices = DataValidation(
        type="list",
        formula1='"' + ",".join(CONSENT_CHOICES) + '"',
        allow_blank=True,
        showErrorMessage=True,
        errorTitle="Metode persetujuan",
        error="Pilih «formulir kertas» atau «formulir digital».",
    )
    sheet.add_data_validation(choices)
    choices.add(f"C2:C{TEXT_ROWS + 1}")
    sheet.freeze_panes = "A2"
    guide = book.create_sheet("Petunjuk")
    guide.column_dimensions["A"].width = 110
    for row, (text, strong) in enumerate(INSTRUCTIONS, start=1):
        guide.cell(row=row, column=1, value=text).font = Font(bold=strong)
    example_row = len(INSTRUCTIONS) + 1
    for col, (header, value) in enumerate(zip(HEADERS, EXAMPLE, strict=True), start=1):
        guide.cell(row=example_row, column=col, value=header).font = Font(bold=True)
        cell = guide.cell(row=example_row + 1, column=col, value=value)
        cell.number_format = "@"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def report_csv(rows: Iterable[tuple[int, str, str]], *, chunk: int = 1000) -> Iterator[bytes]:
    """An import's report for Excel (UTF-8 with BOM, ';' as Indonesian Excel expects).

    Written in chunks of rows: one chunk per row made a 20,000-row report take seconds.
    """
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["Baris", "Hasil", "Keterangan"])
    for n, (row, outcome, text) in enumerate(rows, start=1):
        writer.writerow([row, OUTCOME_LABELS.get(outcome, outcome), text])
        if n % chunk == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()
