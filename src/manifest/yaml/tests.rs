//! The hardened YAML reader: lines, core-schema typing, limits, and its errors.
use super::*;

fn one(text: &str) -> Node {
    let (docs, err) = parse_documents(text);
    assert_eq!(err, None);
    docs.into_iter()
        .next()
        .and_then(|d| d.root)
        .expect("a document")
}

fn error(text: &str) -> SyntaxError {
    parse_documents(text).1.expect("an error")
}

#[test]
fn nodes_remember_their_lines() {
    let root = one("a: 1\nb:\n  c: [x, y]\n");
    let path = FieldPath::default().key("b").key("c").index(1);
    assert_eq!(root.line_at(&path), 3);
    assert_eq!(root.line_at(&FieldPath::default().key("a")), 1);
}

#[test]
fn several_documents_are_read_and_empty_ones_have_no_root() {
    let (docs, err) = parse_documents("a: 1\n---\n---\n# only a comment\n---\nb: 2\n");
    assert_eq!(err, None);
    let roots: Vec<bool> = docs.iter().map(|d| d.root.is_some()).collect();
    assert_eq!(roots, vec![true, false, false, true]);
}

#[test]
fn duplicate_keys_are_refused_with_both_lines() {
    let e = error("a: 1\nb: 2\na: 3\n");
    assert_eq!(e.line, 3);
    assert!(
        e.message.contains("duplicate key `a` (first on line 1)"),
        "{e}"
    );
}

#[test]
fn alias_bombs_are_refused() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        let list = [prev.as_str(); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{list}]\n"));
    }
    assert!(error(&text).message.contains("alias bomb"));
}

/// A document of about 91,000 nodes (anchor copies included) from 260 bytes of text.
fn near_limit_bomb() -> String {
    let mut doc = String::from("---\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..4 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    doc.push_str(&format!("a4: [{}]\n", ["*a3"; 6].join(", ")));
    doc
}

#[test]
fn a_document_just_under_the_limit_is_read() {
    let (docs, err) = parse_documents(&near_limit_bomb());
    assert_eq!(err, None);
    assert_eq!(docs.len(), 1);
}

#[test]
fn many_documents_each_under_the_limit_are_refused_for_the_file() {
    let text = near_limit_bomb().repeat(300);
    let (docs, err) = parse_documents(&text);
    let err = err.expect("refused");
    assert!(
        err.message
            .contains("file expands to more than 250000 values"),
        "{err}"
    );
    assert_eq!(docs.len(), 2, "the third document crosses the file's limit");
    assert_eq!(err.line, 18, "the line where the limit was crossed");
}

#[test]
fn the_load_budget_spans_files_and_refuses_every_file_after_it_is_spent() {
    let mut budget = Budget::default();
    let file = near_limit_bomb().repeat(2);
    let mut refused = Vec::new();
    for i in 0..30 {
        if let Some(e) = parse_documents_within(&file, &mut budget).1 {
            assert!(e.message.contains("together expand to more than"), "{e}");
            refused.push(i);
        }
    }
    // 2,000,000 / (2 * ~91,000): the 11th file crosses it, and every one after is refused.
    assert_eq!(refused, (10..30).collect::<Vec<_>>());
    let (_, err) = parse_documents_within("a: 1\n", &mut budget);
    assert!(
        err.is_some(),
        "even a small file, once the load's budget is spent"
    );
    assert_eq!(
        parse_documents("a: 1\n").1,
        None,
        "a fresh load has a fresh budget"
    );
}

#[test]
fn an_anchor_costs_its_copy_too() {
    let list = |n: usize| format!("a: &a [{}]\n", vec!["x"; n].join(", "));
    assert_eq!(parse_documents(&list(45_000)).1, None);
    let err = error(&list(60_000));
    assert!(err.message.contains("document expands"), "{err}");
}

#[test]
fn anchors_nested_deep_are_counted_linearly() {
    // Each anchor holds the one inside it; counting copies must not double per level.
    let nested = (0..60).fold(String::from("[x]"), |inner, i| format!("&a{i} [{inner}]"));
    assert_eq!(parse_documents(&nested).1, None);
}

#[test]
fn a_huge_flow_collection_is_refused_before_it_is_scanned() {
    // saphyr reads a flow collection that could be a key (here: at the top) whole before
    // its first event; 70,000 nodes are within the limits, 140,000 characters are not.
    let flow = |n: usize| format!("[{}]\n", vec!["x"; n].join(","));
    assert_eq!(parse_documents(&flow(40_000)).1, None);
    let err = error(&flow(70_000));
    assert!(err.message.contains("longer than 128 KiB"), "{err}");
    assert_eq!(err.line, 1);
}

#[test]
fn a_scalar_cut_at_the_lookahead_is_never_read_as_a_shorter_one() {
    let text = format!("a: b\nc: {}\n", "y".repeat(MAX_LOOKAHEAD + 10));
    let (docs, err) = parse_documents(&text);
    assert!(docs.is_empty(), "{} documents", docs.len());
    assert!(
        err.expect("refused")
            .message
            .contains("longer than 128 KiB")
    );
    let text = format!("a: b\nc: {}\n", "y".repeat(MAX_LOOKAHEAD - 100));
    assert_eq!(parse_documents(&text).1, None);
}

#[test]
fn small_aliases_are_expanded() {
    let root = one("a: &x {k: v}\nb: *x\n");
    assert_eq!(root.line_at(&FieldPath::default().key("b").key("k")), 1);
}

#[test]
fn deep_nesting_is_refused() {
    let text = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(error(&text).message.contains("nesting deeper"));
}

#[test]
fn syntax_errors_carry_a_line() {
    let e = error("a: 1\nb: [unclosed\nc: 2\n");
    assert!(e.line >= 2, "{e:?}");
    assert!(e.message.starts_with("invalid YAML"));
}

#[test]
fn core_schema_types_plain_scalars_only() {
    assert_eq!(core_scalar("true"), CoreScalar::Bool(true));
    assert_eq!(core_scalar("3600"), CoreScalar::Int(3600));
    assert_eq!(core_scalar("1.5"), CoreScalar::Float(1.5));
    assert_eq!(core_scalar("2012-10-17"), CoreScalar::Str);
    assert_eq!(core_scalar("~"), CoreScalar::Null);
    assert_eq!(core_scalar("e"), CoreScalar::Str);
    let root = one("q: \"true\"\np: true\n");
    assert_eq!(root.line_at(&FieldPath::default().key("q")), 1);
    match &root.value {
        Value::Map(e) => {
            assert_eq!(e[0].1.type_name(), "a string");
            assert_eq!(e[1].1.type_name(), "a boolean");
        }
        _ => panic!("not a map"),
    }
}

#[test]
fn unsupported_tags_are_refused_but_str_is_a_string() {
    assert!(error("a: !custom x\n").message.contains("not supported"));
    let root = one("a: !!str 10\n");
    match &root.value {
        Value::Map(e) => assert_eq!(e[0].1.type_name(), "a string"),
        _ => panic!("not a map"),
    }
}
