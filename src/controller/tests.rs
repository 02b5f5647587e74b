//! The controller's bookkeeping, without AWS: what it remembers per key goes with the key.

use std::fs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::wiring::work;
use super::*;

fn role(name: &str) -> String {
    format!(
        "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {{name: {name}}}\nspec:\n  assumeRolePolicy: {{Version: \"2012-10-17\", Statement: {{Effect: Allow, Action: \"sts:AssumeRole\", Principal: {{Service: ecs-tasks.amazonaws.com}}}}}}\n"
    )
}

/// A controller on `dir` whose IAM endpoint answers nothing: every reconcile fails.
async fn offline(dir: &std::path::Path) -> Arc<Controller> {
    let config = Config {
        dir: dir.to_path_buf(),
        values: Vec::new(),
        vars: Vec::new(),
        owner: "default".into(),
        ignore_tag_prefixes: Vec::new(),
        observe_only: false,
        prune: false,
        workers: 4,
        resync_interval: Duration::from_secs(60),
        shutdown_timeout: Duration::from_secs(1),
        listen: "127.0.0.1:0".parse().unwrap(),
        retry: RetryPolicy {
            initial: Duration::from_millis(10),
            max_interval: Duration::from_millis(10),
            max_elapsed: Duration::from_millis(10),
        },
        contest_threshold: 3,
        contest_window: Duration::from_secs(600),
        prune_settings: Default::default(),
        ignore_managed_policies: Vec::new(),
        guardrails: Default::default(),
        call_timeout: Duration::from_secs(1),
        account: None,
    };
    let iam = crate::iam::connect(&crate::iam::Reach {
        endpoint_url: Some("http://127.0.0.1:9".into()),
        max_rps: 0,
        timeouts: crate::iam::Timeouts {
            connect: Duration::from_secs(1),
            attempt: Duration::from_secs(1),
            operation: Duration::from_secs(1),
        },
        assume: None,
        account_id: None,
    })
    .await;
    let account = Account {
        partition: "aws".into(),
        id: "123456789012".into(),
    };
    Controller::new(
        config,
        iam,
        account,
        Variables::default(),
        Arc::new(Metrics::default()),
        Arc::new(AwsHealth::default()),
        Arc::new(super::Liveness::new(
            Duration::from_secs(60),
            1,
            Duration::from_secs(1),
        )),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_and_removing_a_thousand_manifests_leaves_nothing_behind() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..1000 {
        fs::write(d.path().join(format!("r{i}.yaml")), role(&format!("r{i}"))).unwrap();
    }
    let c = offline(d.path()).await;
    c.reload();
    let keys = c.generation().keys();
    assert_eq!(keys.len(), 1000);
    // Every key reconciled once (and failed): each now has a record and a pending retry.
    futures::future::join_all(keys.iter().map(|k| c.reconcile(k))).await;
    assert_eq!(c.record_count(), 1000);
    assert_eq!(lock(&c.acct.keys).statuses().len(), 1000);

    for i in 0..1000 {
        fs::remove_file(d.path().join(format!("r{i}.yaml"))).unwrap();
    }
    c.reload();
    assert!(c.generation().keys().is_empty());
    assert!(lock(&c.acct.keys).statuses().is_empty());
    // The records of keys whose retry is still pending go when the retry finds them gone.
    let workers: Vec<_> = (0..4).map(|_| tokio::spawn(work(c.clone()))).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while c.record_count() > 0 || c.queue.depth().0 > 0 {
        assert!(
            Instant::now() < deadline,
            "{} records left",
            c.record_count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.queue.close();
    for w in workers {
        let _ = w.await;
    }
}
