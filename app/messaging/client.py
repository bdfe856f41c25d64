"""Async WhatsApp Cloud API client: template and text sends, template listing."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict
from urllib.parse import urlsplit

import httpx

from app.messaging.results import (
    SendOutcome,
    SendResult,
    classify_response,
    classify_transport_error,
)
from app.messaging.wire import (
    messages_path,
    template_message_body,
    templates_path,
    text_message_body,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v23.0"
TEMPLATE_PAGE_SIZE = 100
MAX_TEMPLATE_PAGES = 100
_TEMPLATE_FIELDS = "name,language,category,status,components"


@dataclass(frozen=True, kw_only=True)
class GraphConfig:
    """Where and as whom to call the Graph API; secrets are kept out of repr()."""

    base_url: str = DEFAULT_BASE_URL
    api_version: str = DEFAULT_API_VERSION
    phone_number_id: str
    waba_id: str
    access_token: str = field(repr=False)
    # When set, every call carries appsecret_proof (needed if the app requires it).
    app_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError("base_url must be an absolute http(s) URL")
        if not self.access_token:
            raise ValueError("access_token must not be empty")
        # Fail at start-up, not on the first send, if an id or the version is malformed.
        messages_path(self.api_version, self.phone_number_id)
        templates_path(self.api_version, self.waba_id)


class TemplateInfo(TypedDict):
    """One message template as listed by the WABA."""

    name: str
    language: str
    category: str
    status: str
    body: str | None


class GraphApiError(Exception):
    """Raised by list_templates only; sends report failures as a SendResult instead."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(f"Graph API call failed: {result.reason}")
        self.result = result


def build_http_client(
    *, base_url: str, connect_timeout: float, read_timeout: float, max_connections: int
) -> httpx.AsyncClient:
    """Shared AsyncClient with explicit timeouts and a pool sized to the send concurrency."""
    timeout = httpx.Timeout(
        connect=connect_timeout, read=read_timeout, write=read_timeout, pool=read_timeout
    )
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.AsyncClient(
        base_url=base_url, timeout=timeout, limits=limits, follow_redirects=False
    )


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def answered_payload(response: httpx.Response) -> Any:
    """The JSON body of a Graph answer; GraphApiError for an error status or an error body."""
    payload = _json_or_none(response)
    if response.status_code != 200 or (isinstance(payload, dict) and "error" in payload):
        raise GraphApiError(
            classify_response(
                response.status_code,
                payload,
                retry_after_header=response.headers.get("retry-after"),
            )
        )
    return payload


class WhatsAppClient:
    """Sends WhatsApp messages through a shared httpx.AsyncClient; never raises on sends."""

    def __init__(self, http: httpx.AsyncClient, config: GraphConfig) -> None:
        self._http = http
        self._config = config
        self._base = config.base_url.rstrip("/")

    @property
    def config(self) -> GraphConfig:
        """The Graph configuration this client uses."""
        return self._config

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._config.access_token}",
            "Accept": "application/json",
        }

    def _signed(self, url: httpx.URL) -> httpx.URL:
        # Merge explicitly: httpx replaces a URL's whole query when given params=.
        if not self._config.app_secret:
            return url
        proof = hmac.new(
            self._config.app_secret.encode(), self._config.access_token.encode(), hashlib.sha256
        ).hexdigest()
        return url.copy_merge_params({"appsecret_proof": proof})

    async def send_template(
        self,
        *,
        to: str,
        template_name: str,
        language: str,
        parameters: Sequence[str],
        callback_data: str,
    ) -> SendResult:
        """Send an approved template with positional body parameters."""
        try:
            body = template_message_body(
                to=to,
                template_name=template_name,
                language=language,
                parameters=parameters,
                callback_data=callback_data,
            )
        except ValueError:
            return self._rejected_locally(template_name)
        return await self._post_message(body, label=template_name)

    async def send_text(self, *, to: str, body: str) -> SendResult:
        """Send a free-form text reply (only inside the 24 h customer-service window)."""
        try:
            payload = text_message_body(to=to, body=body)
        except ValueError:
            return self._rejected_locally("text")
        return await self._post_message(payload, label="text")

    def _rejected_locally(self, label: str) -> SendResult:
        result = SendResult(SendOutcome.FAILED, "invalid_request")
        self._log(result, label=label)
        return result

    async def _post_message(self, body: dict[str, Any], *, label: str) -> SendResult:
        path = messages_path(self._config.api_version, self._config.phone_number_id)
        try:
            response = await self._http.post(
                self._signed(httpx.URL(self._base + path)), json=body, headers=self._headers()
            )
        except httpx.TransportError as exc:
            result = classify_transport_error(exc)
        else:
            result = classify_response(
                response.status_code,
                _json_or_none(response),
                retry_after_header=response.headers.get("retry-after"),
            )
        self._log(result, label=label)
        return result

    def _log(self, result: SendResult, *, label: str) -> None:
        level = {
            SendOutcome.ACCEPTED: logging.DEBUG,
            SendOutcome.RETRY: logging.INFO,
            SendOutcome.FAILED: logging.INFO,
        }.get(result.outcome, logging.WARNING)
        # No number, not even masked: a reply's line would follow the keyword it answers.
        logger.log(
            level,
            "whatsapp send %s outcome=%s reason=%s code=%s status=%s",
            label,
            result.outcome.value,
            result.reason,
            result.error_code,
            result.http_status,
        )

    async def list_templates(self) -> list[TemplateInfo]:
        """All templates of the WABA, following paging.next; raises GraphApiError on failure."""
        path = templates_path(self._config.api_version, self._config.waba_id)
        query = {"fields": _TEMPLATE_FIELDS, "limit": str(TEMPLATE_PAGE_SIZE)}
        url = httpx.URL(self._base + path, params=query)
        templates: list[TemplateInfo] = []
        seen: set[str] = set()
        for _ in range(MAX_TEMPLATE_PAGES):
            page = await self._get_page(self._signed(url))
            items = page["data"]
            templates.extend(_template_info(item) for item in items if isinstance(item, dict))
            paging = page.get("paging")
            next_url = paging.get("next") if isinstance(paging, dict) else None
            if not isinstance(next_url, str) or not next_url or next_url in seen:
                return templates
            if urlsplit(next_url)[:2] != urlsplit(self._base)[:2]:
                # The bearer token must never be sent to a host we were not configured for.
                raise GraphApiError(SendResult(SendOutcome.HALT, "foreign_paging_url"))
            seen.add(next_url)
            # The next URL already carries fields, limit and the cursor.
            url = httpx.URL(next_url)
        raise GraphApiError(SendResult(SendOutcome.HALT, "too_many_template_pages"))

    async def _get_page(self, url: httpx.URL) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers=self._headers())
        except httpx.TransportError as exc:
            raise GraphApiError(classify_transport_error(exc)) from exc
        payload = answered_payload(response)
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise GraphApiError(
                SendResult(SendOutcome.UNKNOWN, "unparseable_listing", http_status=200)
            )
        return payload


def _template_info(item: dict[str, Any]) -> TemplateInfo:
    body: str | None = None
    components = item.get("components")
    for component in components if isinstance(components, list) else []:
        if isinstance(component, dict) and str(component.get("type", "")).upper() == "BODY":
            text = component.get("text")
            body = text if isinstance(text, str) else None
            break
    return TemplateInfo(
        name=str(item.get("name", "")),
        language=str(item.get("language", "")),
        category=str(item.get("category", "")),
        status=str(item.get("status", "")),
        body=body,
    )
