"""The sandbox inbox: what each (masked) number received, as a page and as JSON."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

STATUS_LABELS = {
    "accepted": "diterima Meta",
    "sent": "terkirim",
    "delivered": "sampai di ponsel",
    "failed": "gagal (bukan nomor WhatsApp)",
}


@dataclass
class InboxEntry:
    """One message the sandbox took; the number is stored masked only."""

    at: datetime
    masked: str
    template: str | None  # None for a free-form text reply
    text: str | None  # rendered body, when the template is known
    wamid: str
    status: str = "accepted"
    # The full number, in memory only, for "reply as this employee"; never shown or returned.
    recipient: str = field(default="", repr=False)

    def as_json(self) -> dict[str, Any]:
        """JSON form for GET /sandbox/inbox.json."""
        return {
            "at": self.at.isoformat(timespec="seconds"),
            "to": self.masked,
            "template": self.template,
            "text": self.text,
            "status": self.status,
        }


def describe(entry: dict[str, Any]) -> str:
    """One line for the CLI: when, to whom, which template, what status, and the text."""
    kind = f"templat {entry['template']}" if entry.get("template") else "balasan teks"
    status = STATUS_LABELS.get(str(entry.get("status")), str(entry.get("status")))
    text = entry.get("text") or "(isi templat tidak diketahui di sandbox)"
    return f"{entry['at']}  {entry['to']}  {kind}  [{status}]\n    {text}"


_PAGE = """<!doctype html>
<html lang="id">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>Kotak Masuk Sandbox WhatsApp</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1f2933; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #d9e2ec; padding: .5rem; text-align: left;
         vertical-align: top; }}
th {{ background: #f0f4f8; }}
.muted {{ color: #829ab1; }}
</style>
</head>
<body>
<h1>Kotak Masuk Sandbox WhatsApp</h1>
<p>Pesan yang akan diterima pegawai jika layanan terhubung ke WhatsApp sungguhan.
Nomor disamarkan. Halaman ini hanya ada di mode sandbox (tanpa kredensial Meta) dan
diperbarui setiap 5 detik.</p>
<p>Jumlah pesan ditampilkan: {count}. Coba sisi pegawai: pilih <em>Balas</em> pada sebuah
pesan, atau <a href="/sandbox/reply">balas dari nomor lain</a> (misalnya DAFTAR).</p>
<table>
<thead><tr><th>Waktu (UTC)</th><th>Nomor (disamarkan)</th><th>Jenis</th>
<th>Isi pesan</th><th>Status</th><th>Sebagai pegawai</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""


def render_page(entries: list[InboxEntry]) -> str:
    """The inbox page, newest message first."""
    rows = []
    for e in reversed(entries):
        kind = f"Templat <code>{html.escape(e.template)}</code>" if e.template else "Balasan teks"
        text = (
            html.escape(e.text)
            if e.text
            else '<span class="muted">(isi templat tidak diketahui di sandbox)</span>'
        )
        rows.append(
            f"<tr><td>{e.at:%Y-%m-%d %H:%M:%S}</td><td>{html.escape(e.masked)}</td>"
            f"<td>{kind}</td><td>{text}</td>"
            f"<td>{html.escape(STATUS_LABELS.get(e.status, e.status))}</td>"
            f'<td><a href="/sandbox/reply?message={quote(e.wamid)}">Balas</a></td></tr>'
        )
    if not rows:
        rows.append('<tr><td colspan="6" class="muted">Belum ada pesan.</td></tr>')
    return _PAGE.format(count=len(entries), rows="\n".join(rows))
