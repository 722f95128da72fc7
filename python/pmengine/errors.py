"""The pmengine exception hierarchy.

Every error the engine raises is a :class:`PmError`; each also subclasses the
builtin that an ordinary ``except`` clause would expect. Messages name the field
path, the value and what was expected::

    positions[3].entry_price: must be > 0, got 0

The native core raises these same classes (it imports them from here), so the
Rust engine and the pure-Python reference fail the same way on the same input.
"""

from __future__ import annotations


class PmError(Exception):
    """Base class of every pmengine error."""

    @property
    def field(self) -> str:
        """The field path the message names (the text before the first ``": "``)."""
        return str(self).split(": ", 1)[0]


class InvalidInputError(PmError, ValueError):
    """Malformed or out-of-range input: a portfolio, a market, an order."""


class ProfileError(InvalidInputError):
    """A risk profile that cannot be compiled: an unknown key, a wrong type or value."""


class MissingMarketDataError(PmError, KeyError):
    """A price or vol the account needs is not in the market snapshot."""

    def __str__(self) -> str:  # KeyError would repr-quote the message
        return str(self.args[0]) if self.args else ""


class InputFileError(PmError):
    """A file named on the command line or given to a file scan cannot be read."""


class IneligibleError(PmError):
    """The account does not meet the portfolio-margin eligibility rules."""


class ModeSwitchError(PmError):
    """A mode switch was refused; ``reasons`` lists every failed rule."""

    def __init__(self, message: str, reasons: list[object] | None = None) -> None:
        super().__init__(message)
        self.reasons = list(reasons or [])


class MissingExtraError(PmError, ImportError):
    """An optional dependency is not installed; the message names the extra
    (``pip install 'pmengine[plot]'``)."""


__all__ = [
    "IneligibleError",
    "InputFileError",
    "InvalidInputError",
    "MissingExtraError",
    "MissingMarketDataError",
    "ModeSwitchError",
    "PmError",
    "ProfileError",
]
