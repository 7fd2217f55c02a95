"""An invoice document (pbx_app.invoicing) as a PDF, drawn with ReportLab: one page per 40 lines,
amounts right-aligned in EUR, the totals and the rounding rule at the end."""

from __future__ import annotations

import io
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

LINES_PER_PAGE = 40


def eur(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{rest:02d} EUR"


def render(invoice: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, invariant=True)  # invariant: same bytes for same input
    canvas.setTitle(f"Invoice {invoice['number']}")
    width, height = A4
    left, right = 20 * mm, width - 20 * mm

    def header() -> float:
        canvas.setFont("Helvetica-Bold", 14)
        canvas.drawString(left, height - 25 * mm, f"Invoice {invoice['number']}")
        canvas.setFont("Helvetica", 10)
        canvas.drawString(left, height - 32 * mm, f"Customer: {invoice['customer_name']}")
        canvas.drawString(left, height - 37 * mm, f"Period: {invoice['period']}")
        canvas.drawString(left, height - 42 * mm, f"Issued: {invoice['issued_at']}")
        return float(height - 55 * mm)

    y = header()
    lines = invoice["lines"]
    for index, line in enumerate(lines):
        if index and index % LINES_PER_PAGE == 0:
            canvas.showPage()
            y = header()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(left, y, line["text"][:95])
        canvas.drawRightString(right - 35 * mm, y, line["quantity"])
        canvas.drawRightString(right, y, eur(line["amount_cents"]))
        y -= 5 * mm
    y -= 4 * mm
    canvas.setFont("Helvetica-Bold", 10)
    for label, amount in (
        ("Net", invoice["net_cents"]),
        (f"VAT {invoice['vat_percent']} %", invoice["vat_cents"]),
        ("Total", invoice["gross_cents"]),
    ):
        canvas.drawString(right - 80 * mm, y, label)
        canvas.drawRightString(right, y, eur(amount))
        y -= 6 * mm
    canvas.setFont("Helvetica", 7)
    canvas.drawString(left, y - 4 * mm, f"Rounding: {invoice['rounding']}.")
    canvas.drawString(left, y - 8 * mm, "All prices net of VAT unless marked otherwise.")
    canvas.showPage()
    canvas.save()
    return out.getvalue()
