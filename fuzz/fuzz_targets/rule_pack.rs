//! Rule files: `RulePack::parse` on any text either yields a pack whose rules all have a
//! valid id, a kind and a title, and that the engine can run over traffic of every kind
//! (readings, events, last wills, clock ticks far ahead), or an error naming the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use steward_rules::{Engine, RulePack};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match RulePack::parse(text, "fuzz.toml") {
        Ok(pack) => {
            let mut ids = std::collections::HashSet::new();
            for r in pack.rules() {
                assert!(!r.id.is_empty() && r.id.len() <= 64, "rule id `{}`", r.id);
                assert!(ids.insert(r.id.clone()), "duplicate rule id {}", r.id);
                assert!(!r.kinds.is_empty(), "rule {} has no kind", r.id);
                assert!(r.ticket || r.notify || !r.commands.is_empty());
                assert!(pack.rule(&r.id).is_some());
            }
            if pack.rules().is_empty() {
                return;
            }
            let dir = steward_fuzz::directory();
            let mut engine = Engine::new(Arc::new(pack));
            for d in steward_fuzz::sample_traffic() {
                engine.on_decoded(d, dir);
            }
            // Timers and windows far ahead, up to the end of representable time.
            for ahead in [1_000, 3_600_000, 40 * 86_400_000, i64::MAX / 4] {
                engine.tick(steward_fuzz::NOW_MS.saturating_add(ahead), dir);
            }
            let snapshot = engine.snapshot();
            let mut again = Engine::new(engine.pack().clone());
            again.restore(snapshot);
            again.tick(steward_fuzz::NOW_MS + 7_200_000, dir);
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with("fuzz.toml"),
                "error does not name the file: {msg}"
            );
        }
    }
});
