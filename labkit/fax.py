"""Fax documents for tests: a multi-page PDF a person would send, and how alike two faxes are."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageChops
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from pbx_efax.documents import pages

# Two renderings of one page agree on at least this share of their ink (black pixels, in
# either); a fax with a damaged band (a lost ECM block, a line error without ECM) falls below.
SIMILARITY_THRESHOLD = 0.95


def letter(pages_count: int = 3, title: str = "Testfax") -> bytes:
    """A business letter of `pages_count` A4 pages: text, a table's rules, a page number."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    width, height = A4
    for page in range(1, pages_count + 1):
        pdf.setFont("Helvetica-Bold", 20)
        pdf.drawString(60, height - 80, f"{title} - Seite {page} von {pages_count}")
        pdf.setFont("Helvetica", 11)
        for line in range(40):
            pdf.drawString(60, height - 120 - line * 16, f"Zeile {line + 1:02d}: " + "Faxtext " * 8)
        for row in range(6):
            pdf.line(60, 140 + row * 12, width - 60, 140 + row * 12)
        pdf.rect(60, 40, 80 + 40 * page, 60, fill=1)  # a block whose size tells the page
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _ink_overlap(a: Image.Image, b: Image.Image) -> float:
    """Black pixels both pages have, over black pixels either has (1.0: the same ink)."""
    height = min(a.height, b.height)
    a, b = a.crop((0, 0, a.width, height)), b.crop((0, 0, b.width, height))
    # In mode "1" black is 0: invert, so ink is 1.
    ink_a, ink_b = ImageChops.invert(a.convert("L")), ImageChops.invert(b.convert("L"))
    both = ImageChops.multiply(ink_a, ink_b).histogram()[255]
    either = ImageChops.lighter(ink_a, ink_b).histogram()[255]
    return both / either if either else 1.0


def similarity(sent: Path, received: Path) -> list[float]:
    """Per page, how alike the received fax pages are to the sent ones; a missing or extra
    page counts 0."""
    a, b = pages(sent), pages(received)
    scores = [_ink_overlap(x, y) for x, y in zip(a, b, strict=False)]
    return scores + [0.0] * abs(len(a) - len(b))
