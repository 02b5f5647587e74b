//! The YAML reader on any text: it returns documents or an error, never panics, and stays
//! within its limits (libFuzzer's -rss_limit_mb catches a blow-up).
#![no_main]

use iam_warden::manifest::yaml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let (docs, err) = yaml::parse_documents(text);
    if let Some(e) = err {
        // YAML breaks lines at \n, \r\n and a lone \r; at the end of input saphyr may count one more.
        let breaks = text.matches(['\n', '\r']).count();
        assert!(e.line <= breaks + 2, "{e:?}");
    }
    drop(docs);
});
