//! The built-in web pages under `/ui`: Overview (routes, runtime, memory,
//! pools, alerts), Queries (slow statements, N+1 suspects, database time
//! per route), Advice (index suggestions with the ready statement, health
//! findings, ANALYZE on request) and Database (the capability self-check).
//!
//! Server-rendered with maud, plain CSS and a few lines of JavaScript (auto
//! refresh, copy buttons), all embedded in the binary; charts are SVG from
//! the in-memory [`history::History`]. A host app mounts [`endpoint`] at
//! `/ui` beside the API, so the per-route views show its own routes.
//!
//! Every page needs a session opened with the admin token (see
//! [`session`]); every change is a POST carrying the session's CSRF token
//! and is confirmed on a page of its own first. Responses forbid framing,
//! inline script and caching.

pub mod format;
pub mod history;
pub mod login_limit;
pub mod pages;
pub mod session;
pub mod svg;

use std::collections::HashMap;
use std::sync::Arc;

use maud::Markup;
use poem::http::{StatusCode, header};
use poem::web::{Data, Form, Query};
use poem::{Endpoint, EndpointExt, Request, Response, Route, get, handler, post};

use self::history::{Reading, RouteKey, RouteReading, StatementKey};
use self::pages::Page;
use self::session::{Session, Sessions};
use crate::Perfscope;

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("app.js");

/// What the handlers share.
#[derive(Clone)]
struct Ui {
    perfscope: Perfscope,
    sessions: Arc<Sessions>,
    logins: Arc<login_limit::LoginLimit>,
}

/// The pages, their assets and the login, to mount at `/ui` (their links
/// are absolute): `Route::new().nest("/ui", perfscope::ui::endpoint(&p))`.
pub fn endpoint(perfscope: &Perfscope) -> impl Endpoint<Output = Response> + 'static {
    let ui = Ui {
        perfscope: perfscope.clone(),
        sessions: Arc::new(Sessions::default()),
        logins: Arc::new(login_limit::LoginLimit::default()),
    };
    Route::new()
        .at("/", get(overview))
        .at("/queries", get(queries))
        .at("/advice", get(advice))
        .at("/advice/analyze", post(analyze))
        .at("/database", get(database))
        .at("/activity", get(activity))
        .at("/activity/signal", post(signal))
        .at("/explain", get(explain_page).post(explain_run))
        .at("/login", get(login_form).post(login))
        .at("/logout", post(logout))
        .at("/assets/style.css", get(style))
        .at("/assets/app.js", get(script))
        .data(ui)
        // Forms are small: the same limit as the API's bodies (413 past it).
        .with(crate::http::BodyLimit::new(
            perfscope.config().max_body_bytes,
        ))
        .after(|result: poem::Result<Response>| async move {
            let mut response = result.unwrap_or_else(|error| error.into_response());
            harden(&mut response);
            Ok(response)
        })
        .with(crate::http::AllowHeader::new(ALLOWED.iter().map(
            |(path, methods)| {
                (
                    (*path).to_owned(),
                    methods.iter().map(|m| (*m).to_owned()).collect(),
                )
            },
        )))
}

/// The methods of each page, for `Allow` on a 405 (keep in step with the
/// routes above).
const ALLOWED: &[(&str, &[&str])] = &[
    ("/", &["GET"]),
    ("/queries", &["GET"]),
    ("/advice", &["GET"]),
    ("/advice/analyze", &["POST"]),
    ("/database", &["GET"]),
    ("/activity", &["GET"]),
    ("/activity/signal", &["POST"]),
    ("/explain", &["GET", "POST"]),
    ("/login", &["GET", "POST"]),
    ("/logout", &["POST"]),
    ("/assets/style.css", &["GET"]),
    ("/assets/app.js", &["GET"]),
];

/// Headers every answer of the pages carries.
fn harden(response: &mut Response) {
    let headers = response.headers_mut();
    let set = |headers: &mut poem::http::HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, poem::http::HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, "x-frame-options", "DENY");
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, "cache-control", "no-store");
    }
}

fn html(status: StatusCode, markup: Markup) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

fn see_other(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .finish()
}

/// Why a request was not let through.
enum Denied {
    /// No live session: to the login form.
    NoSession,
    /// A refused change, with the reason shown.
    Forbidden(&'static str),
}

impl Denied {
    fn response(self) -> Response {
        match self {
            Self::NoSession => see_other("/ui/login"),
            Self::Forbidden(reason) => forbidden(reason),
        }
    }
}

/// The request's session, or why there is none.
fn session(ui: &Ui, request: &Request) -> Result<(String, Session), Denied> {
    let id = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::cookie_id)
        .map(str::to_owned);
    match id.and_then(|id| ui.sessions.get(&id).map(|s| (id, s))) {
        Some(found) => Ok(found),
        None => Err(Denied::NoSession),
    }
}

/// A POST from another site is refused before anything else, as defence
/// in depth behind SameSite and the CSRF token: `Origin: null` always (a
/// sandboxed frame, a `data:` page or a cross-site redirect: never one of
/// the pages, which send their real origin), then by `Sec-Fetch-Site` when
/// the browser sends it, else by `Origin` against `Host`. Clients that
/// send neither (curl) still need the session and the token.
fn same_origin(request: &Request) -> bool {
    let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
    if header("origin").is_some_and(|origin| origin.trim().eq_ignore_ascii_case("null")) {
        return false;
    }
    if let Some(site) = header("sec-fetch-site") {
        return site == "same-origin" || site == "none";
    }
    match header("origin") {
        None => true,
        Some(origin) => {
            let origin_host = origin.split_once("://").map(|(_, rest)| rest);
            origin_host.is_some() && origin_host == header("host")
        }
    }
}

fn forbidden(message: &str) -> Response {
    html(
        StatusCode::FORBIDDEN,
        maud::html! { (maud::DOCTYPE) html { head { title { "Forbidden · perfscope" } link rel="stylesheet" href="/ui/assets/style.css"; }
        body.login { main { h1 { "Forbidden" } p.error { (message) } p { a href="/ui" { "Back to the pages" } } } } } },
    )
}

/// A checked POST form: same origin, a live session, its CSRF token.
fn checked_post(
    ui: &Ui,
    request: &Request,
    form: &HashMap<String, String>,
) -> Result<(String, Session), Denied> {
    if !same_origin(request) {
        return Err(Denied::Forbidden("This form was posted from another site."));
    }
    let (id, session) = session(ui, request)?;
    let given = form.get("csrf").map_or("", String::as_str);
    if !session.csrf_matches(given) {
        return Err(Denied::Forbidden(
            "The form's CSRF token is missing or stale: reload the page and try again.",
        ));
    }
    Ok((id, session))
}

#[handler]
fn style() -> Response {
    Response::builder()
        .content_type("text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "private, max-age=300")
        .body(STYLE)
}

#[handler]
fn script() -> Response {
    Response::builder()
        .content_type("text/javascript; charset=utf-8")
        .header(header::CACHE_CONTROL, "private, max-age=300")
        .body(SCRIPT)
}

#[handler]
fn login_form(ui: Data<&Ui>) -> Response {
    let configured = ui.perfscope.config().admin_token.is_some();
    html(StatusCode::OK, pages::login(None, configured))
}

#[handler]
async fn login(
    ui: Data<&Ui>,
    request: &Request,
    form: poem::Result<Form<HashMap<String, String>>>,
) -> Response {
    if !same_origin(request) {
        return forbidden("This form was posted from another site.");
    }
    let config = ui.perfscope.config();
    let Some(expected) = config.admin_token.as_ref() else {
        return html(StatusCode::FORBIDDEN, pages::login(None, false));
    };
    let address = request.remote_addr().as_socket_addr().map(|a| a.ip());
    if let Err(wait) = ui.logins.check(address) {
        // Refused before the token is looked at: a guess must learn nothing.
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut response = html(
            StatusCode::TOO_MANY_REQUESTS,
            pages::login(
                Some(&format!(
                    "Too many failed logins: try again in {seconds} s."
                )),
                true,
            ),
        );
        if let Ok(value) = seconds.to_string().parse() {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let given = form
        .ok()
        .and_then(|Form(f)| f.get("token").cloned())
        .unwrap_or_default();
    if !crate::service::auth::matches(given.trim(), Some(expected)) {
        ui.logins.failed(address);
        tracing::info!("ui: login refused");
        return html(
            StatusCode::UNAUTHORIZED,
            pages::login(Some("That is not the admin token."), true),
        );
    }
    let Some((id, _)) = ui.sessions.open() else {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::login(Some("No randomness for a session id; try again."), true),
        );
    };
    tracing::info!(sessions = ui.sessions.len(), "ui: session opened");
    let mut response = see_other("/ui");
    if let Ok(value) = session::set_cookie(&id, config.tls.is_some()).parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[handler]
fn logout(
    ui: Data<&Ui>,
    request: &Request,
    form: poem::Result<Form<HashMap<String, String>>>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let (id, _) = match checked_post(&ui, request, &form) {
        Ok(found) => found,
        Err(denied) => return denied.response(),
    };
    ui.sessions.close(&id);
    let mut response = see_other("/ui/login");
    if let Ok(value) = session::clear_cookie(ui.perfscope.config().tls.is_some()).parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[handler]
fn overview(ui: Data<&Ui>, request: &Request) -> Response {
    let (_, session) = match session(&ui, request) {
        Ok(found) => found,
        Err(denied) => return denied.response(),
    };
    let data = overview_data(&ui.perfscope);
    html(
        StatusCode::OK,
        pages::layout(Page::Overview, &session.csrf, pages::overview(&data)),
    )
}

#[handler]
fn queries(ui: Data<&Ui>, request: &Request) -> Response {
    let (_, session) = match session(&ui, request) {
        Ok(found) => found,
        Err(denied) => return denied.response(),
    };
    let data = queries_data(&ui.perfscope);
    html(
        StatusCode::OK,
        pages::layout(Page::Queries, &session.csrf, pages::queries(&data)),
    )
}

#[handler]
async fn advice(
    ui: Data<&Ui>,
    request: &Request,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (_, session) = match session(&ui, request) {
        Ok(found) => found,
        Err(denied) => return denied.response(),
    };
    let mut data = advice_data(&ui.perfscope);
    #[cfg(feature = "postgres")]
    if let (Some(id), Some(maintenance)) = (
        query.get("job").and_then(|j| j.parse::<u64>().ok()),
        ui.perfscope.maintenance(),
    ) && let Some(job) = maintenance.job(id).await
    {
        data.flash = Some(format!(
            "{} {}: {:?} after {} — reload to follow it.",
            job.task.as_str().to_uppercase(),
            job.table.as_deref().unwrap_or("(database)"),
            job.state,
            format::millis(Some(job.duration_ms)),
        ));
    }
    #[cfg(not(feature = "postgres"))]
    let _ = &query;
    html(
        StatusCode::OK,
        pages::layout(
            Page::Advice,
            &session.csrf,
            pages::advice(&data, &session.csrf),
        ),
    )
}

/// `POST /ui/advice/analyze`: ANALYZE one table, after a confirmation.
#[handler]
async fn analyze(
    ui: Data<&Ui>,
    request: &Request,
    form: poem::Result<Form<HashMap<String, String>>>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let (_, session) = match checked_post(&ui, request, &form) {
        Ok(found) => found,
        Err(denied) => return denied.response(),
    };
    let table = form.get("table").map_or("", String::as_str);
    if table.is_empty() || table.len() > 127 {
        return html(
            StatusCode::BAD_REQUEST,
            pages::layout_posted(
                Page::Advice,
                &session.csrf,
                maud::html! {
                    h1 { "Advice" } p.notice { "Field `table`: a schema.table name of 1 to 127 characters is required." }
                },
            ),
        );
    }
    if form.get("confirmed").map(String::as_str) != Some("yes") {
        return html(
            StatusCode::OK,
            pages::layout_posted(
                Page::Advice,
                &session.csrf,
                pages::confirm(
                    &format!(
                        "Run ANALYZE on {table}? It reads a sample of the table to refresh the planner's statistics; it does not block reads or writes."
                    ),
                    "/ui/advice/analyze",
                    &[("table", table)],
                    &session.csrf,
                    "/ui/advice",
                ),
            ),
        );
    }
    start_analyze(&ui.perfscope, &session, table).await
}

#[cfg(feature = "postgres")]
async fn start_analyze(perfscope: &Perfscope, session: &Session, table: &str) -> Response {
    use crate::pg::maintenance::Task;
    use crate::service::{ServiceError, Source, maintenance};
    match maintenance::start(perfscope, Task::Analyze, Some(table), Source::Ui).await {
        Ok(job) => see_other(&format!("/ui/advice?job={}", job.id)),
        Err(ServiceError::NoDatabase) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::layout_posted(
                Page::Advice,
                &session.csrf,
                maud::html! {
                    h1 { "Advice" } p.notice { "No database is configured: set DATABASE_URL." }
                },
            ),
        ),
        Err(error) => html(
            refusal_status(&error),
            pages::layout_posted(
                Page::Advice,
                &session.csrf,
                maud::html! {
                    h1 { "Advice" } p.notice { (error.to_string()) } p { a href="/ui/advice" { "Back to the advice" } }
                },
            ),
        ),
    }
}

/// The status a refused use case is answered with on the pages.
#[cfg(feature = "postgres")]
fn refusal_status(error: &crate::service::ServiceError) -> StatusCode {
    use crate::pg::activity::SignalError;
    use crate::pg::explain::ExplainError;
    use crate::pg::maintenance::MaintenanceError;
    use crate::service::ServiceError;
    match error {
        ServiceError::NoDatabase => StatusCode::SERVICE_UNAVAILABLE,
        ServiceError::UnknownDatabase(_) => StatusCode::NOT_FOUND,
        ServiceError::Maintenance(error) => match error {
            MaintenanceError::BadRequest(_) => StatusCode::BAD_REQUEST,
            MaintenanceError::NotFound(_) => StatusCode::NOT_FOUND,
            MaintenanceError::Forbidden(_) => StatusCode::FORBIDDEN,
            MaintenanceError::Busy(_) => StatusCode::CONFLICT,
            MaintenanceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        },
        ServiceError::Signal { error, .. } => match error {
            SignalError::NotASession(_) => StatusCode::NOT_FOUND,
            SignalError::Forbidden(_) => StatusCode::FORBIDDEN,
            SignalError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        },
        ServiceError::Explain { error, .. } => match error {
            ExplainError::NotSelect(_) | ExplainError::Params(_) => StatusCode::BAD_REQUEST,
            ExplainError::NotFound(_) => StatusCode::NOT_FOUND,
            ExplainError::Refused(_) | ExplainError::Failed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ExplainError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        },
    }
}

#[cfg(not(feature = "postgres"))]
async fn start_analyze(_: &Perfscope, session: &Session, _: &str) -> Response {
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::layout_posted(
            Page::Advice,
            &session.csrf,
            maud::html! {
                h1 { "Advice" } p.notice { "This build has no Postgres support." }
            },
        ),
    )
}

#[handler]
async fn database(ui: Data<&Ui>, request: &Request) -> Response {
    let (_, session) = match session(&ui, request) {
        Ok(found) => found,
        Err(denied) => return denied.response(),
    };
    #[cfg(feature = "postgres")]
    let body = {
        let mut checks = Vec::new();
        for watched in ui.perfscope.watched().all() {
            let check = crate::pg::self_check::run(&watched).await;
            checks.push((
                watched.name.to_string(),
                check.map_err(|error| {
                    tracing::warn!(database = %watched.name, %error, "ui: self-check failed");
                    "The database cannot be reached; the self-check runs again on the next visit."
                        .to_owned()
                }),
            ));
        }
        let views: Vec<Markup> = ui
            .perfscope
            .watched()
            .all()
            .iter()
            .map(|db| {
                maud::html! {
                    (pages::own_cost(
                        &db.name,
                        &db.statements.latest(),
                        Some(ui.perfscope.connection_budget().connections(&db.name)),
                    ))
                    (pages::space_and_replication(
                        &db.name,
                        db.space.latest().as_deref(),
                        db.replication.latest().as_deref(),
                    ))
                }
            })
            .collect();
        maud::html! {
            (pages::database(&checks))
            @for view in &views { (view) }
        }
    };
    #[cfg(not(feature = "postgres"))]
    let body = maud::html! { h1 { "Database" } p.empty { "This build has no Postgres support." } };
    html(
        StatusCode::OK,
        pages::layout(Page::Database, &session.csrf, body),
    )
}

#[handler]
async fn activity(
    ui: Data<&Ui>,
    request: &Request,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (_, session) = match session(&ui, request) {
        Ok(found) => found,
        Err(denied) => return denied.response(),
    };
    #[cfg(feature = "postgres")]
    let body = {
        let timeout = ui.perfscope.config().read_timeout;
        let mut databases = Vec::new();
        for watched in ui.perfscope.watched().all() {
            let thresholds = watched.activity.thresholds();
            let read = crate::pg::activity::read_now(&watched.pool, thresholds, timeout).await;
            databases.push((
                watched.name.to_string(),
                read.map(|snapshot| (snapshot, thresholds)).map_err(|error| {
                    tracing::warn!(database = %watched.name, %error, "ui: activity read failed");
                    "The database cannot be read now; reload to try again.".to_owned()
                }),
            ));
        }
        // The message is made here from a closed set, never echoed.
        let pid = query.get("pid").and_then(|p| p.parse::<i32>().ok());
        let flash = match (query.get("done").map(String::as_str), pid) {
            (Some("cancel"), Some(pid)) => Some(format!(
                "Cancel sent to pid {pid}: its query stops, the session stays."
            )),
            (Some("terminate"), Some(pid)) => {
                Some(format!("Terminate sent to pid {pid}: its session ends."))
            }
            (Some("gone"), Some(pid)) => Some(format!("pid {pid} was already gone.")),
            _ => None,
        };
        pages::activity(&databases, &session.csrf, flash.as_deref())
    };
    #[cfg(not(feature = "postgres"))]
    let body = {
        let _ = &query;
        maud::html! { h1 { "Activity" } p.empty { "This build has no Postgres support." } }
    };
    html(
        StatusCode::OK,
        pages::layout(Page::Activity, &session.csrf, body),
    )
}

/// `POST /ui/activity/signal`: cancel or terminate one session, after a
/// confirmation that shows what it is running.
#[handler]
async fn signal(
    ui: Data<&Ui>,
    request: &Request,
    form: poem::Result<Form<HashMap<String, String>>>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let (_, session) = match checked_post(&ui, request, &form) {
        Ok(found) => found,
        Err(denied) => return denied.response(),
    };
    let refuse = |status: StatusCode, message: String| {
        html(
            status,
            pages::layout_posted(
                Page::Activity,
                &session.csrf,
                maud::html! {
                    h1 { "Activity" } p.notice { (message) } p { a href="/ui/activity" { "Back to the activity" } }
                },
            ),
        )
    };
    let Some(pid) = form
        .get("pid")
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|p| *p > 0)
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Field `pid`: a positive backend pid is required.".into(),
        );
    };
    #[cfg(feature = "postgres")]
    {
        use crate::pg::activity::Signal;
        let action = match form.get("action").map(String::as_str) {
            Some("cancel") => Signal::Cancel,
            Some("terminate") => Signal::Terminate,
            _ => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "Field `action`: cancel or terminate.".into(),
                );
            }
        };
        let name = form.get("database").map_or("default", String::as_str);
        let Some(watched) = ui.perfscope.watched().get(name) else {
            return refuse(
                StatusCode::NOT_FOUND,
                format!("Field `database`: no watched database {name:?}."),
            );
        };
        // The session the page listed, not a later one with its pid.
        let backend_start = form
            .get("backend_start")
            .map(String::as_str)
            .filter(|b| !b.is_empty() && b.len() <= 64);
        if form.get("confirmed").map(String::as_str) != Some("yes") {
            let running = watched
                .activity
                .latest()
                .and_then(|a| {
                    a.sessions
                        .iter()
                        .find(|s| s.pid == pid)
                        .map(|s| format!(" ({}, {}: {})", s.user, s.state, s.query))
                })
                .unwrap_or_default();
            let question = match action {
                Signal::Cancel => format!(
                    "Cancel the running query of pid {pid}{running} in {name}? The session stays."
                ),
                Signal::Terminate => format!(
                    "Terminate pid {pid}{running} in {name}? Its session ends and its open transaction rolls back."
                ),
            };
            let pid_text = pid.to_string();
            return html(
                StatusCode::OK,
                pages::layout_posted(
                    Page::Activity,
                    &session.csrf,
                    pages::confirm(
                        &question,
                        "/ui/activity/signal",
                        &[
                            ("database", name),
                            ("pid", &pid_text),
                            ("action", action.as_str()),
                            ("backend_start", backend_start.unwrap_or("")),
                        ],
                        &session.csrf,
                        "/ui/activity",
                    ),
                ),
            );
        }
        match crate::service::signal::send(
            &ui.perfscope,
            &watched,
            pid,
            action,
            backend_start,
            crate::service::Source::Ui,
        )
        .await
        {
            Ok(signalled) => {
                let outcome = if signalled { action.as_str() } else { "gone" };
                see_other(&format!("/ui/activity?done={outcome}&pid={pid}"))
            }
            Err(error) => refuse(refusal_status(&error), error.to_string()),
        }
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = pid;
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "This build has no Postgres support.".into(),
        )
    }
}

/// The plan of one statement: `values` carries the parameter values of an
/// EXPLAIN ANALYZE.
#[cfg(feature = "postgres")]
async fn plan_view(
    perfscope: &Perfscope,
    db_name: &str,
    queryid: &str,
    values: Option<&[Option<String>]>,
) -> Result<pages::ExplainView, (StatusCode, String)> {
    let id: i64 = queryid.trim().parse().map_err(|_| {
        (
            StatusCode::BAD_REQUEST,
            "Field `queryid`: an integer is required.".to_owned(),
        )
    })?;
    let statement =
        crate::service::explain::statement(perfscope, Some(db_name), id).map_err(|error| {
            match error {
                crate::service::ServiceError::UnknownDatabase(_) => (
                    StatusCode::NOT_FOUND,
                    format!("Field `database`: no watched database {db_name:?}."),
                ),
                error => (refusal_status(&error), error.to_string()),
            }
        })?;
    let plan = crate::service::explain::plan(
        perfscope,
        &statement,
        values,
        None,
        crate::service::Source::Ui,
    )
    .await
    .map(|p| p.text)
    .map_err(|e| e.to_string());
    // The form only for a SELECT that may run, with a form-sized number of
    // parameters.
    let analyzable = statement.analyzable().filter(|params| *params <= 100);
    Ok(pages::ExplainView {
        database: db_name.to_owned(),
        queryid: id.to_string(),
        statement: statement.text.to_string(),
        plan,
        analyzed: values.is_some(),
        analyzable,
    })
}

#[handler]
async fn explain_page(
    ui: Data<&Ui>,
    request: &Request,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (_, session) = match session(&ui, request) {
        Ok(found) => found,
        Err(denied) => return denied.response(),
    };
    #[cfg(feature = "postgres")]
    let (status, body) = {
        let db_name = query.get("database").map_or("default", String::as_str);
        let queryid = query.get("queryid").map_or("", String::as_str);
        match plan_view(&ui.perfscope, db_name, queryid, None).await {
            Ok(view) => (StatusCode::OK, pages::explain(&view, &session.csrf)),
            Err((status, message)) => {
                (status, maud::html! { h1 { "Plan" } p.notice { (message) } })
            }
        }
    };
    #[cfg(not(feature = "postgres"))]
    let (status, body) = {
        let _ = &query;
        (
            StatusCode::SERVICE_UNAVAILABLE,
            maud::html! { h1 { "Plan" } p.empty { "This build has no Postgres support." } },
        )
    };
    html(status, pages::layout(Page::Queries, &session.csrf, body))
}

/// `POST /ui/explain`: EXPLAIN ANALYZE with the form's values, after a
/// confirmation.
#[handler]
async fn explain_run(
    ui: Data<&Ui>,
    request: &Request,
    form: poem::Result<Form<HashMap<String, String>>>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let (_, session) = match checked_post(&ui, request, &form) {
        Ok(found) => found,
        Err(denied) => return denied.response(),
    };
    let db_name = form.get("database").map_or("default", String::as_str);
    let queryid = form.get("queryid").map_or("", String::as_str);
    // Exactly p1…pN, in order: a gap or another spelling of a number is
    // refused rather than bound to the wrong parameter.
    let values: Vec<String> = (1..)
        .map_while(|n| form.get(&format!("p{n}")).cloned())
        .collect();
    let stray = form.keys().any(|k| {
        k.starts_with('p') && k != "pid" && k.len() > 1 && {
            let n = &k[1..];
            !(n.parse::<usize>()
                .is_ok_and(|n| (1..=values.len()).contains(&n))
                && n == n.trim_start_matches('0'))
        }
    });
    if stray {
        return html(
            StatusCode::BAD_REQUEST,
            pages::layout_posted(
                Page::Queries,
                &session.csrf,
                maud::html! {
                    h1 { "Plan" } p.notice { "Fields `p1`, `p2`, …: one value per parameter, numbered from 1 without gaps." }
                },
            ),
        );
    }
    if form.get("confirmed").map(String::as_str) != Some("yes") {
        let mut fields: Vec<(String, String)> = vec![
            ("database".into(), db_name.into()),
            ("queryid".into(), queryid.into()),
        ];
        for (n, v) in values.iter().enumerate() {
            fields.push((format!("p{}", n + 1), v.clone()));
        }
        let borrowed: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        return html(
            StatusCode::OK,
            pages::layout_posted(
                Page::Queries,
                &session.csrf,
                pages::confirm(
                    &format!(
                        "Run statement {queryid} of {db_name} with EXPLAIN (ANALYZE, BUFFERS)? It runs for real (read-only, rolled back, at most 10 s)."
                    ),
                    "/ui/explain",
                    &borrowed,
                    &session.csrf,
                    &format!("/ui/explain?database={db_name}&queryid={queryid}"),
                ),
            ),
        );
    }
    #[cfg(feature = "postgres")]
    {
        let params: Vec<Option<String>> = values.into_iter().map(Some).collect();
        let (status, body) = match plan_view(&ui.perfscope, db_name, queryid, Some(&params)).await {
            Ok(view) => (StatusCode::OK, pages::explain(&view, &session.csrf)),
            Err((status, message)) => {
                (status, maud::html! { h1 { "Plan" } p.notice { (message) } })
            }
        };
        html(
            status,
            pages::layout_posted(Page::Queries, &session.csrf, body),
        )
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = values;
        html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::layout_posted(
                Page::Queries,
                &session.csrf,
                maud::html! { h1 { "Plan" } p.empty { "This build has no Postgres support." } },
            ),
        )
    }
}

/// The Overview's figures now.
pub fn overview_data(perfscope: &Perfscope) -> pages::Overview {
    let process = crate::runtime::process::ProcessSnapshot::read();
    let runtime = perfscope.runtime().snapshot();
    let config = perfscope.config();
    pages::Overview {
        uptime: perfscope.uptime().as_secs_f64(),
        resident: process.resident_bytes,
        limit: process.memory_limit_bytes,
        memory_threshold: config.high_memory_threshold,
        lag: runtime.lag.as_secs_f64(),
        lag_threshold: config.event_loop_lag_threshold.as_secs_f64(),
        utilization: runtime.utilization,
        workers: runtime.workers,
        runtime: perfscope.history().runtime(),
        routes: perfscope.history().routes(),
        pools: perfscope
            .db()
            .pool_readings()
            .into_iter()
            .map(|reading| pages::PoolRow {
                size: reading.size,
                max: reading.max,
                reading,
            })
            .collect(),
        alerts: perfscope.alerts().firing(),
    }
}

/// The Queries page's figures now.
pub fn queries_data(perfscope: &Perfscope) -> pages::Queries {
    let report = crate::service::slow_queries::report(perfscope, None);
    let history = perfscope.history();
    let slow = report
        .queries
        .into_iter()
        .map(|q| {
            let trend = q
                .database
                .as_deref()
                .zip(q.queryid.as_deref().and_then(|id| id.parse::<i64>().ok()))
                .and_then(|(db, id)| history.statement(&(Arc::from(db), id)))
                .map(|(points, _)| points);
            pages::SlowRow {
                source: q.source,
                database: q.database,
                queryid: q.queryid,
                statement: q.statement,
                route: q.route,
                calls: q.calls,
                mean_ms: q.mean_ms,
                max_ms: q.max_ms,
                total_ms: q.total_ms,
                rows: q.rows,
                hit_ratio: q.hit_ratio,
                trend,
            }
        })
        .collect();
    let db = perfscope.db();
    let n_plus_one = db
        .n_plus_one
        .suspects()
        .into_iter()
        .map(|s| pages::NPlusOneRow {
            route: s.route.to_string(),
            statement: s.statement.normalized.to_string(),
            max_per_request: s.max_per_request,
            requests: s.requests,
        })
        .collect();
    let mut routes: HashMap<String, pages::RouteDbRow> = HashMap::new();
    db.metrics.route_duration.for_each(|labels, histogram| {
        let snapshot = histogram.snapshot();
        let row = routes.entry(labels.route.as_str().to_owned()).or_default();
        row.requests += snapshot.count;
        row.total += snapshot.sum;
    });
    db.metrics.route_queries.for_each(|labels, counter| {
        routes
            .entry(labels.route.as_str().to_owned())
            .or_default()
            .queries += counter.get();
    });
    let mut routes: Vec<pages::RouteDbRow> = routes
        .into_iter()
        .filter(|(_, row)| row.queries > 0)
        .map(|(route, row)| pages::RouteDbRow { route, ..row })
        .collect();
    routes.sort_by(|a, b| b.total.total_cmp(&a.total));
    pages::Queries {
        threshold_ms: report.threshold_ms,
        slow,
        n_plus_one,
        routes,
        statements_missing: statements_missing(perfscope),
    }
}

/// Why pg_stat_statements shows nothing, when it does not.
#[cfg(feature = "postgres")]
fn statements_missing(perfscope: &Perfscope) -> Option<String> {
    let watched = perfscope.watched().all();
    if watched.is_empty() {
        return Some(
            "No database is watched: set DATABASE_URL to read its pg_stat_statements.".to_owned(),
        );
    }
    watched.iter().all(|db| db.statements.latest().at.is_none()).then(|| {
        "pg_stat_statements has not been read: it is not loaded or not readable yet. Add `shared_preload_libraries = 'pg_stat_statements'` to postgresql.conf, restart, run `CREATE EXTENSION pg_stat_statements;` and grant pg_read_all_stats (sql/install.sql); the Database page checks each piece.".to_owned()
    })
}

#[cfg(not(feature = "postgres"))]
fn statements_missing(_: &Perfscope) -> Option<String> {
    Some("This build has no Postgres support.".to_owned())
}

/// The Advice page's findings now.
pub fn advice_data(perfscope: &Perfscope) -> pages::Advice {
    let process = crate::runtime::process::ProcessSnapshot::read();
    let runtime = perfscope.runtime().snapshot();
    let found = crate::service::advice::assemble(perfscope, true, &runtime, &process);
    let mut other = found.runtime;
    other.extend(found.caches);
    other.extend(found.database_cache);
    #[cfg(feature = "postgres")]
    {
        let suggestions = found
            .index_suggestions
            .into_iter()
            .map(|s| pages::SuggestionRow {
                database: s.database,
                table: s.table.unwrap_or_default(),
                columns: s.columns.unwrap_or_default(),
                create_statement: s.create_statement.unwrap_or_default(),
                helps: s.helps.unwrap_or_default(),
                calls: s.calls,
                total_ms: s.total_ms,
                costs: s.cost_before.zip(s.cost_after),
                saving: s.estimated_saving,
                confirmed_by: s.confirmed_by,
            })
            .collect();
        pages::Advice {
            suggestions,
            health: found.health,
            other,
            maintenance: perfscope.maintenance().is_some(),
            flash: None,
        }
    }
    #[cfg(not(feature = "postgres"))]
    pages::Advice {
        other,
        ..Default::default()
    }
}

/// One sample for the history: the routes' cumulative histograms, the
/// runtime, and each watched database's statements.
pub fn read(perfscope: &Perfscope) -> Reading {
    let mut routes: HashMap<RouteKey, RouteReading> = HashMap::new();
    perfscope
        .http_metrics()
        .request_duration
        .for_each(|labels, histogram| {
            let snapshot = histogram.snapshot();
            let key = (
                labels.method.as_str().to_owned(),
                labels.route.as_str().to_owned(),
            );
            let entry = routes.entry(key).or_default();
            if labels.status_code.0.is_some_and(|code| code >= 500) {
                entry.errors += snapshot.count;
            }
            entry.histogram.merge(&snapshot);
        });
    let runtime = perfscope.runtime().snapshot();
    #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
    let mut statements: HashMap<StatementKey, (u64, f64)> = HashMap::new();
    #[cfg(feature = "postgres")]
    for db in perfscope.watched().all() {
        for s in &db.statements.latest().statements {
            statements.insert(
                (db.name.clone(), s.queryid),
                (
                    u64::try_from(s.cumulative.calls).unwrap_or(0),
                    s.cumulative.total_ms,
                ),
            );
        }
    }
    Reading {
        routes,
        runtime: history::RuntimePoint {
            lag: runtime.lag.as_secs_f64(),
            utilization: runtime.utilization,
            resident: crate::runtime::process::ProcessSnapshot::read().resident_bytes,
        },
        statements,
    }
}
