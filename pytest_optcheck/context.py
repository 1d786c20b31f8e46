"""What one check needs to know besides the trajectory: where its golden lives, the
spec and environment to record, the tolerance layers, and the text for the user."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .golden import Golden, GoldenLayout
from .trajectory import Trajectory


@dataclasses.dataclass
class CheckContext:
    layout: GoldenLayout
    test: str
    spec: dict[str, Any] | None
    environment: dict[str, Any]
    #: Lowest precedence first: ini, command line, marker, check() arguments.
    tolerance_layers: tuple[Mapping[str, Mapping[str, Any]], ...] = ()
    update_command: str | None = None
    picture: str | None = None
    name: str | None = None

    def golden_for(self, trajectory: Trajectory) -> Golden:
        return Golden(trajectory, self.spec, self.environment, self.test, self.name)
