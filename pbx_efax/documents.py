"""Documents in and out of fax pages: a PDF or TIFF becomes fax pages (TIFF-F: 1728 dots wide,
204x196 dpi, G4, A4) for the T.30 engine; received pages become a PDF for the customer.

Ghostscript renders, libtiff's tiff2pdf converts; both run as separate processes with a time
limit, so a hostile document costs a bounded amount of time and cannot take the gateway down.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from PIL import Image

# The most pages one job may have: a fax of more is a mistake, or an attack on the line.
MAX_PAGES = 50
_RENDER_TIMEOUT_S = 120
PDF_MAGIC = b"%PDF-"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*")


class DocumentError(ValueError):
    """The document cannot become a fax; `code` says why, for the API's answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def kind_of(data: bytes) -> str:
    """ "pdf" or "tiff" by the content itself (not a name or a declared type)."""
    if data.startswith(PDF_MAGIC):
        return "pdf"
    if data.startswith(TIFF_MAGICS):
        return "tiff"
    raise DocumentError("document_type_unsupported", "only PDF and TIFF documents can be faxed")


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, timeout=_RENDER_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as e:
        raise DocumentError("document_unreadable", f"{what} took too long") from e
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise DocumentError("document_unreadable", f"{what} failed: {detail[0][:200]}")


def fax_pages(data: bytes, out: Path) -> int:
    """Render a PDF or TIFF document to fax pages in `out` (a TIFF file); returns the count."""
    with tempfile.TemporaryDirectory(prefix="fax-render-") as tmp:
        source = Path(tmp) / "in.pdf"
        if kind_of(data) == "tiff":
            # Any TIFF (a scan, colour, another resolution) goes through PDF: one renderer
            # scales and thresholds every input the same way.
            tiff = Path(tmp) / "in.tif"
            tiff.write_bytes(data)
            _run(["tiff2pdf", "-o", str(source), str(tiff)], "reading the TIFF")
        else:
            source.write_bytes(data)
        _run(
            [
                "gs",
                "-q",
                "-dSAFER",
                "-dBATCH",
                "-dNOPAUSE",
                "-dNOINTERPOLATE",
                "-sDEVICE=tiffg4",
                "-r204x196",
                "-g1728x2292",
                "-dPDFFitPage",
                "-dFIXEDMEDIA",
                f"-dLastPage={MAX_PAGES + 1}",
                f"-sOutputFile={out}",
                str(source),
            ],
            "rendering the document",
        )
    count = page_count(out)
    if count == 0:
        raise DocumentError("document_unreadable", "no page of the document could be read")
    if count > MAX_PAGES:
        out.unlink(missing_ok=True)
        raise DocumentError("document_too_long", f"a fax has at most {MAX_PAGES} pages")
    return count


def page_count(tiff: Path) -> int:
    try:
        with Image.open(tiff) as image:
            return int(getattr(image, "n_frames", 1))
    except (OSError, ValueError):
        return 0


def to_pdf(tiff: Path, out: Path) -> None:
    """Received fax pages (spandsp's TIFF-F) as a PDF, each page at its own resolution."""
    _run(["tiff2pdf", "-o", str(out), str(tiff)], "converting the received pages")


def pages(tiff: Path) -> list[Image.Image]:
    """The pages of a fax TIFF as bilevel images at 204x196 dpi (for comparing documents)."""
    result = []
    with Image.open(tiff) as image:
        for index in range(int(getattr(image, "n_frames", 1))):
            image.seek(index)
            page = image.convert("1")
            dpi = image.info.get("dpi", (204, 196))
            # Standard resolution (98 lines/inch) stretched to fine, so pages compare 1:1.
            if round(float(dpi[1])) < 150:
                page = page.resize((page.width, page.height * 2), Image.Resampling.NEAREST)
            result.append(page.copy())
    return result
