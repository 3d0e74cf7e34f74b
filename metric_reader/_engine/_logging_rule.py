"""A rule without a threshold: it logs every value it reads, and does nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .._core import EventKind, Labels, Sample
from ._rule import Rule, format_series
from ._state import Action, SeriesMachine

_NO_SERIES: Mapping[Labels, SeriesMachine] = MappingProxyType({})


class LoggingRule(Rule):
    """Logs each series it reads at info level; it tracks no series and hands out no
    actions, so it has no state to save, forget or adopt."""

    def evaluate(self, now: float, samples: list[Sample], acting: bool = True) -> list[Action]:
        if self.quiet or not samples:
            return []
        from .._core import logger  # not imported by a replay, which logs nothing

        for sample in samples:
            logger.bind(rule=self.name, value=sample.value).info(
                "{}", format_series(self.config.metric_name, sample.labels)
            )
        return []

    @property
    def series(self) -> Mapping[Labels, SeriesMachine]:
        return _NO_SERIES

    @property
    def revision(self) -> int:
        return 0

    def finish(self, now: float, action: Action, ok: bool) -> None:
        pass

    def took(self, action: Action, plugin: str) -> None:
        pass

    def give_back(self, action: Action) -> None:
        pass

    def make_room(self, read: set[Labels], limit: int) -> bool:
        return True

    def adopt(
        self, level: str, labels: Labels, kind: EventKind, at: float, fire_count: int
    ) -> bool:
        return False

    def retire(self, now: float) -> None:
        pass

    def wind_down(self, now: float) -> list[Action]:
        return []

    @property
    def wound_down(self) -> bool:
        return True

    def busy(self, level: str, labels: Labels) -> bool:
        return False

    def keep_recent(self, series: int) -> None:
        pass  # no series tracked: nothing to draw
