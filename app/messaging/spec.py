"""Validate wire payloads against Meta's vendored Business Messaging OpenAPI spec.

Schemas are never copied: each validator is an OAS 3.1 validator whose root is a `$ref`
into the whole spec document, registered under a private URI, so every nested `$ref`
resolves inside Meta's own document.

One erratum is corrected in memory (the file on disk is untouched): Meta writes closed
message types as `allOf: [BaseMessageProperties, {additionalProperties: false, ...}]`.
In JSON Schema 2020-12 that `additionalProperties` only sees its own branch, so no text
message (not even Meta's own examples) can ever validate. The intent, "no properties
beyond the composed ones", is `unevaluatedProperties: false` on the composed schema,
which is what the correction writes.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from openapi_schema_validator import OAS31Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).parent / "spec" / "business-messaging-api_v23.0.yaml"
MESSAGES_PATH = "/{Version}/{Phone-Number-ID}/messages"
_SPEC_URI = "urn:meta:whatsapp:business-messaging-api:v23.0"
_SCHEMA_PREFIX = "#/components/schemas/"
_MAX_MESSAGE_CHARS = 240


@functools.cache
def load_spec() -> dict[str, Any]:
    """Meta's spec exactly as vendored, parsed once; callers must not mutate it."""
    with SPEC_PATH.open("rb") as f:
        document: dict[str, Any] = yaml.load(f, Loader=yaml.CSafeLoader)
    return document


def _close_composed_objects(node: Any) -> int:
    """Move allOf-branch `additionalProperties: false` to the parent as unevaluated."""
    fixed = 0
    if isinstance(node, dict):
        branches = node.get("allOf")
        if isinstance(branches, list):
            for branch in branches:
                if isinstance(branch, dict) and branch.get("additionalProperties") is False:
                    del branch["additionalProperties"]
                    node.setdefault("unevaluatedProperties", False)
                    fixed += 1
        for key, child in node.items():
            if key not in ("example", "examples"):
                fixed += _close_composed_objects(child)
    elif isinstance(node, list):
        for child in node:
            fixed += _close_composed_objects(child)
    return fixed


@functools.cache
def _document(corrected: bool) -> dict[str, Any]:
    raw = load_spec()
    if not corrected:
        return raw
    schemas = copy.deepcopy(raw["components"]["schemas"])
    _close_composed_objects(schemas)
    return {**raw, "components": {**raw["components"], "schemas": schemas}}


@functools.cache
def _registry(corrected: bool) -> Registry[Any]:
    resource = DRAFT202012.create_resource(_document(corrected))
    return Registry().with_resource(_SPEC_URI, resource)


def schema_names() -> frozenset[str]:
    """Names under components.schemas in the vendored spec."""
    return frozenset(load_spec()["components"]["schemas"])


@functools.cache
def validator_for(schema_name: str, *, corrected: bool = True) -> Validator:
    """OAS 3.1 validator for a named component schema, refs resolved in the whole spec."""
    if schema_name not in schema_names():
        raise KeyError(f"no schema {schema_name!r} in components.schemas")
    root = {"$ref": f"{_SPEC_URI}{_SCHEMA_PREFIX}{schema_name}"}
    validator: Validator = OAS31Validator(root, registry=_registry(corrected))
    return validator


def request_schema_name(path: str, method: str = "post") -> str:
    """Component schema name that an operation's JSON requestBody references."""
    operation = load_spec()["paths"][path][method]
    ref: str = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    if not ref.startswith(_SCHEMA_PREFIX):
        raise ValueError(f"unexpected requestBody $ref {ref!r}")
    return ref.removeprefix(_SCHEMA_PREFIX)


def _describe(error: ValidationError, prefix: str) -> str:
    # oneOf/anyOf failures nest the useful reason in .context; best_match digs it out.
    best = best_match([error]) or error
    where = "/".join(str(p) for p in (*([prefix] if prefix else []), *best.absolute_path))
    message = best.message
    if best.validator in ("oneOf", "anyOf"):
        # The default text repeats the whole instance; say what failed instead.
        message = f"matches none of the {best.validator} alternatives"
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[: _MAX_MESSAGE_CHARS - 3] + "..."
    return f"{where or '(root)'}: {message}"


def validate_against(schema_name: str, instance: Any, *, prefix: str = "") -> list[str]:
    """Error messages for `instance` against a named component schema ([] = valid)."""
    errors: Iterator[ValidationError] = validator_for(schema_name).iter_errors(instance)
    return [_describe(e, prefix) for e in sorted(errors, key=lambda e: list(map(str, e.path)))]


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = load_spec()["components"]["schemas"][name]
    return schema


def _mapped_schema(base: str, instance: Any) -> str | None:
    """Schema name that `base`'s discriminator mapping picks for `instance`, if any."""
    discriminator = _schema(base).get("discriminator") or {}
    if not isinstance(instance, dict):
        return None
    ref = (discriminator.get("mapping") or {}).get(instance.get(discriminator.get("propertyName")))
    if isinstance(ref, str) and ref.startswith(_SCHEMA_PREFIX):
        return ref.removeprefix(_SCHEMA_PREFIX)
    return None


def _items_schema(schema_name: str, prop: str) -> str | None:
    """Schema name referenced by `properties[prop].items` in a schema or its allOf parts."""
    schema = _schema(schema_name)
    for part in (schema, *schema.get("allOf", [])):
        items = part.get("properties", {}).get(prop, {}).get("items", {})
        ref = items.get("$ref")
        if isinstance(ref, str) and ref.startswith(_SCHEMA_PREFIX):
            return ref.removeprefix(_SCHEMA_PREFIX)
    return None


def _follow_discriminator(base: str, instance: Any, where: str) -> tuple[list[str], str | None]:
    target = _mapped_schema(base, instance)
    if target is None:
        return [f"{where}: no schema in {base}'s discriminator for this 'type'"], None
    return validate_against(target, instance, prefix=where), target


def _template_part_errors(template: Any) -> list[str]:
    # OAS 3.1 makes `discriminator` annotation-only, so the per-type component and
    # parameter schemas Meta maps to would otherwise never be applied.
    errors: list[str] = []
    components = template.get("components") if isinstance(template, dict) else None
    for i, component in enumerate(components if isinstance(components, list) else []):
        where = f"template/components/{i}"
        found, target = _follow_discriminator("TemplateComponent", component, where)
        errors += found
        param_base = _items_schema(target, "parameters") if target else None
        params = component.get("parameters") if isinstance(component, dict) else None
        if param_base is None or not isinstance(params, list):
            continue
        for j, param in enumerate(params):
            errors += _follow_discriminator(param_base, param, f"{where}/parameters/{j}")[0]
    return errors


def validate_message_body(body: dict[str, Any]) -> list[str]:
    """Error messages for a POST /messages body against Meta's request schema ([] = valid)."""
    schema_name = request_schema_name(MESSAGES_PATH)
    errors = validate_against(schema_name, body)
    if errors:
        # Report the branch the body claims to be, not every oneOf alternative.
        branch = _mapped_schema(schema_name, body)
        if branch is None:
            mapping = _schema(schema_name).get("discriminator", {}).get("mapping", {})
            return [*errors, f"type: {body.get('type')!r} is not one of {sorted(mapping)}"]
        return validate_against(branch, body) or errors
    if body.get("type") == "template":
        errors += _template_part_errors(body.get("template"))
    return errors


# --- whole operations (request and answer bodies of the account and template calls) --------

PHONE_NUMBER_PATH = "/{Version}/{Phone-Number-ID}"
TEMPLATES_PATH = "/{Version}/{WABA-ID}/message_templates"
TEMPLATE_PATH = "/{Version}/{TEMPLATE_ID}"
SUBSCRIBED_APPS_PATH = "/{Version}/{WABA-ID}/subscribed_apps"
WEBHOOK_PATH = "/whatsapp/webhooks"
_JSON = "application/json"


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@functools.cache
def _validator_at(pointer: str) -> Validator:
    # Meta writes several operations' schemas inline: validate them where they stand.
    validator: Validator = OAS31Validator(
        {"$ref": f"{_SPEC_URI}{pointer}"}, registry=_registry(True)
    )
    return validator


def _errors_at(pointer: str, instance: Any, prefix: str = "") -> list[str]:
    errors = _validator_at(pointer).iter_errors(instance)
    return [_describe(e, prefix) for e in sorted(errors, key=lambda e: list(map(str, e.path)))]


def validate_request(path: str, method: str, body: Any) -> list[str]:
    """Errors of a request body against an operation's JSON requestBody schema."""
    return _errors_at(
        _pointer("paths", path, method, "requestBody", "content", _JSON, "schema"), body
    )


def validate_response(path: str, method: str, body: Any, *, status: str = "200") -> list[str]:
    """Errors of an answer body against an operation's JSON response schema for `status`."""
    return _errors_at(
        _pointer("paths", path, method, "responses", status, "content", _JSON, "schema"), body
    )


def validate_template_creation(body: Any) -> list[str]:
    """Errors of a POST /{WABA-ID}/message_templates body.

    The request schema says little about a component; the template read schema (GET
    /{TEMPLATE_ID}) describes one fully, `example.body_text` included, so each component is
    checked against that too.
    """
    errors = validate_request(TEMPLATES_PATH, "post", body)
    component = _pointer(
        "paths", TEMPLATE_PATH, "get", "responses", "200", "content", _JSON, "schema",
        "properties", "components", "items",
    )  # fmt: skip
    components = body.get("components") if isinstance(body, dict) else None
    for i, item in enumerate(components if isinstance(components, list) else []):
        errors += _errors_at(component, item, prefix=f"components/{i}")
    return errors


# Meta composes every inbound message type from `BaseMessageProperties`, the *outbound* base
# (it requires `to` and `recipient_type`), and maps `text` to the outbound TextMessage, so no
# inbound message validates, not even Meta's own examples. An inbound text is checked against
# its own branch of the inbound schema, with the envelope around it against WebhookPayload.
_INBOUND_TEXT = _pointer("components", "schemas", "TextMessage_2", "allOf", "1")
_INBOUND_SENDER_KEYS = ("from", "id", "timestamp")


def validate_inbound_text_webhook(payload: Any) -> list[str]:
    """Errors of a webhook body carrying inbound text messages (as the sandbox sends them)."""
    if not isinstance(payload, dict):
        return ["(root): not an object"]
    envelope = copy.deepcopy(payload)
    messages: list[tuple[str, Any]] = []
    for e, entry in enumerate(envelope.get("entry") or []):
        for c, change in enumerate(entry.get("changes") or [] if isinstance(entry, dict) else []):
            value = change.get("value") if isinstance(change, dict) else None
            if isinstance(value, dict) and isinstance(value.get("messages"), list):
                where = f"entry/{e}/changes/{c}/value/messages"
                messages += [(f"{where}/{m}", item) for m, item in enumerate(value["messages"])]
                value["messages"] = []
    errors = validate_against("WebhookPayload", envelope)
    for where, message in messages:
        errors += _errors_at(_INBOUND_TEXT, message, prefix=where)
        for key in _INBOUND_SENDER_KEYS:
            if not isinstance(message, dict) or not isinstance(message.get(key), str):
                errors.append(f"{where}/{key}: must be a string (as in Meta's examples)")
    return errors
