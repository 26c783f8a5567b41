"""Where a lot came from, drawn as a small map: one circle per origin face (its area by the face's
share of the lot), coloured by site, on a local flat projection of the places in `directory.json`.

No tiles, no script: a buyer's phone draws it from the page alone. The projection is
equirectangular around the middle of the places (east-west shrunk by the cosine of the latitude),
which over the few kilometres of a mine, or the few hundred of a region, is a true enough picture.
A scale bar gives the distance. Faces without a place are listed beside the map, with their share; faces
at one place (a site's, for faces with none of their own) are one circle, named by the site.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from api.pages.directory import Directory, Place

WIDTH = 640.0
HEIGHT = 360.0
MARGIN = 56.0
MIN_SPAN_KM = 1.0
"""A single place (or places a few metres apart) is drawn at this span, not at infinite zoom."""
KM_PER_DEGREE = 111.32


@dataclass(frozen=True)
class FaceShare:
    site: str
    face: str | None
    fraction: Fraction
    grams: Fraction
    lots: int


@dataclass(frozen=True)
class MapPoint:
    site: str
    face: str | None
    place: Place
    x: float
    y: float
    radius: float
    percent: str
    mass_g: Fraction
    lots: int
    colour: str


@dataclass(frozen=True)
class OriginMap:
    width: float
    height: float
    points: tuple[MapPoint, ...]
    unplaced: tuple[tuple[FaceShare, str], ...]
    """Faces with no place, with their share in percent."""
    scale_km: float
    scale_px: float


def _nice(value: float) -> float:
    """The largest of 1, 2 or 5 times a power of ten not above `value`."""
    power = 10.0 ** math.floor(math.log10(value))
    return max(float(step) * power for step in (1, 2, 5) if step * power <= value)


def origin_map(
    shares: list[FaceShare], percents: list[str], directory: Directory, colours: dict[str, str]
) -> OriginMap | None:
    """The map of `shares` (with their shown `percents`); None when no face has a place."""
    placed: list[tuple[FaceShare, str, Place]] = []
    unplaced: list[tuple[FaceShare, str]] = []
    for share, percent in zip(shares, percents, strict=True):
        place = directory.place(share.site, share.face)
        if place is None:
            unplaced.append((share, percent))
        else:
            placed.append((share, percent, place))
    if not placed:
        return None
    # faces drawn at one place (their site's, when they have none of their own) are one circle
    merged: dict[tuple[str, Place], list[tuple[FaceShare, str]]] = {}
    for share, percent, place in placed:
        merged.setdefault((share.site, place), []).append((share, percent))
    placed = [
        (
            FaceShare(
                site,
                together[0][0].face if len(together) == 1 else None,
                sum((share.fraction for share, _ in together), Fraction(0)),
                sum((share.grams for share, _ in together), Fraction(0)),
                sum(share.lots for share, _ in together),
            ),
            f"{sum(Decimal(percent) for _, percent in together):.2f}",
            place,
        )
        for (site, place), together in merged.items()
    ]
    latitudes = [place.latitude for _, _, place in placed]
    longitudes = [place.longitude for _, _, place in placed]
    middle_latitude = (min(latitudes) + max(latitudes)) / 2
    east_km = KM_PER_DEGREE * math.cos(math.radians(middle_latitude))

    def km(place: Place) -> tuple[float, float]:
        return (place.longitude - min(longitudes)) * east_km, (
            max(latitudes) - place.latitude
        ) * KM_PER_DEGREE

    span_x = max(max(km(place)[0] for _, _, place in placed), MIN_SPAN_KM)
    span_y = max(max(km(place)[1] for _, _, place in placed), MIN_SPAN_KM)
    scale = min((WIDTH - 2 * MARGIN) / span_x, (HEIGHT - 2 * MARGIN) / span_y)
    # centre the drawing: the unused span on either side, split evenly
    offset_x = (WIDTH - max(km(place)[0] for _, _, place in placed) * scale) / 2
    offset_y = (HEIGHT - max(km(place)[1] for _, _, place in placed) * scale) / 2
    points = []
    for share, percent, place in sorted(placed, key=lambda item: -item[0].fraction):
        x, y = km(place)
        points.append(
            MapPoint(
                share.site,
                share.face,
                place,
                offset_x + x * scale,
                offset_y + y * scale,
                5 + 25 * math.sqrt(float(share.fraction)),
                percent,
                share.grams,
                share.lots,
                colours.get(share.site, "#8c8c94"),
            )
        )
    scale_km = _nice(WIDTH / 4 / scale)
    return OriginMap(WIDTH, HEIGHT, tuple(points), tuple(unplaced), scale_km, scale_km * scale)
