from importlib import resources
from typing import Any

import pytest
import yaml

from app.templates.neutrality import FAMILIES, Family, Finding, NeutralityReport, check_text

SAFETY_SENTENCE = "KPK tidak pernah meminta biaya, kode OTP, PIN, atau data rekening."


def _load(name: str) -> Any:
    return yaml.safe_load(resources.files("app.templates").joinpath(name).read_text("utf-8"))


def _only(body: str) -> Finding:
    findings = check_text(body).findings
    assert len(findings) == 1, findings
    return findings[0]


@pytest.mark.parametrize(
    ("body", "family", "term", "matched"),
    [
        ("Pengisian ini wajib bagi semua pegawai.", "coercion", "wajib", "wajib"),
        ("Yang tidak mengisi akan dicek satu per satu.", "coercion", "akan dicek", "akan dicek"),
        ("Ini terkait TPP bulan depan.", "coercion", "TPP", "TPP"),
        ("Target kita 100% pegawai.", "coercion", "100%", "100%"),
        ("Demi nama baik instansi kita.", "coercion", "nama baik instansi", "nama baik instansi"),
        ("Kita masih zona merah.", "coercion", "zona merah", "zona merah"),
        ("Harap isi dengan kompak.", "steering", "kompak", "kompak"),
        ("Mohon beri nilai tinggi ya.", "steering", "beri nilai tinggi", "beri nilai tinggi"),
        ("Silakan lihat kunci jawaban terlampir.", "steering", "kunci jawaban", "kunci jawaban"),
        ("Pilih saja sangat setuju.", "steering", "sangat setuju", "sangat setuju"),
        ("Isi lewat Google Form unit.", "steering", "Google Form", "Google Form"),
        ("Setelah mengisi, balas SUDAH.", "proof", "balas SUDAH", "balas SUDAH"),
        ("Kirim tangkapan layar ke grup.", "proof", "tangkapan layar", "tangkapan layar"),
        ("Simpan screenshot halaman akhir.", "proof", "screenshot", "screenshot"),
        ("Silakan kirim kode OTP Anda.", "phishing", "OTP", "OTP"),
        ("Tuliskan nomor rekening Anda.", "phishing", "nomor rekening", "nomor rekening"),
        ("Ada biaya administrasi.", "phishing", "biaya", "biaya"),
        ("Selamat, Anda terpilih sebagai peserta.", "privacy", "Anda terpilih", "Anda terpilih"),
    ],
)
def test_each_family_is_found_at_the_right_offsets(
    body: str, family: Family, term: str, matched: str
) -> None:
    finding = _only(body)
    start = body.index(matched)
    assert finding == Finding(family, term, start, start + len(matched), matched)


def test_offsets_point_into_the_original_body() -> None:
    body = "Yth. Bapak/Ibu,\n  mohon   SEGERA diisi;\tini diwajibkan."
    findings = check_text(body).findings
    assert [(f.term, f.start, f.end) for f in findings] == [("segera", 26, 32), ("wajib", 44, 54)]
    assert [body[f.start : f.end] for f in findings] == ["SEGERA", "diwajibkan"]


@pytest.mark.parametrize(
    ("word", "term"),
    [
        ("diharuskan", "harus"),
        ("keharusan", "harus"),
        ("harusnya", "harus"),
        ("seharusnya", "harus"),
        ("wajibkan", "wajib"),
        ("diwajibkan", "wajib"),
        ("mewajibkan", "wajib"),
        ("kewajiban", "wajib"),
        ("berkewajiban", "wajib"),
        ("diperintahkan", "perintah"),
        ("memerintahkan", "perintah"),
        ("memantau", "pantau"),
        ("pemantauan", "pantau"),
        ("ditegur", "tegur"),
        ("menegur", "tegur"),
        ("menyeragamkan", "seragam"),
        ("kekompakan", "kompak"),
        ("membuktikan", "bukti"),
        ("absensi", "absensi"),
        ("sanksinya", "sanksi"),
        ("mentransfer", "transfer"),
        ("PIN-nya", "PIN"),
    ],
)
def test_affixed_forms_hit_their_root(word: str, term: str) -> None:
    assert _only(f"Mohon dicatat: {word} ini.").term == term


@pytest.mark.parametrize(
    "body",
    [
        "Saya mau pinjam kunci pintu ruang rapat.",
        "Instansi pemerintah daerah dan pemerintahan desa.",
        "Laporkan penipuan kepada pihak berwajib.",
        "Sarana ini menunjang pelayanan publik.",
        "TPPnya",  # acronyms are exact words only
        "Yth. Bapak/Ibu.Terima kasih atas perhatiannya.",
        "Jika ragu, hubungi layanan KPK di 198.",
        "Hadiahnya Rp1.500.000 untuk versi 1.5 dan nilai 3.14.",
        "Pesan ini tidak memuat tautan survei.",
        "Undangan dikirim oleh KPK, bukan oleh atasan.",
    ],
)
def test_ordinary_text_is_not_flagged(body: str) -> None:
    assert check_text(body).findings == []


@pytest.mark.parametrize(
    ("body", "term"),
    [
        ("PENGISIAN WAJIB", "wajib"),
        ("Pengisian Wajib", "wajib"),
        ("potongan tpp", "TPP"),
        ("kode otp", "OTP"),
        ("lewat GOOGLE FORM", "Google Form"),
        ("BALAS sudah", "balas SUDAH"),
    ],
)
def test_matching_is_case_insensitive(body: str, term: str) -> None:
    assert _only(body).term == term


@pytest.mark.parametrize(
    "body",
    [
        "Keikutsertaan tidak wajib.",
        "Ini bukan kewajiban.",
        "Tidak ada sanksi bagi yang tidak ikut.",
        "Tanpa sanksi apa pun.",
        "Tidak ada sanksi atau hukuman.",
        "Tak akan ada teguran.",
        "Tidak berpengaruh pada tunjangan.",
        "Survei ini tanpa biaya.",
        "Jangan berikan kode OTP kepada siapa pun.",
        "Jika Bapak/Ibu terpilih, undangan datang dari KPK.",
        SAFETY_SENTENCE,
        "KPK  tidak pernah meminta biaya,\nkode OTP, PIN, atau data rekening",
    ],
)
def test_negated_and_whitelisted_text_is_not_flagged(body: str) -> None:
    assert check_text(body).findings == []


@pytest.mark.parametrize(
    ("body", "term"),
    [
        # The negator is too far away, or separated by a clause boundary.
        ("Yang tidak hadir dikenai sanksi.", "sanksi"),
        ("Tidak wajib, tetapi harus diisi.", "harus"),
        ("Tidak perlu ragu, segera isi.", "segera"),
        # "jangan" does not neutralise steering: "jangan jelekkan" is itself the problem.
        ("Jangan jelekkan unit kita.", "jangan jelekkan"),
        ("Jangan lupa kompak.", "kompak"),
        ("Jangan berikan nilai sempurna.", "nilai sempurna"),
    ],
)
def test_negation_does_not_reach_too_far(body: str, term: str) -> None:
    assert _only(body).term == term


@pytest.mark.parametrize(
    ("body", "terms"),
    [
        ("Kirim kode OTP Anda ke nomor ini.", ["OTP"]),
        ("Sebutkan PIN dan NIK Anda.", ["PIN", "NIK"]),
        ("Transfer biaya pendaftaran.", ["transfer", "biaya"]),
        (
            "KPK meminta biaya, kode OTP, PIN, atau data rekening.",
            ["biaya", "OTP", "PIN", "rekening"],
        ),
    ],
)
def test_phishing_words_outside_the_safety_sentence_are_found(body: str, terms: list[str]) -> None:
    findings = check_text(body).findings
    assert [f.term for f in findings] == terms
    assert {f.family for f in findings} == {"phishing"}


def test_safety_sentence_only_covers_its_own_span() -> None:
    body = f"{SAFETY_SENTENCE} Namun mohon kirim kode OTP Anda."
    finding = _only(body)
    assert (finding.term, finding.start) == ("OTP", body.rindex("OTP"))


@pytest.mark.parametrize(
    ("body", "matched"),
    [
        ("Isi di https://spi.kpk.go.id/survei.", "https://spi.kpk.go.id/survei"),
        ("Isi di http://example.com/a?b=1", "http://example.com/a?b=1"),
        ("Buka www.kpk.go.id ya", "www.kpk.go.id"),
        ("Buka spi.kpk.go.id.", "spi.kpk.go.id"),
        ("Situsnya kpk.go.id, resmi.", "kpk.go.id"),
        ("KPK.GO.ID", "KPK.GO.ID"),
        ("Pendek: bit.ly/x", "bit.ly/x"),
        ("Pendek: s.id/abc.", "s.id/abc"),
        ("Contoh example.com saja", "example.com"),
        ("Chat wa.me/6281234567890 sekarang", "wa.me/6281234567890"),
        ("Surel ke admin@kpk.go.id", "kpk.go.id"),
        ("Silakan membaca.info lengkapnya", "membaca.info"),
        ("Klik di sini", "Klik"),
        ("Pindai kode QR berikut", "kode QR"),
        # Negation never saves a link.
        ("Jangan buka bit.ly/x", "bit.ly/x"),
        ("Tidak ada tautan selain kpk.go.id", "kpk.go.id"),
        ("Pesan ini tanpa kode QR.", "kode QR"),
    ],
)
def test_links_and_domains_are_refused(body: str, matched: str) -> None:
    report = check_text(body)
    links = [f for f in report.findings if f.family == "link"]
    assert report.refused
    assert [f.matched for f in links] == [matched]
    assert links[0].start == body.index(matched)


def test_non_link_findings_need_review_but_are_not_refused() -> None:
    report = check_text("Pengisian wajib dan harus kompak.")
    assert [f.family for f in report.findings] == ["coercion", "coercion", "steering"]
    assert report.needs_review
    assert not report.refused
    assert not report.is_clean


def test_clean_report() -> None:
    report = check_text("Terima kasih.")
    assert report == NeutralityReport(findings=[])
    assert report.is_clean
    assert not report.needs_review
    assert not report.refused


def test_every_yaml_entry_matches_itself() -> None:
    data = _load("neutrality_terms.yaml")
    assert set(data["families"]) == set(FAMILIES)
    for family, entries in data["families"].items():
        for kind in ("stems", "words", "phrases"):
            for entry in entries.get(kind, []):
                hits = [(f.family, f.term) for f in check_text(str(entry)).findings]
                assert (family, str(entry)) in hits, (entry, hits)


def test_seed_templates_have_no_findings() -> None:
    templates = _load("seed_templates.yaml")["templates"]
    assert len(templates) == 2
    for template in templates:
        assert check_text(template["body"]).findings == [], template["name"]
