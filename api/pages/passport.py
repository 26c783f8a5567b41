"""A lot's passport, `GET /lots/{id}/passport.pdf`: the page's facts as a print-ready A4 certificate.

Made with fpdf2 from the same `LotPage` as the HTML page (so the two cannot disagree): the lot,
the verdict with the block it was checked at, chain id and registry, its origin faces with their
places and shares, custody with named parties, assays with their lab, documents by hash,
corrections, and the QR code of the live page, drawn as vector squares (sharp at any print size).

Korean needs a font with Hangul: the Nanum fonts the Makefile's `browser` target installs. Without
them the passport falls back to DejaVu or to the PDF core font, in English (the core font has no
Hangul), and says so in its `Content-Language`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import segno
from fpdf import FPDF
from fpdf.fonts import FontFace

from api.pages import i18n
from api.pages.directory import Party
from api.pages.view import LotPage, mass_text, short_hash, time_text

FONT_DIRS = (Path("/usr/share/fonts/truetype/nanum"), Path("/usr/share/fonts/truetype/dejavu"))
FONTS: tuple[tuple[str, str, str, bool], ...] = (
    # (file, bold file, family, has Hangul)
    ("NanumGothic.ttf", "NanumGothicBold.ttf", "Nanum", True),
    ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVu", False),
)
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
"""fontTools says, for every passport, which of a font's hinting tables it drops: not news."""
MAX_ORIGIN_ROWS = 40
"""Origin lots listed one by one; past that the passport lists faces and sites, and the page the lots."""
QR_MODULE_MM = 0.8


@dataclass(frozen=True)
class Font:
    family: str
    regular: Path | None
    bold: Path | None
    hangul: bool


@cache
def passport_font() -> Font:
    """The first installed font family of FONTS, else the PDF core font Helvetica (Latin-1 only)."""
    for regular, bold, family, hangul in FONTS:
        for directory in FONT_DIRS:
            if (directory / regular).is_file() and (directory / bold).is_file():
                return Font(family, directory / regular, directory / bold, hangul)
    return Font("helvetica", None, None, False)


def document_lang(asked: i18n.Lang) -> i18n.Lang:
    """The passport's language: Korean only with a font that has Hangul."""
    return asked if asked == "en" or passport_font().hangul else "en"


class Passport(FPDF):
    def __init__(self, font: Font, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.font = font
        self.footer_text = footer_text
        if font.regular is not None and font.bold is not None:
            self.add_font(font.family, "", str(font.regular))
            self.add_font(font.family, "B", str(font.bold))
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(auto=True, margin=18)

    def text_of(self, value: str) -> str:
        """The core font covers Latin-1 only: anything else becomes "?" rather than an error."""
        if self.font.regular is not None:
            return value
        return value.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(self.font.family, "", 7)
        self.set_text_color(90)
        self.cell(0, 4, self.text_of(f"{self.footer_text} · {self.page_no()}/{{nb}}"), align="C")
        self.set_text_color(0)


def party_text(party: Party, t: Callable[..., str]) -> str:
    if party.kind == "device":
        name = t("device_named", kind=party.device_kind or "?", site=party.device_site or "?")
        return f"{name} {party.address}"
    if party.kind == "unknown":
        return f"{t('unknown_account')} {party.address}"
    organisation = f" ({party.organisation})" if party.organisation else ""
    return f"{party.name}{organisation} {party.address}"


def passport_pdf(page: LotPage, asked: i18n.Lang) -> bytes:
    lang = document_lang(asked)
    t = i18n.translator(lang)
    font = passport_font()
    lot = page.lot
    pdf = Passport(font, t("passport_footer", lot_id=lot.lot_id, url=page.page_url))
    pdf.set_title(t("passport_title", lot_id=lot.lot_id))
    pdf.set_creator("mineral-provenance")
    pdf.set_lang(lang)
    pdf.add_page()

    def heading(text: str) -> None:
        pdf.ln(2)
        pdf.set_font(font.family, "B", 11)
        pdf.cell(0, 7, pdf.text_of(text), new_x="LMARGIN", new_y="NEXT")
        pdf.set_draw_color(180)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
        pdf.ln(1)
        pdf.set_font(font.family, "", 8.5)

    def paragraph(text: str, size: float = 8.5, bold: bool = False) -> None:
        pdf.set_font(font.family, "B" if bold else "", size)
        pdf.multi_cell(0, size * 0.5, pdf.text_of(text), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(font.family, "", 8.5)

    def table(header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float]) -> None:
        if not rows:
            paragraph(t("none"))
            return
        pdf.set_font(font.family, "", 7.5)
        with pdf.table(
            col_widths=tuple(widths),
            text_align="LEFT",
            line_height=3.6,
            padding=0.8,
            headings_style=FontFace(emphasis="BOLD", fill_color=(240, 240, 244)),
            borders_layout="HORIZONTAL_LINES",
        ) as drawn:
            for cells in (header, *rows):
                row = drawn.row()
                for cell in cells:
                    row.cell(pdf.text_of(cell))
        pdf.set_font(font.family, "", 8.5)

    # ---- title, QR code and verdict
    pdf.set_font(font.family, "B", 16)
    pdf.multi_cell(140, 8, pdf.text_of(t("passport_title", lot_id=lot.lot_id)), new_x="LMARGIN", new_y="NEXT")
    paragraph(t("passport_intro"), 8)
    qr_top = 15.0
    matrix = segno.make(page.page_url, micro=False).matrix
    qr_left = pdf.w - pdf.r_margin - len(matrix) * QR_MODULE_MM
    pdf.set_fill_color(0)
    for y, modules in enumerate(matrix):
        for x, dark in enumerate(modules):
            if dark:
                pdf.rect(
                    qr_left + x * QR_MODULE_MM, qr_top + y * QR_MODULE_MM, QR_MODULE_MM, QR_MODULE_MM, "F"
                )
    pdf.set_y(max(pdf.get_y(), qr_top + len(matrix) * QR_MODULE_MM) + 2)

    verdict = page.verdict
    verification = verdict.verification
    if verdict.state == "verified" and verification is not None:
        pdf.set_text_color(22, 105, 45)
        paragraph(t("verified"), 12, bold=True)
        pdf.set_text_color(0)
        paragraph(
            t("verified_detail", count=len(verification.lots_checked), block=f"{verification.block_number:,}")
        )
    elif verdict.state == "failed" and verification is not None:
        pdf.set_text_color(164, 22, 26)
        paragraph(t("failed"), 12, bold=True)
        pdf.set_text_color(0)
        paragraph(t("failed_detail", count=len(verification.differences)))
    else:
        pdf.set_text_color(138, 90, 0)
        paragraph(t("unverifiable"), 12, bold=True)
        pdf.set_text_color(0)
        reason = t(verdict.reason_key) if verdict.reason_key else ""
        paragraph(f"{t('unverifiable_detail')} {t('reason')}: {reason}.")
    if verification is not None:
        paragraph(
            f"{t('checked_at_block')}: {verification.block_number:,} · {t('chain_id')}: {verification.chain_id}"
            f" · {t('registry')}: {verification.registry}"
        )

    # ---- the lot
    heading(t("passport_lot"))
    facts: list[tuple[str, str]] = [(t("lot"), lot.lot_id), (t("site"), lot.site)]
    if lot.origin == "registered":
        place = page.directory.place(lot.site, lot.face)
        facts.append((t("face"), (lot.face or t("unknown")) + (f" · {place.text}" if place else "")))
        facts.append((t("extracted_at"), time_text(lot.extracted_at) or t("unknown")))
    else:
        facts.append((t("made_in"), t("made_by_step", transform=lot.transform_id)))
    facts += [
        (t("commodity"), lot.commodity),
        (t("mass"), f"{mass_text(lot.mass_g)} ({lot.mass_g:,} g)"),
        (t("remaining"), mass_text(lot.remaining_g)),
        (t("grade"), f"{lot.grade_ppm:,} ppm"),
        (t("status"), t("status_" + lot.status, lot.status)),
        (t("custodian"), party_text(page.parties.of(lot.custodian), t)),
        (t("recorded_in"), f"{page.created.tx_hash} ({t('block')} {page.created.block_number:,})"),
    ]
    if page.measured_by is not None:
        facts.append((t("measured_by"), party_text(page.parties.of(page.measured_by), t)))
    table((t("field"), ""), facts, (45, 135))

    # ---- where it came from
    heading(t("shares"))
    table(
        (t("site"), t("face"), t("place"), t("lots_count"), t("share"), t("mass")),
        [
            (
                face.site
                + (
                    f" ({page.directory.site_names[face.site]})"
                    if face.site in page.directory.site_names
                    else ""
                ),
                face.face or t("unknown"),
                place.text if (place := page.directory.place(face.site, face.face)) else t("no_place"),
                f"{face.lots:,}",
                f"{percent}%",
                mass_text(face.grams),
            )
            for face, percent in page.face_shares
        ],
        (38, 22, 52, 14, 20, 34),
    )
    pdf.ln(1)
    table(
        (t("site"), t("share"), t("mass")),
        [(row.key or t("unknown"), f"{row.percent}%", row.mass) for row in page.by_site],
        (60, 40, 80),
    )
    pdf.ln(1)
    if len(page.by_origin_lot) <= MAX_ORIGIN_ROWS:
        table(
            (t("lot"), t("site"), t("face"), t("extraction_day"), t("share"), t("mass")),
            [
                (
                    row.key or "",
                    row.site or "",
                    row.face or "",
                    row.extraction_day or t("unknown"),
                    f"{row.percent}%",
                    row.mass,
                )
                for row in page.by_origin_lot
            ],
            (42, 30, 24, 30, 22, 32),
        )
    else:
        paragraph(t("passport_many_origins", count=f"{len(page.by_origin_lot):,}"))

    # ---- custody, assays, documents, corrections
    heading(t("custody"))
    table(
        (t("event"), t("from"), t("to"), t("block")),
        [
            (
                t(row.action, row.action),
                party_text(page.parties.of(row.from_address), t) if row.from_address else "",
                party_text(page.parties.of(row.to_address), t),
                f"{row.tx.block_number:,}",
            )
            for row in page.custody
        ],
        (28, 67, 67, 18),
    )
    heading(t("assays"))
    table(
        (t("grade"), t("method"), t("lab"), t("assayed_at"), t("certificate")),
        [
            (
                f"{assay.grade_ppm:,} ppm",
                assay.method,
                party_text(page.parties.of(assay.lab), t),
                time_text(assay.assayed_at) or "",
                short_hash(assay.certificate_hash),
            )
            for assay in page.detail.assays
        ],
        (20, 22, 70, 36, 32),
    )
    for row in page.assays:  # each assay's analytes, only where the held certificate matches the chain
        paragraph(f"{short_hash(row.assay.certificate_hash)}: {t(row.status_key)}", size=7.5)
        if row.analytes:
            committed = t("analyte_committed", hash=short_hash(row.assay.certificate_hash))
            table(
                (t("analyte"), t("value"), t("method")),
                [
                    (
                        t("analyte_" + analyte.analyte, analyte.analyte),
                        f"{analyte.value} {analyte.unit}",
                        f"{analyte.method}; {committed}",
                    )
                    for analyte in row.analytes
                ],
                (40, 26, 114),
            )
    heading(t("documents"))
    table(
        (t("kind"), t("document_hash"), t("anchored_by"), t("block")),
        [
            (
                row.kind,
                row.document_hash,
                party_text(page.parties.of(row.anchored_by), t),
                f"{row.tx.block_number:,}",
            )
            for row in page.documents
        ],
        (24, 70, 68, 18),
    )
    heading(t("corrections"))
    table(
        (t("correction_reason"), t("adjustment"), t("remaining_after"), t("corrected_by"), t("block")),
        [
            (
                t("correction_" + row.reason, row.reason),
                row.adjustment,
                row.remaining,
                party_text(page.parties.of(row.corrected_by), t),
                f"{row.tx.block_number:,}",
            )
            for row in page.corrections
        ],
        (44, 22, 24, 72, 18),
    )
    heading(t("passport_live"))
    paragraph(page.page_url)
    if page.index_block is not None:
        paragraph(t("indexed_to", block=f"{page.index_block:,}"))
    return bytes(pdf.output())
