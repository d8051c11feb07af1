//! The view rendered from known data: the formatting helpers, escaping,
//! the order the service gave, the links.

use super::*;

const AT: i64 = 1_780_000_000;

fn event(id: i64, at: i64, kind: EventKind, label: &str, database: Option<&str>) -> EventRow {
    EventRow {
        id,
        at,
        kind,
        database: database.map(str::to_owned),
        label: label.to_owned(),
        detail: None,
    }
}

fn route_figures(requests: i64, mean_ms: f64) -> RouteFigures {
    RouteFigures {
        requests,
        error_ratio: 0.0,
        mean_ms,
        p95_ms: mean_ms * 2.0,
    }
}

fn statement_figures(calls: i64, mean_ms: f64, blocks: f64) -> StatementFigures {
    StatementFigures {
        calls,
        mean_ms,
        blocks_read_per_call: blocks,
    }
}

fn compared() -> Comparison {
    Comparison {
        at: AT,
        window: 3_600,
        database: "shop".into(),
        minimum_samples: 20,
        routes: vec![
            RouteChange {
                method: "GET".into(),
                route: "/orders/<script>".into(),
                before: route_figures(1_200, 10.0),
                after: route_figures(1_300, 30.0),
                mean_change: Some(2.0),
            },
            RouteChange {
                method: "POST".into(),
                route: "/cart".into(),
                before: route_figures(40, 8.0),
                after: route_figures(45, 8.2),
                mean_change: Some(0.025),
            },
        ],
        routes_left_out: 3,
        statements: vec![StatementChange {
            queryid: "-42".into(),
            text: Some(format!(
                "SELECT * FROM \"<b>\" WHERE note = $1 {}",
                "x".repeat(200)
            )),
            before: statement_figures(500, 2.0, 0.5),
            after: statement_figures(480, 0.5, 120.0),
            mean_change: Some(-0.75),
        }],
        statements_left_out: 1,
    }
}

#[test]
fn changes_read_as_a_percentage_when_small_and_a_factor_past_it() {
    assert_eq!(change(None), ("–".to_owned(), None));
    assert_eq!(change(Some(f64::NAN)), ("–".to_owned(), None));
    assert_eq!(change(Some(1.4)), ("2.4× slower".to_owned(), Some("warn")));
    assert_eq!(change(Some(14.2)), ("15× slower".to_owned(), Some("warn")));
    assert_eq!(change(Some(-0.5)), ("2.0× faster".to_owned(), Some("ok")));
    assert_eq!(change(Some(-1.0)), ("∞× faster".to_owned(), Some("ok")));
    assert_eq!(change(Some(0.04)), ("+4 %".to_owned(), None));
    assert_eq!(change(Some(-0.03)), ("−3 %".to_owned(), None));
    assert_eq!(change(Some(0.0)), ("+0 %".to_owned(), None));
    assert_eq!(change(Some(0.25)), ("+25 %".to_owned(), None));
    assert_eq!(change(Some(-0.2)), ("−20 %".to_owned(), None));
    assert_eq!(per_call(0.25), "0.2");
    assert_eq!(per_call(1_234.4), "1,234");
    assert_eq!(per_call(f64::NAN), "–");
}

#[test]
fn moments_are_written_in_utc() {
    assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    assert_eq!(utc(AT), "2026-05-28 20:26:40 UTC");
    assert_eq!(utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
    assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
}

#[test]
fn both_tables_keep_the_services_order_escaped_with_links() {
    let params = Params {
        at: Some(AT),
        window: 3_600,
        database: "shop".into(),
    };
    let named = [event(7, AT, EventKind::Deploy, "shop v2 <i>", None)];
    let page = comparison(&params, &["shop".into()], &compared(), &named, AT + 7_200).into_string();
    assert!(
        !page.contains("<script>") && !page.contains("<b>") && !page.contains("<i>"),
        "{page}"
    );
    assert!(page.contains("/orders/&lt;script&gt;"), "{page}");
    assert!(
        page.contains("At that moment: <strong>deploy</strong> shop v2 &lt;i&gt;"),
        "{page}"
    );
    assert!(page.contains("2026-05-28 20:26:40 UTC"), "{page}");
    // The service's order (largest change first) is kept.
    let (slower, same) = (
        page.find("/orders/").expect("GET"),
        page.find("/cart").expect("POST"),
    );
    assert!(slower < same, "{page}");
    let row = page
        .split("<tr>")
        .find(|row| row.contains("/orders/"))
        .expect("the row");
    for figure in [
        "1,200",
        "1,300",
        "10.0 ms → 30.0 ms",
        "3.0× slower",
        "20.0 ms → 60.0 ms",
    ] {
        assert!(row.contains(figure), "{figure}: {row}");
    }
    assert!(row.contains(r#"class="num warn""#), "{row}");
    let row = page
        .split("<tr>")
        .find(|row| row.contains("queryid -42"))
        .expect("the statement");
    for figure in ["500", "480", "2.00 ms → 500 µs", "4.0× faster", "0.5 → 120"] {
        assert!(row.contains(figure), "{figure}: {row}");
    }
    // Cut as the other pages cut statements, linked to its page.
    assert!(row.contains("<details class=\"sql\">"), "{row}");
    assert!(
        row.contains(r#"href="/ui/explain?database=shop&amp;queryid=-42""#),
        "{row}"
    );
    assert!(page.contains("3 routes and 1 statement"), "{page}");
    assert!(
        page.contains("at least 20 requests or calls on each side"),
        "{page}"
    );
    assert!(!page.contains("not over"), "{page}");
    // The form keeps the moment.
    assert!(
        page.contains(&format!(r#"<input type="hidden" name="at" value="{AT}">"#)),
        "{page}"
    );
}

#[test]
fn a_window_still_running_and_a_moment_without_an_event_say_so() {
    let params = Params {
        at: Some(AT),
        ..Params::default()
    };
    let empty = Comparison {
        routes: Vec::new(),
        statements: Vec::new(),
        routes_left_out: 0,
        statements_left_out: 0,
        ..compared()
    };
    let page = comparison(&params, &[], &empty, &[], AT + 600).into_string();
    assert!(
        page.contains("No event was recorded at that moment."),
        "{page}"
    );
    assert!(page.contains("not over (it ends in 50 min)"), "{page}");
    assert!(
        page.contains("No route had 20 requests on both sides."),
        "{page}"
    );
    assert!(
        page.contains("No statement had 20 calls on both sides."),
        "{page}"
    );
}

#[test]
fn every_event_links_to_its_moment_newest_first_as_listed() {
    let params = Params {
        window: 900,
        ..Params::default()
    };
    let events = [
        event(3, AT, EventKind::Marker, "flag <on>", None),
        event(
            2,
            AT - 60,
            EventKind::IndexCreated,
            "orders_customer",
            Some("shop db"),
        ),
        event(1, AT - 3_600, EventKind::Deploy, "v1", None),
    ];
    let page = moments(&params, &[], &events, AT + 120).into_string();
    assert!(!page.contains("<on>"), "{page}");
    let links: Vec<&str> = page
        .match_indices("href=\"/ui/compare?at=")
        .map(|(i, _)| &page[i..i + 70])
        .collect();
    assert_eq!(links.len(), 3, "{page}");
    assert!(
        links[0].starts_with(&format!("href=\"/ui/compare?at={AT}&amp;window=15m\"")),
        "{links:?}"
    );
    assert!(
        links[1].starts_with(&format!(
            "href=\"/ui/compare?at={}&amp;window=15m&amp;database=shop%20db\"",
            AT - 60
        )),
        "{links:?}"
    );
    assert!(
        page.contains("<strong>marker</strong>") && page.contains("<strong>deploy</strong>"),
        "{page}"
    );
    assert!(page.contains("<td>index_created</td>"), "{page}");
    assert!(page.contains(r#"name="window" value="15m""#), "{page}");
    let empty = moments(&Params::default(), &[], &[], AT).into_string();
    assert!(empty.contains("No event recorded yet"), "{empty}");
}
