//! [`AllowHeader`]: adds `Allow` to 405 answers, as RFC 9110 requires, from
//! a table of path → allowed methods (built from the OpenAPI operations, or
//! listed by the pages). Paths may be templates: a `{name}` or `:name`
//! segment matches any one segment, so
//! `TRACE /api/performance/activity/12/cancel` gets the `Allow` of
//! `/api/performance/activity/{pid}/{action}`.

use std::sync::Arc;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

/// Middleware adding `Allow` to 405 responses.
#[derive(Clone, Debug, Default)]
pub struct AllowHeader {
    allowed: Arc<Vec<(Template, HeaderValue)>>,
}

/// A path's segments; `None` for a parameter.
type Template = Vec<Option<String>>;

fn template(path: &str) -> Template {
    path.split('/')
        .map(|segment| {
            let parameter =
                segment.starts_with(':') || (segment.starts_with('{') && segment.ends_with('}'));
            (!parameter).then(|| segment.to_owned())
        })
        .collect()
}

fn matches(template: &Template, path: &str) -> bool {
    let mut segments = path.split('/');
    template.iter().all(|want| match (want, segments.next()) {
        (_, None) => false,
        (None, Some(segment)) => !segment.is_empty(),
        (Some(want), Some(segment)) => want == segment,
    }) && segments.next().is_none()
}

impl AllowHeader {
    /// From `(path, methods)` pairs; `GET` implies `HEAD`.
    pub fn new(routes: impl IntoIterator<Item = (String, Vec<String>)>) -> Self {
        let allowed = routes
            .into_iter()
            .filter_map(|(path, mut methods)| {
                if methods.iter().any(|m| m == "GET") && !methods.iter().any(|m| m == "HEAD") {
                    methods.push("HEAD".to_owned());
                }
                methods.sort_unstable();
                methods.dedup();
                HeaderValue::from_str(&methods.join(", "))
                    .ok()
                    .map(|value| (template(&path), value))
            })
            .collect();
        Self {
            allowed: Arc::new(allowed),
        }
    }
}

impl<E: Endpoint> Middleware<E> for AllowHeader {
    type Output = AllowHeaderEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        AllowHeaderEndpoint {
            inner,
            allowed: self.allowed.clone(),
        }
    }
}

/// The endpoint produced by [`AllowHeader`].
#[derive(Debug)]
pub struct AllowHeaderEndpoint<E> {
    inner: E,
    allowed: Arc<Vec<(Template, HeaderValue)>>,
}

impl<E: Endpoint> Endpoint for AllowHeaderEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let uri = req.uri().clone();
        let mut response = match self.inner.call(req).await {
            Ok(response) => response.into_response(),
            Err(error) if error.status() == StatusCode::METHOD_NOT_ALLOWED => error.into_response(),
            Err(error) => return Err(error),
        };
        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && !response.headers().contains_key(header::ALLOW)
        {
            // Literal paths first: `/x/list` is not `/x/{id}`.
            let path = uri.path();
            let found = self
                .allowed
                .iter()
                .filter(|(t, _)| matches(t, path))
                .min_by_key(|(t, _)| t.iter().filter(|s| s.is_none()).count());
            if let Some((_, allow)) = found {
                response.headers_mut().insert(header::ALLOW, allow.clone());
            }
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_one_segment_per_parameter() {
        let t = template("/api/performance/activity/{pid}/{action}");
        assert!(matches(&t, "/api/performance/activity/12/cancel"));
        assert!(!matches(&t, "/api/performance/activity/12"));
        assert!(!matches(&t, "/api/performance/activity/12/cancel/x"));
        assert!(!matches(&t, "/api/performance/activity//cancel"));
        assert!(matches(&template("/users/:id"), "/users/7"));
        assert!(matches(&template("/healthz"), "/healthz"));
        assert!(!matches(&template("/healthz"), "/healthz/x"));
    }
}
