//! Black-76 against an arbitrary-precision oracle (tests/oracle/black76.json,
//! written by tests/oracle/black76.py with mpmath): the exact value and delta of
//! the same binary64 inputs, across moneyness from 1e-3 to 1e3, τ from one
//! second to thirty years, vols from 1e-3 through the floor (0.05, 0.035) to
//! 10, and σ√τ down to just above the floor where the pricer turns to intrinsic
//! value. Values agree to a relative 1e-12, or 1e-15·(f + k) absolute where
//! they vanish against the forward and the strike (deep out of the money, or a
//! tiny σ√τ at the money, where `f·N(d1) − k·N(d2)` cancels); deltas to 1e-15
//! absolute.

use pmengine_core::pricing::{black76, black76_delta};
use pmengine_core::OptionKind;
use serde_json::Value;

#[test]
fn black76_matches_the_oracle() {
    let cases: Vec<Value> = serde_json::from_str(include_str!("oracle/black76.json")).unwrap();
    assert!(cases.len() > 3000, "{}", cases.len());
    let (mut worst, mut failures) = (0.0f64, Vec::new());
    for c in &cases {
        let num = |k: &str| c[k].as_f64().unwrap();
        let kind = if c["kind"] == "call" { OptionKind::Call } else { OptionKind::Put };
        let (f, k, sigma, tau) = (num("f"), num("k"), num("sigma"), num("tau"));
        let (value, delta) = (black76(kind, f, k, sigma, tau), black76_delta(kind, f, k, sigma, tau));
        let (want, want_delta) = (num("value"), num("delta"));
        let floor = 1e-15 * (f + k);
        if (value - want).abs() > 1e-12 * want.abs() + floor || (delta - want_delta).abs() > 1e-15 {
            failures.push(format!("{c}: value {value:e}, delta {delta:e}"));
        }
        // The error as a share of its bound, the delta's error in units of 1e-15.
        worst = worst.max((value - want).abs() / (1e-12 * want.abs() + floor));
        worst = worst.max((delta - want_delta).abs() / 1e-15);
    }
    assert!(failures.is_empty(), "{} of {} cases:\n{}", failures.len(), cases.len(), failures.join("\n"));
    // Far inside the bounds: they leave room for the inputs' own rounding.
    println!("worst error: {worst:.3} of its bound");
    assert!(worst < 0.5, "worst error {worst:.3} of its bound");
}
