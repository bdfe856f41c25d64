"""The configurable Indonesian reply texts: loaded once, checked to hold no link, filled in."""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from app.config import Settings
from app.templates.neutrality import check_text

DEFAULT_FILE = Path(__file__).with_name("replies_id.yaml")

REQUIRED_KEYS = frozenset(
    {
        "stop",
        "resume_done",
        "resume_already_active",
        "resume_not_enrolled",
        "resume_erased",
        "help",
        "data_header",
        "data_enrolment",
        "data_label",
        "data_label_hidden",
        "data_unreachable",
        "data_none",
        "data_pending",
        "data_suppression",
        "data_footer",
        "consent_paper_form",
        "consent_digital_form",
        "consent_whatsapp",
        "status_active",
        "status_opted_out",
        "suppression_none",
        "suppression_stop",
        "suppression_marketing_optout",
        "suppression_erase",
        "erase",
        "signup_usage",
        "signup_unknown_code",
        "signup_already_enrolled",
        "signup_notice",
        "signup_note_erased",
        "signup_note_stopped",
        "confirm_done",
        "confirm_expired",
        "confirm_not_eligible",
        "auto_reply",
    }
)


class RepliesConfigError(RuntimeError):
    """The reply file is missing a text, or a text contains a link."""


def has_link(text: str) -> bool:
    """Whether the text holds anything WhatsApp could turn into a link."""
    return any(f.family == "link" for f in check_text(text).findings)


class Replies:
    """Reply texts by key; `render` fills the {fields} and never returns a link."""

    def __init__(self, texts: Mapping[str, str]) -> None:
        missing = REQUIRED_KEYS - texts.keys()
        if missing:
            raise RepliesConfigError(f"reply texts missing: {', '.join(sorted(missing))}")
        for key, text in texts.items():
            if not isinstance(text, str):
                raise RepliesConfigError(f"reply text {key!r} is not a string")
            if has_link(text):
                raise RepliesConfigError(f"reply text {key!r} contains a link")
            for _, field, _, _ in string.Formatter().parse(text):
                if field is not None and not field.isidentifier():
                    raise RepliesConfigError(f"reply text {key!r} has a bad field {field!r}")
        self._texts = dict(texts)

    def text(self, key: str) -> str:
        """A fixed text as configured."""
        return self._texts[key]

    def render(self, key: str, **values: Any) -> str:
        """A text with its fields filled in; refuses to produce a link."""
        rendered = self._texts[key].format_map(_Defaulting(values))
        if has_link(rendered):
            # A value (e.g. an OPD name) brought in a link: drop the values rather than send it.
            rendered = self._texts[key].format_map(_Defaulting({}))
        return rendered


class _Defaulting(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "-"


def load(path: Path) -> Replies:
    """Read and check a reply file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise RepliesConfigError(f"{path.name}: expected a mapping of key to text")
    return Replies({str(k): v for k, v in data.items()})


@functools.cache
def _load_cached(path: str) -> Replies:
    return load(Path(path))


def for_settings(settings: Settings) -> Replies:
    """The replies configured for this deployment (the packaged Indonesian texts by default)."""
    configured = settings.webhook_replies_file
    return _load_cached(str(configured or DEFAULT_FILE))
