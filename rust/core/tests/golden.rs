//! The golden cases (tests/golden/edge-cases.json of this crate): worked accounts with the
//! figures of METHODOLOGY.md, reproduced to rel 1e-9 / abs 1e-6 USD.

use pmengine_core::{Engine, Market, Portfolio, RiskParams};
use serde_json::Value;

fn close(got: &Value, want: &Value, at: &str, errors: &mut Vec<String>) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let gk: Vec<_> = g.keys().collect();
            let wk: Vec<_> = w.keys().collect();
            if gk != wk {
                errors.push(format!("{at}: keys {gk:?} != {wk:?}"));
            }
            for (k, wv) in w {
                if let Some(gv) = g.get(k) {
                    close(gv, wv, &format!("{at}.{k}"), errors);
                }
            }
        }
        (Value::Number(g), Value::Number(w)) => {
            let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
            if (g - w).abs() > 1e-6_f64.max(1e-9 * w.abs()) {
                errors.push(format!("{at}: got {g}, want {w}"));
            }
        }
        (g, w) if g == w => {}
        (g, w) => errors.push(format!("{at}: got {g}, want {w}")),
    }
}

#[test]
fn golden_cases() {
    let text = include_str!("golden/edge-cases.json");
    let cases: Vec<Value> = serde_json::from_str(text).unwrap();
    let engine = Engine::new(RiskParams::default_profile());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let p = Portfolio::from_value(&case["portfolio"]).unwrap();
        let m = Market::from_value(&case["market"]).unwrap();
        let got = engine.margin(&p, &m).unwrap().to_value(engine.params());
        let mut errors = Vec::new();
        close(&got, &case["expected"], "", &mut errors);
        if !errors.is_empty() {
            failures.push(format!("{name}:\n  {}", errors.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{} of {} golden cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
