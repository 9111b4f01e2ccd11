//! Saved plans, as Terraform's `plan -out` and `apply PLANFILE`: `deploy --plan-out FILE` writes
//! what a deploy would do, with what it was planned from (the commit, the live load-balancer
//! addresses, a digest of each object's change and of each host file, deployed and desired), and
//! `deploy --plan FILE` carries out exactly that. Before it changes anything, under the deploy
//! lock, it plans again and compares: when the live state or the code moved since, it refuses,
//! naming what moved. The interactive deploy uses the same comparison between the plan the
//! operator confirmed and the plan it holds the lock for.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The version of the file's shape; a file of another version is refused.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: u32,
    pub environment: String,
    /// The kubeconfig context it was planned against.
    pub context: String,
    /// `<hash>` or `<hash>-dirty`: the code it was planned with.
    pub commit: String,
    pub planned_at: String,
    pub planned_by: String,
    /// What the deploy is asked to do beyond the code: fixed by the plan.
    pub options: PlanOptions,
    /// The load balancers' live addresses the host files were rendered from, by participant id
    /// (empty while they are pending: the files were rendered from the recorded ones).
    pub addresses: BTreeMap<u32, String>,
    pub objects: Vec<PlannedObject>,
    pub hosts: Vec<PlannedHost>,
    /// For reviewers: the plan as `deploy --dry-run --output json` shows it (diffs included).
    /// Not compared: the digests above are.
    pub review: serde_json::Value,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOptions {
    pub prune: bool,
    pub force_conflicts: bool,
    pub force_retire: bool,
    pub reset_data: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedObject {
    /// `Kind/namespace/name`.
    pub object: String,
    /// `create`, `update`, `unchanged` or `prune`.
    pub action: String,
    /// SHA-256 of the change's diff (live to desired), and of the fields in conflict.
    pub change_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedHost {
    pub host: String,
    /// `would-change`, `unchanged`, `unreachable`, `would-retire`.
    pub result: String,
    /// Each managed file: what the host had and what it gets (SHA-256; `null`: no such file).
    /// Empty for a host not read.
    pub files: BTreeMap<String, PlannedFile>,
    /// Why its data is set aside, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFile {
    pub deployed_sha256: Option<String>,
    pub desired_sha256: String,
}

pub fn sha256(text: &str) -> String {
    crate::fleet::hostops::sha256_hex(text.as_bytes())
}

/// What moved between the plan that was reviewed (`saved`) and the plan made now, one line per
/// difference; empty when they match.
pub fn moved(saved: &SavedPlan, now: &SavedPlan) -> Vec<String> {
    let mut out = Vec::new();
    if saved.environment != now.environment {
        out.push(format!(
            "the plan is for environment {}, not {}",
            saved.environment, now.environment
        ));
    }
    if saved.context != now.context {
        out.push(format!(
            "the plan was made against context {}, this run uses {}",
            saved.context, now.context
        ));
    }
    if saved.commit != now.commit {
        out.push(format!(
            "the code: the plan was made at commit {}, this binary is built from {}",
            saved.commit, now.commit
        ));
    }
    if saved.options != now.options {
        out.push(format!(
            "the options: planned with {:?}, now {:?}",
            saved.options, now.options
        ));
    }
    if saved.addresses != now.addresses {
        let show = |a: &BTreeMap<u32, String>| {
            if a.is_empty() {
                "pending".to_string()
            } else {
                a.iter()
                    .map(|(id, addr)| format!("{id}={addr}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        out.push(format!(
            "the load balancers' addresses: planned from {}, now {}",
            show(&saved.addresses),
            show(&now.addresses)
        ));
    }
    out.extend(moved_objects(&saved.objects, &now.objects));
    out.extend(moved_hosts(&saved.hosts, &now.hosts));
    out
}

/// What moved between the objects' changes as planned (`was`) and as planned now (`is`).
pub fn moved_objects(was: &[PlannedObject], is: &[PlannedObject]) -> Vec<String> {
    let mut out = Vec::new();
    let by_name = |v: &[PlannedObject]| -> BTreeMap<String, PlannedObject> {
        v.iter().map(|o| (o.object.clone(), o.clone())).collect()
    };
    let (was, is) = (by_name(was), by_name(is));
    for (name, w) in &was {
        match is.get(name) {
            None => out.push(format!(
                "{name}: planned ({}), no longer part of the plan",
                w.action
            )),
            Some(i) if i.action != w.action => out.push(format!(
                "{name}: planned to {}, now it would {}",
                w.action, i.action
            )),
            Some(i) if i.change_sha256 != w.change_sha256 => out.push(format!(
                "{name}: the change is not the one planned (the live object or the code moved; \
                 `cargo xtask diff` shows it now)"
            )),
            Some(_) => {}
        }
    }
    for (name, i) in &is {
        if !was.contains_key(name) {
            out.push(format!(
                "{name}: not in the plan, now it would {}",
                i.action
            ));
        }
    }
    out
}

/// What moved between the hosts as planned (`was`) and as planned now (`is`).
pub fn moved_hosts(was: &[PlannedHost], is: &[PlannedHost]) -> Vec<String> {
    let mut out = Vec::new();
    let by_name = |v: &[PlannedHost]| -> BTreeMap<String, PlannedHost> {
        v.iter().map(|h| (h.host.clone(), h.clone())).collect()
    };
    let (was, is) = (by_name(was), by_name(is));
    for (name, w) in &was {
        let Some(i) = is.get(name) else {
            out.push(format!(
                "host {name}: in the plan, no longer in the inventory"
            ));
            continue;
        };
        if i.result != w.result {
            out.push(format!(
                "host {name}: planned {}, now {}",
                w.result, i.result
            ));
        }
        for (file, wf) in &w.files {
            match i.files.get(file) {
                None => {}
                Some(f) if f.deployed_sha256 != wf.deployed_sha256 => out.push(format!(
                    "host {name}: {file} on the host changed since the plan"
                )),
                Some(f) if f.desired_sha256 != wf.desired_sha256 => out.push(format!(
                    "host {name}: the {file} to write is not the one planned"
                )),
                Some(_) => {}
            }
        }
        if i.reset_data != w.reset_data {
            out.push(format!(
                "host {name}: its data reset: planned {:?}, now {:?}",
                w.reset_data, i.reset_data
            ));
        }
    }
    for name in is.keys() {
        if !was.contains_key(name) {
            out.push(format!("host {name}: not in the plan"));
        }
    }
    out
}

/// Each change of a cluster plan, by digest.
pub fn objects(plan: &crate::cluster::plan::Plan) -> Vec<PlannedObject> {
    plan.changes
        .iter()
        .map(|c| PlannedObject {
            object: c.object.clone(),
            action: serde_json::to_value(c.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            change_sha256: sha256(&format!(
                "{}\n{}",
                c.diff,
                c.conflicts
                    .iter()
                    .map(|k| format!("{} {}", k.field, k.manager))
                    .collect::<Vec<_>>()
                    .join("\n")
            )),
        })
        .collect()
}

/// Each host as planned: its result and, for a host read, the digests of each file it has and
/// gets (`files`: the desired files of every observer).
pub fn hosts(
    reports: &[crate::output::report::HostReport],
    planned: &[crate::fleet::Planned<'_, '_>],
    files: &[(&hosts::Observer, hosts::HostFiles)],
) -> Vec<PlannedHost> {
    use crate::output::report::Outcome as _;
    let mut out: Vec<PlannedHost> = reports
        .iter()
        .map(|h| PlannedHost {
            host: h.host.clone(),
            result: h.result.word().to_string(),
            files: BTreeMap::new(),
            reset_data: None,
        })
        .collect();
    for p in planned {
        let Some(ph) = out.iter_mut().find(|h| h.host == p.reached.observer.name) else {
            continue;
        };
        if let Some((_, desired)) = files.iter().find(|(o, _)| o.name == ph.host) {
            for (name, want) in desired.files() {
                ph.files.insert(
                    name.to_string(),
                    PlannedFile {
                        deployed_sha256: p.reached.observed.file(name).map(sha256),
                        desired_sha256: sha256(want),
                    },
                );
            }
        }
        if let Some((_, desired)) = files.iter().find(|(o, _)| o.name == ph.host) {
            for (name, want) in &desired.secret_sha256 {
                ph.files.insert(
                    name.to_string(),
                    PlannedFile {
                        deployed_sha256: p.reached.observed.secrets.get(*name).cloned().flatten(),
                        desired_sha256: want.clone(),
                    },
                );
            }
        }
        if let hosts::host_plan::HostPlan::Update(u) = &p.plan {
            ph.reset_data.clone_from(&u.reset_data);
        }
    }
    out
}

/// Writes `plan` to `path` atomically (a temporary file in the same directory, renamed).
pub fn write(path: &Path, plan: &SavedPlan) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut text = serde_json::to_string_pretty(plan).context("encoding the plan")?;
    text.push('\n');
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing the plan in {}", dir.display()))?;
    std::fs::write(tmp.path(), text)
        .with_context(|| format!("writing the plan to {}", tmp.path().display()))?;
    tmp.persist(path)
        .with_context(|| format!("writing the plan to {}", path.display()))?;
    Ok(())
}

/// Reads a plan file for environment `env`, refusing another environment or format.
pub fn read(path: &Path, env: &str) -> Result<SavedPlan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the plan {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a plan file (not JSON)", path.display()))?;
    let version = value["format_version"].as_u64();
    if version != Some(FORMAT_VERSION.into()) {
        return Err(crate::output::hinted(
            format!(
                "{}: format_version {} is not {FORMAT_VERSION}, the one this binary reads",
                path.display(),
                version.map_or("(none)".to_string(), |v| v.to_string())
            ),
            format!("plan again with `cargo xtask deploy --env {env} --plan-out FILE`"),
        ));
    }
    let plan: SavedPlan = serde_json::from_value(value)
        .with_context(|| format!("{} is not a plan file", path.display()))?;
    if plan.environment != env {
        return Err(crate::output::hinted(
            format!(
                "{} is a plan for environment {}, not {env}",
                path.display(),
                plan.environment
            ),
            format!(
                "pass --env {}, or plan {env} with --plan-out",
                plan.environment
            ),
        ));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> SavedPlan {
        SavedPlan {
            format_version: FORMAT_VERSION,
            environment: "sandbox".into(),
            context: "sandbox".into(),
            commit: "abc".into(),
            planned_at: "2026-12-05T16:00:00Z".into(),
            planned_by: "ops@bastion".into(),
            options: PlanOptions::default(),
            addresses: [(1, "10.0.0.1".to_string())].into(),
            objects: vec![PlannedObject {
                object: "Service/zookeeper/zk0".into(),
                action: "update".into(),
                change_sha256: sha256("diff"),
            }],
            hosts: vec![PlannedHost {
                host: "zk-observer-1".into(),
                result: "would-change".into(),
                files: [(
                    "zoo.cfg".to_string(),
                    PlannedFile {
                        deployed_sha256: Some(sha256("old")),
                        desired_sha256: sha256("new"),
                    },
                )]
                .into(),
                reset_data: None,
            }],
            review: serde_json::json!({}),
        }
    }

    #[test]
    fn the_same_plan_made_later_by_someone_else_has_not_moved() {
        let mut later = plan();
        later.planned_at = "2026-12-05T17:00:00Z".into();
        later.planned_by = "ci@runner".into();
        later.review = serde_json::json!({"other": "text"});
        assert_eq!(moved(&plan(), &later), Vec::<String>::new());
    }

    #[test]
    fn each_thing_that_moves_is_named() {
        let mut now = plan();
        now.hosts[0]
            .files
            .get_mut("zoo.cfg")
            .unwrap()
            .deployed_sha256 = Some(sha256("edited"));
        now.objects[0].change_sha256 = sha256("other diff");
        now.commit = "def".into();
        now.addresses.insert(1, "10.0.0.9".into());
        let m = moved(&plan(), &now);
        assert_eq!(m.len(), 4, "{m:#?}");
        assert!(m
            .iter()
            .any(|l| l.contains("host zk-observer-1: zoo.cfg on the host changed")));
        assert!(m
            .iter()
            .any(|l| l.starts_with("Service/zookeeper/zk0: the change is not")));
        assert!(m
            .iter()
            .any(|l| l.contains("commit abc") && l.contains("def")));
        assert!(m
            .iter()
            .any(|l| l.contains("1=10.0.0.1") && l.contains("1=10.0.0.9")));
    }

    #[test]
    fn a_file_round_trips_and_another_environment_or_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        write(&path, &plan()).unwrap();
        assert_eq!(read(&path, "sandbox").unwrap(), plan());
        let err = format!("{:#}", read(&path, "production").unwrap_err());
        assert!(
            err.contains("a plan for environment sandbox, not production (hint: pass --env sandbox, or plan production with --plan-out)"),
            "{err}"
        );
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v["format_version"] = 2.into();
        std::fs::write(&path, v.to_string()).unwrap();
        let err = format!("{:#}", read(&path, "sandbox").unwrap_err());
        assert!(err.contains("format_version 2 is not 1"), "{err}");
        assert!(
            err.ends_with(
                "(hint: plan again with `cargo xtask deploy --env sandbox --plan-out FILE`)"
            ),
            "{err}"
        );
    }
}
