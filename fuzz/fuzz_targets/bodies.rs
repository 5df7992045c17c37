//! Feeds arbitrary JSON to the body decoder of every resource (registry
//! creates and updates, Copilot settings and policies, tenant settings,
//! fault rules, snapshots): each must answer Ok or a clean error, never
//! panic, and what it accepts must build a document.
#![no_main]

use agentry::domain::copilot::{CopilotRules, TenantSetting, parse_new_policy, parse_policy_patch, parse_setting_patch};
use agentry::domain::schema::{AGENT_CARD_MANIFEST, AGENT_COLLECTION, AGENT_INSTANCE};
use agentry::domain::{WriteContext, apply_patch, new_document, parse_write};
use agentry::http::faults::NewRule;
use agentry::seed::{TenantSeed, parse_tenant};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let ctx = WriteContext {
        now: "2026-01-01T00:00:00.0000000Z".into(),
        actor: Some("fuzz".into()),
        if_match: None,
        scope: Default::default(),
    };
    let rules = CopilotRules::default();
    for ty in [&AGENT_INSTANCE, &AGENT_CARD_MANIFEST, &AGENT_COLLECTION] {
        for create in [true, false] {
            if let Ok(write) = parse_write(ty, body.clone(), create) {
                let mut doc = new_document(ty, "id", &write.props, &ctx);
                apply_patch(&mut doc, &write.props, &ctx);
                let _ = serde_json::to_string(&doc);
            }
        }
    }
    for strict in [false, true] {
        if let Ok(policy) = parse_new_policy(body.clone(), strict, &ctx) {
            let _ = policy.validate(strict);
        }
    }
    let _ = parse_policy_patch("p", body.clone());
    for setting in ["microsoft.copilot.copilotchatpinning", "unknown"] {
        let _ = parse_setting_patch(setting, body.clone(), &rules);
    }
    for setting in [TenantSetting::LimitedMode, TenantSetting::EnhancedPersonalization] {
        let _ = setting.parse_patch(body.clone());
    }
    if let Ok(rule) = serde_json::from_value::<NewRule>(body.clone()) {
        let _ = rule.validate("t");
    }
    if let Ok(seed) = serde_json::from_value::<TenantSeed>(body) {
        let _ = parse_tenant(&seed, rules, &ctx.now);
    }
});
