"""Where to write the labels of a scatter plot's points so that none overlaps another label, a marker or the
legend, and each stays inside the axes: a greedy search in display pixels, from the spots right next to a point
outwards. Pure geometry: the plot measures its texts and markers, and draws what this returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

# Pixels kept clear between a label and anything else.
CLEARANCE = 2.0
# Distances of the spots tried around a point, past its marker: close steps first, then wider ones out to the
# far side of the axes.
NEAR_STEPS = 8
NEAR_STEP_PX = 5.0
FAR_STEP_PX = 12.0
# A label this far from its marker or more is joined to it by a leader line.
LEADER_FROM_PX = 2 * NEAR_STEP_PX
# Directions tried at each distance, in the order a reader looks for a label: right, then the diagonals and the
# left, then above and below, then the directions between.
ANGLES_DEG = (0, 45, -45, 180, 135, -135, 90, -90, 22.5, -22.5, 157.5, -157.5, 67.5, -67.5, 112.5, -112.5)
# Points closer than this count as crowding each other: the most crowded are labelled first, next to themselves.
CROWD_PX = 60.0


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def around(cls, x: float, y: float, radius: float) -> "Box":
        return cls(x - radius, y - radius, x + radius, y + radius)

    def overlaps(self, other: "Box", clearance: float = 0.0) -> bool:
        return (self.x0 < other.x1 + clearance and other.x0 < self.x1 + clearance
                and self.y0 < other.y1 + clearance and other.y0 < self.y1 + clearance)

    def overlap_area(self, other: "Box") -> float:
        return (max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
                * max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0)))

    def inside(self, other: "Box") -> bool:
        return other.x0 <= self.x0 and self.x1 <= other.x1 and other.y0 <= self.y0 and self.y1 <= other.y1

    def nearest_point(self, x: float, y: float) -> tuple[float, float]:
        return min(max(x, self.x0), self.x1), min(max(y, self.y0), self.y1)


@dataclass(frozen=True)
class Placement:
    box: Box  # where the label goes
    leader: bool  # away from its point: draw a line to it


def place_labels(anchors: Sequence[tuple[float, float]], sizes: Sequence[tuple[float, float]],
                 radii: Sequence[float], area: Box, obstacles: Sequence[Box] = ()) -> list[Placement]:
    """A spot for each label (``sizes``: width and height) near its point (``anchors``, marker ``radii``), inside
    ``area``, clear of every marker, the ``obstacles`` and the labels placed before it. When the axes are too full
    for that, the spot that overlaps least."""
    markers = [Box.around(x, y, radius) for (x, y), radius in zip(anchors, radii)]
    taken = [*obstacles, *markers]
    placements: list[Placement | None] = [None] * len(anchors)
    for index in crowded_first(anchors):
        placement = free_spot(anchors[index], sizes[index], radii[index], area, taken)
        placements[index] = placement
        taken.append(placement.box)
    return placements  # type: ignore[return-value]  # every index was placed


def crowded_first(anchors: Sequence[tuple[float, float]]) -> list[int]:
    def neighbours(index: int) -> int:
        x, y = anchors[index]
        return sum(math.dist((x, y), other) < CROWD_PX for other in anchors) - 1

    return sorted(range(len(anchors)), key=lambda index: -neighbours(index))


def free_spot(anchor: tuple[float, float], size: tuple[float, float], radius: float, area: Box,
              taken: Sequence[Box]) -> Placement:
    best: tuple[float, Placement] | None = None
    for distance, box in spots(anchor, size, radius, area):
        if not box.inside(area):
            continue
        placement = Placement(box, leader=distance >= LEADER_FROM_PX)
        if not any(box.overlaps(other, CLEARANCE) for other in taken):
            return placement
        covered = sum(box.overlap_area(other) for other in taken)
        if best is None or covered < best[0]:
            best = (covered, placement)
    if best is None:  # the label is larger than the axes: beside its point, whatever it covers
        x, y = anchor
        return Placement(Box(x + radius, y, x + radius + size[0], y + size[1]), leader=False)
    return best[1]


def spots(anchor: tuple[float, float], size: tuple[float, float], radius: float, area: Box
          ) -> Iterator[tuple[float, Box]]:
    """(distance past the marker, label box) for every spot tried, nearest first."""
    x, y = anchor
    width, height = size
    reach = math.hypot(area.x1 - area.x0, area.y1 - area.y0)
    distances = [CLEARANCE + NEAR_STEP_PX * step for step in range(NEAR_STEPS)]
    while distances[-1] < reach:
        distances.append(distances[-1] + FAR_STEP_PX)
    for distance in distances:
        for angle in ANGLES_DEG:
            dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
            # The point of the box that faces the marker: its left edge for a spot on the right, and so on.
            ax, ay = x + (radius + distance) * dx, y + (radius + distance) * dy
            x0 = ax - width * attachment(dx)
            y0 = ay - height * attachment(dy)
            yield distance, Box(x0, y0, x0 + width, y0 + height)


def attachment(direction: float) -> float:
    """Where along a side the box touches its spot: the near edge (0 or 1) or the middle (0.5)."""
    if direction > 0.38:
        return 0.0
    if direction < -0.38:
        return 1.0
    return 0.5
