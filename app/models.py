"""Imports every table so that Alembic and the test suite see the whole schema."""

from app.audit.models import AuditEvent
from app.auth.models import ApiToken, LoginThrottle, UserAccount, UserInvitation, UserSession
from app.campaigns.models import Campaign, CampaignOpd, Round
from app.enrolment.models import Enrolment, EnrolmentTally, Suppression
from app.opds.models import Opd
from app.outbox.models import Delivery, DeliveryTally
from app.sender.models import SenderAlert, SenderState
from app.templates.models import MessageTemplate, TemplateLifecycle
from app.webhook.models import AutoReplyMarker, InboundSeen, PendingSignup

__all__ = [
    "ApiToken",
    "AuditEvent",
    "AutoReplyMarker",
    "Campaign",
    "CampaignOpd",
    "Delivery",
    "DeliveryTally",
    "Enrolment",
    "EnrolmentTally",
    "InboundSeen",
    "LoginThrottle",
    "MessageTemplate",
    "Opd",
    "PendingSignup",
    "Round",
    "SenderAlert",
    "SenderState",
    "Suppression",
    "TemplateLifecycle",
    "UserAccount",
    "UserInvitation",
    "UserSession",
]
