//! Any bytes as a market JSON: an error or a market whose every number is in
//! bounds (finite, > 0), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pmengine_core::Market;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(m) = Market::from_json_str(text) else { return };
    assert!(m.time.is_finite());
    for x in m.prices.values().chain(m.marks.values()).chain(m.vols.values()) {
        assert!(x.is_finite() && *x > 0.0, "{x}");
    }
});
