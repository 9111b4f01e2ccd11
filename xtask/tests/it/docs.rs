//! The docs cannot drift from the tool:
//! - Every command output that README.md and docs/ quote is the command's real output. A quote is
//!   a ```console block: `$ cargo xtask ...` lines, each followed by what it prints (stdout and
//!   stderr as they interleave). In a quoted line `[..]` stands for any text (a port, a time, a
//!   commit) and a line `...` for any number of lines. The blocks of one file run in order, in one
//!   world: a working directory and, once a block needs it (`--env sandbox`), the sandbox. An HTML
//!   comment `<!-- docs: STEP -->` before a block prepares it: `fresh` (a new sandbox),
//!   `edit HOST FILE FROM TO` (a hand edit on an observer host), `kubectl-edit SERVICE JSON` (a
//!   merge patch of a Service by field manager `kubectl-edit`), `file PATH` (the block is the
//!   contents of PATH in the working directory, as a quoted command wrote it). A `$ cargo xtask`
//!   line in any other block fails the test: a quote cannot hide from it.
//! - docs/commands.md is generated from the clap definition (`UPDATE_DOCS=1` rewrites it).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::{self, World};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One quoted command and what it prints.
#[derive(Debug)]
struct Quote {
    /// Where the block starts (1-based line of its fence).
    line: usize,
    /// `<!-- docs: STEP -->` lines before it (only on the block's first command).
    setup: Vec<String>,
    command: String,
    expected: Vec<String>,
}

/// The quotes of a markdown text, in order; an error for a `$ cargo xtask` line in a block that is
/// not a console block.
fn quotes(text: &str) -> Result<Vec<Quote>, String> {
    let mut out: Vec<Quote> = Vec::new();
    let mut setup = Vec::new();
    // An open block: where it starts, its info string, and whether it is a file's contents.
    let mut fence: Option<(usize, String, bool)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some((start, info, file)) = &fence {
            if line.trim_start().starts_with("```") {
                fence = None;
                continue;
            }
            if *file {
                out.last_mut().unwrap().expected.push(line.to_string());
                continue;
            }
            let console = info == "console";
            if let Some(cmd) = line.strip_prefix("$ ") {
                if !console {
                    if cmd.starts_with("cargo xtask") {
                        return Err(format!(
                            "line {n}: a quoted command in a ```{info} block (line {start}): make it a ```console block, which is checked"
                        ));
                    }
                    continue;
                }
                out.push(Quote {
                    line: *start,
                    setup: std::mem::take(&mut setup),
                    command: cmd.to_string(),
                    expected: vec![],
                });
            } else if console {
                match out.last_mut() {
                    Some(q) if q.line == *start => q.expected.push(line.to_string()),
                    _ => {
                        return Err(format!(
                            "line {n}: a console block must begin with a `$ cargo xtask` line"
                        ))
                    }
                }
            }
            continue;
        }
        if let Some(info) = line.trim_start().strip_prefix("```") {
            // `<!-- docs: file PATH -->` before a block: the block is that file's contents.
            let file = setup.iter().position(|s| s.starts_with("file "));
            if let Some(at) = file {
                let path = setup.remove(at)["file ".len()..].to_string();
                out.push(Quote {
                    line: n,
                    setup: std::mem::take(&mut setup),
                    command: format!("#file {path}"),
                    expected: vec![],
                });
            }
            fence = Some((n, info.trim().to_string(), file.is_some()));
        } else if let Some(step) = line
            .trim()
            .strip_prefix("<!-- docs: ")
            .and_then(|s| s.strip_suffix(" -->"))
        {
            setup.push(step.to_string());
        }
    }
    // A console block's trailing blank line (between two commands) is not output.
    for q in &mut out {
        while q.expected.last().is_some_and(|l| l.is_empty()) {
            q.expected.pop();
        }
    }
    Ok(out)
}

/// Whether `line` matches `pattern`, where `[..]` stands for any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || !line[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `actual` matches `expected`, where a line `...` stands for any number of lines.
fn lines_match(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((p, rest)) if p == "..." => {
            (0..=actual.len()).any(|k| lines_match(rest, &actual[k..]))
        }
        Some((p, rest)) => {
            !actual.is_empty() && line_matches(p, actual[0]) && lines_match(rest, &actual[1..])
        }
    }
}

/// The commands that talk to the observers over SSH (given the sandbox's key).
const OVER_SSH: [&str; 5] = ["deploy", "push", "status", "drift", "diff"];

/// What one docs file's quotes run in.
struct Run {
    world: Option<World>,
    cwd: tempfile::TempDir,
}

impl Run {
    fn world(&mut self) -> &World {
        self.world.get_or_insert_with(World::sandbox)
    }

    fn prepare(&mut self, step: &str) {
        let words: Vec<&str> = step.split_whitespace().collect();
        match words.as_slice() {
            ["fresh"] => self.world = None,
            ["edit", host, file, from, to] => self.world().edit(host, file, from, to),
            ["kubectl-edit", service, patch @ ..] => {
                let patch: serde_json::Value = serde_json::from_str(&patch.join(" ")).unwrap();
                let service = service.to_string();
                self.world().client(async move |c| {
                    let api: kube::Api<k8s_openapi::api::core::v1::Service> =
                        kube::Api::namespaced(c, common::NS);
                    let params = kube::api::PatchParams {
                        field_manager: Some("kubectl-edit".into()),
                        ..Default::default()
                    };
                    api.patch(&service, &params, &kube::api::Patch::Merge(&patch))
                        .await
                        .unwrap();
                });
            }
            _ => panic!("unknown docs step {step:?}"),
        }
    }

    /// Runs a quoted command line; returns what it printed, stdout and stderr interleaved.
    fn output(&mut self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            words[..2],
            ["cargo", "xtask"],
            "a quote runs `cargo xtask`: {line}"
        );
        let args = &words[2..];
        // The commands that reach the sandbox's cluster or hosts (check and render do not).
        let sandbox = args.windows(2).any(|w| w == ["--env", "sandbox"])
            && !["check", "render"].contains(&args[0]);
        let mut cmd = if sandbox {
            let rest: Vec<&str> = {
                let mut v = Vec::new();
                let mut skip = false;
                for (i, a) in args.iter().enumerate() {
                    if skip {
                        skip = false;
                        continue;
                    }
                    if *a == "--env" && args.get(i + 1) == Some(&"sandbox") {
                        skip = true;
                        continue;
                    }
                    v.push(*a);
                }
                v
            };
            let w = self.world();
            if OVER_SSH.contains(&rest[0]) {
                w.sandbox_cmd(&rest)
            } else {
                let mut all = vec![rest[0], "--env", "sandbox"];
                all.extend(&rest[1..]);
                w.cmd(&all)
            }
        } else {
            let mut c = common::xtask();
            c.args(args).stdin(Stdio::null());
            c
        };
        cmd.current_dir(self.cwd.path());
        let (mut reader, writer) = std::io::pipe().unwrap();
        cmd.stdout(writer.try_clone().unwrap()).stderr(writer);
        let mut child = cmd.spawn().unwrap();
        // The command holds the pipe's writing end: dropped, the read ends with the child.
        drop(cmd);
        let mut printed = String::new();
        reader.read_to_string(&mut printed).unwrap();
        child.wait().unwrap();
        printed
    }
}

/// Runs every quote of `file` (relative to the workspace) and compares.
fn check_quotes(file: &str) {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let quotes = quotes(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut run = Run {
        world: None,
        cwd: tempfile::tempdir().unwrap(),
    };
    let mut wrong = Vec::new();
    for q in &quotes {
        for step in &q.setup {
            run.prepare(step);
        }
        let printed = match q.command.strip_prefix("#file ") {
            Some(path) => std::fs::read_to_string(run.cwd.path().join(path))
                .unwrap_or_else(|e| format!("(cannot read {path}: {e})\n")),
            None => run.output(&q.command),
        };
        let actual: Vec<&str> = printed.lines().collect();
        if !lines_match(&q.expected, &actual) {
            wrong.push(format!(
                "{file}:{}: `$ {}` printed\n{printed}--- but the docs quote\n{}\n",
                q.line,
                q.command,
                q.expected.join("\n")
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every markdown file of the workspace's docs: README.md, ARCHITECTURE.md, CHANGELOG.md, docs/.
fn doc_files() -> Vec<String> {
    let mut files: Vec<String> = ["README.md", "ARCHITECTURE.md", "CHANGELOG.md"]
        .map(String::from)
        .to_vec();
    for e in std::fs::read_dir(root().join("docs")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            files.push(format!("docs/{name}"));
        }
    }
    files.sort();
    files
}

/// The integration-test areas (`mod x;` in main.rs) and the test functions each declares.
fn test_areas() -> std::collections::BTreeMap<String, Vec<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let main = std::fs::read_to_string(dir.join("main.rs")).unwrap();
    let mut areas = std::collections::BTreeMap::new();
    for area in main
        .lines()
        .filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';'))
    {
        let source = std::fs::read_to_string(dir.join(format!("{area}.rs"))).unwrap();
        let mut tests = Vec::new();
        let mut attribute = false;
        for line in source.lines().map(str::trim) {
            if line == "#[test]" || line.starts_with("#[tokio::test") {
                attribute = true;
            } else if let Some(rest) = line.strip_prefix("fn ").or(line.strip_prefix("async fn ")) {
                if attribute {
                    tests.push(rest.split('(').next().unwrap().to_string());
                }
                attribute = false;
            }
        }
        areas.insert(area.to_string(), tests);
    }
    areas
}

/// A test the docs name (`area::test_name`, e.g. in the fault table) is a test that exists: a
/// renamed or moved test cannot leave a row pointing at nothing.
#[test]
fn every_test_the_docs_name_exists() {
    let areas = test_areas();
    assert!(areas["fleet"]
        .iter()
        .any(|t| t == "a_host_key_mismatch_is_refused_showing_both_fingerprints"));
    let mut named = 0;
    let mut missing = Vec::new();
    for file in doc_files() {
        let text = std::fs::read_to_string(root().join(&file)).unwrap();
        for part in text.split('`').skip(1).step_by(2) {
            let Some((area, test)) = part.split_once("::") else {
                continue;
            };
            let Some(tests) = areas.get(area) else {
                continue;
            };
            if test.is_empty()
                || !test
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                continue;
            }
            named += 1;
            if !tests.iter().any(|t| t == test) {
                missing.push(format!(
                    "{file}: `{area}::{test}` is not a test in xtask/tests/it/{area}.rs"
                ));
            }
        }
    }
    assert!(
        named >= 50,
        "only {named} test names found in the docs: is the scan broken?"
    );
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// A file path the docs name (`xtask/src/fleet/scripts/lib.sh`, `environments/<env>/mod.rs` for
/// every environment) exists: a moved file cannot leave the docs pointing at nothing. The
/// changelog is history and may name former paths.
#[test]
fn every_path_the_docs_name_exists() {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || "_./<>-".contains(c);
    let kinds = [".rs", ".md", ".sh", ".yml", ".yaml", ".toml"];
    let mut named = 0;
    let mut missing = Vec::new();
    for file in doc_files().into_iter().filter(|f| f != "CHANGELOG.md") {
        let text = std::fs::read_to_string(root().join(&file)).unwrap();
        for span in text.split('`').skip(1).step_by(2) {
            if !span.contains('/')
                || !span.chars().all(is_path_char)
                || !kinds.iter().any(|k| span.ends_with(k))
            {
                continue;
            }
            let envs = match span.contains("<env>") {
                true => manifests::environments::names(),
                false => vec![String::new()],
            };
            for env in envs {
                let path = span.replace("<env>", &env);
                if path.contains('<') {
                    break;
                }
                named += 1;
                if !root().join(&path).exists() {
                    missing.push(format!("{file}: `{span}` ({path}) does not exist"));
                }
            }
        }
    }
    assert!(
        named >= 40,
        "only {named} paths found in the docs: is the scan broken?"
    );
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// Each file's quotes run by one test below, and no quote hides in another kind of block.
#[test]
fn every_file_with_quotes_is_checked_and_no_quote_hides() {
    let checked = ["README.md", "docs/operator-guide.md"];
    for file in doc_files() {
        let text = std::fs::read_to_string(root().join(&file)).unwrap();
        let q = quotes(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            q.is_empty() || checked.contains(&file.as_str()),
            "{file} quotes command output: add a test that runs check_quotes({file:?})"
        );
    }
    // The checker itself: a quote in a text block is refused, and the wildcards match only what
    // they should.
    assert!(quotes("```text\n$ cargo xtask check\nok\n```\n").is_err());
    assert!(line_matches("a [..] c", "a b c"));
    assert!(!line_matches("a [..] c", "a b d"));
    let exp = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(lines_match(&exp(&["x", "...", "z"]), &["x", "y", "y", "z"]));
    assert!(!lines_match(&exp(&["x", "...", "z"]), &["x", "y"]));
    assert!(!lines_match(&exp(&["x"]), &["x", "y"]));
}

#[test]
fn the_readme_quotes_are_real_output() {
    check_quotes("README.md");
}

#[test]
fn the_operator_guide_quotes_are_real_output() {
    check_quotes("docs/operator-guide.md");
}

/// The command reference, from clap: every command's long help.
fn command_reference() -> String {
    use clap::CommandFactory;
    let mut cli = xtask::cli::Cli::command().term_width(100);
    let mut out = String::from(
        "# Command reference\n\n\
         Generated from the command-line definition (`xtask/src/cli.rs`) by\n\
         `docs::the_command_reference_is_generated_from_clap` (`UPDATE_DOCS=1` rewrites it); the same\n\
         text is `cargo xtask <command> --help`, and `cargo xtask man <command>` as a man page.\n",
    );
    let mut help = |c: &mut clap::Command, title: &str| {
        out.push_str(&format!(
            "\n## `{title}`\n\n```text\n{}```\n",
            c.render_long_help()
        ));
    };
    help(&mut cli, "cargo xtask");
    cli.build();
    let names: Vec<String> = cli
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .filter(|n| n != "help")
        .collect();
    for name in names {
        let sub = cli.find_subcommand_mut(&name).unwrap();
        let mut sub = sub.clone().term_width(100);
        help(&mut sub, &format!("cargo xtask {name}"));
    }
    out
}

#[test]
fn the_command_reference_is_generated_from_clap() {
    let path = root().join("docs/commands.md");
    let want = command_reference();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/commands.md is not what clap prints: run `UPDATE_DOCS=1 cargo nextest run -p xtask -E 'test(/^docs::/)'` and review the diff"
    );
}
