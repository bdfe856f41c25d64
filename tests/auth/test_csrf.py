"""Every form of the dashboard and the console is refused without its CSRF value, and does nothing.

The forms are found from the routers (every POST route), so a new one is checked without being
listed here; each is posted in the state in which it would otherwise work.
"""

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import col, select

from app.audit.models import AuditEvent
from app.auth import users
from app.auth.models import Role
from app.db import session_scope
from app.enrolment.models import Enrolment, EnrolmentStatus
from app.security import PhoneVault
from tests.auth.helpers import PASSWORD, add_user, csrf_of, login, stored_user
from tests.auth.pages import arrange, fill, paths

LOGGED_OUT = ("/dashboard/login", "/dashboard/invitation/{key}")
SECOND_STEP = ("/dashboard/login/code",)
# Plausible fields for each form (everything but the CSRF value).
FIELDS = {
    "/dashboard/login": {"username": "x", "password": PASSWORD},
    "/dashboard/invitation/{key}": {"password": PASSWORD, "password_again": PASSWORD},
    "/dashboard/login/code": {"code": "123456"},
    "/dashboard/account/two-factor": {"code": "123456"},
    "/dashboard/users/new": {"username": "baru.sekali", "display_name": "B", "role": "admin"},
    "/console/opd/{code}/cari": {"nomor": "081234567890"},
    "/console/opd/{code}/tambah": {"nomor": "081299998888", "metode": "paper_form", "bukti": "ya"},
    "/console/opd/{code}/impor/periksa": {"metode_bawaan": "paper_form"},
}
UPLOAD = {"berkas": ("a.csv", b"Nomor HP\n081277776666\n", "text/csv")}


def _enrolments(engine: Engine) -> int:
    with session_scope(engine) as s:
        listed = select(func.count()).where(col(Enrolment.status) == EnrolmentStatus.active)
        return int(s.exec(listed).one())


def test_every_form_without_its_csrf_value_is_refused(
    client: TestClient, engine: Engine, vault: PhoneVault
) -> None:
    values = arrange(engine, vault)
    target = add_user(engine, Role.coordinator, "DINKES", totp_vault=vault)
    values["{user_id}"] = str(stored_user(engine, target.username).id)
    half = add_user(engine, Role.inspectorate, totp_vault=vault)
    before = _enrolments(engine)
    posted: set[str] = set()

    def refused(route: str) -> None:
        files = UPLOAD if route.endswith("/periksa") else None
        response = client.post(fill(route, values), data=FIELDS.get(route, {}), files=files)
        assert response.status_code == 403, f"{route}: {response.status_code}"
        posted.add(route)

    for route in LOGGED_OUT:
        client.get(fill(route, values))  # the pre-login CSRF cookie is set
        refused(route)
    form = client.get("/dashboard/login")
    client.post(
        "/dashboard/login",
        data={"username": half.username, "password": PASSWORD, "csrf": csrf_of(form.text)},
    )
    for route in SECOND_STEP:
        refused(route)
    client.cookies.clear()

    login(client, add_user(engine, Role.admin))
    for route in paths("POST"):
        if route not in posted:
            refused(route)
    assert posted == set(paths("POST"))

    # Nothing happened: still logged in, the invitation unused, the coordinator untouched.
    assert client.get("/dashboard", follow_redirects=False).status_code == 200
    assert stored_user(engine, "calon.baru").password_hash is None
    user = stored_user(engine, target.username)
    assert user.disabled_at is None
    assert user.totp_secret is not None
    assert _enrolments(engine) == before
    with session_scope(engine) as s:
        actions = {e.action for e in s.exec(select(AuditEvent)).all()}
        assert users.get_by_username(s, username="baru.sekali") is None
    assert actions.isdisjoint(
        {"user.disable", "user.totp_reset", "user.reinvite", "user.sessions_revoke"}
    )
