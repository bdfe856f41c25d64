"""The pre-flight's findings and advice, in Bahasa Indonesia (read by operators and admins)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.messaging.account_client import HandshakeResult
from app.messaging.client import TemplateInfo
from app.messaging.health import AppSubscription, PhoneHealth
from app.messaging.tiers import known_limit, limit_of
from app.sender.preflight import CampaignTemplate, Check, Local, Status

TITLES = {
    "token": "Token akses dan izinnya",
    "phone_registration": "Pendaftaran nomor pengirim di Cloud API",
    "display_name": "Nama tampilan nomor pengirim",
    "quality": "Kualitas nomor pengirim",
    "coexistence": "Nomor khusus Cloud API (bukan aplikasi WhatsApp Business)",
    "webhook_subscription": "Aplikasi berlangganan webhook akun WhatsApp Business",
    "webhook_fields": "Kolom webhook yang dilanggan aplikasi",
    "webhook_handshake": "URL webhook menjawab verifikasi Meta",
    "account": "Status akun WhatsApp Business",
    "messaging_limit": "Batas pesan Meta dibanding penerima putaran berikutnya",
}
GRAPH_CHECKS = (
    "phone_registration",
    "display_name",
    "quality",
    "coexistence",
    "webhook_subscription",
    "webhook_fields",
    "webhook_handshake",
)
_TOKEN_ADVICE = (
    "Buat token System User permanen di Meta Business Manager (Pengaturan Bisnis → Pengguna "
    "Sistem) dengan izin whatsapp_business_messaging dan whatsapp_business_management untuk "
    "akun ini, lalu setel SPI_WHATSAPP_ACCESS_TOKEN dan mulai ulang layanan."
)
_GOOD_NAMES = frozenset({"APPROVED", "AVAILABLE_WITHOUT_REVIEW"})


def _check(key: str, status: Status, detail: str, advice: str | None = None) -> Check:
    return Check(key=key, title=TITLES[key], status=status, detail=detail, advice=advice)


def _people(limit: int | None) -> str:
    return "tak terbatas" if limit is None else f"{limit:,}".replace(",", ".")


def skipped_for_token(key: str) -> Check:
    return _check(
        key, Status.skip, "Dilewati: Meta menolak token, jadi pemeriksaan ini gagal juga."
    )


def token_refused(reason: str, *, blocking: bool) -> Check:
    check = _check("token", Status.fail, f"{reason}.", _TOKEN_ADVICE)
    return Check(**{**check.__dict__, "blocking": blocking})


def token(missing: Sequence[str]) -> Check:
    if missing:
        return _check(
            "token", Status.fail, f"Izin belum diberikan: {', '.join(missing)}.", _TOKEN_ADVICE
        )
    return _check("token", Status.ok, "Token diterima; izin pengiriman dan pengelolaan ada.")


def phone_unreadable(reason: str) -> Check:
    return _check(
        "phone_registration",
        Status.fail,
        f"Data nomor pengirim tidak dapat dibaca: {reason}.",
        "Periksa SPI_WHATSAPP_PHONE_NUMBER_ID (ID nomor, bukan nomor teleponnya) dan bahwa token "
        "punya akses ke akun WhatsApp Business pemilik nomor itu.",
    )


def registration(health: PhoneHealth) -> Check:
    status = health.registration_status
    if status == "CONNECTED":
        return _check("phone_registration", Status.ok, "Nomor terdaftar dan terhubung (CONNECTED).")
    return _check(
        "phone_registration",
        Status.fail,
        f"Status nomor: {status or 'tidak diketahui'}; Meta hanya mengirim dari nomor CONNECTED.",
        "Daftarkan nomor ke Cloud API (POST /{phone-number-id}/register dengan PIN verifikasi "
        "dua langkah) atau selesaikan pendaftarannya di WhatsApp Manager.",
    )


def display_name(health: PhoneHealth) -> Check:
    name = health.name_status
    if name in _GOOD_NAMES:
        return _check("display_name", Status.ok, f"Nama tampilan disetujui ({name}).")
    if name == "PENDING_REVIEW":
        return _check(
            "display_name",
            Status.warn,
            "Nama tampilan masih ditinjau Meta; sampai disetujui pengiriman dapat dibatasi.",
            "Tunggu persetujuan (biasanya 1–2 hari kerja) sebelum putaran besar.",
        )
    return _check(
        "display_name",
        Status.fail,
        f"Nama tampilan tidak disetujui ({name or 'tidak diketahui'}).",
        "Ajukan ulang nama tampilan di WhatsApp Manager dengan nama resmi instansi, sesuai "
        "pedoman nama tampilan Meta.",
    )


def quality(health: PhoneHealth, *, flagged: bool) -> Check:
    rating = health.quality_rating
    if rating == "RED":
        return _check(
            "quality",
            Status.fail,
            "Kualitas nomor RENDAH (RED): banyak penerima memblokir atau melaporkan pesan.",
            "Tunda putaran berikutnya, periksa isi templat dan pastikan hanya pegawai yang setuju "
            "yang terdaftar; kualitas pulih dalam beberapa hari tanpa keluhan baru.",
        )
    if rating == "YELLOW" or flagged:
        return _check(
            "quality",
            Status.warn,
            f"Kualitas nomor SEDANG ({rating or 'ditandai FLAGGED'}): Meta dapat menurunkan batas.",
            "Kurangi frekuensi pengingat dan periksa isi templat sebelum putaran besar.",
        )
    return _check("quality", Status.ok, f"Kualitas nomor baik ({rating or 'belum dinilai'}).")


def coexistence(health: PhoneHealth) -> Check:
    if not health.coexistence:
        return _check("coexistence", Status.ok, "Nomor hanya dipakai melalui Cloud API.")
    return _check(
        "coexistence",
        Status.warn,
        "Nomor juga dipakai di aplikasi WhatsApp Business (coexistence): kecepatan tetap 20 "
        "pesan/detik dan riwayat obrolan, termasuk balasan pegawai, tersalin ke ponsel.",
        "Gunakan nomor khusus yang hanya terdaftar di Cloud API, agar balasan pegawai tidak "
        "tersimpan di ponsel mana pun.",
    )


def subscription_unreadable(reason: str) -> Check:
    return _check(
        "webhook_subscription",
        Status.fail,
        f"Langganan webhook tidak dapat dibaca: {reason}.",
        "Periksa SPI_WHATSAPP_WABA_ID dan akses token ke akun WhatsApp Business itu.",
    )


def subscription(app_ids: Sequence[str], *, expected_app_id: str | None) -> Check:
    subscribed = expected_app_id in app_ids if expected_app_id else bool(app_ids)
    if subscribed:
        return _check(
            "webhook_subscription", Status.ok, "Aplikasi menerima webhook akun WhatsApp Business."
        )
    return _check(
        "webhook_subscription",
        Status.fail,
        "Tidak ada aplikasi (atau bukan aplikasi ini) yang berlangganan webhook akun ini: "
        "status pengiriman dan balasan pegawai (STOP) tidak akan sampai.",
        "Jalankan POST /{waba-id}/subscribed_apps dengan token layanan, atau hubungkan aplikasi "
        "di App Dashboard → WhatsApp → Configuration.",
    )


def fields_unknown() -> Check:
    return _check(
        "webhook_fields",
        Status.skip,
        "Tidak diperiksa: SPI_WHATSAPP_APP_ID atau SPI_WHATSAPP_APP_SECRET belum disetel.",
        "Setel SPI_WHATSAPP_APP_ID agar kolom webhook aplikasi dapat diperiksa.",
    )


def fields_unreadable(reason: str) -> Check:
    return _check(
        "webhook_fields",
        Status.fail,
        f"Kolom webhook aplikasi tidak dapat dibaca: {reason}.",
        "Periksa SPI_WHATSAPP_APP_ID dan SPI_WHATSAPP_APP_SECRET (App Dashboard → Settings).",
    )


def fields(subscription: AppSubscription | None) -> Check:
    advice = (
        "Di App Dashboard → WhatsApp → Configuration → Webhook fields, berlangganan: "
        "messages, message_template_status_update, template_category_update, "
        "message_template_quality_update, phone_number_quality_update, account_update, "
        "business_capability_update."
    )
    if subscription is None or not subscription.active:
        return _check(
            "webhook_fields",
            Status.fail,
            "Aplikasi tidak punya langganan webhook aktif untuk akun WhatsApp Business.",
            advice,
        )
    missing = subscription.missing_fields
    if "messages" in missing:
        return _check(
            "webhook_fields",
            Status.fail,
            "Kolom messages tidak dilanggan: status dan balasan pegawai (STOP) tidak sampai.",
            advice,
        )
    if missing:
        return _check(
            "webhook_fields",
            Status.warn,
            f"Kolom belum dilanggan: {', '.join(missing)}; perubahan templat dan batas tidak "
            "diketahui layanan.",
            advice,
        )
    return _check("webhook_fields", Status.ok, "Semua kolom webhook yang dipakai dilanggan.")


def handshake_no_url(*, target: str) -> Check:
    return _check(
        "webhook_handshake",
        Status.skip if target == "sandbox" else Status.warn,
        "Alamat publik webhook tidak diketahui.",
        "Setel SPI_PUBLIC_WEBHOOK_URL ke https://<domain-layanan>/webhook/whatsapp.",
    )


def handshake_no_token() -> Check:
    return _check(
        "webhook_handshake",
        Status.fail,
        "SPI_WHATSAPP_VERIFY_TOKEN kosong: Meta tidak dapat memverifikasi URL webhook.",
        "Setel SPI_WHATSAPP_VERIFY_TOKEN ke nilai yang sama dengan Verify token di App Dashboard.",
    )


def handshake(result: HandshakeResult) -> Check:
    if result.ok:
        return _check("webhook_handshake", Status.ok, "URL webhook menjawab verifikasi Meta.")
    found = {
        "refused": f"URL menolak verifikasi (HTTP {result.http_status}): token verifikasi berbeda "
        "atau alamatnya salah.",
        "wrong_answer": "URL menjawab, tetapi tidak mengembalikan hub.challenge.",
        "unreachable": "URL tidak dapat dihubungi dari server ini.",
    }[result.reason]
    return _check(
        "webhook_handshake",
        Status.fail,
        found,
        "Pastikan URL mengarah ke /webhook/whatsapp layanan ini lewat HTTPS dan "
        "SPI_WHATSAPP_VERIFY_TOKEN sama dengan Verify token di App Dashboard.",
    )


def account(local: Local) -> Check:
    if local.restrictions or local.ban_state in ("DISABLE", "SCHEDULE_FOR_DISABLE"):
        what = ", ".join(local.restrictions) or local.ban_state or ""
        return _check(
            "account",
            Status.fail,
            f"Meta membatasi akun WhatsApp Business ({what}).",
            "Buka Business Manager → Kualitas Akun, ikuti petunjuk Meta atau ajukan banding; "
            "pengingat tidak terkirim selama pembatasan berlaku.",
        )
    return _check("account", Status.ok, "Tidak ada pembatasan akun yang diketahui.")


def limit_from(tier: str, *, default: int | None) -> int | None:
    """People per 24 h for a tier Meta just reported (the stored value if it says nothing)."""
    return limit_of(tier) if known_limit(tier) else default


def messaging_limit(limit: int | None, *, reach: int | None, days: int) -> Check:
    if reach is None:
        return _check(
            "messaging_limit",
            Status.ok,
            f"Tidak ada kampanye aktif; batas Meta {_people(limit)} orang per 24 jam.",
        )
    if limit is None or reach <= limit:
        return _check(
            "messaging_limit",
            Status.ok,
            f"Putaran berikutnya menjangkau sekitar {_people(reach)} orang; batas Meta "
            f"{_people(limit)} orang per 24 jam.",
        )
    return _check(
        "messaging_limit",
        Status.warn,
        f"Putaran berikutnya bisa menjangkau sekitar {_people(reach)} orang, tetapi batas Meta "
        f"{_people(limit)} orang per 24 jam: satu putaran butuh sekitar {days} hari.",
        "Selesaikan verifikasi bisnis di Meta Business Manager untuk menaikkan batas ke 2.000 "
        "orang, atau jadwalkan putaran per OPD pada hari yang berbeda.",
    )


def campaign_template(
    c: CampaignTemplate,
    *,
    listed: Mapping[tuple[str, str], TemplateInfo] | None,
    target: str,
) -> Check:
    title = f"Templat kampanye «{c.campaign_name}» ({c.template_name}/{c.language})"
    key = f"campaign_template:{c.campaign_id}"
    status, category = c.status, c.category
    note = ""
    meta = listed.get((c.template_name, c.language)) if listed is not None else None
    if meta is not None and (meta["status"], meta["category"]) != (status, category):
        status, category = meta["status"], meta["category"]
        note = " Data lokal berbeda; jalankan `spi-reminder templates sync`."
    if listed is not None and meta is None and status != "SANDBOX" and target == "meta":
        return Check(
            key,
            title,
            Status.fail,
            "Meta tidak mencantumkan templat ini di akun WhatsApp Business.",
            "Ajukan templat ke Meta (POST /api/v1/templates/{id}/submit), atau jalankan "
            "`spi-reminder templates sync` bila templat dihapus di WhatsApp Manager.",
        )
    if status == "SANDBOX" and target == "meta":
        return Check(
            key,
            title,
            Status.fail,
            "Templat hanya terdaftar di layanan ini, belum di Meta.",
            "Ajukan templat ke Meta (POST /api/v1/templates/{id}/submit) dan tunggu APPROVED.",
        )
    if status not in ("APPROVED", "SANDBOX"):
        return Check(
            key,
            title,
            Status.warn if status in ("PENDING", "IN_APPEAL") else Status.fail,
            f"Status templat {status}: Meta hanya mengirim templat APPROVED.{note}",
            "Tunggu tinjauan Meta, atau perbaiki templat dan ajukan lagi; kampanye yang dijeda "
            "dilanjutkan admin setelah templat APPROVED.",
        )
    if category != "UTILITY":
        return Check(
            key,
            title,
            Status.warn,
            f"Kategori {category}: pengingat harus UTILITY (harga, penolakan pesan pemasaran dan "
            f"aturan persetujuan berbeda).{note}",
            "Ubah isi templat agar netral dan spesifik tentang tugas SPI pegawai, lalu ajukan "
            "ulang sebagai UTILITY atau minta peninjauan kategori di WhatsApp Manager.",
        )
    return Check(key, title, Status.ok, f"Templat {status}, kategori {category}.{note}")
