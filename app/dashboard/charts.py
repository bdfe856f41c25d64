"""Small inline SVG charts drawn on the server (no script, no external library or font)."""

from collections.abc import Sequence
from datetime import date
from html import escape

from markupsafe import Markup


def daily_bars(
    days: Sequence[date], series: Sequence[tuple[str, str, Sequence[int]]], *, height: int = 180
) -> Markup:
    """Grouped bars per day, each the published (rounded) figure."""
    if not days:
        return Markup('<p class="muted">Belum ada hari yang sudah ditutup.</p>')
    numbers = [v for _, _, values in series for v in values]
    top = max(numbers, default=0) or 1
    group = 6 * len(series) + 4
    width = max(320, group * len(days) + 40)
    plot = height - 30
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="Grafik harian" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="10">',
        f'<line x1="30" y1="{plot}" x2="{width}" y2="{plot}" stroke="#9aa7b4"/>',
        f'<text x="0" y="12" fill="#5b6b7c">{top}</text>',
        f'<text x="0" y="{plot}" fill="#5b6b7c">0</text>',
    ]
    label_every = -(-34 // group)  # a date label needs about 34 px
    for i, day in enumerate(days):
        x0 = 34 + i * group
        for j, (label, color, values) in enumerate(series):
            value = values[i]
            x = x0 + j * 6
            h = round(plot * value / top)
            parts.append(
                f'<rect x="{x}" y="{plot - h}" width="5" height="{h}" fill="{color}">'
                f"<title>{day.isoformat()} {escape(label)}: {value}</title></rect>"
            )
        if i % label_every == 0:
            parts.append(f'<text x="{x0}" y="{height - 8}" fill="#5b6b7c">{day:%d/%m}</text>')
    legend_x = 40
    for label, color, _ in series:
        parts.append(f'<rect x="{legend_x}" y="4" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{legend_x + 14}" y="13">{escape(label)}</text>')
        legend_x += 14 + 7 * len(label)
    parts.append("</svg>")
    return Markup("".join(parts))


def share(part: int, whole: int) -> int | None:
    """Percentage for a progress bar, from published figures; None when the whole is zero."""
    if whole > 0:
        return min(100, round(100 * part / whole))
    return None
