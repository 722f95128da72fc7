//! Any bytes as a portfolio JSON: an error or a portfolio, never a panic; an
//! accepted portfolio reads back from its own JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pmengine_core::Portfolio;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(p) = Portfolio::from_json_str(text) else { return };
    let again = Portfolio::from_json_str(&p.to_value().to_string()).expect("its own JSON reads back");
    assert_eq!(again.to_value(), p.to_value());
});
