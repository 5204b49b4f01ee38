//! Import cycles between the modules of one crate.
//!
//! A crate is read from its root file by following its `mod` items (files
//! and inline modules). Every path a module uses that starts with `crate`,
//! `super` or `self`, or with the name of one of its child modules, is
//! resolved to the module that defines what it names, following `use`
//! items (re-exports in `lib.rs` / `mod.rs` included, globs too), so that
//! `crate::Capabilities` counts as a use of the module defining
//! `Capabilities`. Re-exports themselves (`pub use`) are naming, not use,
//! and count for nothing.
//!
//! For each module, its children and its own file (the items written in
//! the module itself, shown as `self`) are the nodes of one graph, with an
//! edge from A to B when something in A (or under it) uses something in B
//! (or under it). Every such graph must be acyclic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use syn::punctuated::Punctuated;
use syn::visit::Visit;

/// A module's path from its crate's root (`[]` is the root).
type ModPath = Vec<String>;

/// One module, as written.
#[derive(Default)]
struct Module {
    file: PathBuf,
    children: BTreeSet<String>,
    /// Names of the items defined in the module itself.
    items: BTreeSet<String>,
    /// `use` names: the name in scope and the path it stands for.
    imports: BTreeMap<String, Vec<String>>,
    /// `use path::*`.
    globs: Vec<Vec<String>>,
    /// What the module uses, unresolved.
    uses: Vec<Use>,
}

/// One use of a path, where it is written.
#[derive(Clone)]
struct Use {
    path: Vec<String>,
    line: usize,
}

/// An edge between two siblings, and one use that makes it.
#[derive(Clone, Debug)]
pub struct Evidence {
    pub file: PathBuf,
    pub line: usize,
    pub path: String,
}

/// An import cycle among the children of one module.
#[derive(Debug)]
pub struct Cycle {
    pub crate_name: String,
    /// The module whose children (and own file, `self`) form the cycle.
    pub parent: String,
    /// The nodes in order; the last one uses the first.
    pub nodes: Vec<String>,
    /// For each step `nodes[i] -> nodes[i + 1]` (wrapping), one use.
    pub evidence: Vec<Evidence>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: in {}: {} -> {}",
            self.crate_name,
            self.parent,
            self.nodes.join(" -> "),
            self.nodes[0]
        )?;
        for (i, evidence) in self.evidence.iter().enumerate() {
            let next = &self.nodes[(i + 1) % self.nodes.len()];
            writeln!(
                f,
                "    {} -> {next}: {}:{} uses `{}`",
                self.nodes[i],
                evidence.file.display(),
                evidence.line,
                evidence.path
            )?;
        }
        Ok(())
    }
}

/// Reads the crate rooted at `root` (its `lib.rs` or `main.rs`) and returns
/// every import cycle between sibling modules in it.
pub fn cycles(crate_name: &str, root: &Path) -> Result<Vec<Cycle>, String> {
    let mut modules = BTreeMap::new();
    read_module(&mut modules, Vec::new(), root, true)?;
    let graph = Graph::build(&modules);
    Ok(graph.cycles(crate_name))
}

fn read_module(
    modules: &mut BTreeMap<ModPath, Module>,
    path: ModPath,
    file: &Path,
    owns_directory: bool,
) -> Result<(), String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let parsed =
        syn::parse_file(&text).map_err(|e| format!("cannot parse {}: {e}", file.display()))?;
    // Where this module's `mod x;` files are: beside a root or `mod.rs`,
    // else in a folder named after the file.
    let dir = if owns_directory {
        file.parent().unwrap().to_path_buf()
    } else {
        file.with_extension("")
    };
    read_items(modules, path, file, &dir, &parsed.items)
}

fn read_items(
    modules: &mut BTreeMap<ModPath, Module>,
    path: ModPath,
    file: &Path,
    dir: &Path,
    items: &[syn::Item],
) -> Result<(), String> {
    let mut module = Module {
        file: file.to_path_buf(),
        ..Module::default()
    };
    let mut submodules = Vec::new();
    for item in items {
        match item {
            syn::Item::Mod(item) => {
                let name = item.ident.to_string();
                module.children.insert(name.clone());
                submodules.push(item);
            }
            syn::Item::Use(item) => {
                let public = !matches!(item.vis, syn::Visibility::Inherited);
                let line = item.use_token.span.start().line;
                for (target, name) in use_tree(Vec::new(), &item.tree) {
                    match name {
                        Some(name) => {
                            module.imports.insert(name, target.clone());
                        }
                        None => module.globs.push(target.clone()),
                    }
                    // A re-export names; a private import uses.
                    if !public {
                        module.uses.push(Use { path: target, line });
                    }
                }
            }
            other => {
                if let Some(name) = item_name(other) {
                    module.items.insert(name);
                }
                let mut collector = Collector::default();
                collector.visit_item(other);
                module.uses.extend(collector.uses);
            }
        }
    }
    modules.insert(path.clone(), module);
    for item in submodules {
        let mut child = path.clone();
        child.push(item.ident.to_string());
        match &item.content {
            Some((_, items)) => {
                let child_dir = dir.join(item.ident.to_string());
                read_items(modules, child, file, &child_dir, items)?;
            }
            None => {
                let (child_file, owns) = module_file(item, dir)?;
                read_module(modules, child, &child_file, owns)?;
            }
        }
    }
    Ok(())
}

/// The file of `mod name;` declared in a module whose files are in `dir`,
/// and whether it holds its own folder (`mod.rs`).
fn module_file(item: &syn::ItemMod, dir: &Path) -> Result<(PathBuf, bool), String> {
    for attr in &item.attrs {
        if attr.path().is_ident("path")
            && let syn::Meta::NameValue(meta) = &attr.meta
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(path),
                ..
            }) = &meta.value
        {
            return Ok((dir.join(path.value()), true));
        }
    }
    let name = item.ident.to_string();
    let flat = dir.join(format!("{name}.rs"));
    if flat.exists() {
        return Ok((flat, false));
    }
    let nested = dir.join(&name).join("mod.rs");
    if nested.exists() {
        return Ok((nested, true));
    }
    Err(format!("no file for `mod {name};` in {}", dir.display()))
}

/// Every path a `use` tree names: the path, and the name it brings in
/// (`None` for a glob).
fn use_tree(prefix: Vec<String>, tree: &syn::UseTree) -> Vec<(Vec<String>, Option<String>)> {
    let with = |name: &syn::Ident| {
        let mut path = prefix.clone();
        path.push(name.to_string());
        path
    };
    match tree {
        syn::UseTree::Path(path) => use_tree(with(&path.ident), &path.tree),
        syn::UseTree::Name(name) if name.ident == "self" => {
            let alias = prefix.last().cloned();
            vec![(prefix, alias)]
        }
        syn::UseTree::Name(name) => vec![(with(&name.ident), Some(name.ident.to_string()))],
        syn::UseTree::Rename(rename) if rename.ident == "self" => {
            vec![(prefix, Some(rename.rename.to_string()))]
        }
        syn::UseTree::Rename(rename) => {
            vec![(with(&rename.ident), Some(rename.rename.to_string()))]
        }
        syn::UseTree::Glob(_) => vec![(prefix, None)],
        syn::UseTree::Group(group) => group
            .items
            .iter()
            .flat_map(|tree| use_tree(prefix.clone(), tree))
            .collect(),
    }
}

fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(item) => &item.ident,
        syn::Item::Enum(item) => &item.ident,
        syn::Item::ExternCrate(item) => &item.ident,
        syn::Item::Fn(item) => &item.sig.ident,
        syn::Item::Macro(item) => item.ident.as_ref()?,
        syn::Item::Static(item) => &item.ident,
        syn::Item::Struct(item) => &item.ident,
        syn::Item::Trait(item) => &item.ident,
        syn::Item::TraitAlias(item) => &item.ident,
        syn::Item::Type(item) => &item.ident,
        syn::Item::Union(item) => &item.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

/// The paths used in an item's body (types, expressions, patterns, macro
/// arguments that parse as expressions, `use` inside functions).
#[derive(Default)]
struct Collector {
    uses: Vec<Use>,
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        if let Some(first) = path.segments.first() {
            self.uses.push(Use {
                path: path.segments.iter().map(|s| s.ident.to_string()).collect(),
                line: first.ident.span().start().line,
            });
        }
        syn::visit::visit_path(self, path);
    }

    /// `pub(crate)`, `pub(super)`: who may see an item, not a use.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let line = item.use_token.span.start().line;
        for (path, _) in use_tree(Vec::new(), &item.tree) {
            self.uses.push(Use { path, line });
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let parser = Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated;
        if let Ok(exprs) = mac.parse_body_with(parser) {
            for expr in &exprs {
                self.visit_expr(expr);
            }
        }
    }
}

/// The sibling graphs of one crate: for each module, edges between its
/// children and `self`, each with one use that makes it.
struct Graph<'a> {
    modules: &'a BTreeMap<ModPath, Module>,
    edges: BTreeMap<ModPath, BTreeMap<(String, String), Evidence>>,
}

/// The node standing for a module's own file in its children's graph.
const SELF_NODE: &str = "self";

impl<'a> Graph<'a> {
    fn build(modules: &'a BTreeMap<ModPath, Module>) -> Self {
        let mut graph = Graph {
            modules,
            edges: BTreeMap::new(),
        };
        for (from, module) in modules {
            for used in &module.uses {
                let Some(absolute) = graph.absolute(from, &used.path) else {
                    continue;
                };
                let Some(to) = graph.locate(&absolute, 0, false) else {
                    continue;
                };
                graph.add_edge(from, &to, module, used);
            }
        }
        graph
    }

    /// `path` as written in module `from`, from the crate root; `None` when
    /// it names something outside the crate (or a local name).
    fn absolute(&self, from: &ModPath, path: &[String]) -> Option<Vec<String>> {
        let first = path.first()?;
        match first.as_str() {
            "crate" => Some(path[1..].to_vec()),
            "self" => Some([from.as_slice(), &path[1..]].concat()),
            "super" => {
                let mut base = from.clone();
                let mut rest = path;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
                Some([base.as_slice(), rest].concat())
            }
            _ => {
                let module = self.modules.get(from)?;
                if module.children.contains(first) {
                    Some([from.as_slice(), path].concat())
                } else if let Some(target) = module.imports.get(first)
                    && target.first() != Some(first)
                {
                    // A name brought in by `use`, itself written from `from`
                    // (`use foo;` of an outside crate `foo` leads nowhere).
                    let target = self.absolute(from, target)?;
                    Some([target.as_slice(), &path[1..]].concat())
                } else {
                    None
                }
            }
        }
    }

    /// The module that defines what `path` (from the root) names, through
    /// re-exports; with `strict`, `None` when nothing defines it.
    fn locate(&self, path: &[String], depth: usize, strict: bool) -> Option<ModPath> {
        if depth > 16 {
            return None;
        }
        let mut module_path: ModPath = Vec::new();
        let mut i = 0;
        while i < path.len() {
            let mut next = module_path.clone();
            next.push(path[i].clone());
            if !self.modules.contains_key(&next) {
                break;
            }
            module_path = next;
            i += 1;
        }
        if i == path.len() {
            return Some(module_path);
        }
        let module = &self.modules[&module_path];
        let name = &path[i];
        if module.items.contains(name) {
            return Some(module_path);
        }
        if let Some(target) = module.imports.get(name)
            && let Some(target) = self.absolute(&module_path, target)
        {
            let target = [target.as_slice(), &path[i + 1..]].concat();
            if let Some(found) = self.locate(&target, depth + 1, strict) {
                return Some(found);
            }
        }
        for glob in &module.globs {
            if let Some(glob) = self.absolute(&module_path, glob) {
                let target = [glob.as_slice(), &path[i..]].concat();
                if let Some(found) = self.locate(&target, depth + 1, true) {
                    return Some(found);
                }
            }
        }
        // Something the module holds that is not an item (an enum's
        // variant through a glob, a macro): the module itself.
        (!strict).then_some(module_path)
    }

    fn add_edge(&mut self, from: &ModPath, to: &ModPath, module: &Module, used: &Use) {
        if from == to {
            return;
        }
        let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
        let parent = from[..common].to_vec();
        let node = |path: &ModPath| path.get(common).cloned().unwrap_or(SELF_NODE.to_string());
        let (a, b) = (node(from), node(to));
        if a == b {
            return;
        }
        self.edges
            .entry(parent)
            .or_default()
            .entry((a, b))
            .or_insert_with(|| Evidence {
                file: module.file.clone(),
                line: used.line,
                path: used.path.join("::"),
            });
    }

    fn cycles(&self, crate_name: &str) -> Vec<Cycle> {
        let mut cycles = Vec::new();
        for (parent, edges) in &self.edges {
            let mut adjacent: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for (a, b) in edges.keys() {
                adjacent.entry(a).or_default().push(b);
            }
            for nodes in find_cycles(&adjacent) {
                let evidence = (0..nodes.len())
                    .map(|i| {
                        let key = (nodes[i].clone(), nodes[(i + 1) % nodes.len()].clone());
                        edges[&key].clone()
                    })
                    .collect();
                cycles.push(Cycle {
                    crate_name: crate_name.to_string(),
                    parent: if parent.is_empty() {
                        "the crate root".to_string()
                    } else {
                        format!("crate::{}", parent.join("::"))
                    },
                    nodes,
                    evidence,
                });
            }
        }
        cycles
    }
}

/// One cycle through each strongly connected component of more than one
/// node.
fn find_cycles(adjacent: &BTreeMap<&str, Vec<&str>>) -> Vec<Vec<String>> {
    let reaches = |from: &str, to: &str| -> Option<Vec<String>> {
        // Breadth-first, so the cycle printed is a shortest one.
        let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([from]);
        while let Some(node) = queue.pop_front() {
            for &next in adjacent.get(node).into_iter().flatten() {
                if next == to {
                    let mut path = vec![node.to_string()];
                    let mut at = node;
                    while at != from {
                        at = previous[at];
                        path.push(at.to_string());
                    }
                    path.reverse();
                    return Some(path);
                }
                if next != from && !previous.contains_key(next) {
                    previous.insert(next, node);
                    queue.push_back(next);
                }
            }
        }
        None
    };
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut cycles = Vec::new();
    for &node in adjacent.keys() {
        if seen.contains(node) {
            continue;
        }
        if let Some(cycle) = reaches(node, node) {
            seen.extend(cycle.iter().cloned());
            cycles.push(cycle);
        }
    }
    cycles
}
