"""Reply sequencing for one socket: which reply seqs its visitor already has, so replay and
live frames reach them once each and in order."""

from __future__ import annotations

MAX_SKIPPED = 1000


class Delivered:
    """The reply seqs a socket's visitor has: every one up to ``floor`` except those in
    ``skipped``, and those in ``above``. ``floor`` starts at the newest logged seq when the
    socket opens (a visitor who never resumes gets what comes next) and ``resume`` resets it.
    A set rather than a high-water mark: with several replicas delivering one conversation,
    seq 6 may be published before 5, and 5 must still go out when it comes."""

    def __init__(self, floor: int) -> None:
        self.floor = floor
        self.above: set[int] = set()
        self.skipped: set[int] = set()  # given up waiting for these; still sent if they come

    def __call__(self, seq: int) -> bool:
        return (seq <= self.floor and seq not in self.skipped) or seq in self.above

    @property
    def next(self) -> int:
        return self.floor + 1

    def add(self, seq: int) -> None:
        if seq <= self.floor:
            self.skipped.discard(seq)
        else:
            self.above.add(seq)
        self._compact()

    def skip_to(self, seq: int) -> None:
        """Stop waiting for the seqs below ``seq``."""
        self.skipped |= {s for s in range(max(self.next, seq - MAX_SKIPPED), seq)} - self.above
        self.floor = max(self.floor, seq - 1)
        self.above = {s for s in self.above if s > self.floor}
        if len(self.skipped) > MAX_SKIPPED:
            self.skipped = set(sorted(self.skipped)[-MAX_SKIPPED:])
        self._compact()

    def resumed(self, after: int, replayed: list[int]) -> None:
        """The visitor has everything up to ``after``, and was just sent ``replayed``."""
        # Below the oldest logged frame there is nothing left to send: the log is trimmed.
        self.floor = max(after, min(replayed, default=after + 1) - 1)
        self.above = {s for s in [*self.above, *replayed] if s > self.floor}
        self.skipped = set()
        self._compact()

    def _compact(self) -> None:
        while self.next in self.above:
            self.floor += 1
            self.above.discard(self.floor)
