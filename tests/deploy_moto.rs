//! deploy/ against the real binary on moto: container logs are plain text, and the metrics
//! the dashboard and the alerts query are ones the daemon exports.

mod support;

use std::time::Duration;

use support::daemon::Daemon;
use support::moto::Moto;
use support::repo_root;

const WAIT: Duration = Duration::from_secs(10);

/// The example manifests, as in the container images.
fn agent_daemon(moto: &Moto, args: &[&str]) -> Daemon {
    let mut all = vec!["--values", "deploy/values.example.yaml"];
    all.extend_from_slice(args);
    Daemon::start(&moto.endpoint, &repo_root().join("manifests/agent"), &all)
}

#[test]
fn the_daemons_text_log_on_a_pipe_has_no_colour_escapes() {
    let moto = Moto::start();
    let daemon = agent_daemon(&moto, &[]);
    daemon.wait_ready();
    let log = daemon.log();
    assert!(
        log.contains("INFO"),
        "expected text log lines on stderr:\n{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in a log written to a pipe:\n{log:?}"
    );
    assert_eq!(daemon.terminate(WAIT), Some(0));
}
