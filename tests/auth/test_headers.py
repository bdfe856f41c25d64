"""Every page answers with the one exact CSP and carries no inline style or script.

The pages are found from the routers themselves, so a new page cannot be left out: a GET route
under /dashboard or /console with a path parameter this file does not know fails the test.
Every page is read in the state that renders it (logged out, half logged in, admin, coordinator),
and so are the pages a form answers with (the import check and result, the refusals).
"""

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from app.auth.models import Role
from app.http_headers import CONTENT_SECURITY_POLICY
from app.security import PhoneVault
from tests.auth.helpers import PASSWORD, add_user, csrf_of, login
from tests.auth.pages import LOGGED_OUT, SECOND_STEP, arrange, fill, page_paths

EXACT_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# What a page may load (stylesheet, favicon, form target): this origin, or the empty data: icon.
SAME_ORIGIN = re.compile(r"^(/(?!/)|data:,$|\?|#)")


class _Markup(HTMLParser):
    """Collects what the CSP would refuse or what would load from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "iframe", "object", "embed", "base"):
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…>")
            loads = name in ("src", "srcset", "data", "action", "formaction", "poster") or (
                tag == "link" and name == "href"
            )
            if loads and value is not None and not SAME_ORIGIN.match(value):
                self.problems.append(f"<{tag} {name}={value!r}> loads from another origin")
            if name == "href" and value and value.lower().startswith("javascript:"):
                self.problems.append(f"<{tag} href=javascript:…>")


def assert_strict(response: Response, what: str) -> None:
    """The exact CSP and companions; an HTML body with nothing inline and nothing foreign."""
    headers = response.headers
    assert headers["content-security-policy"] == EXACT_CSP, what
    assert headers["x-content-type-options"] == "nosniff", what
    assert headers["x-frame-options"] == "DENY", what
    assert headers["referrer-policy"] == "no-referrer", what
    if headers.get("content-type", "").startswith("text/html"):
        parser = _Markup()
        parser.feed(response.text)
        assert parser.problems == [], f"{what}: {parser.problems}"


def test_the_policy_is_the_exact_one() -> None:
    assert CONTENT_SECURITY_POLICY == EXACT_CSP


def test_the_page_list_is_found_from_the_routers() -> None:
    paths = page_paths()
    # a page of each router, its included routers too
    for known in ("/dashboard", "/dashboard/login", "/dashboard/users", "/console/opd/{code}",
                  "/console/opd/{code}/impor"):  # fmt: skip
        assert known in paths


@pytest.fixture
def arranged(engine: Engine, vault: PhoneVault) -> dict[str, str]:
    return arrange(engine, vault)


def test_every_page_in_every_state_is_strict(
    client: TestClient, engine: Engine, vault: PhoneVault, arranged: dict[str, str]
) -> None:
    checked: set[str] = set()

    def check(path: str, response: Response) -> None:
        assert_strict(response, path)
        if response.status_code == 200:
            checked.add(path)

    # Logged out: the login form and the invitation page.
    for route in LOGGED_OUT:
        check(route, client.get(fill(route, arranged)))
    # Half logged in: the TOTP step.
    who = add_user(engine, Role.inspectorate, totp_vault=vault)
    form = client.get("/dashboard/login")
    client.post(
        "/dashboard/login",
        data={"username": who.username, "password": PASSWORD, "csrf": csrf_of(form.text)},
    )
    check(SECOND_STEP, client.get(SECOND_STEP))
    client.cookies.clear()

    # An admin reaches every other page; the withdraw page needs someone on the list.
    login(client, add_user(engine, Role.admin))
    values = arranged
    for route in page_paths():
        if route in checked:
            continue
        response = client.get(fill(route, values), follow_redirects=False)
        check(route, response)
        if route == "/dashboard/campaigns/{campaign_id}":
            assert "<meter" in response.text  # the progress bars, once drawn with a style
    assert checked == set(page_paths()), "a page was not rendered in any state"


def test_pages_a_form_answers_with_are_strict(
    client: TestClient, engine: Engine, arranged: dict[str, str]
) -> None:
    del arranged
    home = "/console/opd/DINKES"
    csrf = login(client, add_user(engine, Role.coordinator, "DINKES"))
    upload = client.post(
        f"{home}/impor/periksa",
        data={"csrf": csrf, "metode_bawaan": "paper_form"},
        files={"berkas": ("a.csv", b"Nomor HP;Nama\n081234567890;Ani\nbukan nomor;Budi\n")},
    )
    assert upload.status_code == 200, upload.text
    assert "bermasalah" in upload.text  # the check lists the bad row
    assert_strict(upload, "import check page")
    token = re.search(r'name="token" value="([^"]+)"', upload.text)
    assert token
    confirmed = client.post(
        f"{home}/impor/konfirmasi", data={"csrf": csrf, "token": token.group(1)}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert "didaftarkan" in confirmed.text
    assert_strict(confirmed, "import result page")
    refused = client.post(f"{home}/tambah", data={"nomor": "0812"})  # no CSRF value
    assert refused.status_code == 403
    assert_strict(refused, "CSRF refusal page")
    assert_strict(client.get("/console/opd/NOSUCH"), "not-found page")
    assert_strict(client.get("/dashboard/users"), "forbidden page")
    assert_strict(client.get("/dashboard/campaigns/999999"), "missing campaign page")


def test_the_check_finds_what_it_looks_for() -> None:
    for bad in (
        '<p style="color:red">',
        "<style>p{}</style>",
        '<a onclick="x()">',
        "<script>1</script>",
        '<link rel="stylesheet" href="https://cdn.example/x.css">',
        '<img src="//cdn.example/x.png">',
        '<form action="https://elsewhere/">',
    ):
        parser = _Markup()
        parser.feed(bad)
        assert parser.problems, bad
    parser = _Markup()
    parser.feed(
        '<link rel="icon" href="data:,"><a href="https://wa.me/62811">x</a><form action="/x">'
    )
    assert parser.problems == []


def test_json_answers_carry_the_headers_too(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == EXACT_CSP
