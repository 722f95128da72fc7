"""Stress scenarios: a move per risk group or asset and a vol shock, read from
TOML (the built-in ones in ``risk.toml`` beside this file, or the user's) or
from ``--move`` text, and checked against a profile and a market.

A move is a return: 0.10 = +10 %; it must be > −1 (no price or vol reaches 0).
"""

from __future__ import annotations

import functools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from pmengine._core import Market, RiskParams
from pmengine.errors import InvalidInputError
from pmengine.risk.profile import group_table


@dataclass(frozen=True)
class Scenario:
    """A market move: returns per risk group (``"*"``: every group with
    ``price_range > 0`` not named) and per asset (wins over its group), and a
    relative shock of every implied vol."""

    name: str
    description: str = ""
    groups: Mapping[str, float] = field(default_factory=dict)
    assets: Mapping[str, float] = field(default_factory=dict)
    vol_shock: float = 0.0

    @staticmethod
    def from_dict(d: Mapping[str, Any], at: str = "scenario") -> Scenario:
        """A scenario from its TOML table; bad fields raise InvalidInputError naming them."""
        if not isinstance(d, Mapping):
            raise InvalidInputError.at(at, f"must be a table, got {d!r}", "wrong_type")
        unknown = sorted(set(d) - {"name", "description", "groups", "assets", "vol_shock"})
        if unknown:
            raise InvalidInputError.at(f"{at}.{unknown[0]}", "unknown key", "unknown_key")
        name = d.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInputError.at(f"{at}.name", f"must be a non-empty string, got {name!r}")
        description = d.get("description", "")
        if not isinstance(description, str):
            raise InvalidInputError.at(
                f"{at}.description", f"must be a string, got {description!r}", "wrong_type"
            )

        def moves(key: str) -> dict[str, float]:
            table = d.get(key, {})
            if not isinstance(table, Mapping):
                raise InvalidInputError.at(
                    f"{at}.{key}", f"must be a table, got {table!r}", "wrong_type"
                )
            return {str(k): _move(v, f"{at}.{key}.{k}") for k, v in table.items()}

        return Scenario(
            name=name,
            description=description,
            groups=moves("groups"),
            assets=moves("assets"),
            vol_shock=_move(d.get("vol_shock", 0.0), f"{at}.vol_shock"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "groups": dict(self.groups),
            "assets": dict(self.assets),
            "vol_shock": self.vol_shock,
        }


def _move(x: Any, at: str) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        raise InvalidInputError.at(at, f"must be a finite number, got {x!r}")
    if x <= -1:
        raise InvalidInputError.at(
            at, f"must be > -1 (a price or vol cannot reach 0), got {x!r}", "out_of_range"
        )
    return float(x)


def load_scenarios(text: str | dict[str, Any], source: str = "stress") -> list[Scenario]:
    """Scenarios from TOML text, or the document already parsed (the command line's
    reader, ``pmengine.files``): a ``[[stress]]`` array of tables (see ``risk.toml``)."""
    if isinstance(text, dict):
        doc = text
    else:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise InvalidInputError.at(source, f"not valid TOML: {e}", "syntax") from None
    entries = doc.get("stress", [])
    if not isinstance(entries, list):
        raise InvalidInputError.at(source, "stress must be an array of tables ([[stress]])")
    out = [Scenario.from_dict(e, f"{source}: stress[{i}]") for i, e in enumerate(entries)]
    names = [s.name for s in out]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise InvalidInputError.at(source, f"stress[{i}].name: duplicate name {n!r}")
    return out


def parse_move(spec: str) -> Scenario:
    """A scenario from ``NAME=RETURN[,NAME=RETURN...]`` (``BTC=-0.2,vol=0.5``).

    NAME is a risk group, ``*`` (every crypto group) or ``vol`` (the vol shock);
    an asset that is not a group name is moved alone (WBTC without BTC)."""
    groups: dict[str, float] = {}
    vol = 0.0
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInputError.at("", f"--move {spec!r}: expected NAME=RETURN, got {part!r}")
        try:
            x = float(value)
        except ValueError:
            raise InvalidInputError.at(
                "", f"--move {spec!r}: {key}: not a number: {value.strip()!r}"
            ) from None
        if key.lower() == "vol":
            vol = _move(x, f"--move {key}")
        else:
            groups[key] = _move(x, f"--move {key}")
    return Scenario(name=f"move {spec}", groups=groups, vol_shock=vol)


def check_scenario(scenario: Scenario, params: RiskParams, market: Market) -> None:
    """Every name a user scenario moves exists: a group is ``"*"``, a group of
    the profile or the group of a priced asset; an asset has a price. A typo
    would otherwise move nothing, silently."""
    prices = market.prices
    groups = {g for g in group_table(params) if g != "*"}
    groups |= {params.group_of(a) for a in prices}
    for g in scenario.groups:
        if g != "*" and g not in groups and g not in prices:
            raise InvalidInputError.at(
                "", f"scenario {scenario.name!r}: groups.{g}: no such risk group or priced asset"
            )
    for a in scenario.assets:
        if a not in prices:
            raise InvalidInputError.at(
                "",
                f"scenario {scenario.name!r}: assets.{a}: no price in the market",
                "missing_price",
            )


def builtin_scenarios() -> list[Scenario]:
    """The built-in stress scenarios of ``risk.toml``."""
    return load_scenarios(_defaults(), "risk.toml")


@functools.cache
def _defaults() -> dict[str, Any]:
    """``risk.toml``, parsed once per process (read only: callers build their own objects)."""
    return tomllib.loads((resources.files("pmengine.risk") / "risk.toml").read_text())
