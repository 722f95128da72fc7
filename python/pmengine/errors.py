"""The pmengine exception hierarchy.

Every error the engine raises is a :class:`PmError`; each also subclasses the
builtin that an ordinary ``except`` clause would expect. Messages name the field
path, the value and what was expected::

    positions[3].entry_price: must be > 0, got 0

Beside the message, every error carries ``field`` (that path; ``""`` when the
error is about a whole document or call) and ``code``, a short stable machine
code a program can branch on:

================  ==========================================================
``missing``       a required field, argument or column is absent
``unknown_key``   a key or column the format does not have
``wrong_type``    a number, string, table, array or boolean of the wrong kind
``out_of_range``  a number outside its bounds (non-finite, <= 0, too large, a
                  time in milliseconds, a vol in percent), or a list, string
                  or nesting too long
``invalid_value`` a value of the right type that is not accepted: an unknown
                  name or option, a malformed time, an inconsistent combination
``syntax``        text that does not parse (JSON, TOML)
``missing_price`` the market has no index price or mark the account needs
``missing_vol``   the market has no implied vol for an option
``unreadable``    a file cannot be read, or an output written (``InputFileError``)
``ineligible``    the account fails the portfolio-margin eligibility rules
``refused``       a mode switch was refused (``ModeSwitchError.reasons``)
``missing_extra`` an optional dependency is not installed
``internal``      a bug in pmengine, never a bad input
================  ==========================================================

The native core sets ``field`` and ``code`` when it raises (the first eight
codes are the core's, ``pmengine._core.ERROR_CODES``); Python code raises
through :meth:`PmError.at`, which writes the message from them. The core raises
these same classes (it imports them from here), so the Rust engine and the
pure-Python reference fail the same way on the same input.
"""

from __future__ import annotations

from os import PathLike
from typing import Literal, Self

ErrorCode = Literal[
    "missing",
    "unknown_key",
    "wrong_type",
    "out_of_range",
    "invalid_value",
    "syntax",
    "missing_price",
    "missing_vol",
    "unreadable",
    "ineligible",
    "refused",
    "missing_extra",
    "internal",
]


class PmError(Exception):
    """Base class of every pmengine error."""

    #: The code of this class's errors when the raiser gives none.
    default_code: ErrorCode = "invalid_value"

    def __init__(self, message: str = "", field: str = "", code: ErrorCode | None = None) -> None:
        super().__init__(message)
        #: The field path the error is about (``positions[3].entry_price``), or ``""``.
        self.field = field
        #: A short stable machine code (see the module's table).
        self.code: ErrorCode = code or self.default_code

    @classmethod
    def at(cls, field: str | PathLike[str], message: str, code: ErrorCode | None = None) -> Self:
        """The error ``field: message`` (``message`` alone when ``field`` is empty),
        with ``field`` (a path; a file's name for a file) and ``code`` set: the one
        way Python code raises them."""
        field = str(field)
        return cls(f"{field}: {message}" if field else message, field=field, code=code)


class InvalidInputError(PmError, ValueError):
    """Malformed or out-of-range input: a portfolio, a market, an order."""


class ProfileError(InvalidInputError):
    """A risk profile that cannot be compiled: an unknown key, a wrong type or value."""


class MissingMarketDataError(PmError, KeyError):
    """A price or vol the account needs is not in the market snapshot."""

    default_code: ErrorCode = "missing_price"

    def __str__(self) -> str:  # KeyError would repr-quote the message
        return str(self.args[0]) if self.args else ""


class InputFileError(PmError):
    """A file named on the command line or given to a file scan cannot be read,
    or an output file cannot be written."""

    default_code: ErrorCode = "unreadable"


class IneligibleError(PmError):
    """The account does not meet the portfolio-margin eligibility rules."""

    default_code: ErrorCode = "ineligible"


class ModeSwitchError(PmError):
    """A mode switch was refused; ``reasons`` lists every failed rule."""

    default_code: ErrorCode = "refused"

    def __init__(
        self,
        message: str = "",
        reasons: list[object] | None = None,
        *,
        field: str = "",
        code: ErrorCode | None = None,
    ) -> None:
        super().__init__(message, field, code)
        self.reasons = list(reasons or [])


class MissingExtraError(PmError, ImportError):
    """An optional dependency is not installed; the message names the extra
    (``pip install 'pmengine[plot]'``)."""

    default_code: ErrorCode = "missing_extra"


__all__ = [
    "ErrorCode",
    "IneligibleError",
    "InputFileError",
    "InvalidInputError",
    "MissingExtraError",
    "MissingMarketDataError",
    "ModeSwitchError",
    "PmError",
    "ProfileError",
]
