"""What a reconciliation check reports: one finding, and the commands that would fix it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Discrepancy:
    check: str
    subject: str
    detail: str
    fixes: list[str] = field(default_factory=list)
