//! Hostile input through the real binary (`iam-warden validate DIR`): bombs that are refused
//! with their file, line and limit in bounded memory (peak RSS measured), and links and special
//! files under DIR that are refused naming the entry instead of followed, read or hung on.
//!
//! Kept apart from the other CLI tests: a test that panics in this process leaves its backtrace
//! resident, and that would count against the next measurement here (see `validate_measured`).

mod support;

use std::fs;
use std::path::Path;

use support::{run, warden};

fn validate(dir: &Path) -> (i32, String) {
    let (out, stdout, stderr) = run(warden().arg("validate").arg(dir));
    let code = out.status.code().expect("exit code");
    (code, format!("{stdout}{stderr}"))
}

/// Runs `validate DIR` and reaps it with wait4(2), which reports the peak resident memory of
/// that one process: (exit code, stdout and stderr, peak RSS in KiB).
///
/// Linux starts a child's peak at its parent's peak when it execs (fork and vfork alike), so
/// this process's own peak is first reset to its current size (`/proc/self/clear_refs`). What is
/// measured is then the larger of this process's size at the spawn (a few MB, unless a test
/// here panicked and left its backtrace's ~150 MB resident) and the child's own peak: an
/// overestimate at worst, never an underestimate.
fn validate_measured(dir: &Path) -> (i32, String, i64) {
    use std::os::unix::process::ExitStatusExt;
    fs::write("/proc/self/clear_refs", "5").expect("reset this process's peak RSS");
    let out = tempfile::NamedTempFile::new().unwrap();
    let stdout = out.reopen().unwrap();
    // Reaped by wait4 below, which std's `wait` cannot replace: it gives no rusage.
    #[allow(clippy::zombie_processes)]
    let child = warden()
        .arg("validate")
        .arg(dir)
        .stderr(stdout.try_clone().unwrap())
        .stdout(stdout)
        .spawn()
        .expect("start iam-warden");
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 only writes into the two locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    let status = std::process::ExitStatus::from_raw(status);
    let code = status
        .code()
        .unwrap_or_else(|| panic!("killed: {status:?}"));
    // Both streams share the file's offset (one open file description), so nothing is lost.
    let text = fs::read_to_string(out.path()).unwrap();
    // ru_maxrss is in KiB on Linux. A process that ran at all has touched more than 1 MiB:
    // anything less would mean the measurement is broken, not that memory is low.
    let peak = usage.ru_maxrss;
    assert!(peak > 1024, "implausible peak RSS {peak} KiB");
    (code, text, peak)
}

/// The largest peak any hostile 1 MiB file may cause, in KiB.
const PEAK_LIMIT_KIB: i64 = 100 * 1024;

/// One document of about 91,000 nodes (anchor copies included) from 260 bytes.
fn near_limit_bomb_document() -> String {
    let mut doc = String::from("---\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..4 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    doc.push_str(&format!("a4: [{}]\n", ["*a3"; 6].join(", ")));
    doc
}

#[test]
fn a_megabyte_of_documents_each_under_the_alias_limit_is_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let doc = near_limit_bomb_document();
    let bomb = doc.repeat(1024 * 1024 / doc.len());
    assert!(bomb.len() > 1000 * 1024, "{} bytes", bomb.len());
    fs::write(dir.path().join("bomb.yaml"), bomb).unwrap();
    let (code, out, peak) = validate_measured(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("bomb.yaml:18: a4[3]: file expands to more than 250000 values"),
        "{out}"
    );
    assert!(peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB\n{out}");
}

#[test]
fn a_megabyte_long_flow_collection_is_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let flow = format!("[{}]\n", vec!["x"; 500_000].join(","));
    fs::write(dir.path().join("flow.yaml"), flow).unwrap();
    let (code, out, peak) = validate_measured(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("flow.yaml:1: a single value here") && out.contains("longer than 128 KiB"),
        "{out}"
    );
    assert!(peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB\n{out}");
}

#[test]
fn a_megabyte_of_empty_documents_reports_a_hundred_errors_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("empty.yaml"), "{}\n---\n".repeat(140_000)).unwrap();
    let (code, out, peak) = validate_measured(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("empty.yaml: more than 100 errors; the rest of this file is not checked"),
        "{out}"
    );
    assert!(out.contains("invalid: 101 errors in 1 file"), "{out}");
    assert!(peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB\n{out}");
}

#[test]
fn files_that_together_exceed_the_load_budget_are_each_refused() {
    let dir = tempfile::tempdir().unwrap();
    let two = near_limit_bomb_document().repeat(2);
    for i in 0..14 {
        fs::write(dir.path().join(format!("f{i:02}.yaml")), &two).unwrap();
    }
    let (code, out, peak) = validate_measured(dir.path());
    assert_eq!(code, 1, "{out}");
    let refused: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("together expand to more than 2000000 values"))
        .collect();
    // About 180,000 nodes a file: the 11th crosses 2,000,000, and every file after it is refused.
    assert_eq!(refused.len(), 4, "{out}");
    assert!(refused[0].contains("f10.yaml:"), "{out}");
    assert!(refused[3].contains("f13.yaml:"), "{out}");
    assert!(peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB\n{out}");
}

#[test]
fn a_link_out_of_dir_is_refused_naming_it_and_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::os::unix::fs::symlink("/", d.join("root")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", d.join("host.yaml")).unwrap();
    fs::write(d.join("empty.yaml"), "").unwrap();
    let (code, out, peak) = validate_measured(d);
    assert_eq!(code, 1, "{out}");
    let root = d.join("root");
    let expected = format!(
        "{}: symbolic link points outside {} (to /); not followed",
        root.display(),
        d.display()
    );
    assert!(out.contains(&expected), "{out}");
    assert!(
        out.contains("host.yaml: symbolic link points outside"),
        "{out}"
    );
    assert!(out.contains("invalid: 2 errors in 2 files"), "{out}");
    assert!(peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB\n{out}");
}

/// A valid role named `name`.
fn role(name: &str) -> String {
    format!(
        "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {{name: {name}}}\nspec:\n  assumeRolePolicy: {{Version: \"2012-10-17\", Statement: {{Effect: Allow, Action: \"sts:AssumeRole\", Principal: {{Service: ecs-tasks.amazonaws.com}}}}}}\n"
    )
}

#[test]
fn links_that_stay_inside_dir_are_read_as_git_sync_and_configmaps_make_them() {
    use std::os::unix::fs::symlink;
    // A ConfigMap volume: `..data` -> `..2024_…`, top-level links into `..data`.
    let cm = tempfile::tempdir().unwrap();
    let version = cm.path().join("..2024_01_01_00_00_00.000");
    fs::create_dir(&version).unwrap();
    fs::write(version.join("role.yaml"), role("from-configmap")).unwrap();
    symlink("..2024_01_01_00_00_00.000", cm.path().join("..data")).unwrap();
    symlink("..data/role.yaml", cm.path().join("role.yaml")).unwrap();
    let (code, out) = validate(cm.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("valid: 1 role, 0 policies in 1 file"), "{out}");

    // git-sync: DIR itself is a link to the current revision, which links a sibling inside it.
    let gs = tempfile::tempdir().unwrap();
    let rev = gs.path().join("rev-abc");
    fs::create_dir_all(rev.join("shared")).unwrap();
    fs::write(rev.join("shared/role.yaml"), role("from-git")).unwrap();
    symlink("shared", rev.join("current")).unwrap();
    symlink("rev-abc", gs.path().join("manifests")).unwrap();
    let (code, out) = validate(&gs.path().join("manifests"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("valid: 1 role, 0 policies in 1 file"), "{out}");
}

#[test]
fn a_fifo_a_dangling_link_and_a_link_loop_are_errors_not_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let made = std::process::Command::new("mkfifo")
        .arg(d.join("pipe.yaml"))
        .status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
    std::os::unix::fs::symlink("gone.yaml", d.join("dangling.yaml")).unwrap();
    std::os::unix::fs::symlink(".", d.join("loop")).unwrap();
    fs::write(d.join("role.yaml"), role("fine")).unwrap();
    let (code, out) = validate(d);
    assert_eq!(code, 1, "{out}");
    for (name, needle) in [
        ("pipe.yaml", "not a regular file"),
        ("dangling.yaml", "symbolic link cannot be resolved"),
        ("loop", "symbolic link loop"),
    ] {
        assert!(
            out.lines().any(|l| l.contains(name) && l.contains(needle)),
            "{name}: expected `{needle}` in\n{out}"
        );
    }
}

#[test]
fn a_refused_link_keeps_the_daemons_last_good_state_and_counts_as_an_error() {
    use iam_warden::controller::desired::DesiredStore;
    use iam_warden::manifest::{Kind, Variables};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("team")).unwrap();
    fs::write(d.join("team/role.yaml"), role("kept")).unwrap();
    let mut store = DesiredStore::default();
    let vars = Variables::default();
    store.reload(d, &vars, &Default::default()).unwrap();
    assert!(store.errors().is_empty());

    // The file turns into a link out of DIR: an error, like a parse error, not a removal.
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("role.yaml"), role("intruder")).unwrap();
    fs::remove_file(d.join("team/role.yaml")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("role.yaml"), d.join("team/role.yaml")).unwrap();
    let reloaded = store.reload(d, &vars, &Default::default()).unwrap();
    assert_eq!(
        reloaded.changed,
        vec![],
        "nothing removed, nothing read from outside"
    );
    assert!(
        store
            .get(&iam_warden::controller::desired::Key::new(
                Kind::Role,
                "kept"
            ))
            .is_some()
    );
    assert!(
        store
            .get(&iam_warden::controller::desired::Key::new(
                Kind::Role,
                "intruder"
            ))
            .is_none()
    );
    let errors: Vec<String> = store.errors().iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("team/role.yaml: symbolic link points outside"),
        "{errors:?}"
    );
}
