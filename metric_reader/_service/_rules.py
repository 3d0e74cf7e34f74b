"""What the service keeps for each rule it runs, in one object per rule.

A rule's state machines are the rule's own (``_engine``); around them the service keeps its
"no data" tracker (none for an alert of a rule file), its last evaluation and why its last
read failed (for the status page), and the throttled log line of its reads over the
series limit (a failed read is said by its group, for all its rules:
``_sources._read_errors``). One ``RuleRuntime`` holds them all, so a rule added, kept or
removed by a reload takes everything of its own along, and nothing is looked up in
parallel dicts that could fall out of step.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

from .._core import Throttle
from .._engine import NoData, Rule, recent_shares, tracks_no_data
from .._sources import Fetch
from .._surface import LastEvaluation


@dataclass(slots=True)
class RuleRuntime:
    """One rule at run time and what the service keeps for it."""

    rule: Rule
    no_data: NoData | None
    """None for an alert of a rule file: an empty result is its healthy state."""
    series_limit_errors: Throttle
    """Observations the series limit refused, logged once a minute at most."""
    last_evaluation: LastEvaluation | None = None
    last_error: str | None = None
    """Why its last read or evaluation failed; None once it is evaluated again."""

    @property
    def name(self) -> str:
        return self.rule.name

    @classmethod
    def new(cls, rule: Rule, fetch: str, kept: RuleRuntime | None = None) -> RuleRuntime:
        """``rule`` read by the fetch described ``fetch``; ``kept``: what the service kept
        for it before a reload (its "no data" tracker, its last evaluation)."""
        no_data = None
        if tracks_no_data(rule.config):
            no_data = kept.no_data if kept is not None else None
            no_data = no_data or NoData(rule.name, rule.expression)
        return cls(
            rule,
            no_data,
            Throttle(fetch, "ERROR", "series limit exceeded"),
            kept.last_evaluation if kept is not None else None,
        )

    def evaluated(self, at: float, seconds: float) -> None:
        """The rule was evaluated for the tick ``at``, ``seconds`` after its read began."""
        self.last_evaluation = LastEvaluation(at, seconds)
        self.last_error = None

    def failed(self, why: str) -> None:
        """The rule's read, or its evaluation, failed: its state stays as it was."""
        self.last_error = why


class RuleRuntimes:
    """Every rule the service runs, in order, each with its ``RuleRuntime``, by name.

    ``rules`` is changed in place: the state writer holds it, and the leader election holds
    ``by_name()``.
    """

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self._by_name: dict[str, RuleRuntime] = {}

    def install(self, rules: list[Rule], fetches: Iterable[Fetch], kept: Collection[str]) -> None:
        """Run ``rules``, read by ``fetches``. A rule ``kept`` over a reload keeps its "no
        data" tracker and last evaluation; the throttled log lines start afresh."""
        fetch_of = {config.name: fetch.description for fetch in fetches for config in fetch.rules}
        before = self._by_name
        self.rules[:] = rules
        for rule, share in zip(rules, recent_shares(len(rules)), strict=True):
            rule.keep_recent(share)
        self._by_name = {
            rule.name: RuleRuntime.new(
                rule,
                fetch_of[rule.name],
                before[rule.name] if rule.name in kept else None,
            )
            for rule in rules
        }

    def __iter__(self) -> Iterator[RuleRuntime]:
        return iter(self._by_name.values())

    def names(self) -> Collection[str]:
        return self._by_name.keys()

    def of(self, fetch: Fetch) -> list[RuleRuntime]:
        """The rules ``fetch`` is read for, in its order, as long as they are configured
        as when the read was planned: a read that started before a reload may answer after
        it, and what it read is not for a rule that changed or was removed."""
        found = []
        for config in fetch.rules:
            one = self._by_name.get(config.name)
            if one is not None and (one.rule.config is config or one.rule.config == config):
                found.append(one)
        return found

    def by_name(self) -> Mapping[str, Rule]:
        """The rules by name, as they are at each lookup (over reloads too)."""
        return _RulesByName(self)

    def get(self, name: str) -> RuleRuntime | None:
        return self._by_name.get(name)


class _RulesByName(Mapping[str, Rule]):
    def __init__(self, runtimes: RuleRuntimes) -> None:
        self._runtimes = runtimes

    def __getitem__(self, name: str) -> Rule:
        one = self._runtimes.get(name)
        if one is None:
            raise KeyError(name)
        return one.rule

    def __iter__(self) -> Iterator[str]:
        return iter(self._runtimes.names())

    def __len__(self) -> int:
        return len(self._runtimes.names())
