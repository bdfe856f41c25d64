"""Tests for phone normalisation and masking."""

from __future__ import annotations

import pytest

from app.enrolment.phones import InvalidPhone, mask_phone, normalise_phone

VALID: list[tuple[str | int | float, str]] = [
    ("0812-3456-7890", "+6281234567890"),
    ("081234567890", "+6281234567890"),
    ("6281234567890", "+6281234567890"),
    ("+6281234567890", "+6281234567890"),
    ("+62 812 3456 7890", "+6281234567890"),
    ("+62-812.3456.7890", "+6281234567890"),
    ("(0812) 3456 7890", "+6281234567890"),
    ("0812 3456 7890", "+6281234567890"),
    ("0812.3456.7890", "+6281234567890"),
    ("  0812-3456-7890\t", "+6281234567890"),
    ("+6208123456789", "+628123456789"),  # trunk 0 kept after the country code
    ("+62 (0) 812 3456 7890", "+6281234567890"),
    ("620812-3456-7890", "+6281234567890"),
    ("0062 812 3456 789", "+628123456789"),  # international prefix 00
    ("０８１２－３４５６－７８９０", "+6281234567890"),  # full-width digits
    ("\u202a+62 812-3456-7890\u202c", "+6281234567890"),  # direction marks from WhatsApp
    ("'081234567890", "+6281234567890"),  # Excel text apostrophe
    ('="081234567890"', "+6281234567890"),  # Excel text formula in a CSV
    ("0811-1919-4761", "+6281119194761"),
    ("0852 1234 5678", "+6285212345678"),
    ("0881-2345-67890", "+62881234567890"),  # 12 national digits, the maximum
    ("0812-345-678", "+62812345678"),  # 9 national digits, the minimum
    (6281234567890, "+6281234567890"),  # XLSX int
    (6281234567890.0, "+6281234567890"),  # XLSX float that kept every digit
    (81234567890, "+6281234567890"),  # numeric column dropped the leading 0
    (81234567890.0, "+6281234567890"),
    ("81234567890", "+6281234567890"),
    ("6281234567890.0", "+6281234567890"),
]

INVALID: list[tuple[str | int | float | None, str]] = [
    (None, "empty"),
    ("", "empty"),
    ("   \t ", "empty"),
    (float("nan"), "empty"),
    ("6.28123E+12", "excel_scientific"),
    ("6,28123E+12", "excel_scientific"),
    ("6.28123e12", "excel_scientific"),
    ("8,12346E+10", "excel_scientific"),
    ("021-5551234", "landline"),
    ("(021) 555 1234", "landline"),
    ("+62 21 1234 5678", "landline"),
    ("+65 9123 4567", "region_not_allowed"),  # Singapore mobile
    ("+1 202 555 0123", "region_not_allowed"),
    ("112", "short_code"),
    ("198", "short_code"),
    ("14045", "short_code"),
    ("110", "short_code"),
    ("bukan nomor", "unparseable"),
    ("0812-xxxx-7890", "unparseable"),
    ("0812 3456 7890 / 0813 1111 2222", "unparseable"),
    ("++62812345678", "unparseable"),
    (True, "unparseable"),
    (-81234567890, "unparseable"),
    (812.5, "unparseable"),
    ("0812345", "too_short"),
    ("+62812", "too_short"),
    ("0812345678901234", "too_long"),
    ("+628123456789012", "too_long"),
    ("+999 1234 5678", "invalid_country_code"),
    ("0800-1-234567", "not_mobile"),  # toll-free
    ("0809 1234 5678", "not_a_number"),
]


@pytest.mark.parametrize(("raw", "expected"), VALID, ids=[repr(v[0]) for v in VALID])
def test_valid_spellings_normalise_to_e164(raw: str | int | float, expected: str) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(("raw", "reason"), INVALID, ids=[repr(v[0]) for v in INVALID])
def test_invalid_values_are_refused_with_reason(raw: str | int | float | None, reason: str) -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalise_phone(raw)
    assert caught.value.reason == reason
    assert caught.value.message
    assert str(caught.value) == caught.value.message


def test_messages_do_not_echo_the_number() -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalise_phone("021-5551234")
    assert "5551234" not in str(caught.value)


def test_excel_scientific_message_tells_coordinator_to_use_text_format() -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalise_phone("6.28123E+12")
    assert "sebagai Teks" in caught.value.message
    assert "hilang" in caught.value.message


def test_foreign_mobile_accepted_when_region_allowed() -> None:
    regions = frozenset({"ID", "SG"})
    assert normalise_phone("+65 9123 4567", allowed_regions=regions) == "+6591234567"
    assert normalise_phone("0812-3456-7890", allowed_regions=regions) == "+6281234567890"


def test_region_not_allowed_names_accepted_regions() -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalise_phone("+6281234567890", allowed_regions=frozenset({"sg"}))
    assert caught.value.reason == "region_not_allowed"
    assert "SG" in caught.value.message


def test_foreign_landline_is_landline_when_region_allowed() -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalise_phone("+65 6234 5678", allowed_regions=frozenset({"SG"}))
    assert caught.value.reason == "landline"


def test_national_format_uses_default_region() -> None:
    result = normalise_phone("9123 4567", default_region="SG", allowed_regions=frozenset({"SG"}))
    assert result == "+6591234567"


def test_invalid_phone_is_a_value_error() -> None:
    assert issubclass(InvalidPhone, ValueError)
    assert InvalidPhone("landline", "custom").message == "custom"


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+6281234567890", "+62812****7890"),
        ("+62881234567890", "+62812****7890".replace("812", "881")),
        ("+628123456789", "+6281****6789"),
        ("+62812345678", "+628****5678"),
        ("+6591234567", "+65****4567"),
        ("081234567890", "****"),
        ("", "****"),
        ("+62 812 3456 7890", "****"),
        ("+62812", "****"),
    ],
)
def test_mask_phone(e164: str, masked: str) -> None:
    assert mask_phone(e164) == masked


def test_mask_always_hides_at_least_four_digits() -> None:
    for length in range(9, 16):
        e164 = "+" + "1234567890123456"[:length]
        masked = mask_phone(e164)
        hidden = len(e164) - (len(masked) - 4)
        assert hidden >= 4, (e164, masked)
        assert masked.endswith(e164[-4:])


def test_fast_path_agrees_with_libphonenumber(monkeypatch: pytest.MonkeyPatch) -> None:
    """The regex shortcut for Indonesian mobiles gives exactly what phonenumbers gives."""
    import random
    import re

    from app.enrolment import phones

    rng = random.Random(7)
    spellings = []
    for _ in range(3000):
        prefix = rng.choice(["08", "+628", "628", "0062 8", "+62 (0)8", "8"])
        rest = "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 13)))
        spellings.append(prefix + rest)

    def outcome(raw: str) -> str:
        try:
            return normalise_phone(raw)
        except InvalidPhone as exc:
            return f"invalid:{exc.reason}"

    fast = [outcome(raw) for raw in spellings]
    monkeypatch.setattr(phones, "_ID_MOBILE", re.compile(r"(?!)"))  # never matches
    slow = [outcome(raw) for raw in spellings]
    assert fast == slow
    assert sum(not r.startswith("invalid") for r in fast) > 500  # the sample exercises both
