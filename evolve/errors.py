"""The base of every error a user can fix (a bad config key, a broken problem folder, a missing
archive...). The CLI turns any of them into one line naming the file/key/program at fault and exit
code 2; importing this module costs nothing, so read commands need not import the engine."""

from __future__ import annotations


class UserError(Exception):
    """An error whose message tells the user what to fix."""


class RunError(UserError, RuntimeError):
    """The run cannot go on (e.g. the seed program fails); the message says why."""
