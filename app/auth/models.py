"""API tokens and user accounts: secrets kept only as hashes; coordinators bound to one OPD."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class Role(StrEnum):
    admin = "admin"
    coordinator = "coordinator"
    inspectorate = "inspectorate"


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80)
    role: str = Field(sa_column=Column(String(20), nullable=False))
    opd_id: int | None = Field(default=None, foreign_key="opd.id", index=True)
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SessionStage(StrEnum):
    """How far a browser session got: only `full` sessions reach any page behind the login."""

    full = "full"
    second_factor = "second_factor"  # password right, TOTP code still to come
    enrol_second_factor = "enrol_second_factor"  # must set up TOTP before anything else


class UserAccount(SQLModel, table=True):
    """A person who logs in to the pages; the password is set by the person, never by an admin."""

    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_column=Column(String(40), nullable=False, unique=True))
    display_name: str = Field(max_length=80)
    role: str = Field(sa_column=Column(String(20), nullable=False))
    opd_id: int | None = Field(default=None, foreign_key="opd.id", index=True)
    password_hash: str | None = Field(default=None, sa_column=Column(String(255)))
    # TOTP secrets are encrypted with the vault like phone numbers; never logged or shown again.
    totp_secret: str | None = Field(default=None, sa_column=Column(String(255)))
    totp_pending: str | None = Field(default=None, sa_column=Column(String(255)))
    # The last 30-second step a code was accepted for: a code is good once (no replay).
    totp_last_step: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserInvitation(SQLModel, table=True):
    """A one-time link an admin hands to a new user; stored only as a hash."""

    __tablename__ = "user_invitation"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserSession(SQLModel, table=True):
    """A browser session held on the server: logout or revocation ends it at the next request."""

    __tablename__ = "user_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    user_id: int = Field(foreign_key="user_account.id", index=True)
    stage: str = Field(sa_column=Column(String(24), nullable=False))
    csrf: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginThrottle(SQLModel, table=True):
    """Recent failed logins per username (hashed), shared by every API replica."""

    __tablename__ = "login_throttle"

    key_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    failures: int = Field(default=0)
    last_failure_at: datetime = Field(sa_type=UTCDateTime)
    blocked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
