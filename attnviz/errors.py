"""Errors a person can act on.

Pages catch these and show their message; anything else is a bug and goes to the log.
"""


class InputError(ValueError):
    """Input a person can fix: the message says what was wrong and what to do."""


class WeightsNotHeld(InputError):
    """A long input's every-head weights were not kept (they would not fit): ask for one head
    with ``result.head(layer, head)``, computed on demand."""


class ModelLoadError(InputError):
    """A model name that could not be loaded; the message says why and what to use instead."""
