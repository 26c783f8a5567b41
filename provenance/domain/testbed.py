"""The testbed's sites and faces: what each face yields, and what `grade_ppm` means for it.

The commodity belongs to the face (a mine may work a coal seam and an ore body side by side); the
simulated fleet registers what its face yields, and a transformation keeps the commodity of its
inputs unless the process changes it on purpose (a wash plant making `COAL` and `TAILINGS`, say).

`grade_ppm` is one number on chain, so each commodity says which figure it carries:

* **coal**: fixed carbon, air-dried basis (ISO 17246, by difference: 100 - moisture - ash -
  volatile matter), in ppm of mass: 660,000 is 66.0 %. It is the rank figure of anthracite
  (ASTM D388 ranks it by fixed carbon) and a mass fraction, as a ppm must be; ash, sulphur,
  moisture, volatile matter and calorific value travel in the assay's certificate
  (`provenance.domain.assay_certificate`), committed on chain by its hash.
* **metal ores**: the named element's mass fraction (`FE-ORE`: Fe).

Figures for shaft 2 of the Jangseong mine (Taebaek, Gangwon) follow the ranges measured over
about 40 Korean anthracite collieries by Lee and Jung, "A Study on the Quality of Korean
Anthracites" (Journal of the Korean Chemical Society, 1965; koreascience JAKO196513464496020):
moisture 4-7 %, ash 20-30 %, volatile matter 3-5 %, sulphur 0.2-0.5 %, calorific value
5,200-6,100 kcal/kg; fixed carbon by difference is then about 60-72 %.
"""

from __future__ import annotations

from dataclasses import dataclass

from provenance.domain.values import encode_label
from provenance.errors import DomainError

COAL = "COAL"


@dataclass(frozen=True)
class Face:
    name: str
    commodity: str
    grade_ppm: int
    """The face's mean headline grade (see the module's docstring for what it measures)."""
    grade_sd_ppm: int
    """One standard deviation from load to load."""


@dataclass(frozen=True)
class Site:
    code: str
    name: str
    faces: tuple[Face, ...]

    def face(self, name: str) -> Face:
        for face in self.faces:
            if face.name == name:
                return face
        raise DomainError("face", f"site {self.code} has no face {name!r}")

    @property
    def face_names(self) -> tuple[str, ...]:
        return tuple(face.name for face in self.faces)


GRADE_MEANING = {
    COAL: "fixed carbon, air-dried basis (ISO 17246), ppm",
    "FE-ORE": "Fe, ppm",
    "CU-ORE": "Cu, ppm",
}
"""What `grade_ppm` carries for each commodity the testbed knows."""

SITES: dict[str, Site] = {
    "SH2": Site(
        "SH2",
        "Jangseong mine, shaft 2 (Taebaek)",
        (
            Face("F1", COAL, 660_000, 12_000),
            Face("F2", COAL, 632_000, 12_000),
            Face("F3", COAL, 684_000, 12_000),
        ),
    ),
}

DEFAULT_SITE_FACES = SITES["SH2"].faces
"""A site the table does not list is simulated with shaft 2's faces: the testbed is a coal mine."""


def site_profile(code: str, commodity: str | None = None) -> Site:
    """The site's faces; with `commodity`, every face yields it instead (the CLI's `--commodity`),
    keeping the faces' grades."""
    encode_label(code, "site")
    site = SITES.get(code) or Site(code, code, DEFAULT_SITE_FACES)
    if commodity is None:
        return site
    encode_label(commodity, "commodity")
    return Site(
        site.code,
        site.name,
        tuple(Face(face.name, commodity, face.grade_ppm, face.grade_sd_ppm) for face in site.faces),
    )
