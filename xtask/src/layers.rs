//! The code map as a test: which folder of `src/` may import which (ARCHITECTURE.md), and no
//! import circles between files. Read from the sources: every `crate::...` path outside comments
//! and test modules, resolved to the file that defines it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each file's module path (`cluster::plan`) and its code without comments and test modules.
fn sources() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if parts.last().is_some_and(|p| p == "tests")
                || parts == ["main"]
                || parts == ["layers"]
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(parts.join("::"), code);
        }
    }
    out
}

/// The files each file imports from (`crate::a::b::Item` resolves to the longest module path
/// that is a file; a folder's re-exported items to the file re-exported).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let files = sources();
    let reexported = BTreeMap::from([
        ("cluster", "cluster::client"),
        ("fleet", "fleet::read"),
        ("output", "output::printer"),
    ]);
    let resolve = |path: &str| -> Option<String> {
        let segs: Vec<&str> = path.split("::").collect();
        (1..=segs.len()).rev().find_map(|i| {
            let m = segs[..i].join("::");
            files
                .contains_key(&m)
                .then(|| match reexported.get(m.as_str()) {
                    Some(file) if i < segs.len() => file.to_string(),
                    _ => m,
                })
        })
    };
    let mut out = BTreeMap::new();
    for (module, code) in &files {
        let mut deps = BTreeSet::new();
        let mut rest = code.as_str();
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            // `crate::{a, b::c}`: each item; else one path.
            let items: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 1;
                let end = group
                    .char_indices()
                    .find(|(_, c)| {
                        depth += match c {
                            '{' => 1,
                            '}' => -1,
                            _ => 0,
                        };
                        depth == 0
                    })
                    .map(|(i, _)| i)
                    .unwrap_or(group.len());
                group[..end]
                    .split(',')
                    .map(|s| s.trim().split(['{', ' ']).next().unwrap().to_string())
                    .collect()
            } else {
                vec![rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap()
                    .to_string()]
            };
            for item in items {
                if let Some(dep) = resolve(item.trim_end_matches(':')) {
                    if &dep != module {
                        deps.insert(dep);
                    }
                }
            }
        }
        out.insert(module.clone(), deps);
    }
    out
}

#[test]
fn each_folder_imports_only_what_the_code_map_allows() {
    let side = |m: &str| m.split("::").next().unwrap().to_string();
    let mut wrong = Vec::new();
    for (module, deps) in imports() {
        let from = side(&module);
        for dep in deps {
            let to = side(&dep);
            let allowed = match from.as_str() {
                // Above both sides.
                "commands" | "lib" => true,
                "cluster" => !["fleet", "commands"].contains(&to.as_str()),
                "fleet" => !["cluster", "commands"].contains(&to.as_str()),
                "output" => !["cluster", "fleet", "commands"].contains(&to.as_str()),
                // The deploy lock is a Lease: it reads the cluster client, nothing else of a side.
                "lock" => {
                    to != "fleet"
                        && to != "commands"
                        && (to != "cluster" || dep == "cluster::client")
                }
                // The other shared files: nothing of a side.
                _ => !["cluster", "fleet", "commands"].contains(&to.as_str()),
            };
            if !allowed {
                wrong.push(format!("{module} imports {dep}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports across the code map's sides:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_two_files_import_each_other_even_through_others() {
    let graph = imports();
    // Depth-first search for a path back to the start, from every file.
    let mut circles = Vec::new();
    for start in graph.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                if next == start {
                    circles.push(format!("{} -> {start}", path.join(" -> ")));
                } else if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
    // The reader sees imports at all (a test that found none would pass anything).
    assert!(graph["commands::deploy"].contains("cluster::plan"));
    assert!(graph["fleet::ssh"].contains("fleet::script"));
}
