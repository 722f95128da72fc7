"""Account modes, eligibility and atomic mode switching (METHODOLOGY.md §6).

Policy, not maths: the rules read the profile's ``[eligibility]`` and
``[switching]`` tables and the margin figures the engine computes.

    account = Account.from_dict(portfolio_dict)            # the portfolio's "account" table
    account.check_eligibility(engine, market)               # [] or every failed rule
    result = account.switch_mode("portfolio", engine, market, now=...)
    result.allowed, result.reasons, result.before, result.after

A switch is atomic: every rule is checked and the figures measured on the
current state first; only then is one audit record written and the new state
(mode, time of the switch) put in place by a single assignment. A refusal, or
an exception anywhere before that assignment, leaves the account as it was.
Every attempt, allowed or not, is appended to the audit log (JSON lines).
"""

from __future__ import annotations

import json
import math
import time as _time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmengine._core import Engine, Market, Portfolio, parse_time

if TYPE_CHECKING:
    from pmengine._core import _ClassicMode
from pmengine.errors import InvalidInputError, MissingMarketDataError, ModeSwitchError

MODES = ("classic", "portfolio")


@dataclass(frozen=True)
class Reason:
    """Why a rule failed: a stable ``code`` and a message for people."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class AccountProfile:
    """What the exchange knows of the account holder (the portfolio's ``account`` table)."""

    kyc_level: int = 0
    futures_enabled: bool = False
    quiz_passed: bool = False
    trading_days: int = 0
    jurisdiction: str | None = None

    @staticmethod
    def from_dict(d: dict[str, Any]) -> AccountProfile:
        def integer(key: str) -> int:
            x = d.get(key, 0)
            if isinstance(x, bool) or not isinstance(x, int | float) or x < 0 or x != int(x):
                raise InvalidInputError.at(
                    f"account.{key}", f"must be a whole number >= 0, got {x!r}", "wrong_type"
                )
            return int(x)

        def flag(key: str) -> bool:
            x = d.get(key, False)
            if not isinstance(x, bool):
                raise InvalidInputError.at(
                    f"account.{key}", f"must be true or false, got {x!r}", "wrong_type"
                )
            return x

        j = d.get("jurisdiction")
        if j is not None and not isinstance(j, str):
            raise InvalidInputError.at(
                "account.jurisdiction", f"must be a string, got {j!r}", "wrong_type"
            )
        return AccountProfile(
            kyc_level=integer("kyc_level"),
            futures_enabled=flag("futures_enabled"),
            quiz_passed=flag("quiz_passed"),
            trading_days=integer("trading_days"),
            jurisdiction=j,
        )


@dataclass(frozen=True)
class SwitchResult:
    """The outcome of a switch attempt. ``before`` / ``after``: the figures that
    decide it (uniMMR in portfolio mode; margin ratios and the cross margin
    level in classic mode), on the current state and as if switched."""

    allowed: bool
    from_mode: str
    to_mode: str
    reasons: list[Reason]
    before: dict[str, Any]
    after: dict[str, Any]
    time: float
    dry_run: bool = False

    def raise_for_refusal(self) -> None:
        """Raise `ModeSwitchError` (with every reason) when refused."""
        if not self.allowed:
            raise ModeSwitchError(
                "; ".join(f"{r.code}: {r.message}" for r in self.reasons),
                reasons=[r.to_dict() for r in self.reasons],
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": _iso(self.time),
            "from": self.from_mode,
            "to": self.to_mode,
            "outcome": "refused" if not self.allowed else "dry_run" if self.dry_run else "switched",
            "reasons": [r.to_dict() for r in self.reasons],
            "before": self.before,
            "after": self.after,
        }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _json_number(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _time_of(now: float | str | datetime | None) -> float:
    if now is None:
        return _time.time()
    if isinstance(now, str):  # ISO-8601, read as a market's time is
        try:
            return parse_time(now, "now")
        except InvalidInputError:
            raise InvalidInputError.at(
                "now", f"must be an ISO-8601 time, a datetime or epoch seconds, got {now!r}"
            ) from None
    if isinstance(now, datetime):
        return parse_time(now, "now")
    if not math.isfinite(now):
        raise InvalidInputError.at("now", f"must be finite, got {now!r}", "out_of_range")
    return float(now)


def figures(
    mode: str,
    engine: Engine,
    portfolio: Portfolio,
    market: Market,
    *,
    classic_mode: _ClassicMode = "as_given",
) -> dict[str, Any]:
    """What decides an account's health in `mode`, JSON-ready (ratios: None when
    infinite). ``classic_mode``: which positions are isolated in classic (an
    account arriving from portfolio mode has every position cross)."""
    if mode == "portfolio":
        r = engine.margin(portfolio, market)
        return {
            "mode": mode,
            "status": r.status,
            "uni_mmr": _json_number(r.uni_mmr),
            "maintenance_margin": r.maintenance_margin,
        }
    c = engine.classic(portfolio, market, classic_mode)
    return {
        "mode": mode,
        "status": c.status,
        # None: infinite (a wallet with MM and no margin balance; a cross margin account without loans).
        "usdm_margin_ratio": c.usdm["margin_ratio"],
        "coinm_margin_ratios": {w["name"]: w["margin_ratio"] for w in c.coinm},
        "cross_margin_level": c.cross_margin["margin_level"],
        "maintenance_margin": c.maintenance_margin,
    }


@dataclass
class Account:
    """A portfolio with its holder's profile and its margin mode.

    ``audit_log``: a path the audit records are appended to (JSON lines), or
    None to keep them in ``audit`` only.
    """

    portfolio: Portfolio
    profile: AccountProfile = field(default_factory=AccountProfile)
    mode: str = "classic"
    last_switch: float | None = None
    audit_log: str | Path | None = None
    audit: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInputError.at(
                "account.mode", f'must be "classic" or "portfolio", got {self.mode!r}'
            )

    @staticmethod
    def from_dict(d: dict[str, Any], *, audit_log: str | Path | None = None) -> Account:
        """An account from the portfolio JSON (§8); its optional ``account`` table
        gives ``mode``, ``kyc_level``, ``futures_enabled``, ``quiz_passed``,
        ``trading_days``, ``jurisdiction`` and ``last_switch`` (ISO time)."""
        info = dict(d.get("account") or {})
        mode = info.pop("mode", "classic")
        last = info.pop("last_switch", None)
        known = {"kyc_level", "futures_enabled", "quiz_passed", "trading_days", "jurisdiction"}
        for k in info:
            if k not in known:
                raise InvalidInputError.at(f"account.{k}", "unknown key", "unknown_key")
        last_switch = None
        if last is not None:
            try:
                last_switch = datetime.fromtimestamp(
                    parse_time(str(last), "account.last_switch"), UTC
                )
            except InvalidInputError:
                raise InvalidInputError.at(
                    "account.last_switch", f"not an ISO-8601 time: {last!r}"
                ) from None
        return Account(
            portfolio=Portfolio.from_dict(d),
            profile=AccountProfile.from_dict(info),
            mode=mode,
            last_switch=_time_of(last_switch) if last_switch else None,
            audit_log=audit_log,
        )

    # -- rules -------------------------------------------------------------------------

    def qualifying_equity(self, engine: Engine, market: Market) -> float:
        """USD of positive balances in collateral-eligible assets, at index."""
        params, prices = engine.params, market.prices
        total = 0.0
        for asset, qty in self.portfolio.balances:
            if qty > 0 and params.is_collateral(asset):
                if asset not in prices:
                    raise MissingMarketDataError.at(
                        f"market.prices.{asset}",
                        f"no price for {asset} in market.prices",
                        "missing_price",
                    )
                total += qty * prices[asset]
        return total

    def check_eligibility(self, engine: Engine, market: Market) -> list[Reason]:
        """Every failed eligibility rule of ``[eligibility]`` (empty: eligible)."""
        e = engine.params.eligibility
        a, reasons = self.profile, []
        min_equity = e["min_equity"]
        equity = self.qualifying_equity(engine, market)
        if equity < min_equity:
            reasons.append(
                Reason(
                    "min_equity",
                    f"qualifying equity {equity:,.2f} USD is below {min_equity:,.2f} USD",
                )
            )
        if a.kyc_level < e["min_kyc_level"]:
            reasons.append(
                Reason("kyc_level", f"KYC level {a.kyc_level} is below {e['min_kyc_level']}")
            )
        if e["require_futures_enabled"] and not a.futures_enabled:
            reasons.append(Reason("futures_disabled", "the futures account is not enabled"))
        if e["require_quiz"] and not a.quiz_passed:
            reasons.append(
                Reason("quiz_not_passed", "the portfolio margin quiz has not been passed")
            )
        if a.trading_days < e["min_trading_days"]:
            reasons.append(
                Reason(
                    "trading_days",
                    f"{a.trading_days} trading days, {e['min_trading_days']} required",
                )
            )
        if a.jurisdiction is not None and a.jurisdiction in e["restricted_jurisdictions"]:
            reasons.append(
                Reason("restricted_jurisdiction", f"jurisdiction {a.jurisdiction} is restricted")
            )
        return reasons

    def _switch_reasons(
        self,
        target: str,
        engine: Engine,
        market: Market,
        now: float,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> list[Reason]:
        s = engine.params.switching
        reasons: list[Reason] = []
        if target == self.mode:
            reasons.append(Reason("same_mode", f"the account is already in {target} mode"))
        interval = s["min_switch_interval"]
        if self.last_switch is not None and now - self.last_switch < interval:
            wait = interval - (now - self.last_switch)
            reasons.append(
                Reason(
                    "min_switch_interval",
                    f"last switch {now - self.last_switch:.0f} s ago; wait {wait:.0f} s",
                )
            )
        positions = self.portfolio.positions
        if target == "portfolio":
            reasons += self.check_eligibility(engine, market)
            isolated = [p["symbol"] for p in positions if p.get("isolated_margin") is not None]
            if isolated:
                reasons.append(
                    Reason("isolated_positions", f"isolated positions: {', '.join(isolated)}")
                )
            known = set(engine.params.assets)
            unknown = [a for a, _ in self.portfolio.balances if a not in known]
            if unknown:
                reasons.append(
                    Reason(
                        "unknown_asset", f"assets the profile does not list: {', '.join(unknown)}"
                    )
                )
            floor = s["switch_min_ratio"]
            ratio = after["uni_mmr"]
            if ratio is not None and ratio < floor:
                reasons.append(
                    Reason(
                        "switch_min_ratio",
                        f"uniMMR after the switch {ratio:.4g} is below {floor:.4g}",
                    )
                )
        else:
            cap = s["switch_max_margin_ratio"]
            wallets = {"usdm": after["usdm_margin_ratio"], **after["coinm_margin_ratios"]}
            for name, ratio in wallets.items():
                r = math.inf if ratio is None else ratio
                if r >= cap:
                    reasons.append(
                        Reason(
                            "futures_margin_ratio",
                            f"the {name} futures wallet's margin ratio {r:.4g} is at or above {cap:.4g}",
                        )
                    )
            call = engine.params.classic["cross_margin_call"]
            level = math.inf if after["cross_margin_level"] is None else after["cross_margin_level"]
            if level <= call:
                reasons.append(
                    Reason(
                        "cross_margin_level",
                        f"the cross margin level {level:.4g} is at or below its call {call:.4g}",
                    )
                )
            options = [p["symbol"] for p in positions if p["type"] == "option"]
            if options and not s["allow_options_in_classic"]:
                reasons.append(
                    Reason(
                        "options_in_classic",
                        f"options are not allowed in classic: {', '.join(options)}",
                    )
                )
        return reasons

    # -- switching ---------------------------------------------------------------------

    def switch_mode(
        self,
        target: str,
        engine: Engine,
        market: Market,
        *,
        now: float | str | datetime | None = None,
        dry_run: bool = False,
    ) -> SwitchResult:
        """Move the whole account to `target` ("portfolio" or "classic"), or
        change nothing and return every reason. ``now``: seconds since the
        epoch, ISO-8601 text or a datetime (default: the clock). ``dry_run``: check and
        audit, but do not switch."""
        if target not in MODES:
            raise InvalidInputError.at(
                "target", f'must be "classic" or "portfolio", got {target!r}'
            )
        t = _time_of(now)
        before = figures(self.mode, engine, self.portfolio, market)
        after = figures(target, engine, self.portfolio, market, classic_mode="cross")
        reasons = self._switch_reasons(target, engine, market, t, before, after)
        result = SwitchResult(
            allowed=not reasons,
            from_mode=self.mode,
            to_mode=target,
            reasons=reasons,
            before=before,
            after=after,
            time=t,
            dry_run=dry_run,
        )
        self._record(result.to_dict())
        if result.allowed and not dry_run:
            self.mode, self.last_switch = target, t  # the commit: nothing after it can fail
        return result

    def _record(self, record: dict[str, Any]) -> None:
        """Append one audit record: to the file first (so a failed write leaves
        no trace in memory either), then to ``audit``."""
        line = json.dumps(record, sort_keys=True, allow_nan=False)
        if self.audit_log is not None:
            with open(self.audit_log, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        self.audit.append(record)

    def snapshot(self) -> dict[str, Any]:
        """The account's state, for comparisons: mode, last switch, positions and balances."""
        return {
            "mode": self.mode,
            "last_switch": self.last_switch,
            "portfolio": self.portfolio.to_dict(),
            "profile": asdict(self.profile),
        }
