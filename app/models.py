"""Imports every table so that Alembic and the test suite see the whole schema."""

from app.audit.models import AuditEvent
from app.auth.models import ApiToken
from app.enrolment.models import Enrolment, EnrolmentTally, Suppression
from app.opds.models import Opd

__all__ = ["ApiToken", "AuditEvent", "Enrolment", "EnrolmentTally", "Opd", "Suppression"]
