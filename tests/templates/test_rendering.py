import re
from datetime import date
from importlib import resources
from typing import Any

import pytest
import yaml

from app.templates.neutrality import check_text
from app.templates.rendering import format_date_id, placeholder_count, render_body


def _seed_templates() -> list[dict[str, Any]]:
    text = resources.files("app.templates").joinpath("seed_templates.yaml").read_text("utf-8")
    templates: list[dict[str, Any]] = yaml.safe_load(text)["templates"]
    return templates


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (date(2026, 1, 1), "1 Januari 2026"),
        (date(2026, 2, 28), "28 Februari 2026"),
        (date(2026, 3, 9), "9 Maret 2026"),
        (date(2026, 4, 30), "30 April 2026"),
        (date(2026, 5, 5), "5 Mei 2026"),
        (date(2026, 6, 15), "15 Juni 2026"),
        (date(2026, 7, 17), "17 Juli 2026"),
        (date(2026, 8, 17), "17 Agustus 2026"),
        (date(2026, 9, 1), "1 September 2026"),
        (date(2026, 10, 31), "31 Oktober 2026"),
        (date(2026, 11, 10), "10 November 2026"),
        (date(2027, 12, 25), "25 Desember 2027"),
    ],
)
def test_format_date_id(d: date, expected: str) -> None:
    assert format_date_id(d) == expected


@pytest.mark.parametrize(
    ("body", "count"),
    [
        ("", 0),
        ("Tanpa placeholder.", 0),
        ("Halo {{1}}.", 1),
        ("{{1}} sampai {{2}}", 2),
        ("{{2}} lalu {{1}}", 2),
        ("{{1}} dan lagi {{1}}", 1),
        (" ".join(f"{{{{{n}}}}}" for n in range(1, 11)), 10),
        ("Kurung {tunggal} tidak dihitung.", 0),
    ],
)
def test_placeholder_count(body: str, count: int) -> None:
    assert placeholder_count(body) == count


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{{2}}", "missing {{1}}"),
        ("{{1}} {{3}}", "missing {{2}}"),
        ("{{1}} {{2}} {{4}} {{5}}", "missing {{3}}"),
        ("{{0}}", "malformed placeholder '{{0}}'"),
        ("{{01}}", "malformed placeholder '{{01}}'"),
        ("Halo {{ 1 }}", "malformed placeholder '{{ 1 }}' at offset 5"),
        ("{{nama}}", "malformed placeholder '{{nama}}'"),
        ("{{}}", "malformed placeholder '{{}}'"),
    ],
)
def test_placeholder_count_rejects_bad_placeholders(body: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        placeholder_count(body)


@pytest.mark.parametrize(
    ("body", "values", "expected"),
    [
        ("Tanpa isian.", [], "Tanpa isian."),
        (
            "Dari {{1}} sampai {{2}}.",
            ["Dinas A", "31 Oktober 2026"],
            "Dari Dinas A sampai 31 Oktober 2026.",
        ),
        ("{{2}}, {{1}}", ["satu", "dua"], "dua, satu"),
        ("{{1}} dan {{1}}", ["X"], "X dan X"),
        # A value that looks like a placeholder is inserted literally, not expanded again.
        ("{{1}} / {{2}}", ["{{2}}", "b"], "{{2}} / b"),
    ],
)
def test_render_body(body: str, values: list[str], expected: str) -> None:
    assert render_body(body, values) == expected


@pytest.mark.parametrize(
    ("body", "values", "message"),
    [
        ("{{1}} {{2}}", ["a"], "2 placeholder(s) but 1 value(s)"),
        ("{{1}}", ["a", "b"], "1 placeholder(s) but 2 value(s)"),
        ("Tanpa isian.", ["a"], "0 placeholder(s) but 1 value(s)"),
        ("{{1}} {{3}}", ["a", "b"], "missing {{2}}"),
        ("{{1}} {{2}}", ["a", "  "], "value for {{2}} is empty"),
        ("{{1}}", ["baris\nbaru"], "value for {{1}} contains a line break"),
        ("{{1}}", ["tab\tdi sini"], "value for {{1}} contains a line break, tab"),
        ("{{1}}", ["lima     spasi"], "more than four spaces"),
    ],
)
def test_render_body_rejects_bad_values(body: str, values: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        render_body(body, values)


@pytest.mark.parametrize("template", _seed_templates(), ids=lambda t: t["name"])
def test_seed_template_shape_and_rendering(template: dict[str, Any]) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", template["name"])
    assert template["language"] == "id"
    assert template["category"] == "UTILITY"
    assert placeholder_count(template["body"]) == len(template["parameters"]) == 2
    assert template["parameters"][0] == {"source": "setting", "key": "institution_name"}
    assert template["parameters"][1]["source"] == "campaign"

    rendered = render_body(
        template["body"], ["Dinas Kesehatan Kota Bandung", format_date_id(date(2026, 10, 31))]
    )
    assert "{{" not in rendered
    assert "Dinas Kesehatan Kota Bandung" in rendered
    assert "31 Oktober 2026" in rendered
    assert "BERHENTI" in rendered
    assert "sukarela" in rendered
    assert check_text(rendered).findings == []
