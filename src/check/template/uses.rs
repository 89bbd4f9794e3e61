//! Reading a template: which names it uses, where, and which it defines.
//! Pure analysis of the template's own text; [`super::Templates`] places
//! what it finds in the `.wf` file.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use minijinja::machinery::{self, ast};

use crate::tokens::characters;

/// A byte range inside the template's own text.
pub type Range = std::ops::Range<usize>;

/// What a template uses, each use placed `At` a byte range of the template
/// ([`analyze`]) or, once placed, at a span of the `.wf` file.
#[derive(Debug)]
pub struct Uses<At = Range> {
    /// Free variables: names the template reads but does not define itself.
    pub variables: Vec<(String, At)>,
    /// Filters, tests and functions called: (kind, name, where).
    pub callables: Vec<(&'static str, String, At)>,
    /// Attribute chains on free variables: `triage.icd10` is `triage` with
    /// the path `icd10`, each part with where it is written.
    pub fields: Vec<Chain<At>>,
    /// What `{% for %}` loops iterate over, when it is a free variable or a
    /// chain on one.
    pub loops: Vec<Chain<At>>,
    /// `chain == "literal"`, `chain > 3` and the like: what the checker can
    /// compare with the chain's declared type.
    pub comparisons: Vec<Comparison<At>>,
    /// The variable uses (among `variables`) that are the direct operand of
    /// a `redact` filter, as in `{{ record | redact }}`: what they read is
    /// de-identified before it reaches the prompt.
    pub redacted: Vec<At>,
    /// The chains among `fields` read outside any `{% if %}` (or `if`
    /// expression) whose condition reads their variable: unguarded reads.
    pub unguarded: Vec<Chain<At>>,
    /// The most characters of the template's own text one rendering emits:
    /// every literal part once (a loop's body counts once), the longer
    /// branch of each `if`. Templates joined by [`Uses::extend`] add up.
    pub literal_chars: u64,
}

impl<At> Default for Uses<At> {
    fn default() -> Self {
        Uses {
            variables: Vec::new(),
            callables: Vec::new(),
            fields: Vec::new(),
            loops: Vec::new(),
            comparisons: Vec::new(),
            redacted: Vec::new(),
            unguarded: Vec::new(),
            literal_chars: 0,
        }
    }
}

impl Uses<Range> {
    /// The same uses, each placed by `place`.
    pub fn place<At>(self, place: impl Fn(Range) -> At) -> Uses<At> {
        let chain = |chain: Chain| chain.place(&place);
        Uses {
            variables: self
                .variables
                .into_iter()
                .map(|(name, at)| (name, place(at)))
                .collect(),
            callables: self
                .callables
                .into_iter()
                .map(|(kind, name, at)| (kind, name, place(at)))
                .collect(),
            fields: self.fields.into_iter().map(chain).collect(),
            loops: self.loops.into_iter().map(chain).collect(),
            comparisons: self
                .comparisons
                .into_iter()
                .map(|comparison| Comparison {
                    chain: chain(comparison.chain),
                    literal: comparison.literal,
                    ordering: comparison.ordering,
                })
                .collect(),
            redacted: self.redacted.into_iter().map(&place).collect(),
            unguarded: self.unguarded.into_iter().map(chain).collect(),
            literal_chars: self.literal_chars,
        }
    }
}

impl<At> Uses<At> {
    /// Adds what `other` uses, e.g. a task's `when` to its prompt.
    pub fn extend(&mut self, other: Uses<At>) {
        self.variables.extend(other.variables);
        self.callables.extend(other.callables);
        self.fields.extend(other.fields);
        self.loops.extend(other.loops);
        self.comparisons.extend(other.comparisons);
        self.redacted.extend(other.redacted);
        self.unguarded.extend(other.unguarded);
        self.literal_chars += other.literal_chars;
    }
}

/// A variable and the attributes read through it: `triage.icd10`.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain<At = Range> {
    pub variable: String,
    pub path: Vec<(String, At)>,
    /// The whole expression.
    pub at: At,
}

impl Chain<Range> {
    fn place<At>(self, place: impl Fn(Range) -> At) -> Chain<At> {
        Chain {
            variable: self.variable,
            path: self
                .path
                .into_iter()
                .map(|(name, at)| (name, place(at)))
                .collect(),
            at: place(self.at),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison<At = Range> {
    pub chain: Chain<At>,
    /// The literal's kind: `string`, `number` or `bool`.
    pub literal: Literal,
    /// Whether the operator orders (`<`, `>=` ...) rather than tests equality.
    pub ordering: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Number,
    Bool,
}

#[derive(Debug)]
pub struct SyntaxError {
    pub detail: String,
    pub range: Range,
}

pub fn analyze(source: &str) -> Result<Uses, SyntaxError> {
    let tree = machinery::parse(
        source,
        "<template>",
        minijinja::syntax::SyntaxConfig::default(),
    )
    .map_err(|err| SyntaxError {
        detail: err.detail().unwrap_or("invalid template").to_string(),
        range: err.range().unwrap_or(0..source.len()),
    })?;
    let mut walker = Walker {
        source,
        uses: Uses::default(),
        scopes: vec![HashSet::default()],
        items: vec![HashMap::default()],
        guards: Vec::new(),
    };
    walker.statement(&tree);
    walker.uses.literal_chars = emitted(&tree);
    Ok(walker.uses)
}

fn emitted(statement: &ast::Stmt<'_>) -> u64 {
    let all = |statements: &[ast::Stmt<'_>]| statements.iter().map(emitted).sum::<u64>();
    match statement {
        ast::Stmt::Template(template) => all(&template.children),
        ast::Stmt::EmitRaw(raw) => characters(raw.raw),
        ast::Stmt::ForLoop(for_loop) => all(&for_loop.body) + all(&for_loop.else_body),
        ast::Stmt::IfCond(condition) => all(&condition.true_body).max(all(&condition.false_body)),
        ast::Stmt::WithBlock(with) => all(&with.body),
        ast::Stmt::SetBlock(set) => all(&set.body),
        ast::Stmt::AutoEscape(block) => all(&block.body),
        ast::Stmt::FilterBlock(block) => all(&block.body),
        ast::Stmt::EmitExpr(_) | ast::Stmt::Set(_) | ast::Stmt::Do(_) => 0,
    }
}

struct Walker<'a> {
    source: &'a str,
    uses: Uses,
    scopes: Vec<HashSet<&'a str>>,
    /// Loop variables that stand for an item of a chain on a free variable
    /// (`r` in `{% for r in labs.results %}`), innermost scope last.
    items: Vec<HashMap<&'a str, Chain>>,
    /// The free variables the conditions around this point read.
    guards: Vec<HashSet<String>>,
}

/// The path step that takes an item of a list: a loop variable, `[0]`,
/// `| first`, `| last`.
pub const ITEM: &str = "[]";

fn range(span: machinery::Span) -> Range {
    span.start_offset as usize..span.end_offset as usize
}

impl<'a> Walker<'a> {
    fn defined(&self, name: &str) -> bool {
        self.scopes.iter().any(|scope| scope.contains(name))
    }

    fn define(&mut self, name: &'a str) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name);
        }
    }

    fn scoped(&mut self, names: &[&'a str], body: impl FnOnce(&mut Self)) {
        self.scopes.push(names.iter().copied().collect());
        self.items.push(HashMap::default());
        body(self);
        self.items.pop();
        self.scopes.pop();
    }

    /// The chain a loop variable stands for, if it stands for an item of one.
    fn item_of(&self, name: &str) -> Option<&Chain> {
        for (scope, items) in self.scopes.iter().zip(&self.items).rev() {
            if scope.contains(name) {
                return items.get(name);
            }
        }
        None
    }

    fn statements(&mut self, statements: &[ast::Stmt<'a>]) {
        for statement in statements {
            self.statement(statement);
        }
    }

    fn statement(&mut self, statement: &ast::Stmt<'a>) {
        match statement {
            ast::Stmt::Template(template) => self.statements(&template.children),
            ast::Stmt::EmitExpr(emit) => self.expression(&emit.expr),
            ast::Stmt::EmitRaw(_) => {}
            ast::Stmt::ForLoop(for_loop) => {
                if let Some(chain) = self.chain(&for_loop.iter) {
                    self.uses.loops.push(chain);
                }
                self.expression(&for_loop.iter);
                let item = self.chain(&for_loop.iter).map(|mut chain| {
                    chain.path.push((ITEM.to_string(), chain.at.clone()));
                    chain
                });
                self.scoped(&["loop"], |walker| {
                    walker.assign(&for_loop.target);
                    if let (ast::Expr::Var(var), Some(item)) = (&for_loop.target, item)
                        && let Some(items) = walker.items.last_mut()
                    {
                        items.insert(var.id, item);
                    }
                    if let Some(filter) = &for_loop.filter_expr {
                        walker.expression(filter);
                    }
                    walker.statements(&for_loop.body);
                });
                self.statements(&for_loop.else_body);
            }
            ast::Stmt::IfCond(condition) => {
                self.guarded_by(&condition.expr, |walker| {
                    walker.statements(&condition.true_body);
                    walker.statements(&condition.false_body);
                });
            }
            ast::Stmt::WithBlock(with) => {
                for (_, value) in &with.assignments {
                    self.expression(value);
                }
                self.scoped(&[], |walker| {
                    for (target, _) in &with.assignments {
                        walker.assign(target);
                    }
                    walker.statements(&with.body);
                });
            }
            ast::Stmt::Set(set) => {
                self.expression(&set.expr);
                self.assign(&set.target);
            }
            ast::Stmt::SetBlock(set) => {
                if let Some(filter) = &set.filter {
                    self.expression(filter);
                }
                self.statements(&set.body);
                self.assign(&set.target);
            }
            ast::Stmt::AutoEscape(block) => {
                self.expression(&block.enabled);
                self.statements(&block.body);
            }
            ast::Stmt::FilterBlock(block) => {
                self.expression(&block.filter);
                self.statements(&block.body);
            }
            ast::Stmt::Do(block) => self.call(&block.call),
        }
    }

    /// Reads `condition`, then walks what it governs with the variables it
    /// reads counted as guarded (`{% if codes.ok %}...{% endif %}`).
    fn guarded_by(&mut self, condition: &ast::Expr<'a>, body: impl FnOnce(&mut Self)) {
        let before = self.uses.variables.len();
        // A field read as the condition itself is a check, not a use.
        let checked = self.uses.unguarded.len();
        self.expression(condition);
        self.uses.unguarded.truncate(checked);
        let guard = self.uses.variables[before..]
            .iter()
            .map(|(name, _)| name.clone())
            .collect();
        self.guards.push(guard);
        body(self);
        self.guards.pop();
    }

    /// The target of `set`, `for` or `with`: names it binds become defined;
    /// anything else in it (`ns.count`) is read.
    fn assign(&mut self, target: &ast::Expr<'a>) {
        match target {
            ast::Expr::Var(var) => self.define(var.id),
            ast::Expr::List(list) => list.items.iter().for_each(|item| self.assign(item)),
            ast::Expr::Tuple(tuple) => tuple.items.iter().for_each(|item| self.assign(item)),
            other => self.expression(other),
        }
    }

    fn call(&mut self, call: &ast::Spanned<ast::Call<'a>>) {
        match &call.expr {
            ast::Expr::Var(var) if !self.defined(var.id) => {
                self.uses
                    .callables
                    .push(("function", var.id.to_string(), range(var.span())));
            }
            other => self.expression(other),
        }
        self.arguments(&call.args);
    }

    fn arguments(&mut self, args: &[ast::CallArg<'a>]) {
        for arg in args {
            match arg {
                ast::CallArg::Pos(expr)
                | ast::CallArg::Kwarg(_, expr)
                | ast::CallArg::PosSplat(expr)
                | ast::CallArg::KwargSplat(expr) => self.expression(expr),
            }
        }
    }

    /// Where `name` is written inside a filter or test expression: the first
    /// whole-word occurrence after its operand.
    fn name_range(&self, name: &str, node: Range, after: Option<Range>) -> Range {
        let from = after.map_or(node.start, |operand| operand.end);
        let text = &self.source[from..node.end.max(from)];
        text.match_indices(name)
            .find(|(i, _)| {
                let before = text[..*i].chars().next_back();
                let next = text[i + name.len()..].chars().next();
                !before.is_some_and(is_word) && !next.is_some_and(is_word)
            })
            .map_or(node, |(i, _)| from + i..from + i + name.len())
    }

    /// Records `chain <op> literal` (either way round).
    fn comparison(&mut self, side: &ast::Expr<'a>, other: &ast::Expr<'a>, ordering: bool) {
        let (Some(chain), ast::Expr::Const(constant)) = (self.chain(side), other) else {
            return;
        };
        let value = &constant.value;
        let literal = if let Some(text) = value.as_str() {
            Literal::Text(text.to_string())
        } else if value.is_number() {
            Literal::Number
        } else if value.kind() == minijinja::value::ValueKind::Bool {
            Literal::Bool
        } else {
            return;
        };
        self.uses.comparisons.push(Comparison {
            chain,
            literal,
            ordering,
        });
    }

    /// `name.a.b` when `name` is free, and the same through what keeps
    /// the type in view: an item (`[0]`, `| first`, `| last`, a loop
    /// variable over such a chain) and `| default(...)`.
    fn chain(&self, expr: &ast::Expr<'a>) -> Option<Chain> {
        let mut path = Vec::new();
        let mut node = expr;
        loop {
            node = match node {
                ast::Expr::GetAttr(attr) => {
                    let at = self.name_range(
                        attr.name,
                        range(attr.span()),
                        Some(range(attr.expr.span())),
                    );
                    path.push((attr.name.to_string(), at));
                    &attr.expr
                }
                ast::Expr::GetItem(item) if is_index(&item.subscript_expr) => {
                    path.push((ITEM.to_string(), range(item.subscript_expr.span())));
                    &item.expr
                }
                ast::Expr::Filter(filter) if matches!(filter.name, "first" | "last") => {
                    path.push((ITEM.to_string(), range(filter.span())));
                    filter.expr.as_ref()?
                }
                ast::Expr::Filter(filter) if filter.name == "default" => filter.expr.as_ref()?,
                _ => break,
            };
        }
        let ast::Expr::Var(var) = node else {
            return None;
        };
        path.reverse();
        let (variable, path) = if self.defined(var.id) {
            let item = self.item_of(var.id)?;
            let mut full = item.path.clone();
            full.extend(path);
            (item.variable.clone(), full)
        } else {
            (var.id.to_string(), path)
        };
        Some(Chain {
            variable,
            path,
            at: range(expr.span()),
        })
    }

    fn expression(&mut self, expr: &ast::Expr<'a>) {
        match expr {
            ast::Expr::Var(var) => {
                if !self.defined(var.id) {
                    self.uses
                        .variables
                        .push((var.id.to_string(), range(var.span())));
                }
            }
            ast::Expr::Const(_) => {}
            ast::Expr::Slice(slice) => {
                self.expression(&slice.expr);
                for part in [&slice.start, &slice.stop, &slice.step]
                    .into_iter()
                    .flatten()
                {
                    self.expression(part);
                }
            }
            ast::Expr::UnaryOp(op) => self.expression(&op.expr),
            ast::Expr::BinOp(op) => {
                let ordering = match op.op {
                    ast::BinOpKind::Eq | ast::BinOpKind::Ne => Some(false),
                    ast::BinOpKind::Lt
                    | ast::BinOpKind::Lte
                    | ast::BinOpKind::Gt
                    | ast::BinOpKind::Gte => Some(true),
                    _ => None,
                };
                if let Some(ordering) = ordering {
                    self.comparison(&op.left, &op.right, ordering);
                    self.comparison(&op.right, &op.left, ordering);
                }
                // `risk in ['high', 'low']` compares `risk` with each.
                if let (ast::BinOpKind::In, ast::Expr::List(list)) = (&op.op, &op.right) {
                    for item in &list.items {
                        self.comparison(&op.left, item, false);
                    }
                }
                self.expression(&op.left);
                self.expression(&op.right);
            }
            ast::Expr::Compare(compare) => {
                self.expression(&compare.expr);
                for op in &compare.ops {
                    self.expression(&op.expr);
                }
            }
            ast::Expr::IfExpr(if_expr) => {
                self.guarded_by(&if_expr.test_expr, |walker| {
                    walker.expression(&if_expr.true_expr);
                    if let Some(otherwise) = &if_expr.false_expr {
                        walker.expression(otherwise);
                    }
                });
            }
            ast::Expr::Filter(filter) => {
                let operand = filter.expr.as_ref().map(|expr| range(expr.span()));
                let at = self.name_range(filter.name, range(filter.span()), operand);
                self.uses
                    .callables
                    .push(("filter", filter.name.to_string(), at));
                if let Some(operand) = &filter.expr {
                    if let ast::Expr::Var(var) = operand
                        && filter.name == "redact"
                        && !self.defined(var.id)
                    {
                        self.uses.redacted.push(range(var.span()));
                    }
                    self.expression(operand);
                }
                self.arguments(&filter.args);
            }
            ast::Expr::Test(test) => {
                let operand = Some(range(test.expr.span()));
                let at = self.name_range(test.name, range(test.span()), operand);
                self.uses
                    .callables
                    .push(("test", test.name.to_string(), at));
                self.expression(&test.expr);
                self.arguments(&test.args);
            }
            ast::Expr::GetAttr(_) => {
                let mut base = expr;
                while let ast::Expr::GetAttr(attr) = base {
                    base = &attr.expr;
                }
                if let Some(chain) = self.chain(expr) {
                    if !self
                        .guards
                        .iter()
                        .any(|guard| guard.contains(&chain.variable))
                    {
                        self.uses.unguarded.push(chain.clone());
                    }
                    self.uses.fields.push(chain);
                }
                self.expression(base);
            }
            ast::Expr::GetItem(item) => {
                self.expression(&item.expr);
                self.expression(&item.subscript_expr);
            }
            ast::Expr::Call(call) => self.call(call),
            ast::Expr::List(list) => list.items.iter().for_each(|item| self.expression(item)),
            ast::Expr::Tuple(tuple) => tuple.items.iter().for_each(|item| self.expression(item)),
            ast::Expr::Map(map) => {
                for (key, value) in map.keys.iter().zip(&map.values) {
                    self.expression(key);
                    self.expression(value);
                }
            }
        }
    }
}

/// Whether a subscript is a whole number, as in `items[0]` or `items[-1]`.
fn is_index(subscript: &ast::Expr<'_>) -> bool {
    match subscript {
        ast::Expr::Const(constant) => constant.value.is_number(),
        ast::Expr::UnaryOp(op) => matches!(&op.expr, ast::Expr::Const(c) if c.value.is_number()),
        _ => false,
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(source: &str) -> Vec<String> {
        let uses = analyze(source).expect("template parses");
        uses.variables.into_iter().map(|(name, _)| name).collect()
    }

    #[test]
    fn counts_the_literal_text_of_a_template() {
        let literal = |source: &str| analyze(source).expect("template parses").literal_chars;
        assert_eq!(literal("Hi {{ name }}!"), 4);
        assert_eq!(
            literal("{% if a %}long branch{% else %}short{% endif %}"),
            11
        );
        assert_eq!(literal("{% for x in xs %}- {{ x }}{% endfor %}"), 2);
    }

    #[test]
    fn loop_and_set_variables_are_not_free() {
        let source = "{% set title = 'x' %}{{ title }}{% for line in notes %}{{ line }}{{ loop.index }}{% endfor %}{{ line }}";
        assert_eq!(names(source), ["notes", "line"]);
    }

    #[test]
    fn reports_where_names_and_filters_stand() {
        let source = "Hi {{ patient | upper }}";
        let uses = analyze(source).expect("template parses");
        assert_eq!(uses.variables, [("patient".to_string(), 6..13)]);
        let (kind, name, at) = &uses.callables[0];
        assert_eq!(
            (*kind, name.as_str(), &source[at.clone()]),
            ("filter", "upper", "upper")
        );
    }

    #[test]
    fn attribute_chains_and_loops_on_free_names_and_their_items() {
        let source = "{{ triage.codes.first }}{% for code in triage.codes %}{{ code.x }}{% endfor %}{% for n in notes %}{% endfor %}";
        let uses = analyze(source).expect("template parses");
        let fields: Vec<(&str, Vec<&str>)> = uses
            .fields
            .iter()
            .map(|chain| {
                let path = chain
                    .path
                    .iter()
                    .map(|(_, at)| &source[at.clone()])
                    .collect();
                (chain.variable.as_str(), path)
            })
            .collect();
        assert_eq!(
            fields,
            [
                ("triage", vec!["codes", "first"]),
                ("triage", vec!["codes"]),
                // `code` stands for an item of `triage.codes`, placed there.
                ("triage", vec!["codes", "triage.codes", "x"]),
            ]
        );
        let loops: Vec<&str> = uses.loops.iter().map(|c| &source[c.at.clone()]).collect();
        assert_eq!(loops, ["triage.codes", "notes"]);
    }

    #[test]
    fn records_only_direct_redact_operands() {
        let source = "{{ a | redact }} {{ b | upper | redact }} {{ c }} {{ (d | redact) ~ e }}";
        let uses = analyze(source).expect("template parses");
        let redacted: Vec<&str> = uses.redacted.iter().map(|r| &source[r.clone()]).collect();
        assert_eq!(redacted, ["a", "d"]);
    }

    #[test]
    fn comparisons_with_literals() {
        let uses = analyze("{{ a.b == 'x' and 3 < c and d == e }}").expect("template parses");
        let found: Vec<(String, Literal, bool)> = uses
            .comparisons
            .into_iter()
            .map(|c| (c.chain.variable, c.literal, c.ordering))
            .collect();
        assert_eq!(
            found,
            [
                ("a".to_string(), Literal::Text("x".into()), false),
                ("c".to_string(), Literal::Number, true),
            ]
        );
    }

    #[test]
    fn syntax_errors_carry_a_range() {
        let err = analyze("ok {{ broken ").expect_err("template fails");
        assert!(err.range.start >= 3, "{:?}", err.range);
    }
}
