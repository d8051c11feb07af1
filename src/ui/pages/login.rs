//! The login form (`GET`/`POST /ui/login`) and logout (`POST
//! /ui/logout`): the admin token, checked in constant time and rate
//! limited per address, is exchanged for a session (see
//! [`crate::ui::session`]).

use std::collections::HashMap;

use maud::{DOCTYPE, Markup, html};
use poem::http::{StatusCode, header};
use poem::web::{Data, Form};
use poem::{Request, Response, handler};

use crate::ui::Ui;
use crate::ui::guard::{Posted, same_origin};
use crate::ui::layout::{forbidden, respond, see_other};
use crate::ui::session;

#[handler]
pub fn show(ui: Data<&Ui>) -> Response {
    let configured = ui.perfscope.config().server.admin_token.is_some();
    respond(StatusCode::OK, view(None, configured))
}

#[handler]
pub async fn submit(
    ui: Data<&Ui>,
    request: &Request,
    form: poem::Result<Form<HashMap<String, String>>>,
) -> Response {
    if !same_origin(request) {
        return forbidden("This form was posted from another site.");
    }
    let config = ui.perfscope.config();
    let Some(expected) = config.server.admin_token.as_ref() else {
        return respond(StatusCode::FORBIDDEN, view(None, false));
    };
    let address = request.remote_addr().as_socket_addr().map(|a| a.ip());
    if let Err(wait) = ui.logins.check(address) {
        // Refused before the token is looked at: a guess must learn nothing.
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut response = respond(
            StatusCode::TOO_MANY_REQUESTS,
            view(
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
        return respond(
            StatusCode::UNAUTHORIZED,
            view(Some("That is not the admin token."), true),
        );
    }
    let Some((id, _)) = ui.sessions.open() else {
        return respond(
            StatusCode::SERVICE_UNAVAILABLE,
            view(Some("No randomness for a session id; try again."), true),
        );
    };
    tracing::info!(sessions = ui.sessions.len(), "ui: session opened");
    let mut response = see_other("/ui");
    if let Ok(value) = session::set_cookie(&id, config.server.tls.is_some()).parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[handler]
pub fn logout(ui: Data<&Ui>, posted: Posted) -> Response {
    let Posted { id, .. } = posted;
    ui.sessions.close(&id);
    let mut response = see_other("/ui/login");
    if let Ok(value) = session::clear_cookie(ui.perfscope.config().server.tls.is_some()).parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The login form; `error` after a wrong token.
pub fn view(error: Option<&str>, configured: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · perfscope" }
                link rel="stylesheet" href="/ui/assets/style.css";
            }
            body.login {
                main {
                    h1 { "perfscope" }
                    @if configured {
                        form method="post" action="/ui/login" {
                            label for="token" { "Admin token" }
                            input #token type="password" name="token" autocomplete="current-password" required autofocus;
                            @if let Some(error) = error {
                                p.error role="alert" { (error) }
                            }
                            button type="submit" { "Log in" }
                        }
                        p.muted { "The token is PERFSCOPE_ADMIN_TOKEN (" code { "perfscope demo" } " prints one)." }
                    } @else {
                        p.error { "The pages need an admin token: start the agent with PERFSCOPE_ADMIN_TOKEN set (e.g. "
                            code { "openssl rand -hex 24" } ")." }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_page_explains_a_missing_token_and_a_wrong_one() {
        let page = view(Some("That is not the admin token."), true).into_string();
        assert!(page.contains("type=\"password\""), "{page}");
        assert!(page.contains("That is not the admin token."), "{page}");
        let page = view(None, false).into_string();
        assert!(page.contains("PERFSCOPE_ADMIN_TOKEN"), "{page}");
        assert!(!page.contains("<form"), "{page}");
    }
}
