"""'Reply as this employee': the sandbox sends the service a signed inbound text, as Meta would.

A newcomer tries the employee's side (STOP, BANTUAN, DAFTAR …) from the inbox. The sandbox
keeps no inbound text: the words go into one signed webhook and nowhere else; what comes back
is the service's reply, shown in the inbox like any message. The number replied from is the
one the chosen inbox message went to, held in this process's memory only (the page shows it
masked), or one typed in for a newcomer (DAFTAR).
"""

from __future__ import annotations

import base64
import html
import secrets
import time
from typing import Any

from app.messaging.wire import require_e164
from app.sandbox.identity import SANDBOX_DISPLAY_NUMBER

MAX_TEXT_CHARS = 4096
SUGGESTIONS = ("STOP", "BERHENTI", "MULAI", "BANTUAN", "DATA", "HAPUS", "DAFTAR DINKES")


class ReplyRefused(ValueError):
    """The reply cannot be sent (no such message, a bad number, empty text)."""


def inbound_text(
    *, waba_id: str, phone_number_id: str, sender: str, text: str, at: int | None = None
) -> dict[str, Any]:
    """The webhook body of one inbound text message from `sender` (E.164), as Meta sends it."""
    digits = require_e164(sender).lstrip("+")
    if not text.strip():
        raise ReplyRefused("the reply is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise ReplyRefused(f"the reply is longer than {MAX_TEXT_CHARS} characters")
    message_id = "wamid." + base64.b64encode(secrets.token_bytes(24)).decode()
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": SANDBOX_DISPLAY_NUMBER,
                                "phone_number_id": phone_number_id,
                            },
                            "contacts": [{"profile": {"name": "Pegawai"}, "wa_id": digits}],
                            "messages": [
                                {
                                    "from": digits,
                                    "id": message_id,
                                    "timestamp": str(int(time.time()) if at is None else at),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


_PAGE = """<!doctype html>
<html lang="id">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Balas sebagai pegawai (sandbox)</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1rem; color: #1f2933; max-width: 40rem; }}
label {{ display: block; margin: .75rem 0 .25rem; }}
input[type=text] {{ width: 100%; padding: .5rem; font-size: 1rem; box-sizing: border-box; }}
button {{ margin-top: .75rem; padding: .5rem 1rem; font-size: 1rem; }}
.muted {{ color: #52606d; }}
blockquote {{ border-left: 4px solid #d9e2ec; margin: .5rem 0; padding: .25rem .75rem; }}
</style>
</head>
<body>
<h1>Balas sebagai pegawai</h1>
<p>{target}</p>
{received}
<form method="post" action="/sandbox/reply">
<input type="hidden" name="message" value="{message}">
{number_field}
<label for="text">Balasan pegawai (mis. {suggestions})</label>
<input type="text" id="text" name="text" list="keywords" required maxlength="{max_chars}">
<datalist id="keywords">{options}</datalist>
<button type="submit">Kirim sebagai pegawai</button>
</form>
<p class="muted">Sandbox mengirim balasan ini ke layanan sebagai webhook bertanda tangan, seperti
Meta. Isi balasan tidak disimpan di mana pun; jawaban layanan muncul di
<a href="/sandbox/inbox">kotak masuk</a>.</p>
</body>
</html>
"""


def render_page(*, message_id: str, masked: str | None, received: str | None) -> str:
    """The reply form for one inbox message, or for a number typed in (no message)."""
    options = "".join(f'<option value="{html.escape(s)}">' for s in SUGGESTIONS)
    if masked is not None:
        target = f"Membalas dari nomor {html.escape(masked)} (disamarkan)."
        number_field = ""
    else:
        target = "Balas dari nomor mana pun, misalnya untuk mencoba DAFTAR &lt;kode OPD&gt;."
        number_field = (
            '<label for="number">Nomor pegawai (format +62…)</label>'
            '<input type="text" id="number" name="number" required inputmode="tel">'
        )
    quoted = (
        f"<p>Pesan yang diterima:</p><blockquote>{html.escape(received)}</blockquote>"
        if received
        else ""
    )
    return _PAGE.format(
        target=target,
        received=quoted,
        message=html.escape(message_id),
        number_field=number_field,
        suggestions=", ".join(SUGGESTIONS[:4]),
        max_chars=MAX_TEXT_CHARS,
        options=options,
    )


def escape(text: str) -> str:
    """Text made safe for the pages."""
    return html.escape(text)
