//! Who may see a page: the [`LoggedIn`] extractor (a live session, or a
//! redirect to the login form) and the [`Posted`] extractor (a form of a
//! change: same origin, a live session and its CSRF token), so no handler
//! repeats the check; a refusal is the error of the extraction.

use std::collections::HashMap;

use poem::http::{StatusCode, header};
use poem::web::Form;
use poem::{FromRequest, Request, RequestBody, Response};

use super::Ui;
use super::layout::{forbidden, see_other};
use super::session::{self, Session};

/// A request of a live session.
pub struct LoggedIn {
    /// The session.
    pub session: Session,
}

/// A checked POST form: same origin, a live session, its CSRF token.
pub struct Posted {
    /// The session id (logout closes it).
    pub id: String,
    /// The session.
    pub session: Session,
    /// The form's fields (empty when the body is not a form).
    pub form: HashMap<String, String>,
}

impl<'a> FromRequest<'a> for LoggedIn {
    async fn from_request(request: &'a Request, _: &mut RequestBody) -> poem::Result<Self> {
        let (_, session) = session_of(ui(request)?, request).map_err(Denied::into_error)?;
        Ok(Self { session })
    }
}

impl<'a> FromRequest<'a> for Posted {
    async fn from_request(request: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let form = Form::<HashMap<String, String>>::from_request(request, body)
            .await
            .map(|Form(f)| f)
            .unwrap_or_default();
        let (id, session) =
            checked_post(ui(request)?, request, &form).map_err(Denied::into_error)?;
        Ok(Self { id, session, form })
    }
}

/// What the handlers share, as the endpoint attached it.
fn ui(request: &Request) -> poem::Result<&Ui> {
    request
        .data::<Ui>()
        .ok_or_else(|| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))
}

/// Why a request was not let through.
enum Denied {
    /// No live session: to the login form.
    NoSession,
    /// A refused change, with the reason shown.
    Forbidden(&'static str),
}

impl Denied {
    fn into_error(self) -> poem::Error {
        poem::Error::from_response(self.response())
    }

    fn response(self) -> Response {
        match self {
            Self::NoSession => see_other("/ui/login"),
            Self::Forbidden(reason) => forbidden(reason),
        }
    }
}

/// The request's session, or why there is none.
fn session_of(ui: &Ui, request: &Request) -> Result<(String, Session), Denied> {
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
pub(crate) fn same_origin(request: &Request) -> bool {
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

/// A checked POST form: same origin, a live session, its CSRF token.
fn checked_post(
    ui: &Ui,
    request: &Request,
    form: &HashMap<String, String>,
) -> Result<(String, Session), Denied> {
    if !same_origin(request) {
        return Err(Denied::Forbidden("This form was posted from another site."));
    }
    let (id, session) = session_of(ui, request)?;
    let given = form.get("csrf").map_or("", String::as_str);
    if !session.csrf_matches(given) {
        return Err(Denied::Forbidden(
            "The form's CSRF token is missing or stale: reload the page and try again.",
        ));
    }
    Ok((id, session))
}
