//! Modules: the `use` lines of a rule file, resolved and joined to it.
//!
//! A module (`module NAME`) declares types, lets and the inputs its lets read,
//! which are what it requires of its importer. A file that imports modules is
//! checked as one text: the file first, then each module it needs, each
//! module's spans offset to where its text was placed
//! ([`cavra_grammar::parse_at`]). The checker, the compiler and explanations
//! then work unchanged, and a span still names one place in one file
//! ([`SourceFile`]).
//!
//! Every module is first checked alone, once per compile (its errors are
//! reported in its own file). The importer then receives the names it asked
//! for and the types and lets those need, after the checks only an import can
//! make: paths that cannot be resolved (`E0900`), cycles (`E0901`), names
//! that clash (`E0902`), inputs the module requires (`E0903`), a pack where a
//! module was expected (`E0904`), names the module lacks (`E0905`) and modules
//! with errors (`E0906`).
//!
//! Where module text comes from is the caller's ([`ModuleResolver`]): the
//! engine knows no files.

use crate::check::{check, free_names, Checked, Facts};
use cavra_grammar::ast::{self, FileKind, Span};
use cavra_grammar::diagnostic::{did_you_mean, Diagnostic};
use cavra_grammar::format::type_expr_text;
use cavra_grammar::Diagnostics;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Finds the text of the module that a `use "path"` line names.
pub trait ModuleResolver: Sync {
    /// `importer` is the name of the importing file: the name the pack was
    /// compiled under, or a [`ModuleFile::name`] this resolver returned.
    /// `Err` says why the module cannot be had (shown after "cannot find module").
    fn resolve(&self, importer: &str, path: &str) -> Result<ModuleFile, String>;
}

/// A module's text and the name its diagnostics show (also its identity: two
/// `use` lines reaching the same name import the same module).
#[derive(Clone, Debug)]
pub struct ModuleFile {
    pub name: String,
    pub source: String,
}

/// Resolves nothing: for a pack compiled from text alone.
pub struct NoModules;

impl ModuleResolver for NoModules {
    fn resolve(&self, _importer: &str, _path: &str) -> Result<ModuleFile, String> {
        Err("this pack was given as text alone, so no module can be read for it".to_string())
    }
}

/// Modules held in memory by path (`rules/common/routing_policy.cavra`), for
/// packs embedded in a program: `use "common/x.cavra"` in the pack compiled
/// as `rules/routing.cavra` finds the module given as `rules/common/x.cavra`.
#[derive(Clone, Debug, Default)]
pub struct MemoryModules {
    files: HashMap<String, String>,
}

impl MemoryModules {
    pub fn new<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> MemoryModules {
        MemoryModules { files: files.into_iter().map(|(path, text)| (path.to_string(), text.to_string())).collect() }
    }
}

impl ModuleResolver for MemoryModules {
    fn resolve(&self, importer: &str, path: &str) -> Result<ModuleFile, String> {
        let mut parts: Vec<&str> = importer.split('/').collect();
        parts.pop();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop().ok_or_else(|| format!("`{path}` leads out of the modules given"))?;
                }
                name => parts.push(name),
            }
        }
        let key = parts.join("/");
        let source = self.files.get(&key).ok_or_else(|| format!("no module {key} was given"))?;
        Ok(ModuleFile { name: key, source: source.clone() })
    }
}

/// One file of a checked pack and where its text starts in the pack's
/// combined text (the pack itself starts at 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    pub name: Arc<str>,
    pub start: usize,
    pub len: usize,
}

/// The file of `files` (sorted by start) that holds `offset` of the combined
/// text, and the offset within that file.
pub(crate) fn file_at(files: &[SourceFile], offset: usize) -> Option<(&SourceFile, usize)> {
    let file = &files[files.partition_point(|f| f.start <= offset).checked_sub(1)?];
    (offset <= file.start + file.len).then_some((file, offset - file.start))
}

/// A file checked with the modules it imports.
pub(crate) struct CheckedFile {
    pub ast: ast::Pack,
    /// The file's text, then each module's after a line break.
    pub source: String,
    pub files: Vec<SourceFile>,
    pub checked: Option<Checked>,
    /// The file's own diagnostics (modules' positions are not in them).
    pub diagnostics: Diagnostics,
    /// What editors need, when asked for.
    pub facts: Option<Facts>,
}

/// Parses nothing: checks `ast` (parsed from `source`) with its modules;
/// with `record`, keeps the [`Facts`] of the file (not of its modules alone).
pub(crate) fn check_file(name: &str, source: &str, ast: ast::Pack, resolver: &dyn ModuleResolver, record: bool) -> CheckedFile {
    let mut session = Session { resolver, alone: HashMap::new(), failed: Vec::new(), record };
    let checked = session.check_with_modules(name, source, ast, &mut vec![name.to_string()]);
    let failed = std::mem::take(&mut session.failed);
    CheckedFile { diagnostics: checked.diagnostics.with_modules(failed), ..checked }
}

/// What one compile has learned about modules: each is checked alone once.
struct Session<'r> {
    resolver: &'r dyn ModuleResolver,
    /// Each module checked alone: the verdict, and its `use` lines.
    alone: HashMap<String, (Alone, Vec<ast::UseDecl>)>,
    /// The diagnostics of every module that does not check, each once.
    failed: Vec<Diagnostics>,
    /// Whether to keep the facts of the file being compiled.
    record: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Alone {
    Checks,
    Fails,
    NotAModule,
}

/// An item of a placed module: (module index in the context, item index).
type ItemId = (usize, usize);

/// A module placed in the text being checked.
struct Placed {
    /// The path as the file that first imported it wrote it, for messages.
    shown: String,
    ast: ast::Pack,
    /// The names it offers: its own types and lets and those it imports.
    scope: BTreeMap<String, ItemId>,
    /// The `use` of the checked file that brought it (errors found in its
    /// text are reported there).
    via: Span,
}

/// The combined text being built for one checked file.
struct Context {
    source: String,
    files: Vec<SourceFile>,
    modules: Vec<Placed>,
    by_name: HashMap<Arc<str>, usize>,
}

impl Context {
    fn item(&self, (module, index): ItemId) -> &ast::Item {
        &self.modules[module].ast.items[index]
    }

    /// The items `roots` need, `roots` included: the record types named in
    /// type fields, the lets and types a let reads, each looked up in the
    /// scope of the module that declares the item.
    fn closure(&self, roots: Vec<ItemId>) -> Vec<ItemId> {
        let mut seen: HashSet<ItemId> = roots.iter().copied().collect();
        let mut todo = roots;
        let mut out = Vec::new();
        while let Some(id) = todo.pop() {
            out.push(id);
            let scope = &self.modules[id.0].scope;
            for name in item_references(self.item(id)) {
                if let Some(&dep) = scope.get(name) {
                    if seen.insert(dep) {
                        todo.push(dep);
                    }
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// The module's own input declarations that `id` (a let) reads.
    fn inputs_read(&self, id: ItemId) -> Vec<&ast::InputDecl> {
        let ast::Item::Let(decl) = self.item(id) else { return Vec::new() };
        let module = &self.modules[id.0];
        let mut names = Vec::new();
        free_names(&decl.value, &mut Vec::new(), &mut names);
        names
            .into_iter()
            .filter(|n| !module.scope.contains_key(*n))
            .filter_map(|n| module.ast.items.iter().find_map(|i| if let ast::Item::Input(d) = i { (d.name.name == n).then_some(d) } else { None }))
            .collect()
    }
}

impl Session<'_> {
    /// Links `ast`'s modules into one text and checks it.
    fn check_with_modules(&mut self, name: &str, source: &str, ast: ast::Pack, stack: &mut Vec<String>) -> CheckedFile {
        let root_end = source.len();
        let mut cx = Context {
            source: source.to_string(),
            files: vec![SourceFile { name: Arc::from(name), start: 0, len: source.len() }],
            modules: Vec::new(),
            by_name: HashMap::new(),
        };
        let mut diags = Vec::new();
        // Every name the uses bring, in order, with the use that first brought it.
        let mut imported: Vec<(ItemId, Span)> = Vec::new();
        let mut imported_by_name: HashMap<String, (ItemId, Span)> = HashMap::new();
        let mut unresolved = false;
        for u in &ast.uses {
            let Some(module) = self.place(&mut cx, name, u, u.span, stack, &mut diags) else {
                unresolved = true;
                continue;
            };
            let selected = select(&cx.modules[module], u, &mut diags);
            for id in cx.closure(selected) {
                let item_name = item_name(cx.item(id)).to_string();
                match imported_by_name.get(&item_name) {
                    Some((first, _)) if *first == id => {}
                    Some((first, first_use)) => diags.push(
                        Diagnostic::error(
                            "E0902",
                            u.path_span,
                            format!("`{item_name}` is imported from both `{}` and `{}`", cx.modules[first.0].shown, cx.modules[id.0].shown),
                        )
                        .with_label("second import")
                        .with_secondary(*first_use, "first imported here")
                        .with_help(format!("import `{item_name}` from one module only: list the names to import, e.g. `use \"{}\" {{ ... }}`", u.path)),
                    ),
                    None => {
                        imported_by_name.insert(item_name, (id, u.span));
                        imported.push((id, u.span));
                    }
                }
            }
        }
        // A local name may not shadow an imported one.
        let mut shadowed = HashSet::new();
        for item in &ast.items {
            let Some(local) = declared_name(item) else { continue };
            if let Some(&(id, via)) = imported_by_name.get(&local.name) {
                shadowed.insert(id);
                diags.push(
                    Diagnostic::error("E0902", local.span, format!("`{}` is declared here and imported from `{}`", local.name, cx.modules[id.0].shown))
                        .with_label("shadows the imported name")
                        .with_secondary(via, "imported here")
                        .with_help("rename one of them, or leave it out of the `use` line's list of names"),
                );
            }
        }
        // What the imported lets read of their modules' inputs, the importer must declare alike.
        let mut required: HashSet<&str> = HashSet::new();
        for &(id, via) in &imported {
            for needed in cx.inputs_read(id) {
                if !required.insert(needed.name.name.as_str()) {
                    continue;
                }
                let wanted = input_text(needed);
                let module = &cx.modules[id.0].shown;
                match ast.items.iter().find_map(|i| if let ast::Item::Input(d) = i { (d.name.name == needed.name.name).then_some(d) } else { None }) {
                    None => diags.push(
                        Diagnostic::error("E0903", via, format!("module `{module}` requires `{wanted}`, which this {} does not declare", ast.kind.keyword()))
                            .with_label(format!("`{}` reads `{}`", item_name(cx.item(id)), needed.name.name))
                            .with_help(format!("declare it: `{wanted}`")),
                    ),
                    Some(local) if input_text(local) != wanted => diags.push(
                        Diagnostic::error("E0903", local.span, format!("`{}` is not declared as module `{module}` requires: `{wanted}`", input_text(local)))
                            .with_label("declared differently here")
                            .with_secondary(via, "the module is imported here")
                            .with_help(format!("declare it as the module does: `{wanted}`")),
                    ),
                    Some(_) => {}
                }
            }
        }
        let mut joined = ast.clone();
        joined.items.extend(imported.iter().filter(|(id, _)| !shadowed.contains(id)).map(|(id, _)| cx.item(*id).clone()));
        let record = self.record && stack.len() == 1;
        let (checked, found, facts) = check(&joined, &cx.source, root_end, record);
        // Errors in a module's text follow from an import error already reported.
        let import_failed = diags.iter().any(Diagnostic::is_error);
        for d in found {
            // What a module that could not be imported declares is unknown: its
            // names would only be reported again as unknown names and types.
            let follows_from_import = unresolved && matches!(d.code, "E0100" | "E0102");
            if follows_from_import {
                continue;
            }
            if d.span.start <= root_end {
                diags.push(d);
            } else if d.is_error() && !import_failed {
                // A module checks alone; an error in its text here comes from the join
                // (the importer's declarations): report it at the use that brought it.
                let at = cx.modules.iter().zip(&cx.files[1..]).find(|(_, f)| f.start <= d.span.start && d.span.start <= f.start + f.len);
                let (via, module) = at.map_or((Span::default(), ""), |(m, _)| (m.via, m.shown.as_str()));
                diags.push(Diagnostic::error("E0906", via, format!("in module `{module}`: {}", d.message)).with_label("imported here"));
            }
        }
        let diagnostics = Diagnostics::new(name, source, diags);
        let checked = checked.filter(|_| !diagnostics.has_errors());
        CheckedFile { ast, source: cx.source, files: cx.files, checked, diagnostics, facts }
    }

    /// Places the module that `u` names (and the modules it imports, first)
    /// in the text being checked; its index there.
    fn place(&mut self, cx: &mut Context, importer: &str, u: &ast::UseDecl, via: Span, stack: &mut Vec<String>, diags: &mut Vec<Diagnostic>) -> Option<usize> {
        if u.path.contains('{') {
            diags.push(
                Diagnostic::error("E0900", u.path_span, "a module path is literal text")
                    .with_label("has `{...}`")
                    .with_help("write the path itself, e.g. `use \"common/approval.cavra\"`"),
            );
            return None;
        }
        let file = match self.resolver.resolve(importer, &u.path) {
            Ok(file) => file,
            Err(why) => {
                diags.push(
                    Diagnostic::error("E0900", u.path_span, format!("cannot find module `{}`: {why}", u.path))
                        .with_label("no such module")
                        .with_help("the path is relative to the importing file, e.g. `use \"../common/approval.cavra\"`"),
                );
                return None;
            }
        };
        if let Some(&index) = cx.by_name.get(file.name.as_str()) {
            return Some(index);
        }
        if let Some(at) = stack.iter().position(|s| *s == file.name) {
            let mut chain: Vec<&str> = stack[at..].iter().map(String::as_str).collect();
            chain.push(&file.name);
            diags.push(
                Diagnostic::error("E0901", u.path_span, format!("module `{}` imports itself: {}", u.path, chain.join(" -> ")))
                    .with_label("this import closes the cycle")
                    .with_help("move what both modules need into a third module that both import"),
            );
            return None;
        }
        let (verdict, uses) = self.check_alone(&file, stack);
        match verdict {
            Alone::Checks => {}
            Alone::NotAModule => {
                diags.push(
                    Diagnostic::error("E0904", u.path_span, format!("`{}` is a pack, not a module", u.path))
                        .with_label("not a module")
                        .with_help("a module starts with `module NAME` and declares types, inputs and lets; move what packs share into one"),
                );
                return None;
            }
            Alone::Fails => {
                diags.push(
                    Diagnostic::error("E0906", u.path_span, format!("module `{}` does not check", u.path))
                        .with_label("imported here")
                        .with_help(format!("fix the errors reported in {} first", file.name)),
                );
                return None;
            }
        }
        stack.push(file.name.clone());
        // Its own imports first; it checked alone, so they resolve without errors.
        let mut deps = Vec::new();
        for dep in &uses {
            if let Some(index) = self.place(cx, &file.name, dep, via, stack, &mut Vec::new()) {
                deps.push((index, dep));
            }
        }
        stack.pop();
        let start = cx.source.len() + 1;
        cx.source.push('\n');
        cx.source.push_str(&file.source);
        let placed_ast = cavra_grammar::parse_at(&file.name, &file.source, start).ok()?;
        let index = cx.modules.len();
        let mut scope = BTreeMap::new();
        for (dep, dep_use) in deps {
            let selected = select(&cx.modules[dep], dep_use, &mut Vec::new());
            for id in cx.closure(selected) {
                scope.insert(item_name(cx.item(id)).to_string(), id);
            }
        }
        for (i, item) in placed_ast.items.iter().enumerate() {
            if matches!(item, ast::Item::Type(_) | ast::Item::Let(_)) {
                scope.insert(item_name(item).to_string(), (index, i));
            }
        }
        let name: Arc<str> = Arc::from(file.name.as_str());
        cx.files.push(SourceFile { name: name.clone(), start, len: file.source.len() });
        cx.by_name.insert(name, index);
        cx.modules.push(Placed { shown: u.path.clone(), ast: placed_ast, scope, via });
        Some(index)
    }

    /// Checks a module alone, once per compile (its errors go to `failed`):
    /// the verdict and the module's `use` lines.
    fn check_alone(&mut self, file: &ModuleFile, stack: &mut Vec<String>) -> (Alone, Vec<ast::UseDecl>) {
        if let Some(known) = self.alone.get(&file.name) {
            return known.clone();
        }
        let known = match cavra_grammar::parse(&file.name, &file.source) {
            Err(diagnostics) => {
                self.failed.push(diagnostics);
                (Alone::Fails, Vec::new())
            }
            Ok(ast) if ast.kind != FileKind::Module => (Alone::NotAModule, Vec::new()),
            Ok(ast) => {
                stack.push(file.name.clone());
                let checked = self.check_with_modules(&file.name, &file.source, ast, stack);
                stack.pop();
                let verdict = if checked.diagnostics.has_errors() {
                    self.failed.push(checked.diagnostics);
                    Alone::Fails
                } else {
                    Alone::Checks
                };
                (verdict, checked.ast.uses)
            }
        };
        self.alone.insert(file.name.clone(), known.clone());
        known
    }
}

/// The items of `module`'s scope that `u` asks for (all when it lists none).
fn select(module: &Placed, u: &ast::UseDecl, diags: &mut Vec<Diagnostic>) -> Vec<ItemId> {
    let Some(names) = &u.names else { return module.scope.values().copied().collect() };
    let mut out = Vec::new();
    for n in names {
        match module.scope.get(&n.name) {
            Some(&id) => out.push(id),
            None => {
                let mut d = Diagnostic::error("E0905", n.span, format!("module `{}` has no type or let `{}`", u.path, n.name)).with_label("not in the module");
                d = match did_you_mean(&n.name, module.scope.keys().map(String::as_str)) {
                    Some(close) => d.with_help(format!("did you mean `{close}`?")),
                    None => d.with_help(format!("it declares {}", list(module.scope.keys()))),
                };
                diags.push(d);
            }
        }
    }
    out
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    if names.is_empty() {
        "no types or lets".to_string()
    } else {
        names.join(", ")
    }
}

fn item_name(item: &ast::Item) -> &str {
    declared_name(item).map_or("", |i| i.name.as_str())
}

/// The name a top-level declaration introduces.
fn declared_name(item: &ast::Item) -> Option<&ast::Ident> {
    match item {
        ast::Item::Type(d) => Some(&d.name),
        ast::Item::Input(d) => Some(&d.name),
        ast::Item::Let(d) => Some(&d.name),
        ast::Item::Decision(_) | ast::Item::Readiness(_) => None,
    }
}

/// `static input policy: Policy`, as the importer must write it.
fn input_text(d: &ast::InputDecl) -> String {
    format!("{}input {}: {}", if d.is_static { "static " } else { "" }, d.name.name, type_expr_text(&d.ty))
}

/// The names an item refers to: type names in its fields' types, names its
/// expressions read.
fn item_references(item: &ast::Item) -> Vec<&str> {
    let mut out = Vec::new();
    match item {
        ast::Item::Type(d) => {
            for f in &d.fields {
                type_names(&f.ty, &mut out);
            }
        }
        ast::Item::Let(d) => free_names(&d.value, &mut Vec::new(), &mut out),
        ast::Item::Input(d) => type_names(&d.ty, &mut out),
        ast::Item::Decision(_) | ast::Item::Readiness(_) => {}
    }
    out
}

fn type_names<'a>(t: &'a ast::TypeExpr, out: &mut Vec<&'a str>) {
    match &t.kind {
        ast::TypeExprKind::Named(name) => out.push(&name.name),
        ast::TypeExprKind::List(inner) | ast::TypeExprKind::Map(inner) => type_names(inner, out),
    }
}
