//! The book (`docs/`) and the README: the generated CLI and manifest reference is the one
//! the code renders now, and every relative link and `#anchor` in them (and in
//! `DESIGN.md`, `bench/README.md`) resolves. (`.ci/run`
//! builds the book with mdBook; these are what a build does not check.)

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

/// The repository's root.
fn root() -> PathBuf {
    normalize(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

#[test]
fn the_reference_page_is_what_the_code_renders() {
    let path = root().join(netlet::reference::PAGE);
    let rendered = netlet::reference::markdown();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if std::env::var_os("NETLET_BLESS").is_some_and(|v| v == "1") {
        if committed != rendered {
            // Whole, by a rename: the link check, running beside this test, reads the
            // page and must never see it half written.
            let new = path.with_extension("md.new");
            std::fs::write(&new, &rendered).unwrap();
            std::fs::rename(&new, &path).unwrap();
            eprintln!("wrote {}", path.display());
        }
        return;
    }
    if committed != rendered {
        let at = committed
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(rendered.lines().count()));
        panic!(
            "{} is stale: it differs from what the code renders from line {}:\n  \
             committed: {:?}\n  rendered:  {:?}\n\
             run `NETLET_BLESS=1 scripts/test --test book` to regenerate it",
            netlet::reference::PAGE,
            at + 1,
            committed.lines().nth(at).unwrap_or("(end of file)"),
            rendered.lines().nth(at).unwrap_or("(end of file)"),
        );
    }
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let root = root();
    let book = root.join("docs/src");
    // The book, and the pages outside it that link into it.
    let mut pages: Vec<PathBuf> = ["README.md", "DESIGN.md", "bench/README.md"]
        .iter()
        .map(|p| root.join(p))
        .filter(|p| p.exists())
        .collect();
    markdown_files(&book, &mut pages);
    assert!(pages.len() > 5, "no book pages under {}", book.display());
    let mut anchors: HashMap<PathBuf, HashSet<String>> = HashMap::new();
    let mut broken = Vec::new();
    let mut links_checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        let name = page.strip_prefix(&root).unwrap().display().to_string();
        for (line, target) in links(&text) {
            if is_external(&target) {
                continue;
            }
            links_checked += 1;
            if let Err(why) = resolve(page, &target, &root, &mut anchors) {
                broken.push(format!("{name}:{line}: ({target}) {why}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "{} broken link(s):\n{}",
        broken.len(),
        broken.join("\n")
    );
    assert!(links_checked > 20, "only {links_checked} links found");
}

#[test]
fn the_summary_lists_every_page() {
    let book = root().join("docs/src");
    let summary = std::fs::read_to_string(book.join("SUMMARY.md")).unwrap();
    let listed: BTreeSet<PathBuf> = links(&summary)
        .into_iter()
        .map(|(_, target)| normalize(&book.join(target)))
        .collect();
    let mut pages = Vec::new();
    markdown_files(&book, &mut pages);
    let missing: Vec<String> = pages
        .iter()
        .filter(|p| !p.ends_with("SUMMARY.md") && !listed.contains(*p))
        .map(|p| p.strip_prefix(&book).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "docs/src/SUMMARY.md does not list {missing:?}: mdBook would not build them"
    );
}

#[test]
fn anchors_are_made_as_mdbook_makes_them() {
    assert_eq!(
        anchor("`--passes`: add more rustdoc passes"),
        "--passes-add-more-rustdoc-passes"
    );
    assert_eq!(anchor("Health and drain"), "health-and-drain");
    assert_eq!(
        anchor("The manifest: `netlet up [netlet.toml]`"),
        "the-manifest-netlet-up-netlettoml"
    );
    assert_eq!(
        anchor("Two real protocols: `kv` and `proxy`"),
        "two-real-protocols-kv-and-proxy"
    );
    assert_eq!(anchor("[TLS](tls.md) **and** HTTP"), "tls-and-http");
    assert_eq!(anchor("中文"), "中文");
    let ids = headings("# A\n```\n# not a heading\n```\n## A\n### B {#custom}\n");
    assert_eq!(ids, HashSet::from(["a", "a-1", "custom"].map(String::from)));
    let found =
        links("[a](x.md) `[b](y.md)` ![c](<d e.png> \"t\")\n```\n[f](g.md)\n```\n[h]: i.md\n");
    assert_eq!(
        found,
        [(1, "x.md"), (1, "d e.png"), (5, "i.md")].map(|(l, t)| (l, t.to_string()))
    );
}

/// Whether `target` leaves the repository (a URL, a mail address).
fn is_external(target: &str) -> bool {
    target.starts_with("//")
        || target.split_once(':').is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
}

/// Checks that `target`, linked from `page`, names a file that exists and, with an
/// anchor, a heading in it. A book page's link must stay in the book's sources: the
/// built book has nothing else.
fn resolve(
    page: &Path,
    target: &str,
    root: &Path,
    anchors: &mut HashMap<PathBuf, HashSet<String>>,
) -> Result<(), String> {
    let book = root.join("docs/src");
    let shown = |file: &Path| {
        file.strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string()
    };
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let file = if path.is_empty() {
        page.to_path_buf()
    } else {
        normalize(&page.parent().unwrap().join(decode(path)))
    };
    if page.starts_with(&book) && !file.starts_with(&book) {
        return Err(format!(
            "leaves docs/src: the built book has no {} (write the path as code, or link the \
             repository's page by URL)",
            shown(&file)
        ));
    }
    if !file.exists() {
        return Err(format!("no such file: {}", shown(&file)));
    }
    let Some(anchor) = anchor else {
        return Ok(());
    };
    if file.extension().is_none_or(|e| e != "md") {
        return Err("an anchor into a file that is not markdown".to_string());
    }
    let ids = anchors
        .entry(file.clone())
        .or_insert_with(|| headings(&std::fs::read_to_string(&file).unwrap()));
    if ids.contains(anchor) {
        Ok(())
    } else {
        Err(format!("{} has no heading #{anchor}", shown(&file)))
    }
}

/// Every `.md` file under `dir`, sorted.
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(normalize(&path));
        }
    }
}

/// `path` with `.` and `..` taken out, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `%20` and the like, as a browser reads a link.
fn decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The lines of `text` outside fenced code blocks, with inline code blanked out, each
/// with its line number (from 1).
fn prose(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let mark = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = mark.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        match fence {
            Some((c, n)) => {
                if mark == Some(c) && run >= n && trimmed[run..].trim().is_empty() {
                    fence = None;
                }
                continue;
            }
            None if run >= 3 && indent <= 3 => {
                fence = Some((mark.unwrap(), run));
                continue;
            }
            None => {}
        }
        out.push((i + 1, blank_code_spans(line)));
    }
    out
}

/// `line` with each code span (a run of backticks up to the next run as long) replaced
/// by spaces.
fn blank_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let run_at = |i: usize| chars[i..].iter().take_while(|c| **c == '`').count();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let n = run_at(i);
        let mut j = i + n;
        let close = loop {
            if j >= chars.len() {
                break None;
            }
            if chars[j] == '`' {
                let m = run_at(j);
                if m == n {
                    break Some(j);
                }
                j += m;
            } else {
                j += 1;
            }
        };
        match close {
            Some(j) => {
                out.extend(std::iter::repeat_n(' ', j + n - i));
                i = j + n;
            }
            None => {
                out.extend(std::iter::repeat_n('`', n));
                i += n;
            }
        }
    }
    out
}

/// Every link target in `text`, with its line: inline links and images
/// (`[text](target "title")`, `(<target>)`), reference definitions (`[label]: target`)
/// and HTML `href`/`src` attributes; code is skipped.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (line, prose) in prose(text) {
        let trimmed = prose.trim_start();
        if let Some(rest) = trimmed.strip_prefix('[')
            && let Some((label, after)) = rest.split_once("]:")
            && !label.contains(['[', ']', '('])
            && let Some(target) = after.split_whitespace().next()
        {
            out.push((line, target.trim_matches(['<', '>']).to_string()));
            continue;
        }
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let target = if let Some(angled) = rest.strip_prefix('<') {
                angled.split('>').next().unwrap_or("")
            } else {
                let mut depth = 0;
                let end = rest
                    .find(|c: char| match c {
                        '(' => {
                            depth += 1;
                            false
                        }
                        ')' if depth == 0 => true,
                        ')' => {
                            depth -= 1;
                            false
                        }
                        c => c.is_whitespace(),
                    })
                    .unwrap_or(rest.len());
                &rest[..end]
            };
            out.push((line, target.to_string()));
        }
        for attribute in ["href=\"", "src=\""] {
            let mut rest = prose.as_str();
            while let Some(at) = rest.find(attribute) {
                rest = &rest[at + attribute.len()..];
                out.push((line, rest.split('"').next().unwrap_or("").to_string()));
            }
        }
    }
    out
}

/// The anchors of `text`'s headings, as mdBook (and GitHub) make them: the heading's
/// text, lowercased, spaces to `-`, other punctuation dropped, `-1`, `-2`... after a
/// repeat; `{#id}` at a heading's end sets its own.
fn headings(text: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    let whole = text.lines().collect::<Vec<_>>();
    for (line, _) in prose(text) {
        // The heading's own text (prose() blanked its code spans).
        let raw = whole[line - 1].trim_start();
        let level = raw.chars().take_while(|c| *c == '#').count();
        if !(1..=6).contains(&level) || !raw[level..].starts_with([' ', '\t']) {
            continue;
        }
        let content = raw[level..].trim().trim_end_matches('#').trim_end();
        let id = match content.rsplit_once("{#") {
            Some((_, custom)) if custom.ends_with('}') => custom.trim_end_matches('}').to_string(),
            _ => anchor(content),
        };
        let mut unique = id.clone();
        let mut n = 0;
        while !ids.insert(unique.clone()) {
            n += 1;
            unique = format!("{id}-{n}");
        }
    }
    ids
}

/// A heading's anchor: its text (links by their text, code by its content, emphasis
/// marks and escapes dropped), as mdBook's `id_from_content` makes it.
fn anchor(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // A link's text only: `[text](target)` becomes `text`.
    while let Some(open) = rest.find('[') {
        text.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.split_once("](") {
            Some((label, tail)) if tail.contains(')') => {
                text.push_str(label);
                rest = &tail[tail.find(')').unwrap() + 1..];
            }
            _ => {
                text.push('[');
                rest = after;
            }
        }
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter(|c| !matches!(c, '`' | '*' | '\\'))
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c)
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}
