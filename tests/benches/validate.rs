//! `cargo bench --bench validate`: how long `iam-warden validate` takes on 1,000 role manifests,
//! in-process (load + validate) and end to end through the release binary. Prints medians.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn role(i: usize) -> String {
    format!(
        "apiVersion: iamwarden/v1alpha1
kind: Role
metadata:
  name: bench-role-{i}
spec:
  path: /bench/
  description: Benchmark role {i}
  assumeRolePolicy:
    Version: \"2012-10-17\"
    Statement:
      - Effect: Allow
        Principal: {{Service: ecs-tasks.amazonaws.com}}
        Action: sts:AssumeRole
  managedPolicies:
    - arn:aws:iam::aws:policy/ReadOnlyAccess
  inlinePolicies:
    s3:
      Version: \"2012-10-17\"
      Statement:
        - Effect: Allow
          Action: [s3:GetObject, s3:PutObject, s3:ListBucket]
          Resource: [\"arn:aws:s3:::${{var.bucket}}\", \"arn:aws:s3:::${{var.bucket}}/*\"]
  tags: {{team: data, index: \"{i}\"}}
"
    )
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    for i in 0..1000 {
        std::fs::write(dir.path().join(format!("role-{i:04}.yaml")), role(i)).expect("write");
    }
    let mut vars = iam_warden::manifest::Variables::default();
    vars.set("bucket", "staging");

    let in_process: Vec<Duration> = (0..15)
        .map(|_| {
            let t = Instant::now();
            let loaded = iam_warden::manifest::load(dir.path(), &vars).expect("load");
            assert!(loaded.diagnostics.is_empty() && loaded.state.roles.len() == 1000);
            t.elapsed()
        })
        .collect();
    let binary = env!("CARGO_BIN_EXE_iam-warden");
    let end_to_end: Vec<Duration> = (0..15).map(|_| time_binary(binary, dir.path())).collect();
    println!("validate, 1000 role manifests (15 runs each):");
    println!(
        "  load+validate in process: median {:?}",
        median(in_process)
    );
    println!(
        "  `iam-warden validate` end to end: median {:?}",
        median(end_to_end)
    );
}

fn time_binary(binary: &str, dir: &Path) -> Duration {
    let t = Instant::now();
    let out = Command::new(binary)
        .args(["validate", "--var", "bucket=staging"])
        .arg(dir)
        .output()
        .expect("run iam-warden");
    let elapsed = t.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    elapsed
}
