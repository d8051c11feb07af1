//! The parser's cases, one test per shape.
use super::*;

fn one(sql: &str) -> TableUse {
    let uses = table_uses(sql).expect("parses");
    assert_eq!(uses.len(), 1, "{uses:?}");
    uses.into_iter().next().expect("one")
}

#[test]
fn equality_range_and_in() {
    let u = one(
        "SELECT * FROM orders WHERE customer_id = $1 AND created_at > $2 AND status IN ($3, $4)",
    );
    assert_eq!(u.table, "orders");
    assert_eq!(u.equality, vec!["customer_id", "status"]);
    assert_eq!(u.range, vec!["created_at"]);
}

#[test]
fn order_by_counts_only_with_limit() {
    let u = one("select * from events where account_id = $1 order by created_at desc limit $2");
    assert_eq!(u.order_by, vec!["created_at"]);
    let u = one("select * from events where account_id = $1 order by created_at");
    assert!(u.order_by.is_empty());
}

#[test]
fn aliases_and_joins() {
    let uses = table_uses(
        "SELECT o.id FROM orders o JOIN users AS u ON u.id = o.user_id WHERE u.email = $1 AND o.total >= $2",
    )
    .expect("parses");
    let users = uses.iter().find(|u| u.table == "users").expect("users");
    assert_eq!(users.equality, vec!["email"]);
    let orders = uses.iter().find(|u| u.table == "orders").expect("orders");
    assert_eq!(orders.range, vec!["total"]);
    assert!(
        orders.equality.is_empty(),
        "a join condition is not a filter"
    );
    // But orders is read per user found, by user_id.
    assert_eq!(orders.joined, vec!["user_id"]);
}

#[test]
fn a_join_carries_the_outer_filter_to_the_inner_column() {
    let uses = table_uses(
        "SELECT c.body FROM tickets t JOIN comments c ON c.ticket_id = t.id WHERE t.id = $1",
    )
    .expect("parses");
    let comments = uses
        .iter()
        .find(|u| u.table == "comments")
        .expect("comments");
    assert_eq!(comments.joined, vec!["ticket_id"]);
    assert!(comments.equality.is_empty());
    let tickets = uses.iter().find(|u| u.table == "tickets").expect("tickets");
    assert_eq!(tickets.equality, vec!["id"]);
    assert!(tickets.joined.is_empty());
    // Through WHERE and across two joins.
    let uses = table_uses(
        "select 1 from a, b, c where c.a_id = b.a_id and b.a_id = a.id and a.id = any($1)",
    )
    .expect("parses");
    let c = uses.iter().find(|u| u.table == "c").expect("c");
    assert_eq!(c.joined, vec!["a_id"]);
    // The outer side compared on another column: the inner side is
    // still read per outer row by its join column, and never the
    // outer side by its own join column.
    let uses =
        table_uses("select 1 from a join b on b.a_id = a.id where a.name = $1").expect("parses");
    let b = uses.iter().find(|u| u.table == "b").expect("b");
    assert_eq!(b.joined, vec!["a_id"]);
    let a = uses.iter().find(|u| u.table == "a").expect("a");
    assert!(a.joined.is_empty(), "{uses:?}");
    // Nothing compared with a value: nothing carried.
    let uses =
        table_uses("select 1 from a join b on b.a_id = a.id where a.n > $1").expect("parses");
    assert!(uses.iter().all(|u| u.joined.is_empty()), "{uses:?}");
    // Both sides compared with values: each read by its own.
    let uses =
        table_uses("select 1 from a join b on b.a_id = a.id where a.name = $1 and b.kind = $2")
            .expect("parses");
    assert!(uses.iter().all(|u| u.joined.is_empty()), "{uses:?}");
}

#[test]
fn unsupported_shapes_are_told_apart() {
    assert!(
        read("select * from t where a = $1")
            .expect("parses")
            .supported
    );
    assert!(!read("insert into t values ($1)").expect("parses").supported);
    assert!(
        !read("select a from t where a = $1 union select a from u")
            .expect("parses")
            .supported
    );
}

#[test]
fn update_delete_any_between_schema() {
    assert_eq!(
        one("update public.items set x = 1 where sku = $1").table,
        "public.items"
    );
    assert_eq!(one("delete from t where a = any($1)").equality, vec!["a"]);
    assert_eq!(
        one("select 1 from t where b between $1 and $2").range,
        vec!["b"]
    );
}

#[test]
fn expressions_over_one_column_are_rebuilt_quoted() {
    let u = one("select id from users where lower(email) = lower($1)");
    assert!(u.equality.is_empty(), "{u:?}");
    assert_eq!(
        u.equality_expressions,
        vec![IndexExpression {
            column: "email".into(),
            sql: "lower(\"email\")".into()
        }]
    );
    let u = one("select 1 from events e where e.created_at::date = $1 and id > $2");
    assert_eq!(u.equality_expressions[0].sql, "\"created_at\"::DATE");
    assert_eq!(u.range, vec!["id"]);
    let u = one("select 1 from t where date_trunc('day', created_at) between $1 and $2");
    assert_eq!(
        u.range_expressions[0].sql,
        "date_trunc('day', \"created_at\")"
    );
    let u = one("select 1 from t where upper(CAST(\"Name\" AS text)) in ($1, $2)");
    assert_eq!(
        u.equality_expressions[0].sql,
        "upper(CAST(\"Name\" AS TEXT))"
    );
    // The value on the left, too; a weird name stays one identifier.
    let u = one("select 1 from t where lower($1) = lower(\"we\"\"ird\")");
    assert_eq!(u.equality_expressions[0].sql, "lower(\"we\"\"ird\")");
    assert_eq!(u.equality_expressions[0].column, "we\"ird");
}

#[test]
fn expressions_an_index_cannot_hold_are_not_candidates() {
    for sql in [
        // A parameter inside (pg_stat_statements turns 'day' into $1).
        "select 1 from t where date_trunc($1, created_at) = $2",
        // Two columns, or none.
        "select 1 from t where coalesce(a, b) = $1",
        "select 1 from t where lower($1) = $2",
        // Volatile, a subquery, an aggregate's clauses, an operator.
        "select 1 from t where a + now() = $1",
        "select 1 from t where date_part('epoch', now()) = a",
        "select 1 from t where lower((select a)) = $1",
        "select 1 from t where lower(a) = lower(b)",
        "select 1 from t where a || 'x' = $1",
        "select 1 from t where lower(a) filter (where a > 1) = $1",
    ] {
        let uses = table_uses(sql).expect("parses");
        assert!(
            uses.iter()
                .all(|u| u.equality_expressions.is_empty() && u.range_expressions.is_empty()),
            "{sql}: {uses:?}"
        );
    }
}

#[test]
fn every_expression_stands_in_one_create_index() {
    let u = one("select 1 from t where lower(\"a\"\"); drop table t; --\") = $1");
    let sql = &u.equality_expressions[0].sql;
    assert!(stands_in_an_index(sql), "{sql}");
    let ddl = format!("CREATE INDEX ON \"t\" (({sql}))");
    let parsed = Parser::parse_sql(&PostgreSqlDialect {}, &ddl).expect("parses");
    assert_eq!(parsed.len(), 1, "{ddl}");
    assert!(!stands_in_an_index("lower(a)); drop table t; --"));
}

#[test]
fn the_servers_deparse_matches_the_rebuilt_expression() {
    assert!(same_expression("lower(\"email\")", "lower(email)"));
    assert!(same_expression(
        "\"created_at\"::DATE",
        "(created_at)::date"
    ));
    assert!(same_expression(
        "date_trunc('day', \"created_at\")",
        "date_trunc('day'::text, created_at)"
    ));
    assert!(same_expression(
        "lower(\"email\")",
        "pg_catalog.lower(email)"
    ));
    assert!(!same_expression("lower(\"email\")", "upper(email)"));
    assert!(!same_expression("lower(\"email\")", "lower(name)"));
    assert!(!same_expression("lower(\"email\")", "lower(email) || 'x'"));
}

#[test]
fn like_patterns_are_told_apart() {
    let u = one("select id from accounts a where a.username like $1");
    assert_eq!(
        u.patterns,
        vec![PatternUse {
            column: "username".into(),
            pattern: Pattern::Parameter
        }]
    );
    assert_eq!(
        one("select 1 from t where name like 'ab%'").patterns[0].pattern,
        Pattern::Prefix
    );
    assert_eq!(
        one("select 1 from t where name like '%ab%'").patterns[0].pattern,
        Pattern::Infix
    );
    for sql in [
        "select 1 from t where name not like $1",
        "select 1 from t where name ilike $1",
        "select 1 from t where name like $1 escape '!'",
        "select 1 from t where name like other",
    ] {
        assert!(table_uses(sql).expect("parses").is_empty(), "{sql}");
    }
}

#[test]
fn a_disjunction_over_one_table_keeps_its_branches() {
    let u = one(
        "select id from users u where u.phone = $1 or (lower(u.secondary_email) = lower($2) and u.active = $3)",
    );
    assert!(!u.has_conjuncts(), "an OR is no conjunct: {u:?}");
    let [branches] = u.disjunctions.as_slice() else {
        panic!("one disjunction: {u:?}");
    };
    assert_eq!(branches.len(), 2);
    assert_eq!(branches[0].equality, vec!["phone".to_string()]);
    assert_eq!(branches[1].equality, vec!["active".to_string()]);
    assert_eq!(
        branches[1].equality_expressions[0].sql,
        "lower(\"secondary_email\")"
    );
    // Three branches, nested either way, beside a conjunct.
    let u = one("select 1 from t where tenant = $1 and (a = $2 or (b > $3 or c in ($4, $5)))");
    assert_eq!(u.equality, vec!["tenant".to_string()]);
    assert_eq!(u.disjunctions[0].len(), 3);
}

#[test]
fn disjunctions_no_set_of_indexes_serves_are_not_kept() {
    for sql in [
        // A branch that compares nothing indexable.
        "select 1 from t where a = $1 or b like '%x'",
        "select 1 from t where a = $1 or $2",
        // Branches over two tables.
        "select 1 from t join u on u.t_id = t.id where t.a = $1 or u.b = $2",
    ] {
        let uses = table_uses(sql).expect("parses");
        assert!(
            uses.iter().all(|u| u.disjunctions.is_empty()),
            "{sql}: {uses:?}"
        );
    }
    // Too many branches to index each.
    let many = (1..=MAX_BRANCHES + 1)
        .map(|i| format!("c{i} = ${i}"))
        .collect::<Vec<_>>()
        .join(" or ");
    assert!(
        table_uses(&format!("select 1 from t where {many}"))
            .expect("parses")
            .is_empty()
    );
}

#[test]
fn postgres_foreign_key_checks_are_read() {
    // What a DELETE of a ticket runs on comments, and an INSERT of a
    // comment on tickets (pg_stat_statements' text, as tracked with
    // `pg_stat_statements.track = all`).
    let u = one(
        r#"SELECT 1 FROM ONLY "public"."comments" x WHERE $1 OPERATOR(pg_catalog.=) "ticket_id" FOR KEY SHARE OF x"#,
    );
    assert_eq!(
        (u.table.as_str(), u.equality.as_slice()),
        ("public.comments", &["ticket_id".to_string()][..])
    );
    let u = one(
        r#"SELECT 1 FROM ONLY "public"."tickets" x WHERE "id" OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE OF x"#,
    );
    assert_eq!(u.equality, vec!["id".to_string()]);
    assert_eq!(
        one("select 1 from t where a OPERATOR(pg_catalog.>=) $1").range,
        vec!["a".to_string()]
    );
    // Another schema's operator is not the built-in comparison.
    assert!(
        table_uses("select 1 from t where a OPERATOR(public.=) $1")
            .expect("parses")
            .is_empty()
    );
    // Only a trailing clause is rewritten.
    assert!(plain_locking("select 1 from t for key share of x, y").is_none());
}

#[test]
fn unqualified_columns_with_several_tables_are_skipped() {
    let uses = table_uses("select * from a, b where x = $1").expect("parses");
    assert!(uses.is_empty());
    assert!(table_uses("select from where").is_err());
}
