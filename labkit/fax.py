"""Fax documents for tests: a multi-page PDF a person would send, and how alike two faxes are."""

from __future__ import annotations

import io
import subprocess
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


# A sending fax machine may put a header line (its number, the date, the page) above the page:
# the received page is then that many rows longer at the top. Compared at the best shift.
HEADER_ROWS_MAX = 96


def _overlap(ink_a: Image.Image, ink_b: Image.Image) -> float:
    height = min(ink_a.height, ink_b.height)
    a, b = ink_a.crop((0, 0, ink_a.width, height)), ink_b.crop((0, 0, ink_b.width, height))
    both = ImageChops.multiply(a, b).histogram()[255]
    either = ImageChops.lighter(a, b).histogram()[255]
    return both / either if either else 1.0


def _ink_overlap(sent: Image.Image, received: Image.Image) -> float:
    """Black pixels both pages have, over black pixels either has (1.0: the same ink), with
    the received page shifted up past a header line if that matches better."""
    # In mode "1" black is 0: invert, so ink is 255.
    ink_a = ImageChops.invert(sent.convert("L"))
    ink_b = ImageChops.invert(received.convert("L"))

    def at(shift: int) -> float:
        return _overlap(ink_a, ink_b.crop((0, shift, ink_b.width, ink_b.height)))

    coarse = max(range(0, HEADER_ROWS_MAX + 1, 8), key=at)
    return max(at(s) for s in range(max(coarse - 7, 0), min(coarse + 8, HEADER_ROWS_MAX + 1)))


def pdf_pages(pdf: bytes, out: Path) -> Path:
    """A received fax's PDF back to bitmaps at the fax resolution, at its own page size (no
    fitting: a header line makes the page longer, and fitting would shrink all of it)."""
    source = out.with_suffix(".pdf")
    source.write_bytes(pdf)
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=tiffg4", "-r204x196",
         f"-sOutputFile={out}", str(source)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return out


def similarity(sent: Path, received: Path) -> list[float]:
    """Per page, how alike the received fax pages are to the sent ones; a missing or extra
    page counts 0."""
    a, b = pages(sent), pages(received)
    scores = [_ink_overlap(x, y) for x, y in zip(a, b, strict=False)]
    return scores + [0.0] * abs(len(a) - len(b))
