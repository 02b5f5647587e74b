//! The README's configuration reference (between `<!-- flags:start -->` and
//! `<!-- flags:end -->`) is generated from the clap definition; this test fails when it is out
//! of date, printing the fresh text, and rewrites it with `UPDATE_README=1`.

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

/// One table per command, each listing the flags not already in an earlier table.
fn reference() -> String {
    let cli = Cli::command();
    let mut seen = BTreeSet::new();
    let mut out = String::from(
        "Generated from the command line definition by `UPDATE_README=1 cargo test --test \
         readme_flags`. Every flag can be set as the environment variable shown instead.\n",
    );
    for cmd in cli.get_subcommands() {
        let mut rows = Vec::new();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().to_string();
            if id == "help" || id == "version" || !seen.insert(id) {
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
        let title = if cmd.get_name() == "validate" {
            "Shared by `validate`, `plan`, `apply` and `run`".to_string()
        } else {
            format!("`{}`", cmd.get_name())
        };
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

#[test]
fn the_readmes_configuration_reference_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("read README.md");
    let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md lacks the markers {START} and {END}");
    };
    let fresh = format!("{START}\n{}{END}", reference());
    let current = &readme[start..end + END.len()];
    if current == fresh {
        return;
    }
    if std::env::var_os("UPDATE_README").is_some() {
        let updated = readme.replace(current, &fresh);
        std::fs::write(&path, updated).expect("write README.md");
        return;
    }
    panic!(
        "README.md's configuration reference is out of date; run \
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
