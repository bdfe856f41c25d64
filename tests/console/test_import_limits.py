"""The console's check reads uploads within the configured limits and names the one hit."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.auth.models import Role
from app.config import Settings
from app.main import create_app
from tests.console.conftest import login
from tests.factories import add_opd

HOME = "/console/opd/DINKES"
THREE_ROWS = (
    "Nomor HP;Nama;Metode Persetujuan\n"
    "081211112222;Ani;kertas\n081211113333;Budi;kertas\n081211114444;Citra;kertas\n"
)


@pytest.mark.parametrize(("max_rows", "status"), [(3, 200), (2, 422)])
def test_the_check_applies_the_configured_row_limit(
    settings: Settings, engine: Engine, max_rows: int, status: int
) -> None:
    add_opd(engine, "DINKES")
    settings.import_max_rows = max_rows
    with TestClient(create_app(settings, engine=engine)) as client:
        csrf = login(client, engine, Role.coordinator, "DINKES")
        response = client.post(
            f"{HOME}/impor/periksa",
            data={"csrf": csrf},
            files={"berkas": ("pegawai.csv", THREE_ROWS.encode(), "text/csv")},
        )
    assert response.status_code == status
    if status == 422:
        # The limit's own reason, naming the bound, not only "cannot be read".
        assert "lebih dari 2 baris data (batas impor 2 baris)" in response.text
    else:
        assert 'name="token"' in response.text
