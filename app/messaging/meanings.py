"""What a Meta error code means for the service, for a send answer and a status webhook alike.

Callers outside `messaging/` read these fields and never compare codes themselves: adding a Meta
error class means adding it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

NOT_ON_WHATSAPP_CODE = 131026
MARKETING_STOPPED_CODE = 131050
# WhatsApp declined to deliver to this person (their settings, Meta's limits, the ecosystem
# protection of 131049), as opposed to the number not being on WhatsApp or a fault on our side.
_REFUSED_CODES = frozenset({131047, 131049, MARKETING_STOPPED_CODE, 130472})
# Codes that mean the whole sender (app, account or number) is over a limit, not one pair.
_SENDER_THROTTLE_CODES = frozenset({4, 80007, 130429, 131057})


class FailureClass(StrEnum):
    """Why a message failed for good, in the vocabulary of the aggregate counters."""

    NOT_ON_WHATSAPP = "failed_not_on_whatsapp"
    REFUSED = "failed_refused"
    OTHER = "failed_other"


@dataclass(frozen=True, slots=True)
class ErrorMeaning:
    """What one Meta error code implies, independent of where it was reported."""

    failure_class: FailureClass
    # The number cannot be reached on WhatsApp: keep it out of later rounds.
    not_on_whatsapp: bool
    # The person stopped marketing messages from us: treat it like their own STOP.
    stopped_marketing: bool
    # The whole sender is over a limit: every send should pause a moment.
    throttles_sender: bool


def meaning_of(code: int | None) -> ErrorMeaning:
    """The service's reading of a Meta error code (None: no code given)."""
    if code == NOT_ON_WHATSAPP_CODE:
        failure = FailureClass.NOT_ON_WHATSAPP
    elif code in _REFUSED_CODES:
        failure = FailureClass.REFUSED
    else:
        failure = FailureClass.OTHER
    return ErrorMeaning(
        failure_class=failure,
        not_on_whatsapp=code == NOT_ON_WHATSAPP_CODE,
        stopped_marketing=code == MARKETING_STOPPED_CODE,
        throttles_sender=code in _SENDER_THROTTLE_CODES,
    )
