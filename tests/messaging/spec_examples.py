"""Meta's own webhook examples, read from the vendored spec (for tests only)."""

from __future__ import annotations

import copy
from typing import Any

from app.messaging.spec import load_spec

WEBHOOKS_PATH = "/whatsapp/webhooks"


def webhook_examples() -> list[tuple[str, dict[str, Any]]]:
    """(name, payload) pairs from paths./whatsapp/webhooks.post.requestBody examples."""
    content = load_spec()["paths"][WEBHOOKS_PATH]["post"]["requestBody"]["content"]
    examples = content["application/json"]["examples"]
    return [(name, copy.deepcopy(example["value"])) for name, example in examples.items()]
