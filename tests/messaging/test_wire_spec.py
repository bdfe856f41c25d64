"""Wire bodies checked against Meta's vendored OpenAPI spec, and the validator itself."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from app.messaging import spec
from app.messaging.wire import template_message_body, text_message_body
from app.security import mask_phone
from tests.messaging.spec_examples import webhook_examples

SHARED_SPEC = Path("/work/shared/whatsapp/business-messaging-api_v23.0.yaml")
TO = "+6281234567890"


def reminder(parameters: list[str]) -> dict[str, Any]:
    """A template body as the client builds it."""
    return template_message_body(
        to=TO,
        template_name="pengingat_spi",
        language="id",
        parameters=parameters,
        callback_data="dlv_01HZX",
    )


def meta_request_example(name: str) -> dict[str, Any]:
    """A named request example from Meta's POST /messages operation."""
    operation = spec.load_spec()["paths"][spec.MESSAGES_PATH]["post"]
    value: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["examples"][
        name
    ]["value"]
    return value


def test_vendored_spec_is_identical_to_shared_copy() -> None:
    if not SHARED_SPEC.exists():
        pytest.skip("shared spec copy not available")
    assert spec.SPEC_PATH.read_bytes() == SHARED_SPEC.read_bytes()


def test_messages_request_body_references_message_schema() -> None:
    assert spec.request_schema_name(spec.MESSAGES_PATH) == "Message"


@pytest.mark.parametrize(
    "parameters", [[], ["Budi"], ["Budi", "Senin, 08:00", "https://spi.kpk.go.id/s/abc"]]
)
def test_template_bodies_validate(parameters: list[str]) -> None:
    body = reminder(parameters)
    assert spec.validate_message_body(body) == []
    assert ("components" in body["template"]) is bool(parameters)
    if parameters:
        sent = body["template"]["components"][0]["parameters"]
        assert [p["text"] for p in sent] == parameters


def test_text_reply_validates() -> None:
    assert spec.validate_message_body(text_message_body(to=TO, body="Terima kasih.")) == []


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def _mutated(body: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    result = copy.deepcopy(body)
    target: Any = result
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return result


BASE = reminder(["Budi", "Senin"])
TEXT = text_message_body(to=TO, body="Halo")
BROKEN: dict[str, tuple[dict[str, Any], str]] = {
    "missing to": (_without(BASE, "to"), "'to' is a required property"),
    "unknown type": (_mutated(BASE, ("type",), "txt"), "is not one of"),
    "template sent as text": (_mutated(BASE, ("type",), "text"), "'text' is a required property"),
    "language without policy": (
        _mutated(BASE, ("template", "language"), {"code": "id"}),
        "'policy' is a required property",
    ),
    "parameter without text": (
        _mutated(BASE, ("template", "components", 0, "parameters", 1), {"type": "text"}),
        "'text' is a required property",
    ),
    "unknown component type": (
        _mutated(BASE, ("template", "components", 0, "type"), "bdy"),
        "'bdy' is not one of",
    ),
    "text with unknown field": ({**TEXT, "bogus": 1}, "'bogus' was unexpected"),
    "text body not a string": (_mutated(TEXT, ("text", "body"), 5), "is not of type 'string'"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_bodies_are_rejected(name: str) -> None:
    body, expected = BROKEN[name]
    errors = spec.validate_message_body(body)
    assert errors, f"{name} was accepted"
    assert any(expected in e for e in errors), errors


def test_erratum_correction_is_needed_and_narrow() -> None:
    example = meta_request_example("Send Text Message")
    # Unchanged, Meta's schema rejects even Meta's own text example.
    assert not spec.validator_for("Message", corrected=False).is_valid(example)
    assert spec.validate_message_body(example) == []
    # Template bodies do not depend on the correction.
    assert spec.validator_for("Message", corrected=False).is_valid(BASE)
    # The correction works on a copy; the parsed vendored document stays as Meta wrote it.
    raw_text = spec.load_spec()["components"]["schemas"]["TextMessage"]
    assert raw_text["allOf"][1]["additionalProperties"] is False


def test_validate_against_named_schemas() -> None:
    answer = {
        "messaging_product": "whatsapp",
        "contacts": [{"input": TO, "wa_id": "6281234567890"}],
        "messages": [{"id": "wamid.X", "message_status": "accepted"}],
    }
    assert spec.validate_against("MessageResponsePayload", answer) == []
    errors = spec.validate_against("MessageResponsePayload", {**answer, "messages": "wamid.X"})
    assert errors == ["messages: 'wamid.X' is not of type 'array'"]
    with pytest.raises(KeyError, match="NoSuchSchema"):
        spec.validate_against("NoSuchSchema", {})


def test_webhook_examples() -> None:
    examples = webhook_examples()
    names = [name for name, _ in examples]
    assert len(examples) == 16
    assert names[0] == "Text Message"
    assert "Interactive Button Reply Message" in names
    assert all(p["object"] == "whatsapp_business_account" for _, p in examples)
    text = examples[0][1]["entry"][0]["changes"][0]["value"]["messages"][0]
    assert text["text"]["body"] == "Does it come in another color?"
    # Callers get copies, so the cached spec cannot be altered through them.
    examples[0][1]["object"] = "changed"
    assert webhook_examples()[0][1]["object"] == "whatsapp_business_account"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"to": "081234567890"}, "E.164"),
        ({"to": "6281234567890"}, "E.164"),
        ({"parameters": ["Budi", ""]}, "non-empty"),
        ({"callback_data": ""}, "callback_data"),
        ({"callback_data": "x" * 513}, "callback_data"),
        ({"template_name": ""}, "template_name"),
    ],
)
def test_template_builder_rejects_bad_input(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {
        "to": TO,
        "template_name": "pengingat_spi",
        "language": "id",
        "parameters": ["Budi"],
        "callback_data": "dlv_1",
        **kwargs,
    }
    with pytest.raises(ValueError, match=match):
        template_message_body(**args)


def test_mask_phone() -> None:
    assert mask_phone("+6281234567890") == "+62812****7890"
    assert mask_phone("+62812") == "****"
