"""Note-level scores against ground truth, as mir_eval's onset-only note F-measure counts them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NoteScore:
    precision: float
    recall: float
    f: float
    matched: int

    def __str__(self) -> str:
        return f"P {self.precision:.3f}  R {self.recall:.3f}  F {self.f:.3f}  ({self.matched} matched)"


def note_f_measure(reference, estimated, onset_tolerance: float = 0.05) -> NoteScore:
    """One-to-one matching of (start, end, pitch, ...) notes: same pitch, onsets within the
    tolerance, the closest pairs first (greedy, where mir_eval finds a maximum matching; the two
    agree unless notes of one pitch are closer together than twice the tolerance)."""
    pairs = sorted(
        (abs(e[0] - r[0]), i, j)
        for i, r in enumerate(reference)
        for j, e in enumerate(estimated)
        if int(e[2]) == int(r[2]) and abs(e[0] - r[0]) <= onset_tolerance
    )
    used_r, used_e = set(), set()
    for _, i, j in pairs:
        if i not in used_r and j not in used_e:
            used_r.add(i)
            used_e.add(j)
    matched = len(used_r)
    p = matched / len(estimated) if estimated else 0.0
    r = matched / len(reference) if reference else 0.0
    return NoteScore(p, r, 2 * p * r / (p + r) if p + r else 0.0, matched)
