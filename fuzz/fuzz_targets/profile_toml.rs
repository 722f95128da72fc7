//! Any bytes as a profile TOML: an error or a profile that compiles into an
//! engine, never a panic, never an allocation past the scenario caps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pmengine_core::params::toml_value;
use pmengine_core::{Engine, RiskParams};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(v) = toml_value(text) else { return };
    let Ok(params) = RiskParams::from_value(&v) else { return };
    let _ = Engine::new(params);
});
