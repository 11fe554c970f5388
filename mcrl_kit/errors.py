"""User-facing errors.

Every error a user can cause (bad file, bad column, bad config, NaN loss) is a
:class:`KitError` whose message is one paragraph naming *what* (the file or field),
*the problem* and *the fix*. The command line prints the paragraph and exits with
status 2, without a traceback; library users catch ``KitError``.
"""

from __future__ import annotations


class KitError(Exception):
    """A problem the user can fix. ``str(err)`` is a complete paragraph."""

    def __init__(self, what: str, problem: str, fix: str):
        self.what, self.problem, self.fix = what, problem, fix
        super().__init__(f"{what}: {problem}. Fix: {fix}")


class DataError(KitError):
    """Bad input data: missing file, wrong columns, malformed rows, nothing left."""


class ConfigError(KitError):
    """A config key, value or name the kit does not know."""


class TrainingError(KitError):
    """Training cannot go on (NaN/inf loss, incompatible checkpoint)."""


class KitWarning(UserWarning):
    """Something the user should know that does not stop the work (e.g. checkpoint selection falling
    back to another metric for lack of validation events). One sentence naming what and why."""
