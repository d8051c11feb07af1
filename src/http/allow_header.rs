//! [`AllowHeader`]: adds `Allow` to 405 answers, as RFC 9110 requires, from
//! a table of path → allowed methods (built from the OpenAPI operations).

use std::collections::HashMap;
use std::sync::Arc;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

/// Middleware adding `Allow` to 405 responses.
#[derive(Clone, Debug, Default)]
pub struct AllowHeader {
    allowed: Arc<HashMap<String, HeaderValue>>,
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
                    .map(|value| (path, value))
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
    allowed: Arc<HashMap<String, HeaderValue>>,
}

impl<E: Endpoint> Endpoint for AllowHeaderEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let allow = self.allowed.get(req.uri().path()).cloned();
        let mut response = self.inner.call(req).await?.into_response();
        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && let Some(allow) = allow
        {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        Ok(response)
    }
}
