"""Bahasa Indonesia for every machine code the API and the importer emit.

The API keeps its stable English codes for scripts; a coordinator never reads them. Every code
has one sentence here, and `tests/console/test_messages.py` fails when a code appears in `app/`
without one. The import report's row codes (`import.*`, `invalid_phone.*`) and their sentences
live with the importer (`app/enrolment/reasons.py`), which puts both in every report row.
"""

from app.enrolment.reasons import ROW_TEXTS, reason_text

__all__ = ["GENERIC", "TEXTS", "reason_text", "text_for"]

GENERIC = "Permintaan tidak dapat diproses. Periksa isian Anda lalu coba lagi."

TEXTS: dict[str, str] = {
    # app.errors and app.http: the generic codes of every route.
    "bad_request": "Permintaan tidak dapat dibaca.",
    "invalid": "Ada isian yang tidak valid.",
    "not_found": "Data yang dicari tidak ada.",
    "conflict": "Permintaan bertentangan dengan data yang sudah ada.",
    # app.auth: user accounts and invitations.
    "invalid_username": (
        "Nama pengguna hanya boleh huruf kecil, angka, titik, garis bawah atau tanda hubung."
    ),
    "invitation_invalid": (
        "Undangan ini tidak berlaku lagi: sudah dipakai, kedaluwarsa, atau dibatalkan."
    ),
    "password_has_username": "Kata sandi tidak boleh memuat nama pengguna.",
    "password_too_long": "Kata sandi terlalu panjang.",
    "password_too_short": "Kata sandi terlalu pendek.",
    "self_disable": "Anda tidak dapat menonaktifkan akun sendiri.",
    "user_not_found": "Pengguna tidak ditemukan.",
    "self_totp_reset": "Anda tidak dapat mengatur ulang verifikasi dua langkah akun sendiri.",
    "totp_not_enabled": "Verifikasi dua langkah akun ini belum aktif.",
    "user_disabled": "Akun ini dinonaktifkan.",
    "username_taken": "Nama pengguna ini sudah dipakai.",
    "forbidden": "Anda tidak berwenang membuka halaman ini.",
    "unauthorized": "Silakan masuk terlebih dahulu.",
    "too_large": "Berkas terlalu besar.",
    "busy": "Basis data sedang sibuk. Kirim permintaan yang sama lagi dalam beberapa detik.",
    "method_not_allowed": "Cara membuka halaman ini tidak didukung.",
    "unsupported_media_type": "Jenis berkas tidak didukung.",
    "internal_error": "Terjadi kesalahan pada layanan. Silakan coba lagi nanti.",
    "unavailable": "Layanan sedang tidak tersedia. Silakan coba lagi nanti.",
    "db_unreachable": "Basis data tidak dapat dihubungi.",
    "migrations_pending": "Basis data belum diperbarui ke versi terbaru.",
    "error": GENERIC,
    # Enrolment.
    "already_enrolled": "Nomor ini sudah ada di daftar OPD Anda.",
    "enrolment_not_found": "Pegawai ini tidak ada di daftar OPD Anda.",
    "consent_in_future": "Tanggal persetujuan tidak boleh di masa depan.",
    "unreadable_file": (
        "Berkas tidak dapat dibaca sebagai daftar pegawai. Unggah berkas XLSX atau CSV dengan "
        "kolom Nomor HP (gunakan templat yang tersedia); berkas Excel lama (.xls) tidak didukung."
    ),
    "import_rejected": (
        "Tidak ada yang didaftarkan karena ada baris bermasalah dan Anda memilih "
        "“semua atau tidak sama sekali”."
    ),
    # OPDs and access.
    "opd_not_found": "OPD tidak ditemukan.",
    "unknown_opd": "Kode OPD tidak dikenal.",
    "opd_exists": "OPD dengan kode ini sudah ada.",
    "opd_required": "Pilih OPD terlebih dahulu.",
    "opd_not_allowed": "Anda hanya dapat mengelola OPD Anda sendiri.",
    "no_opds": "Belum ada OPD yang terdaftar.",
    # Campaigns.
    "campaign_not_found": "Kampanye tidak ditemukan.",
    "campaign_change_not_allowed": "Kampanye dalam keadaan ini tidak dapat diubah.",
    "campaign_not_active": "Kampanye tidak sedang aktif.",
    "window_ended": "Masa kampanye sudah berakhir.",
    "invalid_window": "Tanggal mulai dan selesai kampanye tidak valid.",
    "invalid_transition": "Perubahan status kampanye ini tidak diizinkan.",
    "invalid_timing": "Pengaturan jadwal pengingat tidak valid.",
    "invalid_send_window": "Jam kirim tidak valid.",
    "invalid_cron": "Jadwal (cron) tidak valid.",
    "round_not_allowed": "Putaran pengingat ini tidak diizinkan.",
    # Templates.
    "template_not_found": "Templat pesan tidak ditemukan.",
    "template_exists": "Templat dengan nama ini sudah ada.",
    "template_in_use": "Templat sedang dipakai kampanye.",
    "template_from_meta": "Templat ini dikelola di Meta dan tidak dapat diubah di sini.",
    "template_not_usable": "Templat ini belum dapat dipakai (belum disetujui).",
    "template_already_submitted": (
        "Templat ini sudah diajukan ke Meta. Ubah di WhatsApp Manager, atau baca ulang statusnya "
        "dengan `spi-reminder templates sync`."
    ),
    "template_not_local": "Hanya templat yang didaftarkan di sini (SANDBOX) yang dapat diajukan.",
    "template_unusable": (
        "Templat ini belum dapat diajukan: periksa tautan, temuan yang belum diakui, atau "
        "jumlah parameternya."
    ),
    "template_ttl_missing": (
        "Isi masa berlaku pesan (ttl_seconds), atau pilih kampanye yang jendela kirimnya "
        "menentukannya."
    ),
    "template_invalid": "Meta akan menolak templat ini. Periksa isi dan contohnya.",
    "meta_refused": "Meta menolak permintaan ini. Periksa pesan dari Meta lalu coba lagi.",
    "meta_unavailable": "Meta tidak dapat dihubungi saat ini. Coba lagi beberapa saat lagi.",
    "not_ready": "WhatsApp belum tersambung. Coba lagi beberapa saat lagi.",
    "alert_not_found": "Peringatan tidak ditemukan.",
    "alert_resolved": "Peringatan ini sudah diselesaikan.",
    "template_status_invalid": "Status templat tidak valid.",
    "template_contains_link": "Teks templat tidak boleh memuat tautan.",
    "template_placeholders_invalid": "Isian templat ({{1}}, {{2}}, …) tidak valid.",
    "template_placeholder_mismatch": "Jumlah isian templat tidak cocok.",
    "template_parameter_invalid": "Nilai isian templat tidak valid.",
    "template_parameter_missing": "Ada isian templat yang belum diisi.",
    "template_parameter_not_neutral": "Nilai isian templat tidak netral.",
    "invalid_name": "Nama tidak valid.",
    "finding_not_found": "Temuan tidak ditemukan.",
    "already_acknowledged": "Temuan ini sudah dikonfirmasi.",
    "link_not_acknowledgeable": "Tautan dalam templat tidak dapat dikecualikan.",
}
# The import report's row outcomes and problems (and every phone reason) come from the
# importer's own table: one sentence per code.
TEXTS |= ROW_TEXTS


def text_for(code: str) -> str:
    """The Indonesian sentence for a machine code; the generic one for an unknown code."""
    return TEXTS.get(code, GENERIC)
