"""The verdict policy: every rule that may decide a claim, each named once with the sentence that states it.

A rule is data (its thresholds) and a decision; its sentence is built from the same thresholds, so the
page that prints the sentence (SUMMARY's "How to read it", a report's claims table) and the verdict
cannot disagree. Claims (:mod:`nodebench.claims.registry`) name the rule that decides them; nothing
else in nodebench turns numbers into verdicts.

Verdicts: ``reproduced``, ``partly``, ``not`` compare ours with the paper's; ``not comparable`` says why
the paper's value cannot be compared (shown, tallied apart); ``not run`` means no citable run holds
the claim.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

REPRODUCED, PARTLY, NOT = "reproduced", "partly", "not"
NOT_COMPARABLE, NOT_RUN = "not comparable", "not run"
#: Verdicts that compare ours with the paper, strongest first; the tally counts these together.
COMPARED = (REPRODUCED, PARTLY, NOT)
#: Verdicts that do not compare (tallied apart).
UNCOMPARED = (NOT_COMPARABLE, NOT_RUN)
VERDICTS = (*COMPARED, *UNCOMPARED)
_STRENGTH = {NOT: 0, PARTLY: 1, REPRODUCED: 2}


def weakest(verdicts: Sequence[str]) -> str:
    """The weakest of compared verdicts (``not`` < ``partly`` < ``reproduced``)."""
    return min(verdicts, key=_STRENGTH.__getitem__)


def _finite(values: Sequence[float]) -> bool:
    return bool(values) and all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Rule:
    """A named verdict rule. Subclasses set the thresholds, :meth:`describe` and :meth:`decide`."""

    name: str

    def describe(self) -> str:
        """The rule as one sentence (markdown), made from its thresholds."""
        raise NotImplementedError

    def decide(self, **inputs: object) -> str:
        """The verdict for the claim's measured ``inputs`` (what each rule takes is in its docstring)."""
        raise NotImplementedError


@dataclass(frozen=True)
class RatioToPaper(Rule):
    """A number against the paper's: ``decide(pairs=[(ours, paper), ...])``; the weakest pair decides."""

    close: float = 1.25
    partly: float = 2.0

    def describe(self) -> str:
        return (
            f"ours within {_number(self.close)}x of the paper's number (either way) is *reproduced*, "
            f"within {_number(self.partly)}x *partly*, else *not*; where a claim holds several numbers "
            "(one per n, say), the weakest decides"
        )

    def factor(self, ours: float, paper: float) -> float:
        """How far ``ours`` is from ``paper``, as a factor >= 1 (inf where either is not positive)."""
        if not (_finite([ours, paper]) and ours > 0 and paper > 0):
            return math.inf
        return max(ours / paper, paper / ours)

    def decide(self, *, pairs: Sequence[tuple[float, float]]) -> str:  # type: ignore[override]
        verdicts = []
        for ours, paper in pairs:
            factor = self.factor(ours, paper)
            verdicts.append(REPRODUCED if factor <= self.close else PARTLY if factor <= self.partly else NOT)
        return weakest(verdicts) if verdicts else NOT


@dataclass(frozen=True)
class FractionOf(Rule):
    """A ratio the paper states as a fraction (backward/forward NFE ≈ 1/2): ``decide(ratio=r)``."""

    target: float = 0.5
    close: float = 1.25
    partly_below: float = 0.9

    def describe(self) -> str:
        low, high = self.target / self.close, self.target * self.close
        return (
            f"a ratio within {_number(self.close)}x of the paper's {_number(self.target)} "
            f"({low:.2f}-{high:.3g}) is *reproduced*; below {_number(self.partly_below)} (clearly below "
            f"1, but not {_number(self.target)}) *partly*; {_number(self.partly_below)} or more *not*"
        )

    def decide(self, *, ratio: float) -> str:  # type: ignore[override]
        if not _finite([ratio]) or ratio <= 0:
            return NOT
        if max(ratio / self.target, self.target / ratio) <= self.close:
            return REPRODUCED
        return PARTLY if ratio < self.partly_below else NOT


@dataclass(frozen=True)
class Ordering(Rule):
    """An order the paper states (A below B, a rise): ``decide(holds=[bool per compared cell])``."""

    def describe(self) -> str:
        return (
            "the stated order holds in every compared cell (the cells the row names: each n, each "
            "seed) *reproduced*, in some *partly*, in none *not*"
        )

    def decide(self, *, holds: Sequence[bool]) -> str:  # type: ignore[override]
        if not holds:
            return NOT
        return REPRODUCED if all(holds) else PARTLY if any(holds) else NOT


@dataclass(frozen=True)
class Trend(Rule):
    """A monotone trend: ``decide(rhos=[...])``, Spearman rank correlations signed so that the paper's
    direction is positive (e.g. -rho(tol, NFE), since a tighter tolerance costs more NFE)."""

    strong: float = 0.8

    def describe(self) -> str:
        return (
            f"every expected rank correlation (Spearman, in the paper's direction) at least "
            f"{_number(self.strong)} *reproduced*; every one positive, or one at least "
            f"{_number(self.strong)}, *partly*; else *not*"
        )

    def decide(self, *, rhos: Sequence[float]) -> str:  # type: ignore[override]
        if not _finite(rhos):
            return NOT
        if all(r >= self.strong for r in rhos):
            return REPRODUCED
        return PARTLY if all(r > 0 for r in rhos) or any(r >= self.strong for r in rhos) else NOT


@dataclass(frozen=True)
class MemoryClass(Rule):
    """Memory classes in depth: ``decide(expected={mode: "O(1)" | "grows"}, relative={mode: slope})``,
    each mode's saved-bytes slope against L relative to direct backpropagation's."""

    flat: float = 0.01

    def classify(self, relative: float) -> str:
        """``O(1)`` where the slope is below :attr:`flat` of direct backpropagation's, else ``grows``."""
        return "O(1)" if abs(relative) < self.flat else "grows"

    def describe(self) -> str:
        return (
            f"a saved-for-backward slope in depth below {self.flat:.0%} of direct backpropagation's is "
            "O(1), above it the memory grows; every mode in the paper's class *reproduced*, some "
            "*partly*, none *not*"
        )

    def decide(self, *, expected: dict[str, str], relative: dict[str, float]) -> str:  # type: ignore[override]
        holds = [mode in relative and self.classify(relative[mode]) == cls for mode, cls in expected.items()]
        return Ordering(self.name).decide(holds=holds)


@dataclass(frozen=True)
class Below(Rule):
    """A learned quantity against a threshold: ``decide(final=[...], first=[...])`` per (variant, seed)."""

    threshold: float = 0.05

    def describe(self) -> str:
        return (
            f"every (variant, seed) ends below {_number(self.threshold)} *reproduced*; every one ends "
            "below where it started *partly*; else *not*"
        )

    def decide(self, *, final: Sequence[float], first: Sequence[float]) -> str:  # type: ignore[override]
        if not _finite(final):
            return NOT
        if all(v < self.threshold for v in final):
            return REPRODUCED
        return PARTLY if all(f < s for f, s in zip(final, first, strict=True)) else NOT


@dataclass(frozen=True)
class Drop(Rule):
    """An error that training must cut: ``decide(drops=[first / final per (variant, seed)])``."""

    factor: float = 10.0

    def describe(self) -> str:
        return (
            f"the error falls at least {_number(self.factor)}x from the untrained model in every "
            "(variant, seed) *reproduced*; falls in every one *partly*; else *not*"
        )

    def decide(self, *, drops: Sequence[float]) -> str:  # type: ignore[override]
        if not _finite(drops):
            return NOT
        return REPRODUCED if min(drops) >= self.factor else PARTLY if min(drops) > 1 else NOT


@dataclass(frozen=True)
class NotComparable(Rule):
    """A value that cannot be compared with the paper's (``decide()`` takes nothing); the claim says why."""

    def describe(self) -> str:
        return (
            "*not comparable*: the paper's number depends on something it does not publish (the row "
            "says what); ours is shown beside it and the claim is tallied apart from the compared ones"
        )

    def decide(self, **inputs: object) -> str:
        return NOT_COMPARABLE


#: Every rule a claim may name, by name: the policy.
RATIO = RatioToPaper("ratio")
HALF = FractionOf("half")
ORDERING = Ordering("ordering")
TREND = Trend("trend")
MEMORY = MemoryClass("memory class")
BELOW = Below("threshold")
DROP = Drop("drop")
UNPUBLISHED_SCALE = NotComparable("not comparable")
RULES: dict[str, Rule] = {
    rule.name: rule for rule in (RATIO, HALF, ORDERING, TREND, MEMORY, BELOW, DROP, UNPUBLISHED_SCALE)
}
#: What "not run" means (no rule decides it: the evidence is missing).
NOT_RUN_TEXT = "*not run*: no citable run holds the claim yet (the row names what is missing)"
