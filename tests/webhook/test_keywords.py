"""Keyword recognition: each family in many spellings, and near misses that must not match."""

import pytest

from app.webhook.keywords import Command, classify, classify_any

FAMILIES: dict[Command, list[str]] = {
    Command.stop: [
        "STOP",
        "stop",
        "Stop.",
        " berhenti!! ",
        "BERHENTI SPI",
        "STOP SPI",
        "Stoppp",
        "berhentiiii 🙏",
        "UNSUBSCRIBE",
        "keluar",
        "Batal",
        "HENTIKAN",
        "unreg",
        "Stop promotions",
        "Berhenti promosi",
        "tolong stop",
        "saya mau berhenti",
        "stop ya pak",
        "STOP STOP STOP",
        "Ｓｔｏｐ",  # full-width letters
        "🛑 STOP 🛑",
    ],
    Command.resume: ["MULAI", "mulai", "Mulai lagi", "START", "lanjut", "Lanjutkan!", "MULAIII"],
    Command.help: ["BANTUAN", "bantuan?", "HELP", "Info", "menu", "informasi dong", "help!!!"],
    Command.data: ["DATA", "data", "Data saya", "cek data", "DATA?", "lihat data pak"],
    Command.erase: [
        "HAPUS",
        "hapus data",
        "HAPUS DATA",
        "Hapus data saya",
        "hapus!",
        "tolong hapus semua data",
        "HAPUSSS",
    ],
    Command.confirm: ["YA", "ya", "Iya", "YES", "setuju", "ya setuju", "Yaaa!", "iya pak"],
}

NEAR_MISSES = [
    "STOPWATCH",
    "jangan berhenti berdoa",
    "saya tidak mau berhenti",
    "berhenti merokok",
    "stop dulu ya nanti lanjut",
    "Does it come in another color?",
    "sudah isi",
    "Sudah saya isi pak",
    "mulainya kapan?",
    "databases",
    "menghapus",
    "bantuannya apa",
    "yayasan",
    "ok",
    "terima kasih",
    "SPI",
    "",
    "   ",
    "🙏",
    "hentikan korupsi sekarang juga",
    "keluarga",
    "batalyon",
    "cancel",
]


@pytest.mark.parametrize(
    ("text", "command"), [(t, c) for c, texts in FAMILIES.items() for t in texts]
)
def test_family_spellings_are_recognised(text: str, command: Command) -> None:
    assert classify(text).command is command


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_are_ordinary_text(text: str) -> None:
    assert classify(text).command is Command.other


def test_each_family_has_at_least_five_spellings() -> None:
    assert all(len(texts) >= 5 for texts in FAMILIES.values())


@pytest.mark.parametrize(
    ("text", "argument"),
    [
        ("DAFTAR DINKES", ("DINKES",)),
        ("daftar dinkes", ("DINKES",)),
        ("Daftar: Dinkes!", ("DINKES",)),
        ("  DAFTAR   disdik-bud ", ("DISDIK", "BUD")),
        ("saya mau daftar BAPPEDA", ("BAPPEDA",)),
        ("DAFTAR", ()),
        ("daftarrr dinkes", ("DINKES",)),
    ],
)
def test_daftar_carries_the_opd_code(text: str, argument: tuple[str, ...]) -> None:
    parsed = classify(text)
    assert parsed.command is Command.signup
    assert parsed.argument == argument


def test_daftar_must_lead_the_message() -> None:
    assert classify("cara daftar bagaimana").command is Command.other
    assert classify("sudah daftar DINKES").command is Command.other


def test_buttons_fall_back_from_label_to_payload() -> None:
    assert classify_any("Berhenti promosi", "x").command is Command.stop
    assert classify_any("Tidak tertarik", "STOP_PROMOTIONS").command is Command.stop
    assert classify_any("Cancel", "cancel-button").command is Command.other
    assert classify_any(None, None).command is Command.other
