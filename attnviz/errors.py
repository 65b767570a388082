"""Errors a person can act on.

Pages catch these and show their message; anything else is a bug and goes to the log.
"""


class InputError(ValueError):
    """Input a person can fix: the message says what was wrong and what to do."""


class ModelLoadError(InputError):
    """A model name that could not be loaded; the message says why and what to use instead."""
