//! The SDK's modules import each other without a cycle, file by file and folder by
//! folder: the runtime knows no protocol, a protocol knows the runtime and the
//! protocols below it, and a folder's `mod.rs` only re-exports (its files never
//! import from it). A protocol added in its own folder can only add edges going down.
//!
//! The graph is read from the sources: every `use` tree and every path in the code
//! (`crate::..`, `super::..`, a child module's or an imported module's name followed
//! by `::`), comments, strings and `#[cfg(test)]` modules left out. Each path is
//! resolved to the deepest file module it names (inline modules count as their file's).
//! `cargo test -p netlet-guest --test modules -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// A module path from the crate root: `[]` is `lib.rs`, `["ws", "socket"]` is
/// `ws/socket.rs`.
type ModPath = Vec<String>;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Punct(char),
}

/// Tokens of Rust source without comments, string, char and byte literals.
fn tokenize(src: &str) -> Vec<Tok> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if (c == b'r' || (c == b'b' && b.get(i + 1) == Some(&b'r')))
            && matches!(b.get(i + 1 + usize::from(c == b'b')), Some(b'"' | b'#'))
        {
            // A raw string: r"..", r#".."#, br"..".
            i += 1 + usize::from(c == b'b');
            let hashes = b[i..].iter().take_while(|&&x| x == b'#').count();
            i += hashes + 1;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
        } else if c == b'b' && b.get(i + 1) == Some(&b'"') {
            i += 1;
        } else if c == b'\'' {
            // A char literal ('x', 'é', '\n', '\u{..}'), or a lifetime or label whose
            // name follows as an identifier.
            let rest = &src[i + 1..];
            match rest.chars().next() {
                Some('\\') => {
                    i += 3;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                }
                Some(ch) if rest[ch.len_utf8()..].starts_with('\'') => i += 2 + ch.len_utf8(),
                _ => i += 1,
            }
        } else if c == b'$' || c == b'_' || c.is_ascii_alphabetic() {
            let start = i;
            i += 1;
            while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            out.push(Tok::Ident(src[start..i].to_string()));
        } else if b[i..].starts_with(b"::") {
            out.push(Tok::Sep);
            i += 2;
        } else {
            // Multi-byte characters only occur in literals and comments, skipped above.
            out.push(Tok::Punct(c as char));
            i += 1;
        }
    }
    out
}

/// Drops every `#[cfg(test)]` item (a test module's imports are not the module's).
fn without_tests(toks: Vec<Tok>) -> Vec<Tok> {
    let pattern = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if toks[i..].starts_with(&pattern) {
            i += pattern.len();
            // Skip the item: up to its `;` or through its braces.
            let mut depth = 0;
            while i < toks.len() {
                match toks[i] {
                    Tok::Punct('{') => depth += 1,
                    Tok::Punct('}') => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    Tok::Punct(';') if depth == 0 => {
                        i += 1;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            out.push(toks[i].clone());
            i += 1;
        }
    }
    out
}

/// Expands the `use` tree at `toks[*i..]` (after `use`) into full paths, each with the
/// name it binds (`None` for a glob).
fn use_tree(
    toks: &[Tok],
    i: &mut usize,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut path = prefix.to_vec();
    loop {
        match toks.get(*i) {
            Some(Tok::Ident(name)) => {
                path.push(name.clone());
                *i += 1;
                match toks.get(*i) {
                    Some(Tok::Sep) => *i += 1,
                    Some(Tok::Ident(kw)) if kw == "as" => {
                        let alias = match toks.get(*i + 1) {
                            Some(Tok::Ident(a)) => a.clone(),
                            _ => String::new(),
                        };
                        *i += 2;
                        out.push((path, Some(alias)));
                        return;
                    }
                    _ => {
                        let bound = if path.last().map(String::as_str) == Some("self") {
                            path.pop();
                            path.last().cloned()
                        } else {
                            path.last().cloned()
                        };
                        out.push((path, bound));
                        return;
                    }
                }
            }
            Some(Tok::Punct('*')) => {
                *i += 1;
                out.push((path, None));
                return;
            }
            Some(Tok::Punct('{')) => {
                *i += 1;
                loop {
                    match toks.get(*i) {
                        Some(Tok::Punct('}')) => {
                            *i += 1;
                            return;
                        }
                        Some(Tok::Punct(',')) => *i += 1,
                        None => return,
                        _ => use_tree(toks, i, &path, out),
                    }
                }
            }
            _ => return,
        }
    }
}

/// The file modules under `src`, by module path.
fn file_modules(src: &Path) -> BTreeMap<ModPath, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src");
            let mut segs: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if segs.last().is_some_and(|s| s == "mod" || s == "lib") {
                segs.pop();
            }
            out.insert(segs, fs::read_to_string(&path).expect("read file"));
        }
    }
    out
}

/// The deepest file module `path` names, if it is in this crate: `crate::` from the
/// root, `self::` and a child module's name from `here`, `super::` from its parent, a
/// name a `use` bound to a module (`aliases`) from that module.
fn resolve(
    modules: &BTreeMap<ModPath, String>,
    here: &ModPath,
    aliases: &BTreeMap<String, ModPath>,
    path: &[String],
) -> Option<ModPath> {
    let (mut abs, rest) = match path.first()?.as_str() {
        "crate" | "$crate" => (Vec::new(), &path[1..]),
        "self" => (here.clone(), &path[1..]),
        "super" => (here[..here.len().checked_sub(1)?].to_vec(), &path[1..]),
        name => {
            let mut child = here.clone();
            child.push(name.to_string());
            if modules.contains_key(&child) {
                (here.clone(), path)
            } else {
                (aliases.get(name)?.clone(), &path[1..])
            }
        }
    };
    for seg in rest {
        if seg == "super" {
            abs.pop();
        } else {
            abs.push(seg.clone());
        }
    }
    deepest(modules, &abs)
}

fn deepest(modules: &BTreeMap<ModPath, String>, abs: &ModPath) -> Option<ModPath> {
    (0..=abs.len())
        .rev()
        .map(|n| abs[..n].to_vec())
        .find(|p| modules.contains_key(p))
}

/// Every file module's imports: `module -> modules it uses`.
fn graph(src: &Path) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let modules = file_modules(src);
    let mut edges = BTreeMap::new();
    for (here, text) in &modules {
        let toks = without_tests(tokenize(text));
        // `use` trees first: they bind the names later paths start with.
        let mut uses = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            if toks[i] == Tok::Ident("use".into()) {
                i += 1;
                use_tree(&toks, &mut i, &[], &mut uses);
            } else {
                i += 1;
            }
        }
        // Names bound to a module itself (`use crate::net::{self, ..}`), for paths
        // that start with them.
        let mut aliases = BTreeMap::new();
        for (path, bound) in &uses {
            if let (Some(name), Some(target)) = (bound, resolve_exact(&modules, here, path)) {
                aliases.insert(name.clone(), target);
            }
        }
        let mut to = BTreeSet::new();
        for (path, _) in &uses {
            to.extend(resolve(&modules, here, &aliases, path));
        }
        // Paths in the code: `a::b::c` sequences.
        let mut i = 0;
        while i < toks.len() {
            if let Tok::Ident(first) = &toks[i]
                && toks.get(i + 1) == Some(&Tok::Sep)
                && (i == 0 || toks[i - 1] != Tok::Sep)
            {
                let mut path = vec![first.clone()];
                let mut j = i + 1;
                while toks.get(j) == Some(&Tok::Sep) {
                    match toks.get(j + 1) {
                        Some(Tok::Ident(seg)) => {
                            path.push(seg.clone());
                            j += 2;
                        }
                        _ => break,
                    }
                }
                to.extend(resolve(&modules, here, &aliases, &path));
                i = j;
            } else {
                i += 1;
            }
        }
        to.remove(here);
        edges.insert(here.clone(), to);
    }
    edges
}

/// `path` resolved only if it names a file module exactly.
fn resolve_exact(
    modules: &BTreeMap<ModPath, String>,
    here: &ModPath,
    path: &[String],
) -> Option<ModPath> {
    let mut abs: ModPath = match path.first()?.as_str() {
        "crate" | "$crate" => Vec::new(),
        "self" => here.clone(),
        "super" => here[..here.len().checked_sub(1)?].to_vec(),
        _ => here.clone(),
    };
    let skip = usize::from(["crate", "$crate", "self", "super"].contains(&path[0].as_str()));
    for seg in &path[skip..] {
        if seg == "super" {
            abs.pop();
        } else {
            abs.push(seg.clone());
        }
    }
    modules.contains_key(&abs).then_some(abs)
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles<N: Ord + Clone>(edges: &BTreeMap<N, BTreeSet<N>>) -> Vec<Vec<N>> {
    struct State<N> {
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        stack: Vec<N>,
        on_stack: BTreeSet<N>,
        out: Vec<Vec<N>>,
    }
    fn visit<N: Ord + Clone>(n: &N, edges: &BTreeMap<N, BTreeSet<N>>, s: &mut State<N>) {
        let i = s.index.len();
        s.index.insert(n.clone(), i);
        s.low.insert(n.clone(), i);
        s.stack.push(n.clone());
        s.on_stack.insert(n.clone());
        for m in edges.get(n).into_iter().flatten() {
            if !s.index.contains_key(m) {
                visit(m, edges, s);
                let low = s.low[n].min(s.low[m]);
                s.low.insert(n.clone(), low);
            } else if s.on_stack.contains(m) {
                let low = s.low[n].min(s.index[m]);
                s.low.insert(n.clone(), low);
            }
        }
        if s.low[n] == s.index[n] {
            let mut scc = Vec::new();
            while let Some(m) = s.stack.pop() {
                s.on_stack.remove(&m);
                let done = &m == n;
                scc.push(m);
                if done {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                s.out.push(scc);
            }
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for n in edges.keys() {
        if !s.index.contains_key(n) {
            visit(n, edges, &mut s);
        }
    }
    s.out
}

fn name(m: &ModPath) -> String {
    if m.is_empty() {
        "lib".into()
    } else {
        m.join("::")
    }
}

fn sdk_graph() -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

#[test]
fn no_file_imports_a_module_that_imports_it_back() {
    let edges = sdk_graph();
    println!("file modules and what they import:");
    for (from, to) in &edges {
        let to: Vec<String> = to.iter().map(name).collect();
        println!("  {} -> {}", name(from), to.join(", "));
    }
    let found: Vec<String> = cycles(&edges)
        .iter()
        .map(|c| c.iter().map(name).collect::<Vec<_>>().join(" <-> "))
        .collect();
    assert!(found.is_empty(), "import cycles: {found:#?}");
}

#[test]
fn no_top_level_module_imports_one_that_imports_it_back() {
    // Each file counted as its top-level module (`ws::socket` as `ws`); the crate root
    // re-exports every module and nothing imports it.
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in sdk_graph() {
        let Some(from) = from.first().cloned() else {
            continue;
        };
        let entry = top.entry(from.clone()).or_default();
        for t in to {
            let t = t.first().cloned().unwrap_or_else(|| "lib".into());
            assert_ne!(t, "lib", "{from} imports from the crate root");
            if t != from {
                entry.insert(t);
            }
        }
    }
    println!("top-level modules and what they import:");
    for (from, to) in &top {
        println!(
            "  {from} -> {}",
            to.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let found = cycles(&top);
    assert!(found.is_empty(), "import cycles: {found:#?}");
    // The runtime knows no protocol.
    for protocol in ["http", "ws"] {
        assert!(
            !top["runtime"].contains(protocol) && !top["handler"].contains(protocol),
            "the runtime or the handler traits import {protocol}"
        );
    }
}

#[test]
fn the_reader_finds_what_rust_resolves() {
    // A small crate's worth of sources in memory, to check the resolution rules.
    let toks = without_tests(tokenize(
        r#"
        use super::{a::{self, B}, c as d};
        // use crate::commented::Out;
        const S: &str = "crate::in_string::X";
        fn f() { crate::x::y::z(); e::f(); 'l: loop { break 'l; } let _ = ('c', 'é', '\''); }
        #[cfg(test)]
        mod tests { use crate::only_in_tests::T; }
        "#,
    ));
    let mut uses = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if toks[i] == Tok::Ident("use".into()) {
            i += 1;
            use_tree(&toks, &mut i, &[], &mut uses);
        } else {
            i += 1;
        }
    }
    let paths: Vec<String> = uses.iter().map(|(p, _)| p.join("::")).collect();
    assert_eq!(paths, ["super::a", "super::a::B", "super::c"]);
    assert_eq!(uses[0].1.as_deref(), Some("a"));
    assert_eq!(uses[2].1.as_deref(), Some("d"));
    let idents: Vec<&Tok> = toks.iter().collect();
    assert!(!idents.contains(&&Tok::Ident("commented".into())));
    assert!(!idents.contains(&&Tok::Ident("in_string".into())));
    assert!(!idents.contains(&&Tok::Ident("only_in_tests".into())));
    assert!(idents.contains(&&Tok::Ident("x".into())));
    // Resolution: `super::` from a file is its folder's module, a child's name is the
    // child, an alias is what it was bound to, and the deepest file module wins.
    let mut modules = BTreeMap::new();
    for m in [&[][..], &["p"], &["p", "a"], &["p", "q"], &["x"]] {
        modules.insert(
            m.iter().map(|s| s.to_string()).collect::<ModPath>(),
            String::new(),
        );
    }
    let seg = |s: &str| s.split("::").map(str::to_string).collect::<Vec<_>>();
    let here = seg("p::q");
    let none = BTreeMap::new();
    assert_eq!(
        resolve(&modules, &here, &none, &seg("super::a::B")),
        Some(seg("p::a"))
    );
    assert_eq!(
        resolve(&modules, &here, &none, &seg("super::Item")),
        Some(seg("p"))
    );
    assert_eq!(
        resolve(&modules, &here, &none, &seg("crate::x::y::z")),
        Some(seg("x"))
    );
    assert_eq!(resolve(&modules, &here, &none, &seg("std::fmt")), None);
    let parent = seg("p");
    assert_eq!(
        resolve(&modules, &parent, &none, &seg("a::B")),
        Some(seg("p::a"))
    );
    let aliases = BTreeMap::from([("d".to_string(), seg("x"))]);
    assert_eq!(
        resolve(&modules, &here, &aliases, &seg("d::f")),
        Some(seg("x"))
    );
    // And a cycle is found.
    let e = BTreeMap::from([
        (1, BTreeSet::from([2])),
        (2, BTreeSet::from([3])),
        (3, BTreeSet::from([1])),
        (4, BTreeSet::from([1])),
    ]);
    assert_eq!(cycles(&e), vec![vec![1, 2, 3]]);
}
