"""What a refresh remembers between its looks, in its record's details (``refresh``), read once into a typed view.

Everything else a refresh needs is read from Azure on each look (the pool as it is), so a look that dies half way is
finished by the next one: this state holds only what Azure cannot say again (the targets before a drain, which steps
the team was already told of) and what intake found.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..arm.pools import Targets
from ..store.progress import REFRESH_DETAIL, Details


@dataclass(frozen=True)
class RefreshState:
    """A refresh's own memory."""

    # The image the pool used, and the request whose pool it was, when the refresh was accepted.
    previous_image: str | None = None
    previous_request: str | None = None
    # The pool's targets before the drain ("600/0"), once a drain was decided; restored after the move.
    drained_from: str | None = None
    # The team was told the refresh waits for the pool (a step, once).
    waiting_told: bool = False
    # After the move: the old lineage released and the new one protected; the old version retired (or why not).
    protected: bool = False
    retired: bool = False

    @classmethod
    def of(cls, details: Mapping[str, Any]) -> RefreshState:
        """The state as a record's details hold it; a value of the wrong shape counts as absent."""
        stored = details.get(REFRESH_DETAIL)
        if not isinstance(stored, dict):
            return cls()

        def text(name: str) -> str | None:
            value = stored.get(name)
            return value if isinstance(value, str) else None

        return cls(previous_image=text("previousImage"), previous_request=text("previousRequest"), drained_from=text("drainedFrom"),
                   waiting_told=stored.get("waitingTold") is True, protected=stored.get("protected") is True,
                   retired=stored.get("retired") is True)

    def changed(self, **changes: Any) -> Details:
        """The details that record this state with ``changes``."""
        state = asdict(replace(self, **changes))
        names = {"previous_image": "previousImage", "previous_request": "previousRequest", "drained_from": "drainedFrom",
                 "waiting_told": "waitingTold", "protected": "protected", "retired": "retired"}
        return {REFRESH_DETAIL: {names[key]: value for key, value in state.items() if value not in (None, False)}}

    @property
    def drained_targets(self) -> Targets | None:
        """The targets before the drain, once one was decided."""
        if self.drained_from is None:
            return None
        dedicated, _, low_priority = self.drained_from.partition("/")
        return Targets(int(dedicated), int(low_priority)) if dedicated.isdigit() and low_priority.isdigit() else None
