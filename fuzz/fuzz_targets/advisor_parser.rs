//! Any text through the index advisor's parser: no panic, and every table
//! and column it reports, quoted the way the advisor quotes them, reads back
//! as one identifier, and every expression it rebuilds as one index element
//! (a name or an expression from a statement can never turn the suggested
//! `CREATE INDEX` into something else).
#![no_main]

use libfuzzer_sys::fuzz_target;
use perfscope::pg::advisor::{predicates::table_uses, quote_ident};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

fuzz_target!(|sql: &str| {
    let Ok(uses) = table_uses(sql) else {
        return;
    };
    for table_use in uses {
        assert!(!table_use.table.is_empty());
        let target: Vec<String> = table_use.table.split('.').map(quote_ident).collect();
        let columns: Vec<String> = table_use
            .equality
            .iter()
            .chain(&table_use.range)
            .chain(&table_use.order_by)
            .map(|c| quote_ident(c))
            .chain(
                table_use
                    .equality_expressions
                    .iter()
                    .chain(&table_use.range_expressions)
                    .map(|e| format!("({})", e.sql)),
            )
            .collect();
        if columns.is_empty() {
            continue;
        }
        let ddl = format!(
            "CREATE INDEX ON {} ({})",
            target.join("."),
            columns.join(", ")
        );
        let parsed = Parser::parse_sql(&PostgreSqlDialect {}, &ddl)
            .unwrap_or_else(|e| panic!("{ddl:?} does not parse: {e}"));
        assert_eq!(parsed.len(), 1, "{ddl:?}");
        assert!(
            matches!(parsed[0], sqlparser::ast::Statement::CreateIndex(_)),
            "{ddl:?}"
        );
    }
});
