//! The frame shared by every page (head, navigation, logout form), the
//! confirmation of a change, and the plain responses the handlers answer
//! with (an HTML page with its status, a redirect, the Forbidden page).

use maud::{DOCTYPE, Markup, html};
use poem::Response;
use poem::http::{StatusCode, header};

use super::session::Session;

tokio::task_local! {
    /// Where the API's docs are for the request being answered: the
    /// agent's `/docs`, or under a host app's `/api/performance`. Set
    /// around each request by the pages' endpoint (see `super::endpoint_with_docs_at`),
    /// so the frame links right without every handler passing it along.
    pub(super) static DOCS: &'static str;
}

/// The "API" link of the frame.
fn docs_link() -> &'static str {
    DOCS.try_with(|docs| *docs).unwrap_or("/docs")
}

/// The pages, for the navigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// `/ui`.
    Overview,
    /// `/ui/queries`.
    Queries,
    /// `/ui/advice`.
    Advice,
    /// `/ui/database`.
    Database,
    /// `/ui/activity`.
    Activity,
    /// `/ui/db-time`.
    DbTime,
    /// `/ui/compare`.
    Compare,
}

impl Page {
    const ALL: [Page; 7] = [
        Self::Overview,
        Self::Queries,
        Self::Activity,
        Self::DbTime,
        Self::Advice,
        Self::Database,
        Self::Compare,
    ];

    fn path(self) -> &'static str {
        match self {
            Self::Overview => "/ui",
            Self::Queries => "/ui/queries",
            Self::Advice => "/ui/advice",
            Self::Database => "/ui/database",
            Self::Activity => "/ui/activity",
            Self::DbTime => "/ui/db-time",
            Self::Compare => "/ui/compare",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Overview => "Overview",
            Self::Queries => "Queries",
            Self::Advice => "Advice",
            Self::Database => "Database",
            Self::Activity => "Activity",
            Self::DbTime => "Database time",
            Self::Compare => "Compare",
        }
    }
}

/// The frame around every page of a logged-in session.
pub fn layout(page: Page, csrf: &str, body: Markup) -> Markup {
    frame(page, csrf, body, true)
}

/// The frame around the answer to a POST: no auto-refresh (a reload would
/// post the form again).
pub fn layout_posted(page: Page, csrf: &str, body: Markup) -> Markup {
    frame(page, csrf, body, false)
}

fn frame(page: Page, csrf: &str, body: Markup, refreshable: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (page.title()) " · perfscope" }
                link rel="stylesheet" href="/ui/assets/style.css";
                script src="/ui/assets/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/ui" { "perfscope" }
                    nav {
                        @for p in Page::ALL {
                            a href=(p.path()) aria-current=[(p == page).then_some("page")] { (p.title()) }
                        }
                    }
                    div.tools {
                        @if refreshable {
                            label.refresh { input type="checkbox" id="auto-refresh"; " Auto-refresh" }
                        }
                        a href=(docs_link()) { "API" }
                        form method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button.link type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The confirmation of a change, posted again with `confirmed`.
pub fn confirm(
    question: &str,
    action: &str,
    fields: &[(&str, &str)],
    csrf: &str,
    back: &str,
) -> Markup {
    html! {
        h1 { "Confirm" }
        section.confirm {
            p { (question) }
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="confirmed" value="yes";
                @for (name, value) in fields {
                    input type="hidden" name=(name) value=(value);
                }
                button type="submit" { "Yes, run it" }
                " "
                a.button.secondary href=(back) { "Cancel" }
            }
        }
    }
}

/// A page of a logged-in session, 200.
pub(crate) fn shown(page: Page, session: &Session, body: Markup) -> Response {
    shown_with(StatusCode::OK, page, session, body)
}

/// A page of a logged-in session with `status`.
pub(crate) fn shown_with(
    status: StatusCode,
    page: Page,
    session: &Session,
    body: Markup,
) -> Response {
    respond(status, layout(page, &session.csrf, body))
}

/// The answer to a form of a change (no auto-refresh).
pub(crate) fn answered(
    status: StatusCode,
    page: Page,
    session: &Session,
    body: Markup,
) -> Response {
    respond(status, layout_posted(page, &session.csrf, body))
}

/// A page with its status.
pub(crate) fn respond(status: StatusCode, markup: Markup) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// A 303 to `location`.
pub(crate) fn see_other(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .finish()
}

/// The Forbidden page (403) with its reason.
pub(crate) fn forbidden(message: &str) -> Response {
    respond(
        StatusCode::FORBIDDEN,
        maud::html! { (maud::DOCTYPE) html { head { title { "Forbidden · perfscope" } link rel="stylesheet" href="/ui/assets/style.css"; }
        body.login { main { h1 { "Forbidden" } p.error { (message) } p { a href="/ui" { "Back to the pages" } } } } } },
    )
}
