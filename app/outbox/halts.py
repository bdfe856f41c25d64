"""Pausing a campaign the worker may not send for: WhatsApp refused the sender or the template."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from app.auth.principal import cli_principal
from app.campaigns import service as campaign_service
from app.errors import AppError
from app.messaging.results import SendResult
from app.outbox import metrics

logger = logging.getLogger(__name__)

WORKER = cli_principal("outbox-worker")
# Why WhatsApp refused the sender, as the dashboard shows it (Bahasa Indonesia).
HALT_TEXT = {
    "access_token_invalid": "Token WhatsApp tidak valid atau kedaluwarsa",
    "auth_exception": "Autentikasi ke WhatsApp gagal",
    "permission_denied": "Token WhatsApp tidak punya izin yang diperlukan",
    "access_denied": "Akses ke WhatsApp ditolak",
    "unauthorized": "WhatsApp menolak kredensial layanan",
    "waba_policy_restricted": "Akun WhatsApp Business dibatasi karena pelanggaran kebijakan",
    "account_locked": "Akun WhatsApp Business terkunci",
    "payment_issue": "Ada masalah metode pembayaran akun WhatsApp Business",
    "spam_rate_limited": "WhatsApp membatasi pengiriman karena pesan diblokir/dilaporkan",
    "template_categorization_limit": "WhatsApp membatasi pesan karena pelanggaran kategori templat",
    "template_paused": "Templat dijeda oleh WhatsApp karena kualitasnya rendah",
    "template_disabled": "Templat dinonaktifkan oleh WhatsApp",
    "graph_object_unavailable": "ID nomor pengirim atau WABA salah atau tidak diizinkan",
    "local_configuration_error": "Konfigurasi koneksi ke WhatsApp salah",
    "unexpected_response": "Jawaban tak terduga dari WhatsApp",
    "template_parameters": "Parameter templat kampanye tidak lengkap atau tidak valid",
    "template_unusable": "Templat kampanye tidak dapat dikirim",
}
_HALT_SUFFIX = "; pengiriman dihentikan sampai admin melanjutkan kampanye"


def halt_reason(result: SendResult) -> str:
    """The paused_reason for a campaign stopped by this result, e.g. '… (190)'."""
    text = HALT_TEXT.get(result.reason, "WhatsApp menolak pengirim")
    if result.error_code is not None:
        where = str(result.error_code)
    elif result.http_status is not None:
        where = f"HTTP {result.http_status}"
    else:
        where = result.reason
    return f"{text} ({where}){_HALT_SUFFIX}"


def pause_campaign(session: Session, *, campaign_id: int, reason: str, now: datetime) -> bool:
    """Pause an active campaign with a reason (audited); False if it was not active."""
    try:
        campaign_service.pause(
            session, actor=WORKER, campaign_id=campaign_id, reason=reason[:300], now=now
        )
    except AppError:
        return False
    metrics.CAMPAIGN_HALTS.inc()
    logger.warning("outbox.campaign_paused campaign=%s reason=%s", campaign_id, reason)
    return True
