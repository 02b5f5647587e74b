//! Policy documents as IAM returns them (URL-encoded or raw JSON): parsing, the grammar, the
//! dangerous-grant check and equivalence never panic, and equivalence is reflexive and survives
//! the document's own JSON.
#![no_main]

use iam_warden::policy::{PolicyDocument, PolicyKind, check, danger};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(doc) = PolicyDocument::from_iam(text) else {
        return;
    };
    for kind in [PolicyKind::Identity, PolicyKind::Trust] {
        let _ = check(doc.value(), kind);
        let _ = danger::findings(doc.value(), kind);
    }
    assert!(doc.is_equivalent(&doc));
    let again = PolicyDocument::parse_json(&doc.to_json()).expect("own JSON parses");
    assert!(again.is_equivalent(&doc) && doc.is_equivalent(&again));
    let _ = (doc.statements(), doc.size());
});
