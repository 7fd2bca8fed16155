"""The one kind of error a user can fix: the command prints its lines and exits 2, no traceback.

A bad spec (`spec.SpecError`, every problem at once), missing or corrupt data
(`datasets.shards.DataError`) and a trial that cannot fit the cluster
(`runner.resources.SizingError`) are all `UserError`s; each message says what is wrong and how
to fix it.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in what the user gave; `lines` is what the command prints, one `error:` each."""

    @property
    def lines(self) -> list[str]:
        return [str(self)]
