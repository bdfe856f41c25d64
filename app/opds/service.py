"""OPD management: create, list, rename, bulk create."""

import csv
import io
from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.audit import service as audit_service
from app.auth.models import Role
from app.auth.principal import Principal
from app.errors import Conflict, Invalid, NotFound
from app.opds.models import Opd
from app.opds.schemas import OpdCreate, OpdImportReport, OpdImportRow


def get_by_code(session: Session, *, code: str) -> Opd:
    """The OPD with this code, or 404."""
    opd = session.exec(select(Opd).where(Opd.code == code.strip().upper())).first()
    if opd is None:
        raise NotFound(f"kode OPD {code!r} tidak dikenal", code="opd_not_found")
    return opd


def create_opd(session: Session, *, actor: Principal, data: OpdCreate) -> Opd:
    """Create an OPD; 409 if the code exists."""
    if session.exec(select(Opd.id).where(Opd.code == data.code)).first() is not None:
        raise Conflict(f"OPD {data.code!r} already exists", code="opd_exists")
    opd = Opd(code=data.code, name=data.name, timezone=data.timezone)
    session.add(opd)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"OPD {data.code!r} already exists", code="opd_exists") from exc
    audit_service.record(
        session, actor=actor, action="opd.create", object_type="opd", object_id=opd.code
    )
    return opd


def list_opds(session: Session, *, viewer: Principal) -> Sequence[Opd]:
    """OPDs the viewer may see: all for admin/inspectorate, their own for a coordinator."""
    stmt = select(Opd).order_by(col(Opd.code))
    if viewer.role is Role.coordinator:
        stmt = stmt.where(Opd.id == viewer.opd_id)
    return session.exec(stmt).all()


def rename_opd(session: Session, *, actor: Principal, code: str, name: str) -> Opd:
    """Change an OPD's display name."""
    opd = get_by_code(session, code=code)
    opd.name = name
    session.add(opd)
    audit_service.record(
        session, actor=actor, action="opd.rename", object_type="opd", object_id=opd.code
    )
    return opd


def import_opds(
    session: Session, *, actor: Principal, rows: list[tuple[int, dict[str, str]]], partial: bool
) -> OpdImportReport:
    """Create OPDs from parsed CSV rows; nothing is created if any row is bad unless `partial`."""
    report_rows: list[OpdImportRow] = []
    valid: list[OpdCreate] = []
    seen: set[str] = set()
    for number, fields in rows:
        try:
            data = OpdCreate(
                code=fields.get("code", ""),
                name=fields.get("name", ""),
                timezone=fields.get("timezone") or "Asia/Jakarta",
            )
        except ValidationError as exc:
            problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            report_rows.append(OpdImportRow(row=number, outcome="invalid", reason=problem))
            continue
        exists = session.exec(select(Opd.id).where(Opd.code == data.code)).first() is not None
        if exists or data.code in seen:
            report_rows.append(OpdImportRow(row=number, outcome="existing", code=data.code))
            continue
        seen.add(data.code)
        valid.append(data)
        report_rows.append(OpdImportRow(row=number, outcome="created", code=data.code))
    invalid = sum(r.outcome == "invalid" for r in report_rows)
    applied = partial or invalid == 0
    if applied:
        for data in valid:
            create_opd(session, actor=actor, data=data)
    else:
        for r in report_rows:
            if r.outcome == "created":
                r.outcome, r.reason = "not_applied", "file has invalid rows"
    return OpdImportReport(
        created=len(valid) if applied else 0,
        existing=sum(r.outcome == "existing" for r in report_rows),
        invalid=invalid,
        applied=applied,
        rows=report_rows,
    )


OPD_HEADERS = {
    "code": "code",
    "kode": "code",
    "kode_opd": "code",
    "name": "name",
    "nama": "name",
    "nama_opd": "name",
    "timezone": "timezone",
    "time_zone": "timezone",
    "zona_waktu": "timezone",
    "zona": "timezone",
}


def read_opd_csv(text: str) -> list[tuple[int, dict[str, str]]]:
    """Rows of an OPD CSV (comma or semicolon, Indonesian or English headers)."""
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    if not lines:
        raise Invalid("the file is empty", code="unreadable_file")
    delimiter = max(",;\t", key=lines[0].count)
    reader = csv.reader(io.StringIO("".join(lines)), delimiter=delimiter)
    header = [OPD_HEADERS.get(h.strip().lower().replace(" ", "_"), "") for h in next(reader)]
    if "code" not in header or "name" not in header:
        raise Invalid("the header needs columns code/kode and name/nama", code="unreadable_file")
    rows = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        fields = {key: cell.strip() for key, cell in zip(header, cells, strict=False) if key}
        rows.append((reader.line_num, fields))
    return rows
