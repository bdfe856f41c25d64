"""STOP, MULAI, BANTUAN, DATA, HAPUS, DAFTAR/YA and the neutral reply, end to end."""

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, update
from sqlmodel import select

from app.auth.models import Role
from app.auth.principal import cli_principal
from app.config import Settings
from app.db import session_scope, utcnow
from app.enrolment import service as enrolment_service
from app.enrolment.models import Enrolment
from app.opds import service as opd_service
from app.outbox.models import Delivery
from app.security import PhoneVault
from app.webhook.models import AutoReplyMarker, PendingSignup
from tests.factories import (
    add_delivery_row,
    add_opd,
    add_round_rows,
    add_token,
    bearer,
    enrol_number,
)
from tests.webhook import payloads
from tests.webhook.conftest import FakeWhatsApp
from tests.webhook.helpers import (
    NUMBER,
    OTHER_NUMBER,
    OTHER_WA_ID,
    WA_ID,
    delivery,
    delivery_tallies,
    enrolment,
    enrolment_tally,
    enrolments,
    say,
    send,
    suppression,
)


def _coordinator_enrol(client: TestClient, engine: Engine, number: str) -> int:
    token = bearer(add_token(engine, Role.coordinator, "DINKES"))
    response = client.post(
        "/api/v1/opds/DINKES/enrolments",
        json={"phone": number, "consent": {"method": "paper_form"}},
        headers=token,
    )
    return response.status_code


# -- STOP ---------------------------------------------------------------------------------


def test_stop_suppresses_before_the_200_and_leaves_the_list_alone(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    mine = enrol_number(engine, vault, opd, NUMBER)
    other = enrol_number(engine, vault, opd, OTHER_NUMBER)
    say(client, settings, "Stop.")
    row = enrolment(engine, mine)
    assert row.status == "active"  # the list does not change: nobody can tell
    assert row.phone_ciphertext is not None
    assert vault.decrypt(row.phone_ciphertext) == NUMBER
    assert enrolment(engine, other).status == "active"
    assert suppression(engine, vault) == "stop"
    assert enrolment_tally(engine, "opted_out") == 1
    [reply] = wa.to(NUMBER)
    assert "MULAI" in reply
    assert wa.to(OTHER_NUMBER) == []
    # Already on this OPD's list: the same refusal as for anyone listed there.
    assert _coordinator_enrol(client, engine, "0812-9876-5432") == 409


def test_stop_from_a_number_that_is_not_enrolled_still_suppresses(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    say(client, settings, "BERHENTI SPI")
    assert suppression(engine, vault) == "stop"
    assert enrolment_tally(engine, "opted_out") == 0
    with session_scope(engine) as s:
        listed = enrolment_service.enrol(
            s,
            vault=vault,
            actor=cli_principal(),
            opd=opd_service.get_by_code(s, code=opd),
            phone=NUMBER,
            label=None,
            consent_method="paper_form",
            consent_recorded_at=None,
            notice_version="2026-1",
            regions=frozenset({"ID"}),
        )
        assert listed.phone_ciphertext is None  # listed, but the number is not kept
    assert len(wa.to(NUMBER)) == 1


def test_stop_button_and_quick_reply_taps_are_stops(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    enrol_number(engine, vault, opd, NUMBER)
    enrol_number(engine, vault, opd, OTHER_NUMBER)
    send(client, settings, payloads.inbound(payloads.button(WA_ID, "Berhenti promosi")))
    send(
        client,
        settings,
        payloads.inbound(payloads.button_reply(OTHER_WA_ID, "Stop promotions", "stop-btn")),
    )
    assert suppression(engine, vault) == "stop"
    assert suppression(engine, vault, OTHER_NUMBER) == "stop"
    assert enrolment_tally(engine, "opted_out") == 2


def test_multi_word_near_miss_is_not_a_stop(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    mine = enrol_number(engine, vault, opd, NUMBER)
    say(client, settings, "jangan berhenti berdoa")
    say(client, settings, "STOPWATCH")
    assert enrolment(engine, mine).status == "active"
    assert suppression(engine, vault) is None


# -- MULAI --------------------------------------------------------------------------------


def test_mulai_after_stop_lifts_the_suppression(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    mine = enrol_number(engine, vault, opd, NUMBER)
    say(client, settings, "STOP")
    say(client, settings, "mulai")
    row = enrolment(engine, mine)
    assert row.status == "active"
    assert suppression(engine, vault) is None
    assert enrolment_tally(engine, "resumed") == 1
    assert "Dinas Kesehatan" in wa.to(NUMBER)[-1]
    say(client, settings, "MULAI")  # again: nothing more to do
    assert enrolment_tally(engine, "resumed") == 1
    assert "sudah terdaftar" in wa.to(NUMBER)[-1]


def test_mulai_without_anything_held_explains_how_to_join(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    say(client, settings, "STOP")
    say(client, settings, "Lanjut")
    assert suppression(engine, vault) is None  # its own STOP is lifted
    assert "DAFTAR" in wa.to(NUMBER)[-1]
    assert enrolments(engine) == []


def test_mulai_does_not_lift_an_erasure(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    enrol_number(engine, vault, opd, NUMBER)
    say(client, settings, "HAPUS")
    say(client, settings, "MULAI")
    assert suppression(engine, vault) == "erase"
    assert "DAFTAR" in wa.to(NUMBER)[-1]
    assert enrolments(engine) == []
    say(client, settings, "STOP")  # a weaker source never replaces the erasure
    assert suppression(engine, vault) == "erase"


# -- BANTUAN ------------------------------------------------------------------------------


def test_help_names_the_institution_the_keywords_and_how_to_check_the_invitation(
    client: TestClient, settings: Settings, wa: FakeWhatsApp
) -> None:
    say(client, settings, "bantuan")
    [reply] = wa.to(NUMBER)
    assert settings.institution_name in reply
    for word in ("BERHENTI", "MULAI", "DATA", "HAPUS", "DAFTAR", "198", "verifikasi", "OTP"):
        assert word in reply
    assert "situs resmi KPK" in reply


# -- DATA ---------------------------------------------------------------------------------


def test_data_shows_only_this_numbers_data_masked(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    add_opd(engine, "DISDIK", "Dinas Pendidikan")
    mine = enrol_number(engine, vault, opd, NUMBER, label="Bagian Umum")
    theirs = enrol_number(engine, vault, "DISDIK", OTHER_NUMBER, label="Rahasia Orang Lain")
    _, round_id = add_round_rows(engine, opd_code=opd)
    add_delivery_row(engine, round_id=round_id, enrolment_id=mine, state="delivered")
    add_delivery_row(engine, round_id=round_id, enrolment_id=theirs, state="delivered")
    say(client, settings, "DATA")
    [reply] = wa.to(NUMBER)
    assert "+62812****5432" in reply
    assert NUMBER not in reply
    assert WA_ID not in reply
    assert "Dinas Kesehatan" in reply
    assert "formulir kertas" in reply
    assert "Bagian Umum" in reply
    assert "Pengingat yang terkirim: 1" in reply
    assert "Daftar larangan kirim: tidak ada" in reply
    assert "Dinas Pendidikan" not in reply
    assert "Rahasia Orang Lain" not in reply
    assert "1112222" not in reply


def test_data_for_an_unknown_number_says_nothing_is_held(
    client: TestClient, settings: Settings, wa: FakeWhatsApp, opd: str
) -> None:
    say(client, settings, "data")
    [reply] = wa.to(NUMBER)
    assert "Tidak ada pendaftaran" in reply


# -- HAPUS --------------------------------------------------------------------------------


def test_hapus_erases_every_personal_datum_and_keeps_aggregates(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    mine = enrol_number(engine, vault, opd, NUMBER, label="Bagian Umum")
    other = enrol_number(engine, vault, opd, OTHER_NUMBER)
    _, round_id = add_round_rows(engine, opd_code=opd)
    _, round_2 = add_round_rows(engine, opd_code=opd)
    add_delivery_row(engine, round_id=round_id, enrolment_id=mine, state="delivered", wamid="w.1")
    queued = add_delivery_row(engine, round_id=round_2, enrolment_id=mine)
    kept = add_delivery_row(engine, round_id=round_id, enrolment_id=other, state="accepted")
    before = delivery_tallies(engine)
    say(client, settings, "Hapus data saya")

    assert [e.id for e in enrolments(engine)] == [other]  # the row itself is gone
    assert suppression(engine, vault) == "erase"
    with session_scope(engine) as s:
        remaining = s.exec(select(Delivery.public_id)).all()
    assert remaining == [kept]
    after = delivery_tallies(engine)
    # The queued one was never sent: it counts as skipped; nothing else moves.
    assert after == {**before, "skipped": before.get("skipped", 0) + 1}
    assert queued not in remaining
    assert enrolment_tally(engine, "erased") == 1
    assert enrolment_tally(engine, "enrolled") == 2
    assert "dihapus" in wa.to(NUMBER)[0]
    # DATA afterwards: nothing but the suppression state.
    say(client, settings, "DATA")
    assert "Tidak ada pendaftaran" in wa.to(NUMBER)[-1]
    assert "HAPUS Anda" in wa.to(NUMBER)[-1]
    # A coordinator may list it again, like any number; it is kept without its ciphertext.
    assert _coordinator_enrol(client, engine, NUMBER) == 201
    [again] = [e for e in enrolments(engine) if e.id != other]
    assert again.phone_ciphertext is None


# -- DAFTAR / YA --------------------------------------------------------------------------


def test_daftar_then_ya_enrols_with_whatsapp_consent_at_the_time_of_ya(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    say(client, settings, "DAFTAR dinkes")
    notice = wa.to(NUMBER)[-1]
    for part in ("Dinas Kesehatan", "YA", "24 jam", "HAPUS", "BERHENTI", "DATA", "terenkripsi"):
        assert part in notice
    assert settings.privacy_notice_version in notice
    assert enrolments(engine) == []
    with session_scope(engine) as s:
        pending = s.exec(select(PendingSignup)).one()
        assert pending.phone_index == vault.blind_index(NUMBER)
    before_ya = utcnow()
    say(client, settings, "Ya")
    [row] = enrolments(engine)
    assert row.status == "active"
    assert row.consent_method == "whatsapp"
    assert row.consent_recorded_by == "whatsapp:owner"
    assert before_ya <= row.consent_recorded_at <= utcnow()
    assert row.phone_index == vault.blind_index(NUMBER)
    assert enrolment_tally(engine, "enrolled") == 1
    assert "terdaftar" in wa.to(NUMBER)[-1]
    with session_scope(engine) as s:
        assert s.exec(select(func.count()).select_from(PendingSignup)).one() == 0
    say(client, settings, "DAFTAR DINKES")
    assert "sudah terdaftar" in wa.to(NUMBER)[-1]


def test_daftar_with_unknown_or_missing_code_is_helpful(
    client: TestClient, settings: Settings, engine: Engine, wa: FakeWhatsApp, opd: str
) -> None:
    say(client, settings, "DAFTAR DINKESS")
    assert "tidak kami kenal" in wa.to(NUMBER)[-1]
    say(client, settings, "daftar")
    assert "DAFTAR diikuti kode OPD" in wa.to(NUMBER)[-1]
    with session_scope(engine) as s:
        assert s.exec(select(func.count()).select_from(PendingSignup)).one() == 0


def test_ya_without_a_pending_daftar_is_ordinary_text(
    client: TestClient, settings: Settings, engine: Engine, wa: FakeWhatsApp, opd: str
) -> None:
    say(client, settings, "YA")
    assert enrolments(engine) == []
    assert "layanan otomatis" in wa.to(NUMBER)[-1]


def test_ya_after_24_hours_enrols_nothing(
    client: TestClient, settings: Settings, engine: Engine, wa: FakeWhatsApp, opd: str
) -> None:
    say(client, settings, "DAFTAR DINKES")
    with session_scope(engine) as s:
        s.execute(update(PendingSignup).values(expires_at=utcnow() - timedelta(minutes=1)))
    say(client, settings, "YA")
    assert enrolments(engine) == []
    assert "Batas waktu" in wa.to(NUMBER)[-1]


def test_daftar_and_ya_by_the_owner_lift_an_erasure(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    enrol_number(engine, vault, opd, NUMBER)
    say(client, settings, "HAPUS")
    say(client, settings, "DAFTAR DINKES")
    assert "sebelumnya dihapus" in wa.to(NUMBER)[-1]
    assert suppression(engine, vault) == "erase"  # nothing lifted before the YA
    say(client, settings, "YA")
    assert suppression(engine, vault) is None
    active = [e for e in enrolments(engine) if e.status == "active"]
    assert len(active) == 1
    assert active[0].consent_method == "whatsapp"


def test_daftar_after_stop_lifts_it_and_lists_the_number_in_the_new_opd(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    add_opd(engine, "DISDIK", "Dinas Pendidikan")
    old = enrol_number(engine, vault, opd, NUMBER, label="Bagian Umum")
    _, round_id = add_round_rows(engine, opd_code=opd)
    sent = add_delivery_row(engine, round_id=round_id, enrolment_id=old, state="delivered")
    say(client, settings, "STOP")
    say(client, settings, "DAFTAR DISDIK")
    assert "meminta berhenti" in wa.to(NUMBER)[-1]
    say(client, settings, "YA")
    assert suppression(engine, vault) is None
    kept, new = enrolments(engine)
    assert kept.id == old  # the coordinator's row is left as they made it
    assert kept.consent_method == "paper_form"
    assert kept.label_ciphertext is not None
    assert new.consent_method == "whatsapp"
    assert new.label_ciphertext is None
    # Budget and de-duplication go by blind index, so the history keeps counting (inv. 9).
    assert new.phone_index == kept.phone_index
    assert delivery(engine, sent) is not None
    assert "Dinas Pendidikan" in wa.to(NUMBER)[-1]
    assert enrolment_tally(engine, "enrolled") == 2


def test_stop_cancels_a_pending_daftar(
    client: TestClient, settings: Settings, engine: Engine, wa: FakeWhatsApp, opd: str
) -> None:
    say(client, settings, "DAFTAR DINKES")
    say(client, settings, "batal")
    say(client, settings, "YA")
    assert enrolments(engine) == []


def test_ya_from_a_number_that_cannot_be_enrolled_is_refused_politely(
    client: TestClient, settings: Settings, engine: Engine, wa: FakeWhatsApp, opd: str
) -> None:
    us_number = "16505551234"
    say(client, settings, "DAFTAR DINKES", wa_id=us_number)
    say(client, settings, "YA", wa_id=us_number)
    assert enrolments(engine) == []
    assert "tidak dapat didaftarkan" in wa.to("+" + us_number)[-1]


# -- anything else ------------------------------------------------------------------------


def test_anything_else_gets_one_neutral_reply_per_number_per_day(
    client: TestClient, settings: Settings, engine: Engine, wa: FakeWhatsApp, opd: str
) -> None:
    say(client, settings, "sudah isi pak")
    send(client, settings, payloads.inbound(payloads.media(WA_ID, "image", caption="bukti")))
    send(client, settings, payloads.inbound(payloads.media(WA_ID, "sticker")))
    send(client, settings, payloads.inbound(payloads.media(WA_ID, "audio")))
    say(client, settings, "jawaban saya A semua")
    [reply] = wa.to(NUMBER)
    assert "tidak disimpan" in reply
    assert "jawaban survei" in reply
    say(client, settings, "sudah", wa_id=OTHER_WA_ID)
    assert len(wa.to(OTHER_NUMBER)) == 1
    with session_scope(engine) as s:
        assert s.exec(select(func.count()).select_from(AutoReplyMarker)).one() == 2
    # Keywords are always answered, also after the day's neutral reply.
    say(client, settings, "BANTUAN")
    assert len(wa.to(NUMBER)) == 2


def test_a_redelivered_message_changes_nothing_twice(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    enrol_number(engine, vault, opd, NUMBER)
    for _ in range(3):
        say(client, settings, "STOP", msg_id="wamid.SAME-STOP")
    say(client, settings, "MULAI", msg_id="wamid.SAME-MULAI")
    for _ in range(2):
        say(client, settings, "STOP", msg_id="wamid.SAME-STOP")
    assert enrolment_tally(engine, "opted_out") == 1
    assert enrolment_tally(engine, "resumed") == 1
    assert suppression(engine, vault) is None
    assert len(wa.to(NUMBER)) == 2


# -- number changes and username-only senders ---------------------------------------------


def test_user_changed_number_moves_the_enrolment(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    mine = enrol_number(engine, vault, opd, NUMBER)
    send(client, settings, payloads.inbound(payloads.changed_number(WA_ID, OTHER_WA_ID)))
    row = enrolment(engine, mine)
    assert row.status == "active"
    assert row.phone_ciphertext is not None
    assert vault.decrypt(row.phone_ciphertext) == OTHER_NUMBER
    assert row.phone_index == vault.blind_index(OTHER_NUMBER)
    assert wa.replies == []
    say(client, settings, "STOP", wa_id=OTHER_WA_ID)
    assert enrolment(engine, mine).status == "active"
    assert suppression(engine, vault, OTHER_NUMBER) == "stop"


def test_a_number_change_onto_a_suppressed_number_keeps_no_ciphertext(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    mine = enrol_number(engine, vault, opd, NUMBER)
    say(client, settings, "STOP", wa_id=OTHER_WA_ID)
    send(client, settings, payloads.inbound(payloads.changed_number(WA_ID, OTHER_WA_ID)))
    row = enrolment(engine, mine)
    assert row.status == "active"
    assert row.phone_ciphertext is None
    assert row.phone_index == vault.blind_index(OTHER_NUMBER)


def test_a_stop_carries_over_to_the_new_number(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    enrol_number(engine, vault, opd, NUMBER)
    say(client, settings, "STOP")
    send(client, settings, payloads.inbound(payloads.changed_number(WA_ID, OTHER_WA_ID)))
    assert suppression(engine, vault, OTHER_NUMBER) == "stop"
    say(client, settings, "MULAI", wa_id=OTHER_WA_ID)
    [row] = enrolments(engine)
    assert row.status == "active"
    assert row.phone_index == vault.blind_index(OTHER_NUMBER)


def test_username_only_sender_never_crashes_and_is_answered_when_possible(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    anonymous = payloads.text(None, "STOP")
    anonymous["from_user_id"] = "ID.13491208655302741918"
    send(
        client,
        settings,
        payloads.inbound(anonymous, contacts=[{"user_id": "ID.13491208655302741918"}]),
    )
    assert wa.replies == []
    known = payloads.text(None, "STOP")
    known["from_user_id"] = "ID.999"
    send(
        client,
        settings,
        payloads.inbound(known, contacts=[{"user_id": "ID.999", "wa_id": WA_ID}]),
    )
    assert suppression(engine, vault) == "stop"
    assert len(wa.to(NUMBER)) == 1


# -- WhatsApp's own marketing preference --------------------------------------------------


def test_user_preferences_stop_and_resume(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    mine = enrol_number(engine, vault, opd, NUMBER)

    def preference(value: str) -> dict:  # type: ignore[type-arg]
        return payloads.preference(WA_ID, value)

    send(client, settings, preference("stop"))
    assert suppression(engine, vault) == "marketing_optout"
    assert enrolment(engine, mine).status == "active"
    send(client, settings, preference("resume"))
    assert suppression(engine, vault) is None
    assert enrolment_tally(engine, "resumed") == 1
    say(client, settings, "STOP")
    send(client, settings, preference("resume"))  # never lifts the employee's own STOP
    assert suppression(engine, vault) == "stop"
    assert wa.to(NUMBER)
    assert all("MULAI" in r for r in wa.to(NUMBER))


def test_enrolment_rows_hold_no_plain_number(
    engine: Engine, vault: PhoneVault, client: TestClient, settings: Settings, opd: str
) -> None:
    enrol_number(engine, vault, opd, NUMBER)
    with session_scope(engine) as s:
        rows = s.exec(select(Enrolment.phone_ciphertext)).all()
    assert all(r is not None and NUMBER not in r for r in rows)
