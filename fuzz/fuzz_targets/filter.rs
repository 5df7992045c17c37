//! Feeds arbitrary text to the OData query parsers: they must answer Ok or a
//! clean error, never panic, whatever the input.
#![no_main]

use agentry::domain::schema::{AGENT_CARD_MANIFEST, AGENT_INSTANCE};
use agentry::odata::{QueryOptions, filter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(expr) = filter::parse(text) {
        let _ = filter::check(&AGENT_INSTANCE, &expr);
        let _ = filter::check(&AGENT_CARD_MANIFEST, &expr);
    }
    if let Ok(q) = QueryOptions::parse(Some(text)) {
        let _ = q.check_shape(&AGENT_INSTANCE, &["agentCardManifest", "collections"]);
    }
});
