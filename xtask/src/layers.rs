//! The code map as a test: which folder of `src/` may import which (ARCHITECTURE.md), and no
//! import circles between files, in this crate and in every other crate of the workspace. Read
//! from the sources: every `crate::...` and `super::...` path outside comments and test modules,
//! resolved to the file that defines it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each file's module path (`cluster::plan`) and its code without comments and test modules, for
/// the crate whose sources are in `root` (a binary in `src/bin/` is a crate of its own: skipped).
fn sources(root: &Path) -> BTreeMap<String, String> {
    let root = root.to_path_buf();
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path != root.join("bin") {
                    dirs.push(path);
                }
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
            // A library's main.rs is the binary, a crate of its own.
            let binary = parts == ["main"] && root.join("lib.rs").exists();
            if parts.last().is_some_and(|p| p == "tests") || parts == ["layers"] || binary {
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

/// This crate's folders that re-export a file's items (`cluster::Error` is `cluster::client`'s).
const REEXPORTED: [(&str, &str); 3] = [
    ("cluster", "cluster::client"),
    ("fleet", "fleet::read"),
    ("output", "output::printer"),
];

/// The files each file of this crate imports from.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    imports_in(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &REEXPORTED,
    )
}

/// The files each file of the crate in `root` imports from (`crate::a::b::Item` and, from file
/// `a::c`, `super::b::Item` resolve to the longest module path that is a file; a folder's
/// re-exported items to the file re-exported). A parent's own uses of its children are plain
/// paths (`dns::start`), not imports: only the child's `super::` and `crate::` paths count.
fn imports_in(root: &Path, reexported: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
    let files = sources(root);
    let reexported: BTreeMap<&str, &str> = reexported.iter().copied().collect();

    let resolve = |path: &str| -> Option<String> {
        let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
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
        // `super::` from `a::b` is `crate::a::`; from `a` (a/mod.rs or a.rs) the crate root.
        let parent = match module.rsplit_once("::") {
            Some((parent, _)) => format!("{parent}::"),
            None => String::new(),
        };
        let code = code
            .replace("pub(super)", "")
            .replace("super::", &format!("crate::{parent}"));
        let mut rest = code.as_str();
        while let Some(at) = rest.find("crate::") {
            if rest[..at].ends_with("pub(") || rest[..at].ends_with("in ") {
                rest = &rest[at + "crate::".len()..];
                continue;
            }
            rest = &rest[at + "crate::".len()..];
            // `crate::a::{b, c::d}`: each item of the group after the prefix; else one path.
            let is_path = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
            let prefix: String = rest.chars().take_while(|c| is_path(*c)).collect();
            let items: Vec<String> = match rest[prefix.len()..].strip_prefix('{') {
                Some(group) => {
                    let mut depth = 0;
                    let mut items = vec![String::new()];
                    for c in group.chars() {
                        match c {
                            '{' => depth += 1,
                            '}' if depth == 0 => break,
                            '}' => depth -= 1,
                            ',' if depth == 0 => items.push(String::new()),
                            _ => items.last_mut().unwrap().push(c),
                        }
                    }
                    items
                        .iter()
                        .map(|i| {
                            let path: String =
                                i.trim().chars().take_while(|c| is_path(*c)).collect();
                            format!("{prefix}{path}")
                        })
                        .collect()
                }
                None => vec![prefix],
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

/// Every path from a file back to itself, as `a -> b -> a`.
fn circles_in(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
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
    circles
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
    let circles = circles_in(&graph);
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
    // The reader sees imports at all (a test that found none would pass anything).
    assert!(graph["commands::deploy"].contains("cluster::plan"));
    assert!(graph["fleet::ssh"].contains("fleet::script"));
}

/// The other crates of the workspace have no import circles either (their folders are small
/// enough that the module tree is the map; `hosts` and `manifests` are pure models).
#[test]
fn no_import_circles_in_any_crate_of_the_workspace() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut circles = Vec::new();
    let mut edges = 0;
    for krate in ["hosts", "manifests", "sandbox", "dev"] {
        let graph = imports_in(&workspace.join(krate).join("src"), &[]);
        edges += graph.values().map(BTreeSet::len).sum::<usize>();
        circles.extend(
            circles_in(&graph)
                .into_iter()
                .map(|c| format!("{krate}: {c}")),
        );
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
    // The reader resolves `super::` (a test that found none would pass anything).
    let sandbox = imports_in(&workspace.join("sandbox/src"), &[]);
    assert!(
        sandbox["harness::dns"].contains("harness::netns"),
        "{sandbox:?}"
    );
    assert!(edges > 20, "only {edges} imports read");
}
