//! The layering rule of `docs/architecture.md`, checked over the source: a module imports
//! (`crate::...` and `super::...` paths outside comments and test code) only from its own layer or
//! the ones below, top-level modules import each other in no circle, and clap is used only in the
//! command line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Modules and their layer; a module not listed takes the layer of its nearest listed parent.
const LAYERS: &[(&str, u8)] = &[
    ("util", 0),
    ("model", 1),
    ("log", 2),
    ("origin", 2),
    ("config", 2),
    ("ledger", 2),
    ("policy", 2),
    ("scan", 3),
    ("waf", 3),
    ("athena::sql", 3),
    ("athena::rows", 3),
    ("athena::origin", 3),
    ("origin::scan", 3),
    ("athena::rollup", 3),
    ("analyze", 4),
    ("rate", 4),
    ("plan", 4),
    ("propose", 4),
    ("report", 4),
    ("origin::report", 4),
    ("render", 5),
    ("apply", 5),
    ("waf::aws", 5),
    ("athena", 5),
    ("sdk_error", 5),
    ("cli", 6),
];

const NAMES: [&str; 7] = [
    "util",
    "model",
    "inputs",
    "engines",
    "analyses",
    "output and effects",
    "cli",
];

/// The module of the table a path belongs to (`waf::aws::AwsWaf`: `waf::aws`), with its layer.
fn layer(path: &str) -> Option<(&'static str, u8)> {
    LAYERS
        .iter()
        .filter(|(m, _)| path == *m || path.starts_with(&format!("{m}::")))
        .max_by_key(|(m, _)| m.len())
        .copied()
}

/// `src/waf/aws.rs` -> `waf::aws`, `src/plan/mod.rs` -> `plan`.
fn module_of(relative: &str) -> String {
    let path = relative.trim_end_matches(".rs").trim_end_matches("/mod");
    path.replace('/', "::")
}

/// The text that counts: comments dropped, and everything from an inline `#[cfg(test)] mod` on
/// (test modules close their file here).
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod ") && next.ends_with('{'))
        {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line.split(" // ").next().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// Child modules declared for tests only (`#[cfg(test)] mod tests;`).
fn test_children(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut after_cfg_test = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("#[cfg(test)]") {
            after_cfg_test = true;
            continue;
        }
        if after_cfg_test
            && let Some(decl) = line.strip_suffix(';')
            && let Some(name) = decl.split_whitespace().last()
            && decl.split_whitespace().any(|w| w == "mod")
        {
            out.insert(name.to_owned());
        }
        after_cfg_test = line.starts_with("#[");
    }
    out
}

/// Every module path `text` refers to through `crate::` or `super::`, resolved to a full path.
fn references(module: &str, text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    for (start, prefix) in text
        .match_indices("crate::")
        .chain(text.match_indices("super::"))
    {
        let before = bytes.get(start.wrapping_sub(1)).copied();
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
            continue;
        }
        let base: Vec<String> = if prefix == "crate::" {
            Vec::new()
        } else {
            // `super` of `plan` (`plan/mod.rs`) is the crate; of `plan::drift`, `plan`.
            let mut parts: Vec<String> = module.split("::").map(str::to_owned).collect();
            parts.pop();
            parts
        };
        for tail in expand(&text[start + prefix.len()..]) {
            let mut full = base.clone();
            full.extend(tail);
            if !full.is_empty() {
                out.insert(full.join("::"));
            }
        }
    }
    out
}

/// The paths one `crate::`/`super::` reference names: `a::b::C` or `{a::b, c::{d, e}}`, as
/// segment lists (lower-case segments only: types and values end a module path).
fn expand(rest: &str) -> Vec<Vec<String>> {
    let rest = rest.trim_start();
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 0;
        let mut items = Vec::new();
        let mut item = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(std::mem::take(&mut item));
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        items.push(item);
        return items
            .iter()
            .map(|i| i.trim())
            .filter(|i| !i.is_empty() && *i != "self")
            .flat_map(expand)
            .collect();
    }
    let mut segments = Vec::new();
    let mut rest = rest;
    loop {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let segment = &rest[..end];
        if segment.is_empty() || !segment.starts_with(|c: char| c.is_ascii_lowercase()) {
            break;
        }
        segments.push(segment.to_owned());
        match rest[end..].strip_prefix("::") {
            Some(next) if next.starts_with('{') => {
                return expand(next)
                    .into_iter()
                    .map(|tail| segments.iter().cloned().chain(tail).collect())
                    .collect();
            }
            Some(next) => rest = next,
            None => break,
        }
    }
    vec![segments]
}

/// Everything wrong with the layering of these source files (paths relative to `src/`).
fn violations(files: &[(String, String)]) -> Vec<String> {
    let test_only: BTreeSet<String> = files
        .iter()
        .flat_map(|(path, text)| {
            // `plan/mod.rs` declares `plan::tests`, `policy/parse.rs` `policy::parse::tests`.
            let parent = if path == "lib.rs" {
                String::new()
            } else {
                format!("{}::", module_of(path))
            };
            test_children(text)
                .into_iter()
                .map(move |child| format!("{parent}{child}"))
        })
        .collect();
    let mut problems = BTreeSet::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in files {
        if path == "lib.rs" || path == "main.rs" {
            continue;
        }
        let module = module_of(path);
        if test_only
            .iter()
            .any(|t| module == *t || module.starts_with(&format!("{t}::")))
        {
            continue;
        }
        let Some((_, own)) = layer(&module) else {
            problems.insert(format!(
                "src/{path}: module `{module}` has no layer; add it to LAYERS and docs/architecture.md"
            ));
            continue;
        };
        let code = code(text);
        if !module.starts_with("cli") && code.contains("clap::") {
            problems.insert(format!(
                "src/{path}: uses clap outside `cli` (clap types live only in the command line)"
            ));
        }
        for target in references(&module, &code) {
            let top = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
            if top(&target) != top(&module) {
                edges.entry(top(&module)).or_default().insert(top(&target));
            }
            if let Some((target, l)) = layer(&target)
                && l > own
            {
                problems.insert(format!(
                    "src/{path}: `{module}` ({}, layer {own}) uses `{target}` ({}, layer {l}), a higher layer",
                    NAMES[own as usize], NAMES[l as usize]
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        problems.insert(format!(
            "top-level modules import each other in a circle: {}",
            cycle.join(" -> ")
        ));
    }
    problems.into_iter().collect()
}

/// A circle in the graph, as the modules along it (first repeated at the end), if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src is readable")
        .map(|e| e.expect("src entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).expect("under src");
            out.push((
                relative.to_string_lossy().replace('\\', "/"),
                std::fs::read_to_string(&path).expect("source is UTF-8"),
            ));
        }
    }
}

#[test]
fn modules_import_only_their_own_layer_or_below() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    let problems = violations(&files);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn finds_an_upward_import_a_circle_and_clap_in_the_library() {
    let file = |path: &str, text: &str| (path.to_owned(), text.to_owned());
    let files = [
        file("lib.rs", "#[cfg(test)]\nmod layering;\n"),
        file("analyze.rs", "use crate::render::{Format, thousands};\n"),
        file(
            "render/mod.rs",
            "pub mod plan;\nuse crate::analyze;\n// use crate::cli;\n",
        ),
        file(
            "render/plan.rs",
            "use super::Format;\nuse crate::{util::text, plan::Plan};\n",
        ),
        file("plan/mod.rs", "#[cfg(test)]\nmod tests;\n"),
        file("plan/tests.rs", "use crate::apply;\n"),
        file("config.rs", "#[derive(clap::ValueEnum)]\nenum A {}\n"),
        file(
            "util/text.rs",
            "#[cfg(test)]\nmod tests {\n    use crate::cli;\n}\n",
        ),
        file("newthing.rs", ""),
    ];
    assert_eq!(
        violations(&files),
        [
            "src/analyze.rs: `analyze` (analyses, layer 4) uses `render` (output and effects, layer 5), a higher layer",
            "src/config.rs: uses clap outside `cli` (clap types live only in the command line)",
            "src/newthing.rs: module `newthing` has no layer; add it to LAYERS and docs/architecture.md",
            "top-level modules import each other in a circle: analyze -> render -> analyze",
        ]
    );
}
