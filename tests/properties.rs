//! Property tests over the parsers that take outside input: the SQL
//! normalizer and fingerprint, the statement-to-model extraction, the index
//! advisor's parser, the configuration, and the analyze body. Each runs
//! proptest's default 256 cases (`PROPTEST_CASES` raises it); a failing
//! input is shrunk and printed, and belongs here as a regression case.
//! The same parsers have coverage-guided fuzz targets under `fuzz/`
//! (`bash fuzz/run`); the inputs they found are unit tests beside the code
//! they broke.

use perfscope::config::RawConfig;
use perfscope::db::statement::parse;
use proptest::prelude::*;

/// A literal value unlike any SQL word, so finding it in a normalized text
/// means it survived.
fn secret() -> impl Strategy<Value = String> {
    "zq[a-z0-9 '\\\\%_-]{6,24}"
}

/// A table name that is not a keyword.
fn table() -> impl Strategy<Value = String> {
    "t_[a-z0-9_]{0,20}"
}

proptest! {
    #[test]
    fn literals_never_survive_normalization(
        table in table(),
        text in secret(),
        number in any::<i64>(),
        other in secret(),
    ) {
        let quoted = text.replace('\'', "''");
        let sql = format!(
            "SELECT id, name FROM {table} WHERE name = '{quoted}' AND n = {number} AND m IN ({number}, {})",
            number.wrapping_add(1)
        );
        let info = parse(&sql);
        prop_assert!(!info.normalized.contains(text.as_str()), "{}", info.normalized);
        prop_assert!(!info.normalized.contains(&number.unsigned_abs().to_string()) || number.unsigned_abs() < 10,
            "{}", info.normalized);
        prop_assert_eq!(&*info.model, table.as_str());
        prop_assert_eq!(info.verb.as_str(), "select");
        // Another literal: the same statement, the same fingerprint.
        let again = parse(&sql.replace(&quoted, &other.replace('\'', "''")));
        prop_assert_eq!(info.fingerprint, again.fingerprint);
    }

    #[test]
    fn any_text_normalizes_without_panicking_or_quotes(sql in ".{0,200}") {
        let info = parse(&sql);
        // Outside quoted identifiers, no string literal is left.
        let outside: String = info
            .normalized
            .split('"')
            .step_by(2)
            .collect();
        prop_assert!(!outside.contains('\''), "{}", info.normalized);
        prop_assert_eq!(perfscope::db::statement::normalize(&sql), info.normalized.to_string());
    }

    #[test]
    fn the_advisor_parser_takes_any_text(sql in ".{0,200}", table in table()) {
        let _ = perfscope::pg::advisor::predicates::table_uses(&sql);
        let select = format!("SELECT * FROM {table} WHERE a = $1 AND b > $2 ORDER BY c LIMIT 5 {sql}");
        let _ = perfscope::pg::advisor::predicates::table_uses(&select);
    }

    #[test]
    fn every_rebuilt_expression_stands_as_one_index_element(
        sql in ".{0,60}",
        function in "[a-z_\"();' ]{1,12}",
        column in "[a-z_\"();' -]{1,12}",
    ) {
        let quoted = column.replace('"', "\"\"");
        let text = format!("SELECT 1 FROM t WHERE {function}(\"{quoted}\") = lower($1) {sql}");
        if let Ok(uses) = perfscope::pg::advisor::predicates::table_uses(&text) {
            for expression in uses.iter().flat_map(|u| u.equality_expressions.iter().chain(&u.range_expressions)) {
                let ddl = format!("CREATE INDEX ON \"t\" (({}))", expression.sql);
                let parsed = sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, &ddl);
                prop_assert!(
                    matches!(parsed.as_deref(), Ok([sqlparser::ast::Statement::CreateIndex(_)])),
                    "{ddl}"
                );
            }
        }
    }

    #[test]
    fn any_configuration_is_accepted_or_refused_by_name(
        values in proptest::collection::vec(proptest::option::of(".{0,40}"), 12),
        password in "[A-Za-z0-9]{12}",
    ) {
        let raw = RawConfig {
            listen: values[0].clone(),
            database_url: values[1].clone().map(|v| format!("postgres://u:{password}@{v}")),
            pool_min: values[2].clone(),
            pool_max: values[3].clone(),
            slow_query_threshold: values[4].clone(),
            high_memory_threshold: values[5].clone(),
            http_buckets: values[6].clone(),
            watch_databases: values[7].clone().map(|v| format!("a=postgres://u:{password}@h/{v}")),
            admin_token: values[8].clone().map(|v| format!("{password}{v}")),
            sentry_dsn: values[9].clone().map(|v| format!("https://{password}@{v}")),
            alert_webhook_urls: values[10].clone().map(|v| format!("https://h/{password}{v}")),
            sentry_traces_sample_rate: values[11].clone(),
            ..Default::default()
        };
        if let Err(error) = raw.validate() {
            prop_assert!(
                !error.var.is_empty() && error.var.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{}", error
            );
            prop_assert!(!error.to_string().contains(&password), "a secret in: {}", error);
        }
    }

    #[test]
    fn the_analyze_body_answers_2xx_or_a_named_4xx(
        operation in proptest::option::of(".{0,300}"),
        duration in proptest::option::of(prop_oneof![
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,20}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
        ]),
        extra in proptest::option::of("[a-z]{1,10}"),
    ) {
        let mut body = serde_json::Map::new();
        if let Some(operation) = &operation {
            body.insert("operation".into(), operation.clone().into());
        }
        if let Some(duration) = duration {
            body.insert("duration".into(), duration);
        }
        if let Some(extra) = extra {
            body.insert(extra, serde_json::Value::Bool(true));
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (status, answer) = runtime.block_on(async move {
            let perfscope = perfscope::Perfscope::new(perfscope::Config {
                server: perfscope::config::ServerConfig {
                    admin_token: Some(perfscope::config::Secret::new("property-admin-token-0123")),
                    ..Default::default()
                },
                ..Default::default()
            });
            let client = poem::test::TestClient::new(perfscope::api::endpoint(&perfscope));
            let response = client
                .post("/api/performance/analyze")
                .header("authorization", "Bearer property-admin-token-0123")
                .content_type("application/json")
                .body(serde_json::Value::Object(body).to_string())
                .send()
                .await;
            let status = response.0.status();
            (status, response.0.into_body().into_string().await.unwrap_or_default())
        });
        prop_assert!(status.is_success() || status.is_client_error(), "{} {}", status, answer);
        if status.is_client_error() {
            let json: serde_json::Value = serde_json::from_str(&answer).expect("a JSON error body");
            prop_assert!(json["error"].is_string(), "{}", answer);
        }
    }
}
