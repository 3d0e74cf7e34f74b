"""``verify_within``, ``max_attempts``, ``escalate_plugin`` and ``verify_query``: whether a
rule's fixes held, given on a rule, the rule file's defaults or a route (the engine's
``_verify`` applies them)."""

from __future__ import annotations

from .._core import record

DEFAULT_MAX_ATTEMPTS = 3


@record(frozen=True, slots=True)
class VerifyConfig:
    """Whether a fix held (``verify_within``, ``max_attempts``, ``escalate_plugin``): of a
    rule (or the rule file's defaults), or of a route for the alerts it takes. None: not set
    here (a route's falls back on the rule's)."""

    within: float | None = None
    """A fire or repeat that succeeded must see the condition end this soon, else the fix
    did not hold; None: fixes are not verified."""
    max_attempts: int | None = None
    """Fixes that did not hold in one breach before the loop breaker gives up (None: 3)."""
    escalate_plugin: str | None = None
    """Where the ``unverified`` and ``gave_up`` events go (None: only logged)."""
    query: str | None = None
    """``verify_query``: PromQL that judges a fix instead of the rule's own condition: the
    fix held once it is healthy for the alert (no result series whose labels agree with
    the alert's on every label name they share); None: the rule's condition judges."""

    def over(self, other: VerifyConfig) -> VerifyConfig:
        """These settings, each one not set here taken from ``other``."""
        return VerifyConfig(
            self.within if self.within is not None else other.within,
            self.max_attempts if self.max_attempts is not None else other.max_attempts,
            self.escalate_plugin if self.escalate_plugin is not None else other.escalate_plugin,
            self.query if self.query is not None else other.query,
        )

    @property
    def attempts(self) -> int:
        return self.max_attempts if self.max_attempts is not None else DEFAULT_MAX_ATTEMPTS
