"""When labels are asked for: a share up front, the rest at a rate decaying as T0/(T+T0)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LabelSchedule:
    """Cumulative labels due by agent step T.

    Attributes:
        total: label budget.
        initial: labels asked about the initial random policy, before RL starts.
        horizon: the agent's step budget.
        t0: decay constant T0 of the rate T0/(T+T0), in agent steps.
    """

    total: int
    initial: int
    horizon: int
    t0: float

    def due(self, step: int) -> int:
        if step <= 0:
            return self.initial
        frac = math.log1p(min(step, self.horizon) / self.t0) / math.log1p(self.horizon / self.t0)
        return min(self.total, self.initial + round((self.total - self.initial) * frac))
