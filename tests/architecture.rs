//! The workspace's module graph, read from the source (issue #13): no crate
//! has a cycle of modules, and the plugin contract a team reads (`Check`,
//! `Ctx`, `Outcome`...) reaches nothing of the run machinery.
//!
//! An edge `a.rs -> b.rs` is a path in `a.rs` that names a module held by
//! `b.rs`: a `use` (braces expanded), a path in code (`crate::x::y`,
//! `super::x`, `self::x`, or a child module's name), or a path written as a
//! string in an attribute (`#[serde(with = "crate::model::duration_ms")]`).
//! A path names the innermost module it reaches: `crate::event::Event`
//! is `event.rs`, `crate::Event` is the crate root, which re-exports it.
//! Comments, other string literals, `#[cfg(test)]` items and `mod tests`
//! blocks are not read: test code may import anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every crate of the workspace, by directory.
const CRATES: &[&str] = &[
    "escola-runbook-core",
    "escola-runbook-checks",
    "escola-runbook-cli",
    "escola-runbook-testkit",
];

/// The plugin contract and the plain data its methods take, in the core
/// crate: what a team writing a check reads.
const CONTRACT: &[&str] = &[
    "check.rs",
    "ctx.rs",
    "outcome.rs",
    "secret.rs",
    "clock.rs",
    "environment.rs",
    "alert.rs",
    "process.rs",
    "journal_error.rs",
];

/// The run machinery of the core crate (a name is a file `NAME.rs` or a
/// folder `NAME/`), which the contract must not reach.
const MACHINERY: &[&str] = &[
    "executor", "dispatch", "event", "journal", "record", "report", "resume",
];

#[test]
fn no_crate_has_a_module_cycle() {
    let mut failures = Vec::new();
    for name in CRATES {
        let src = workspace().join(name).join("src");
        let mut cycles = Vec::new();
        for root in crate_roots(&src) {
            let graph = ModuleGraph::read(&root).unwrap_or_else(|e| panic!("{e}"));
            cycles.extend(graph.cycles().iter().map(|c| graph.describe(c, &src)));
        }
        failures.extend(cycles.iter().map(|c| format!("{name}: cycle {c}")));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_plugin_contract_reaches_nothing_of_the_run_machinery() {
    let src = workspace().join("escola-runbook-core/src");
    let graph = ModuleGraph::read(&src.join("lib.rs")).unwrap_or_else(|e| panic!("{e}"));
    let machinery = |file: &Path| {
        let relative = file.strip_prefix(&src).unwrap_or(file);
        let first = relative.components().next();
        let first = first.map(|c| c.as_os_str().to_string_lossy().into_owned());
        let first = first.unwrap_or_default();
        MACHINERY
            .iter()
            .any(|m| first == *m || first == format!("{m}.rs"))
    };
    let mut failures = Vec::new();
    for file in CONTRACT {
        let start = src.join(file);
        assert!(
            graph.files().contains(&start),
            "{file} is not a module of escola-runbook-core: update CONTRACT"
        );
        for (reached, via) in graph.reachable(&start) {
            if machinery(&reached) {
                let route: Vec<String> = via.iter().map(|f| short(f, &src)).collect();
                failures.push(format!(
                    "{file} reaches {}: {}",
                    short(&reached, &src),
                    route.join(" -> ")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_reader_finds_a_two_file_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    write(src, "lib.rs", "mod a;\nmod b;\n");
    write(src, "a.rs", "use crate::b::B;\npub struct A(B);\n");
    write(src, "b.rs", "pub struct B(Box<super::a::A>);\n");
    assert_eq!(cycles_in(src), ["a.rs -> b.rs -> a.rs"]);

    // Through a folder: `b/mod.rs` re-exports its child, which names `a`.
    std::fs::remove_file(src.join("b.rs")).unwrap();
    write(src, "b/mod.rs", "mod inner;\npub use inner::B;\n");
    write(
        src,
        "b/inner.rs",
        "pub struct B(Box<super::super::a::A>);\n",
    );
    assert_eq!(cycles_in(src), ["a.rs -> b/mod.rs -> b/inner.rs -> a.rs"]);
}

#[test]
fn the_reader_skips_comments_strings_and_test_code() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    write(src, "lib.rs", "mod a;\nmod b;\n");
    write(src, "a.rs", "use crate::b::{self, B};\n");
    write(
        src,
        "b.rs",
        r##"
        // use crate::a;
        /* crate::a /* nested */ crate::a */
        /// [`crate::a`]
        const S: &str = "crate::a::A";
        const R: &str = r#"super::a"#;
        #[doc = "see crate::a"]
        const D: &str = "not an attribute: crate::a";
        const C: char = '"';
        fn lifetime<'a>(x: &'a str) -> &'a str { x }
        #[cfg(test)]
        use crate::a::A;
        #[cfg(test)]
        mod tests { use super::super::a; }
        mod tests { use crate::a; }
        pub struct B;
        "##,
    );
    let graph = ModuleGraph::read(&src.join("lib.rs")).unwrap();
    assert!(graph.cycles().is_empty(), "{:?}", graph.edges);
    assert_eq!(
        graph.edges[&src.join("a.rs")],
        BTreeSet::from([src.join("b.rs")])
    );

    // A path in an attribute's string is code (serde's `with`), and a
    // child module's bare name is a path to it.
    write(
        src,
        "b.rs",
        "#[derive(serde::Serialize)]\npub struct B(#[serde(with = \"crate::a\")] u8);\n",
    );
    write(src, "lib.rs", "mod a;\nmod b;\nfn f() { b::g() }\n");
    let graph = ModuleGraph::read(&src.join("lib.rs")).unwrap();
    assert!(graph.edges[&src.join("b.rs")].contains(&src.join("a.rs")));
    assert!(graph.edges[&src.join("lib.rs")].contains(&src.join("b.rs")));
    assert_eq!(graph.cycles().len(), 1);
}

/// The cycles of the crate whose root is `src/lib.rs`, in words.
fn cycles_in(src: &Path) -> Vec<String> {
    let graph = ModuleGraph::read(&src.join("lib.rs")).unwrap();
    graph
        .cycles()
        .iter()
        .map(|c| graph.describe(c, src))
        .collect()
}

fn write(src: &Path, file: &str, text: &str) {
    let path = src.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A crate's roots: its library and its binary are separate crates.
fn crate_roots(src: &Path) -> Vec<PathBuf> {
    let roots: Vec<PathBuf> = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .filter(|p| p.is_file())
        .collect();
    assert!(
        !roots.is_empty(),
        "{} has no lib.rs or main.rs",
        src.display()
    );
    roots
}

fn short(file: &Path, src: &Path) -> String {
    file.strip_prefix(src).unwrap_or(file).display().to_string()
}

/// The files of one crate and which files each one's paths name.
struct ModuleGraph {
    /// Module path (`[]` is the crate root) -> the file that holds it.
    modules: BTreeMap<Vec<String>, PathBuf>,
    edges: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
}

/// A module's body, to be read for paths once every module is known.
struct Body {
    module: Vec<String>,
    file: PathBuf,
    tokens: Vec<Token>,
}

impl ModuleGraph {
    fn read(root: &Path) -> Result<Self, String> {
        let mut graph = ModuleGraph {
            modules: BTreeMap::new(),
            edges: BTreeMap::new(),
        };
        let mut bodies = Vec::new();
        let dir = root.parent().unwrap_or(Path::new(".")).to_owned();
        graph.load(Vec::new(), root, &dir, &mut bodies)?;
        for body in &bodies {
            let children = graph.children(&body.module);
            let targets: BTreeSet<PathBuf> = paths(&body.tokens, &body.module, &children)
                .iter()
                .filter_map(|p| graph.resolve(p))
                .filter(|f| *f != body.file)
                .collect();
            graph
                .edges
                .entry(body.file.clone())
                .or_default()
                .extend(targets);
        }
        Ok(graph)
    }

    /// Reads the file of module `module` (`dir`: where its children live),
    /// then its children.
    fn load(
        &mut self,
        module: Vec<String>,
        file: &Path,
        dir: &Path,
        bodies: &mut Vec<Body>,
    ) -> Result<(), String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        self.modules.insert(module.clone(), file.to_owned());
        self.edges.entry(file.to_owned()).or_default();
        let tokens = without_test_code(&tokenize(&text));
        self.load_body(module, file, dir, &tokens, bodies)
    }

    /// Splits a module's tokens into its own body and its inline modules;
    /// loads the files of its `mod NAME;` declarations.
    fn load_body(
        &mut self,
        module: Vec<String>,
        file: &Path,
        dir: &Path,
        tokens: &[Token],
        bodies: &mut Vec<Body>,
    ) -> Result<(), String> {
        let mut own = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let is_mod = tokens[i].is("mod")
                && matches!(tokens.get(i + 1), Some(Token::Ident(_)))
                && (i == 0 || !tokens[i - 1].is("::"));
            if !is_mod {
                own.push(tokens[i].clone());
                i += 1;
                continue;
            }
            let name = tokens[i + 1].text().to_owned();
            let mut child = module.clone();
            child.push(name.clone());
            match tokens.get(i + 2) {
                Some(t) if t.is(";") => {
                    let path = [
                        dir.join(format!("{name}.rs")),
                        dir.join(&name).join("mod.rs"),
                    ]
                    .into_iter()
                    .find(|p| p.is_file())
                    .ok_or_else(|| format!("{}: no file for `mod {name};`", file.display()))?;
                    let child_dir = dir.join(&name);
                    self.load(child, &path, &child_dir, bodies)?;
                    i += 3;
                }
                Some(t) if t.is("{") => {
                    let end = matching_brace(tokens, i + 2);
                    self.modules.insert(child.clone(), file.to_owned());
                    let inner = &tokens[i + 3..end.min(tokens.len())];
                    self.load_body(child, file, &dir.join(&name), inner, bodies)?;
                    i = end + 1;
                }
                _ => {
                    own.push(tokens[i].clone());
                    i += 1;
                }
            }
        }
        bodies.push(Body {
            module,
            file: file.to_owned(),
            tokens: own,
        });
        Ok(())
    }

    fn children(&self, module: &[String]) -> BTreeSet<String> {
        self.modules
            .keys()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
            .map(|m| m[module.len()].clone())
            .collect()
    }

    /// The file of the innermost module `path` reaches.
    fn resolve(&self, path: &[String]) -> Option<PathBuf> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.modules.get(&path[..n]))
            .cloned()
    }

    fn files(&self) -> BTreeSet<PathBuf> {
        self.edges.keys().cloned().collect()
    }

    /// Strongly connected sets of more than one file (Tarjan), each as one
    /// cycle through all of them.
    fn cycles(&self) -> Vec<Vec<PathBuf>> {
        struct State<'g> {
            graph: &'g ModuleGraph,
            index: BTreeMap<&'g PathBuf, usize>,
            low: BTreeMap<&'g PathBuf, usize>,
            stack: Vec<&'g PathBuf>,
            on_stack: BTreeSet<&'g PathBuf>,
            sets: Vec<Vec<PathBuf>>,
        }
        fn visit<'g>(s: &mut State<'g>, v: &'g PathBuf) {
            let n = s.index.len();
            s.index.insert(v, n);
            s.low.insert(v, n);
            s.stack.push(v);
            s.on_stack.insert(v);
            for w in &s.graph.edges[v] {
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
            if s.low[v] == s.index[v] {
                let mut set = Vec::new();
                while let Some(w) = s.stack.pop() {
                    s.on_stack.remove(w);
                    set.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if set.len() > 1 {
                    set.sort();
                    s.sets.push(set);
                }
            }
        }
        let mut state = State {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            sets: Vec::new(),
        };
        for v in self.edges.keys() {
            if !state.index.contains_key(v) {
                visit(&mut state, v);
            }
        }
        state.sets.sort();
        state.sets
    }

    /// One cycle through a strongly connected set, from its first file and
    /// back, by shortest steps: "a.rs -> b.rs -> a.rs", then the set's
    /// other files.
    fn describe(&self, set: &[PathBuf], src: &Path) -> String {
        let members: BTreeSet<&PathBuf> = set.iter().collect();
        let start = &set[0];
        // Breadth-first from `start` inside the set, back to `start`.
        let mut previous: BTreeMap<&PathBuf, &PathBuf> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut back = None;
        while let Some(v) = queue.pop_front() {
            for w in self.edges[v].iter().filter(|w| members.contains(w)) {
                if w == start {
                    back = Some(v);
                    break;
                }
                if !previous.contains_key(w) {
                    previous.insert(w, v);
                    queue.push_back(w);
                }
            }
            if back.is_some() {
                break;
            }
        }
        let mut route = vec![start.clone()];
        let mut at = back;
        while let Some(v) = at.filter(|v| *v != start) {
            route.push(v.clone());
            at = previous.get(v).copied();
        }
        route[1..].reverse();
        route.push(start.clone());
        let cycle: Vec<String> = route.iter().map(|f| short(f, src)).collect();
        let rest: Vec<String> = set
            .iter()
            .filter(|f| !route.contains(f))
            .map(|f| short(f, src))
            .collect();
        if rest.is_empty() {
            cycle.join(" -> ")
        } else {
            format!("{} (with {})", cycle.join(" -> "), rest.join(", "))
        }
    }

    /// Every file `start` reaches, with the route to it.
    fn reachable(&self, start: &Path) -> Vec<(PathBuf, Vec<PathBuf>)> {
        let mut seen: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([vec![start.to_owned()]]);
        while let Some(route) = queue.pop_front() {
            let last = route.last().cloned().unwrap_or_default();
            for next in self.edges.get(&last).into_iter().flatten() {
                if next != start && !seen.contains_key(next) {
                    let mut longer = route.clone();
                    longer.push(next.clone());
                    seen.insert(next.clone(), longer.clone());
                    queue.push_back(longer);
                }
            }
        }
        seen.into_iter().collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Punct(String),
}

impl Token {
    fn is(&self, text: &str) -> bool {
        self.text() == text
    }

    fn text(&self) -> &str {
        match self {
            Token::Ident(s) | Token::Punct(s) => s,
        }
    }
}

/// Identifiers and punctuation (`::` as one); comments, literals and
/// lifetimes dropped, except a string in an attribute that is exactly a
/// path from `crate`, `super` or `self`, which is read as that path.
fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    // Brackets open since an attribute's `#[`, `#![`.
    let mut attribute = 0usize;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' || ((c == 'r' || c == 'b') && starts_string(&chars, i)) {
            let (end, content) = string_literal(&chars, i);
            if attribute > 0 && is_path_text(&content) {
                tokens.extend(tokenize(&content));
            }
            i = end;
        } else if c == '\'' {
            // A char literal ('a', '\n', '\'') or a lifetime ('a).
            if at(i + 1) == '\\' {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == ':' && at(i + 1) == ':' {
            tokens.push(Token::Punct("::".into()));
            i += 2;
        } else {
            let opens_attribute = c == '['
                && (tokens.last().is_some_and(|t: &Token| t.is("#"))
                    || tokens.ends_with(&[Token::Punct("#".into()), Token::Punct("!".into())]));
            match c {
                '[' if opens_attribute || attribute > 0 => attribute += 1,
                ']' if attribute > 0 => attribute -= 1,
                _ => {}
            }
            tokens.push(Token::Punct(c.to_string()));
            i += 1;
        }
    }
    tokens
}

/// Whether a string literal (`r"`, `r#"`, `b"`, `br"`) starts at `i`.
fn starts_string(chars: &[char], i: usize) -> bool {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return false;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) == Some(&'r') {
        j += 1;
        while chars.get(j) == Some(&'#') {
            j += 1;
        }
    }
    j > i && chars.get(j) == Some(&'"')
}

/// The end of the string literal starting at `i`, and its content.
fn string_literal(chars: &[char], i: usize) -> (usize, String) {
    let mut j = i;
    let mut raw = false;
    let mut hashes = 0;
    while chars[j] != '"' {
        raw |= chars[j] == 'r';
        hashes += usize::from(chars[j] == '#');
        j += 1;
    }
    j += 1;
    let start = j;
    while j < chars.len() {
        if !raw && chars[j] == '\\' {
            j += 2;
            continue;
        }
        if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
            let content = chars[start..j].iter().collect();
            return (j + 1 + hashes, content);
        }
        j += 1;
    }
    (chars.len(), String::new())
}

fn is_path_text(text: &str) -> bool {
    let mut parts = text.split("::");
    matches!(parts.next(), Some("crate" | "super" | "self"))
        && text.contains("::")
        && parts.all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

/// `tokens` without `#[cfg(test)]` items and `mod tests` blocks.
fn without_test_code(tokens: &[Token]) -> Vec<Token> {
    let cfg_test = ["#", "[", "cfg", "(", "test", ")", "]"];
    let mut kept = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let at_cfg_test = tokens[i..]
            .iter()
            .take(cfg_test.len())
            .map(Token::text)
            .eq(cfg_test);
        let at_mod_tests = tokens[i].is("mod")
            && tokens.get(i + 1).is_some_and(|t| t.is("tests"))
            && tokens.get(i + 2).is_some_and(|t| t.is("{"));
        if at_cfg_test || at_mod_tests {
            // Skip to the end of the item: its `;`, or its block.
            let mut j = i + if at_cfg_test { cfg_test.len() } else { 2 };
            while j < tokens.len() && !tokens[j].is(";") && !tokens[j].is("{") {
                j += 1;
            }
            i = if tokens.get(j).is_some_and(|t| t.is("{")) {
                matching_brace(tokens, j) + 1
            } else {
                j + 1
            };
            continue;
        }
        kept.push(tokens[i].clone());
        i += 1;
    }
    kept
}

/// The index of the `}` closing the `{` at `open`.
fn matching_brace(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0;
    for (j, t) in tokens.iter().enumerate().skip(open) {
        if t.is("{") {
            depth += 1;
        } else if t.is("}") {
            depth -= 1;
            if depth == 0 {
                return j;
            }
        }
    }
    tokens.len()
}

/// The crate-relative module paths a module body names: its `use` trees
/// and the paths in its code that start from `crate`, `super`, `self` or a
/// child module of `module`.
fn paths(tokens: &[Token], module: &[String], children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let after_path = i > 0 && tokens[i - 1].is("::");
        if t.is("use") && !after_path {
            let mut trees = Vec::new();
            i = use_tree(tokens, i + 1, Vec::new(), &mut trees);
            found.extend(trees.iter().filter_map(|p| absolute(p, module, children)));
            continue;
        }
        if let Token::Ident(_) = t {
            if !after_path && tokens.get(i + 1).is_some_and(|n| n.is("::")) {
                let mut path = vec![t.text().to_owned()];
                let mut j = i + 1;
                while tokens.get(j).is_some_and(|n| n.is("::")) {
                    match tokens.get(j + 1) {
                        Some(Token::Ident(s)) => path.push(s.clone()),
                        _ => break,
                    }
                    j += 2;
                }
                found.extend(absolute(&path, module, children));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    found
}

/// Reads a use tree from `i`, pushing each full path; returns the index
/// after it (past its `;`, or at the `,`/`}` that ends it inside braces).
fn use_tree(
    tokens: &[Token],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    while let Some(t) = tokens.get(i) {
        match t {
            Token::Ident(s) if s == "as" => {
                i += 2; // the new name
            }
            Token::Ident(s) if s == "self" && !prefix.is_empty() => {
                i += 1;
            }
            Token::Ident(s) => {
                prefix.push(s.clone());
                i += 1;
            }
            Token::Punct(p) if p == "::" || p == "*" => i += 1,
            Token::Punct(p) if p == "{" => {
                i += 1;
                while tokens.get(i).is_some_and(|t| !t.is("}")) {
                    i = use_tree(tokens, i, prefix.clone(), out);
                    if tokens.get(i).is_some_and(|t| t.is(",")) {
                        i += 1;
                    }
                }
                i += 1;
                return finish_tree(tokens, i);
            }
            Token::Punct(_) => {
                out.push(prefix);
                return finish_tree(tokens, i);
            }
        }
    }
    out.push(prefix);
    i
}

/// Past a top-level `;`; inside braces, at the `,` or `}`.
fn finish_tree(tokens: &[Token], i: usize) -> usize {
    if tokens.get(i).is_some_and(|t| t.is(";")) {
        i + 1
    } else {
        i
    }
}

/// `path` as seen from `module`, made crate-relative; `None` for paths to
/// other crates and to names that are not modules of this one.
fn absolute(
    path: &[String],
    module: &[String],
    children: &BTreeSet<String>,
) -> Option<Vec<String>> {
    let first = path.first()?;
    let mut base: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" => module.to_vec(),
        "super" => module.to_vec(),
        name if children.contains(name) => module.to_vec(),
        _ => return None,
    };
    let mut rest = match first.as_str() {
        "crate" | "self" => &path[1..],
        _ => path,
    };
    while rest.first().is_some_and(|s| s == "super") {
        base.pop()?;
        rest = &rest[1..];
    }
    base.extend(rest.iter().cloned());
    Some(base)
}
