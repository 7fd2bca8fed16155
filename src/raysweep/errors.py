"""The one kind of error a user can fix: the command prints its lines and exits 2, no traceback.

A bad spec (`spec.SpecError`, every problem at once), missing or corrupt data
(`datasets.shards.DataError`) and a trial that cannot fit the cluster
(`runner.resources.SizingError`) are all `UserError`s; each message says what is wrong and how
to fix it.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in what the user gave: one message, or several found in one pass (`problems`).

    `lines` is what the command prints, one `error:` each.
    """

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))

    @property
    def lines(self) -> list[str]:
        return self.problems
