//! The configuration reference in `docs/configuration.md` (between `<!-- flags:start -->` and
//! `<!-- flags:end -->`) is generated from the clap definition; this test fails when it is out
//! of date, printing the fresh text, and rewrites it with `UPDATE_README=1` (the variable's name
//! dates from when the reference lived in the README).

use std::collections::BTreeSet;

use clap::CommandFactory;
use iam_warden::cli::Cli;

const START: &str = "<!-- flags:start -->";
const END: &str = "<!-- flags:end -->";

fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The commands that read manifests: the flags all four have come first, in one table.
const MANIFEST_COMMANDS: [&str; 4] = ["validate", "plan", "apply", "run"];

/// A flag is the same flag in two commands when its id and its help are.
fn identity(arg: &clap::Arg) -> String {
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string());
    format!("{}\n{}", arg.get_id(), help.unwrap_or_default())
}

/// A table of the flags shared by every manifest command, then one per command, each listing
/// the flags not already in an earlier table.
fn reference() -> String {
    let cli = Cli::command();
    let mut seen = BTreeSet::new();
    let mut out = String::from(
        "Generated from the command line definition by `UPDATE_README=1 cargo test --test \
         readme_flags`. Every flag can be set as the environment variable shown instead.\n",
    );
    let of = |name: &str| -> BTreeSet<String> {
        cli.find_subcommand(name)
            .map(|c| c.get_arguments().map(identity).collect())
            .unwrap_or_default()
    };
    let shared: BTreeSet<String> = MANIFEST_COMMANDS
        .iter()
        .map(|c| of(c))
        .reduce(|a, b| a.intersection(&b).cloned().collect())
        .unwrap_or_default();
    let validate = cli.find_subcommand("validate").expect("validate");
    let shared_table = (
        "Shared by `validate`, `plan`, `apply` and `run`".to_string(),
        validate
            .get_arguments()
            .filter(|a| shared.contains(&identity(a)))
            .collect::<Vec<_>>(),
    );
    let tables = std::iter::once(shared_table).chain(cli.get_subcommands().map(|cmd| {
        (
            format!("`{}`", cmd.get_name()),
            cmd.get_arguments().collect::<Vec<_>>(),
        )
    }));
    for (title, args) in tables {
        let mut rows = Vec::new();
        for arg in args {
            let id = arg.get_id().to_string();
            if id == "help" || id == "version" || !seen.insert(identity(arg)) {
                continue;
            }
            let name = match arg.get_long() {
                Some(long) => match arg.get_value_names() {
                    Some(v) if arg.get_action().takes_values() => {
                        format!("`--{long} {}`", v[0])
                    }
                    _ => format!("`--{long}`"),
                },
                None => format!(
                    "`{}`",
                    arg.get_value_names()
                        .and_then(|v| v.first().map(|s| s.to_string()))
                        .unwrap_or_else(|| arg.get_id().to_string().to_uppercase())
                ),
            };
            let env = arg
                .get_env()
                .map(|e| format!("`{}`", e.to_string_lossy()))
                .unwrap_or_default();
            let default = arg
                .get_default_values()
                .iter()
                .map(|d| format!("`{}`", d.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(", ");
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| cell(&h.to_string()))
                .unwrap_or_default();
            rows.push(format!("| {name} | {env} | {default} | {help} |"));
        }
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\n{title}:\n\n| Flag | Environment | Default | Meaning |\n|---|---|---|---|\n"
        ));
        for row in rows {
            out.push_str(&row);
            out.push('\n');
        }
    }
    out
}

/// The page holding the generated reference, relative to the crate's root.
const PAGE: &str = "docs/configuration.md";

#[test]
fn the_configuration_reference_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PAGE);
    let page = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {PAGE}: {e}"));
    let (Some(start), Some(end)) = (page.find(START), page.find(END)) else {
        panic!("{PAGE} lacks the markers {START} and {END}");
    };
    let fresh = format!("{START}\n{}{END}", reference());
    let current = &page[start..end + END.len()];
    if current == fresh {
        return;
    }
    if std::env::var_os("UPDATE_README").is_some() {
        let updated = page.replace(current, &fresh);
        std::fs::write(&path, updated).unwrap_or_else(|e| panic!("write {PAGE}: {e}"));
        return;
    }
    panic!(
        "{PAGE}'s configuration reference is out of date; run \
         `UPDATE_README=1 cargo test --test readme_flags`, or paste:\n{fresh}"
    );
}

#[test]
fn the_reference_lists_every_env_var_of_run() {
    let text = reference();
    let cli = Cli::command();
    let run = cli.find_subcommand("run").expect("run");
    for arg in run.get_arguments() {
        if let Some(env) = arg.get_env() {
            let env = env.to_string_lossy();
            assert!(text.contains(&format!("`{env}`")), "{env} missing");
        }
    }
}
