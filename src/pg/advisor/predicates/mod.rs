//! Which columns a statement filters and orders by, per table, read with a
//! real SQL parser (`sqlparser`'s PostgreSQL dialect), and which
//! expressions over one column it compares with a value (`lower(email) =
//! lower($1)`, `created_at::date = $1`), rebuilt from the parsed AST with
//! the column quoted, for an expression index, and which columns it
//! compares with `LIKE` (for a pattern index).
//!
//! Why sqlparser and not pg_query (libpg_query, Postgres' own grammar): it
//! is pure Rust, so the build needs no libclang or C toolchain, and what the
//! advisor needs — tables with aliases, WHERE/ON conjunctions, ORDER BY,
//! LIMIT, function calls and casts — is well inside the grammar it covers,
//! and its Display rebuilds an expression from the AST. Statements it rejects are
//! skipped and counted by the advisor.
//!
//! About 880 lines (its tests are in `tests.rs`): one walk over the AST
//! gathers every shape (equality, ranges, joins, expressions, patterns,
//! `OR` branches, ORDER BY … LIMIT), and the shapes share its scope of
//! table aliases, so the walk stays whole; what is apart from it is what
//! it calls (the expression rebuild and the comparison operators could
//! follow when a shape needs them elsewhere).

use std::collections::HashMap;

use sqlparser::ast::{
    BinaryOperator, CastKind, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments,
    Ident, JoinConstraint, JoinOperator, LimitClause, ObjectName, ObjectNamePart, OrderByKind,
    Query, SetExpr, Statement, TableFactor, TableWithJoins, Value,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// How one table is used by a statement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableUse {
    /// The table as written (`schema.table` when qualified; unquoted names
    /// lowercased).
    pub table: String,
    /// The name's parts as the server reads them (`[schema, table]` or
    /// `[table]`), for an exact catalog lookup.
    pub parts: Vec<String>,
    /// Columns compared with `=`, `IN` or `= ANY`.
    pub equality: Vec<String>,
    /// Columns compared with `<`, `>`, `BETWEEN`.
    pub range: Vec<String>,
    /// Columns of the ORDER BY, when the statement has a LIMIT.
    pub order_by: Vec<String>,
    /// Columns joined (`=`, in ON or WHERE) to a table that the statement
    /// compares with a value (`=`, `IN`, `= ANY`), directly or through
    /// further joins: `c.ticket_id` in `… JOIN comments c ON c.ticket_id =
    /// t.id WHERE t.id = $1`, `o.coupon_id` in `… JOIN coupons k ON k.id =
    /// o.coupon_id WHERE k.code = $1`. This table's rows are looked up by
    /// them per row of the other (a nested loop). Kept apart from
    /// `equality`: the statement does not compare them with a value
    /// itself. Only for a table not itself compared with a value.
    pub joined: Vec<String>,
    /// Expressions over one of its columns compared with `=`, `IN` or
    /// `= ANY` (`lower(email) = lower($1)`).
    pub equality_expressions: Vec<IndexExpression>,
    /// Expressions over one of its columns compared with `<`, `>`,
    /// `BETWEEN`.
    pub range_expressions: Vec<IndexExpression>,
    /// Columns compared with `LIKE` (not `ILIKE`, not negated, no
    /// `ESCAPE`), with what the pattern is.
    pub patterns: Vec<PatternUse>,
    /// Disjunctions over this table alone (`phone = $1 OR secondary_email
    /// = $2`), each as its branches, every branch comparing a column (or an
    /// expression over one) with a value: one index per branch serves the
    /// whole (a BitmapOr of the branches' index scans). A disjunction with
    /// a branch that compares nothing indexable, or that spans tables, is
    /// not kept: no set of indexes serves it.
    pub disjunctions: Vec<Vec<TableUse>>,
}

impl TableUse {
    /// Whether it compares a column or an expression with a value, joins
    /// one, or orders by one under a LIMIT (anything but patterns and
    /// disjunctions).
    pub fn has_conjuncts(&self) -> bool {
        !self.equality.is_empty()
            || !self.range.is_empty()
            || !self.order_by.is_empty()
            || !self.joined.is_empty()
            || !self.equality_expressions.is_empty()
            || !self.range_expressions.is_empty()
    }
}

/// A column compared with `LIKE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternUse {
    /// The column.
    pub column: String,
    /// What the pattern is.
    pub pattern: Pattern,
}

/// The pattern of a `LIKE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// A parameter (`LIKE $1`, as pg_stat_statements stores every literal):
    /// a prefix value could use an index, a generic plan never does.
    Parameter,
    /// A literal without a leading wildcard (`'ab%'`).
    Prefix,
    /// A literal with a leading wildcard (`'%ab%'`): no B-tree serves it.
    Infix,
}

/// An expression over one column, of a shape an index can hold: a
/// function call or a cast whose only column reference is that column and
/// whose other arguments are literals (never a parameter, a subquery or a
/// function known to be volatile). Whether the server takes it as
/// immutable is for the server to say (hypopg refuses an index on a
/// mutable expression, as CREATE INDEX does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexExpression {
    /// The column it reads.
    pub column: String,
    /// The expression rebuilt from the parsed statement (sqlparser's
    /// Display) with the column as a quoted identifier and no table
    /// qualifier: `lower("email")`. Checked to stand, in parentheses, as
    /// one element of exactly one `CREATE INDEX` statement.
    pub sql: String,
}

/// What the advisor reads off one statement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    /// The tables it filters or orders, with their columns.
    pub uses: Vec<TableUse>,
    /// Whether the statement is of a shape the advisor reads (a plain
    /// SELECT, UPDATE or DELETE); `false` for INSERT, set operations
    /// (`UNION`, …), `VALUES` and anything else.
    pub supported: bool,
}

/// The statement could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("unparsable statement: {0}")]
pub struct Unparsable(pub String);

fn ident(part: &sqlparser::ast::Ident) -> String {
    if part.quote_style.is_some() {
        part.value.clone()
    } else {
        part.value.to_lowercase()
    }
}

fn object_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .filter_map(|part| match part {
            ObjectNamePart::Identifier(i) => Some(ident(i)),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[derive(Default)]
struct Scope {
    /// alias (or bare name) → table.
    tables: HashMap<String, String>,
    /// Tables in FROM order.
    order: Vec<String>,
    /// table → the parts of its name.
    parts: HashMap<String, Vec<String>>,
    uses: HashMap<String, TableUse>,
    /// Column-to-column equalities between two tables.
    joins: Vec<((String, String), (String, String))>,
    /// Disjunctions read so far (at most [`MAX_DISJUNCTIONS`]).
    disjunctions: usize,
}

impl Scope {
    fn add_table(&mut self, factor: &TableFactor) {
        if let TableFactor::Table { name, alias, .. } = factor {
            let table = object_name(name);
            let parts: Vec<String> = name
                .0
                .iter()
                .filter_map(|part| match part {
                    ObjectNamePart::Identifier(i) => Some(ident(i)),
                    _ => None,
                })
                .collect();
            let start = parts.len().saturating_sub(2);
            self.parts.insert(table.clone(), parts[start..].to_vec());
            let short = table.rsplit('.').next().unwrap_or(&table).to_owned();
            self.tables.insert(table.clone(), table.clone());
            self.tables.insert(short, table.clone());
            if let Some(alias) = alias {
                self.tables.insert(ident(&alias.name), table.clone());
            }
            if !self.order.contains(&table) {
                self.order.push(table);
            }
        }
    }

    fn add_from(&mut self, from: &[TableWithJoins]) {
        for item in from {
            self.add_table(&item.relation);
            for join in &item.joins {
                self.add_table(&join.relation);
            }
        }
    }

    /// The table and column of a column reference.
    fn column(&self, expr: &Expr) -> Option<(String, String)> {
        match expr {
            Expr::Identifier(column) if self.order.len() == 1 => {
                Some((self.order[0].clone(), ident(column)))
            }
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let column = ident(&parts[parts.len() - 1]);
                let qualifier = parts[..parts.len() - 1]
                    .iter()
                    .map(ident)
                    .collect::<Vec<_>>()
                    .join(".");
                self.tables.get(&qualifier).map(|t| (t.clone(), column))
            }
            Expr::Nested(inner) => self.column(inner),
            _ => None,
        }
    }

    fn is_column(expr: &Expr) -> bool {
        match expr {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => true,
            Expr::Nested(inner) => Self::is_column(inner),
            _ => false,
        }
    }

    fn use_of(&mut self, table: &str) -> &mut TableUse {
        let parts = &self.parts;
        self.uses
            .entry(table.to_owned())
            .or_insert_with(|| TableUse {
                table: table.to_owned(),
                parts: parts
                    .get(table)
                    .cloned()
                    .unwrap_or_else(|| vec![table.to_owned()]),
                ..TableUse::default()
            })
    }

    fn push(&mut self, kind: Kind, column: Option<(String, String)>) {
        let Some((table, column)) = column else {
            return;
        };
        let entry = self.use_of(&table);
        let list = match kind {
            Kind::Equality => &mut entry.equality,
            Kind::Range => &mut entry.range,
            Kind::Order => &mut entry.order_by,
        };
        if !list.contains(&column) {
            list.push(column);
        }
    }

    fn push_expression(&mut self, kind: Kind, expression: Option<(String, IndexExpression)>) {
        let Some((table, expression)) = expression else {
            return;
        };
        let entry = self.use_of(&table);
        let list = match kind {
            Kind::Equality => &mut entry.equality_expressions,
            Kind::Range => &mut entry.range_expressions,
            Kind::Order => return,
        };
        if !list.iter().any(|e| e.sql == expression.sql) {
            list.push(expression);
        }
    }

    /// The table and the index expression of `expr`, when it is a function
    /// call or a cast over exactly one column reference of a table in
    /// scope (see [`IndexExpression`]).
    fn expression(&self, expr: &Expr) -> Option<(String, IndexExpression)> {
        let mut found = None;
        let rebuilt = self.rebuild(expr, &mut found, 0)?;
        if !matches!(rebuilt, Expr::Function(_) | Expr::Cast { .. }) {
            return None;
        }
        let (table, column) = found?;
        let sql = rebuilt.to_string();
        stands_in_an_index(&sql).then_some((table, IndexExpression { column, sql }))
    }

    /// `expr` rebuilt for an index: the one column reference (recorded in
    /// `found`) as a quoted bare identifier, literals kept, anything else
    /// refused.
    fn rebuild(
        &self,
        expr: &Expr,
        found: &mut Option<(String, String)>,
        depth: usize,
    ) -> Option<Expr> {
        if depth > MAX_DEPTH {
            return None;
        }
        match expr {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
                let column = self.column(expr)?;
                if found.is_some() {
                    return None;
                }
                let quoted = Expr::Identifier(Ident::with_quote('"', column.1.clone()));
                *found = Some(column);
                Some(quoted)
            }
            Expr::Nested(inner) if Self::is_column(inner) => self.rebuild(inner, found, depth + 1),
            Expr::Nested(inner) => Some(Expr::Nested(Box::new(self.rebuild(
                inner,
                found,
                depth + 1,
            )?))),
            Expr::Value(value) => match value.value {
                Value::Number(..) | Value::SingleQuotedString(_) => Some(expr.clone()),
                _ => None,
            },
            Expr::Cast {
                kind: kind @ (CastKind::Cast | CastKind::DoubleColon),
                expr: inner,
                data_type,
                format: None,
            } => Some(Expr::Cast {
                kind: kind.clone(),
                expr: Box::new(self.rebuild(inner, found, depth + 1)?),
                data_type: data_type.clone(),
                format: None,
            }),
            Expr::Function(function) => {
                let list = plain_arguments(function)?;
                let mut rebuilt = function.clone();
                let mut args = list.clone();
                for arg in &mut args.args {
                    let FunctionArg::Unnamed(FunctionArgExpr::Expr(inner)) = arg else {
                        return None;
                    };
                    *inner = self.rebuild(inner, found, depth + 1)?;
                }
                rebuilt.args = FunctionArguments::List(args);
                Some(Expr::Function(rebuilt))
            }
            _ => None,
        }
    }

    /// Whether `expr` is a value: literals and parameters, through
    /// function calls and casts, with no column reference.
    fn is_value(expr: &Expr, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        match expr {
            Expr::Value(_) => true,
            Expr::Nested(inner) => Self::is_value(inner, depth + 1),
            Expr::Cast { expr: inner, .. } => Self::is_value(inner, depth + 1),
            Expr::Function(function) => plain_arguments(function).is_some_and(|list| {
                list.args.iter().all(|arg| {
                    matches!(arg, FunctionArg::Unnamed(FunctionArgExpr::Expr(inner))
                        if Self::is_value(inner, depth + 1))
                })
            }),
            _ => false,
        }
    }

    /// Walks a conjunction of predicates.
    fn predicate(&mut self, expr: &Expr) {
        match expr {
            Expr::Nested(inner) => self.predicate(inner),
            Expr::BinaryOp {
                op: BinaryOperator::Or,
                ..
            } => self.disjunction(expr),
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                self.predicate(left);
                self.predicate(right);
            }
            Expr::BinaryOp { left, op, right } => {
                let Some(kind) = comparison(op) else {
                    return;
                };
                // A column against a value: a join condition (column
                // against column) is not a filter, but an equality join is
                // kept to carry filters across it.
                match (Self::is_column(left), Self::is_column(right)) {
                    (true, true) => {
                        if let (Kind::Equality, Some(a), Some(b)) =
                            (kind, self.column(left), self.column(right))
                            && a.0 != b.0
                        {
                            self.joins.push((a, b));
                        }
                    }
                    (true, false) => {
                        let column = self.column(left);
                        self.push(kind, column);
                    }
                    (false, true) => {
                        let column = self.column(right);
                        self.push(kind, column);
                    }
                    // An expression over a column against a value.
                    (false, false) => {
                        let expression = if Self::is_value(right, 0) {
                            self.expression(left)
                        } else if Self::is_value(left, 0) {
                            self.expression(right)
                        } else {
                            None
                        };
                        self.push_expression(kind, expression);
                    }
                }
            }
            Expr::In {
                expr,
                negated: false,
                ..
            } => self.push_either(Kind::Equality, expr),
            Expr::AnyOp {
                left,
                compare_op: BinaryOperator::Eq,
                ..
            } => self.push_either(Kind::Equality, left),
            Expr::Between {
                expr,
                negated: false,
                ..
            } => self.push_either(Kind::Range, expr),
            Expr::Like {
                negated: false,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => {
                let pattern = match pattern.as_ref() {
                    Expr::Value(value) => match &value.value {
                        Value::Placeholder(_) => Pattern::Parameter,
                        Value::SingleQuotedString(text)
                            if text.starts_with('%') || text.starts_with('_') =>
                        {
                            Pattern::Infix
                        }
                        Value::SingleQuotedString(text) if !text.is_empty() => Pattern::Prefix,
                        _ => return,
                    },
                    _ => return,
                };
                if let Some((table, column)) = self.column(expr) {
                    let entry = self.use_of(&table);
                    let like = PatternUse { column, pattern };
                    if !entry.patterns.contains(&like) {
                        entry.patterns.push(like);
                    }
                }
            }
            _ => {}
        }
    }

    /// Records a disjunction whose every branch compares a column (or an
    /// expression over one) of one and the same table with a value.
    fn disjunction(&mut self, expr: &Expr) {
        let mut branches = Vec::new();
        disjuncts(expr, &mut branches, 0);
        if branches.len() < 2
            || branches.len() > MAX_BRANCHES
            || self.disjunctions >= MAX_DISJUNCTIONS
        {
            return;
        }
        // Each read clones the scope's names per branch: a few per
        // statement, however many it writes.
        self.disjunctions += 1;
        let mut table = None;
        let mut uses = Vec::with_capacity(branches.len());
        for branch in branches {
            // A scope of its own sharing the tables: what the branch
            // compares, and nothing of its siblings'.
            let mut scope = Scope {
                tables: self.tables.clone(),
                order: self.order.clone(),
                parts: self.parts.clone(),
                ..Scope::default()
            };
            scope.predicate(branch);
            let mut found: Vec<TableUse> = scope.uses.into_values().collect();
            let Some(only) = found.pop() else {
                return;
            };
            let indexable = !only.equality.is_empty()
                || !only.range.is_empty()
                || !only.equality_expressions.is_empty()
                || !only.range_expressions.is_empty();
            if !found.is_empty() || !indexable || table.as_ref().is_some_and(|t| *t != only.table) {
                return;
            }
            table = Some(only.table.clone());
            uses.push(only);
        }
        if let Some(table) = table {
            let entry = self.use_of(&table);
            if !entry.disjunctions.contains(&uses) {
                entry.disjunctions.push(uses);
            }
        }
    }

    /// Records `expr` as a column, or else as an index expression.
    fn push_either(&mut self, kind: Kind, expr: &Expr) {
        if Self::is_column(expr) {
            let column = self.column(expr);
            self.push(kind, column);
        } else {
            let expression = self.expression(expr);
            self.push_expression(kind, expression);
        }
    }

    /// Carries lookups across the equality joins, outward from the tables
    /// a statement compares with a value (`=`, `IN`, `= ANY`, directly or
    /// through an expression): a table joined to one of them is read per
    /// row of it, by its join column (`comments.ticket_id` in `… JOIN
    /// comments c ON c.ticket_id = t.id WHERE t.id = $1`, and
    /// `orders.coupon_id` in `… JOIN coupons k ON k.id = o.coupon_id WHERE
    /// k.code = $1`), and so on through further joins. Each table is
    /// reached once and never back: a table compared with a value is read
    /// by that value, not by a join.
    fn carry_joins(&mut self) {
        let reached = |uses: &HashMap<String, TableUse>, table: &str| {
            uses.get(table).is_some_and(|u| {
                !u.equality.is_empty() || !u.joined.is_empty() || !u.equality_expressions.is_empty()
            })
        };
        loop {
            let mut carried: Vec<(String, String)> = Vec::new();
            for (a, b) in &self.joins {
                for (from, to) in [(a, b), (b, a)] {
                    if reached(&self.uses, &from.0)
                        && !reached(&self.uses, &to.0)
                        && !carried.contains(to)
                    {
                        carried.push(to.clone());
                    }
                }
            }
            if carried.is_empty() {
                return;
            }
            for (table, column) in carried {
                let entry = self.use_of(&table);
                if !entry.joined.contains(&column) {
                    entry.joined.push(column);
                }
            }
        }
    }
}

/// What a comparison operator is to an index: `=`, `<`, `<=`, `>`, `>=`,
/// and the same written schema-qualified as PostgreSQL's own foreign-key
/// checks write them (`OPERATOR(pg_catalog.=)`).
fn comparison(op: &BinaryOperator) -> Option<Kind> {
    let op = match op {
        BinaryOperator::PGCustomBinaryOperator(parts) => match parts.as_slice() {
            [schema, op] if schema == "pg_catalog" => op.as_str(),
            _ => return None,
        },
        BinaryOperator::Eq => "=",
        BinaryOperator::Lt => "<",
        BinaryOperator::LtEq => "<=",
        BinaryOperator::Gt => ">",
        BinaryOperator::GtEq => ">=",
        _ => return None,
    };
    match op {
        "=" => Some(Kind::Equality),
        "<" | "<=" | ">" | ">=" => Some(Kind::Range),
        _ => None,
    }
}

/// The statement with a trailing `FOR KEY SHARE` or `FOR NO KEY UPDATE`
/// (which PostgreSQL's foreign-key checks end with, and sqlparser does not
/// read) as `FOR SHARE` or `FOR UPDATE`: the same predicates, to read them.
fn plain_locking(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    for (clause, plain) in [
        (" for key share", " FOR SHARE"),
        (" for no key update", " FOR UPDATE"),
    ] {
        if let Some(at) = lower.rfind(clause) {
            let rest = &lower[at + clause.len()..];
            // Nothing after it but `OF alias`.
            let tail: Vec<&str> = rest.split_whitespace().collect();
            if matches!(tail.as_slice(), [] | ["of", _]) {
                return Some(format!(
                    "{}{plain}{}",
                    &sql[..at],
                    &sql[at + clause.len()..]
                ));
            }
        }
    }
    None
}

/// How deep an expression the advisor reads.
const MAX_DEPTH: usize = 8;

/// The most branches of a disjunction the advisor reads (one index each).
const MAX_BRANCHES: usize = 4;

/// The most disjunctions of one statement the advisor reads.
const MAX_DISJUNCTIONS: usize = 8;

/// The branches of a (nested) `OR`, at most a few levels deep.
fn disjuncts<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>, depth: usize) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Or,
            right,
        } if depth <= MAX_DEPTH => {
            disjuncts(left, out, depth + 1);
            disjuncts(right, out, depth + 1);
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::Or,
                    ..
                }
            ) =>
        {
            disjuncts(inner, out, depth + 1)
        }
        _ => out.push(expr),
    }
}

/// Functions that are never immutable (an index cannot hold them); the
/// server has the last word on the rest.
const VOLATILE: &[&str] = &[
    "clock_timestamp",
    "current_date",
    "current_time",
    "current_timestamp",
    "gen_random_uuid",
    "localtime",
    "localtimestamp",
    "nextval",
    "now",
    "random",
    "setseed",
    "statement_timestamp",
    "timeofday",
    "transaction_timestamp",
];

/// A plain call's argument list: no DISTINCT, ORDER BY, FILTER, OVER,
/// WITHIN GROUP or named arguments' clauses, and not a known volatile
/// function.
fn plain_arguments(function: &Function) -> Option<&sqlparser::ast::FunctionArgumentList> {
    let name = function.name.0.last().and_then(|part| match part {
        ObjectNamePart::Identifier(i) => Some(ident(i)),
        _ => None,
    })?;
    if VOLATILE.contains(&name.as_str())
        || function.uses_odbc_syntax
        || !matches!(function.parameters, FunctionArguments::None)
        || !function.within_group.is_empty()
        || function.filter.is_some()
        || function.null_treatment.is_some()
        || function.over.is_some()
    {
        return None;
    }
    match &function.args {
        FunctionArguments::List(list)
            if list.duplicate_treatment.is_none() && list.clauses.is_empty() =>
        {
            Some(list)
        }
        _ => None,
    }
}

/// Whether `CREATE INDEX ON t ((expression))` parses as exactly one
/// `CREATE INDEX` statement.
pub fn stands_in_an_index(expression: &str) -> bool {
    let ddl = format!("CREATE INDEX ON \"t\" (({expression}))");
    matches!(
        Parser::parse_sql(&PostgreSqlDialect {}, &ddl).as_deref(),
        Ok([Statement::CreateIndex(_)])
    )
}

/// Whether two expression texts are the same index expression: `ours` as
/// the parser rebuilt it, `theirs` as the server deparses an index's
/// (`pg_get_indexdef`): parentheses, identifier quoting, a `pg_catalog.`
/// prefix and casts of literals (`'day'::text`) aside. Texts that do not
/// parse, or hold anything but calls, casts, columns and literals, are
/// never the same.
pub fn same_expression(ours: &str, theirs: &str) -> bool {
    let canonical = |text: &str| -> Option<String> {
        let expr = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(text)
            .and_then(|mut parser| parser.parse_expr())
            .ok()?;
        canonical_expression(&expr, 0).map(|e| e.to_string())
    };
    match (canonical(ours), canonical(theirs)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn canonical_expression(expr: &Expr, depth: usize) -> Option<Expr> {
    if depth > MAX_DEPTH {
        return None;
    }
    match expr {
        Expr::Nested(inner) => canonical_expression(inner, depth + 1),
        Expr::Identifier(i) => Some(Expr::Identifier(Ident::new(ident(i)))),
        Expr::CompoundIdentifier(parts) => {
            parts.last().map(|i| Expr::Identifier(Ident::new(ident(i))))
        }
        Expr::Value(_) => Some(expr.clone()),
        Expr::Cast {
            expr: inner,
            data_type,
            ..
        } => {
            let inner = canonical_expression(inner, depth + 1)?;
            if matches!(inner, Expr::Value(_)) {
                return Some(inner);
            }
            Some(Expr::Cast {
                kind: CastKind::DoubleColon,
                expr: Box::new(inner),
                data_type: data_type.clone(),
                format: None,
            })
        }
        Expr::Function(function) => {
            let list = plain_arguments(function)?;
            let mut args = list.clone();
            for arg in &mut args.args {
                let FunctionArg::Unnamed(FunctionArgExpr::Expr(inner)) = arg else {
                    return None;
                };
                *inner = canonical_expression(inner, depth + 1)?;
            }
            let mut parts: Vec<ObjectNamePart> = function
                .name
                .0
                .iter()
                .map(|part| match part {
                    ObjectNamePart::Identifier(i) => {
                        Some(ObjectNamePart::Identifier(Ident::new(ident(i))))
                    }
                    _ => None,
                })
                .collect::<Option<_>>()?;
            if parts.len() == 2
                && matches!(&parts[0], ObjectNamePart::Identifier(i) if i.value == "pg_catalog")
            {
                parts.remove(0);
            }
            let mut rebuilt = function.clone();
            rebuilt.name = ObjectName(parts);
            rebuilt.args = FunctionArguments::List(args);
            Some(Expr::Function(rebuilt))
        }
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Equality,
    Range,
    Order,
}

fn from_query(query: &Query, scope: &mut Scope) {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return;
    };
    scope.add_from(&select.from);
    for item in &select.from {
        for join in &item.joins {
            let constraint = match &join.join_operator {
                JoinOperator::Join(c)
                | JoinOperator::Inner(c)
                | JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Right(c)
                | JoinOperator::RightOuter(c) => Some(c),
                _ => None,
            };
            if let Some(JoinConstraint::On(on)) = constraint {
                scope.predicate(on);
            }
        }
    }
    if let Some(selection) = &select.selection {
        scope.predicate(selection);
    }
    let limited = matches!(
        &query.limit_clause,
        Some(LimitClause::LimitOffset { limit: Some(_), .. })
    ) || query.fetch.is_some();
    if limited
        && let Some(order_by) = &query.order_by
        && let OrderByKind::Expressions(list) = &order_by.kind
    {
        for item in list {
            let column = scope.column(&item.expr);
            scope.push(Kind::Order, column);
        }
    }
}

/// The tables a statement filters or orders, with their columns.
pub fn table_uses(sql: &str) -> Result<Vec<TableUse>, Unparsable> {
    read(sql).map(|reading| reading.uses)
}

/// The tables a statement filters or orders, with their columns, and
/// whether it is of a shape the advisor reads at all.
pub fn read(sql: &str) -> Result<Reading, Unparsable> {
    let statements = match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        Ok(statements) => statements,
        Err(error) => plain_locking(sql)
            .and_then(|plain| Parser::parse_sql(&PostgreSqlDialect {}, &plain).ok())
            .ok_or_else(|| Unparsable(error.to_string()))?,
    };
    let mut scope = Scope::default();
    let mut supported = true;
    match statements.first() {
        Some(Statement::Query(query)) => {
            supported = matches!(query.body.as_ref(), SetExpr::Select(_));
            from_query(query, &mut scope);
        }
        Some(Statement::Update(update)) => {
            scope.add_from(std::slice::from_ref(&update.table));
            if let Some(selection) = &update.selection {
                scope.predicate(selection);
            }
        }
        Some(Statement::Delete(delete)) => {
            let tables = match &delete.from {
                sqlparser::ast::FromTable::WithFromKeyword(t)
                | sqlparser::ast::FromTable::WithoutKeyword(t) => t,
            };
            scope.add_from(tables);
            if let Some(selection) = &delete.selection {
                scope.predicate(selection);
            }
        }
        _ => supported = false,
    }
    scope.carry_joins();
    let order = scope.order.clone();
    let mut uses: Vec<TableUse> = order
        .iter()
        .filter_map(|table| scope.uses.remove(table))
        .collect();
    uses.retain(|u| u.has_conjuncts() || !u.patterns.is_empty() || !u.disjunctions.is_empty());
    Ok(Reading { uses, supported })
}

#[cfg(test)]
mod tests;
