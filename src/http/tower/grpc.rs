//! gRPC status codes: read from a response's headers (a trailers-only
//! answer) or trailers, and mapped to the HTTP status the
//! `status_code` label carries, so the dashboards' error rates and the
//! 5xx alert rules cover gRPC services unchanged. The exact code goes on
//! the span (`rpc.grpc.status_code`).

use http::HeaderMap;

/// UNIMPLEMENTED: the server has no such method (the call matched no
/// route).
pub(super) const UNIMPLEMENTED: u16 = 12;
/// CANCELLED: the caller went away before the call ended.
pub(super) const CANCELLED: u16 = 1;
/// UNKNOWN: the call ended without a status.
pub(super) const UNKNOWN: u16 = 2;

/// Whether `code` says no service answered the call: UNIMPLEMENTED (no
/// such method), or refused before one could (UNAUTHENTICATED,
/// PERMISSION_DENIED, RESOURCE_EXHAUSTED from an interceptor or a limit),
/// so its path is a client's invention, not a method.
pub(super) fn not_a_served_method(code: u16) -> bool {
    matches!(code, UNIMPLEMENTED | 7 | 8 | 16)
}

/// The `grpc-status` in `headers`, if present and a number.
pub(super) fn status_in(headers: &HeaderMap) -> Option<u16> {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
}

/// The HTTP status a gRPC code corresponds to (the mapping of
/// `google/rpc/code.proto`); an unknown code is a 500.
pub(super) fn http_status(code: u16) -> u16 {
    match code {
        0 => 200,
        1 => 499,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_their_http_statuses() {
        assert_eq!(http_status(0), 200);
        assert_eq!(http_status(UNIMPLEMENTED), 501);
        assert_eq!(http_status(14), 503);
        assert_eq!(http_status(13), 500);
        assert_eq!(http_status(99), 500);
        assert!(not_a_served_method(UNIMPLEMENTED) && not_a_served_method(16));
        assert!(!not_a_served_method(0) && !not_a_served_method(5) && !not_a_served_method(13));
        let mut headers = HeaderMap::new();
        assert_eq!(status_in(&headers), None);
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(status_in(&headers), Some(5));
        headers.insert("grpc-status", http::HeaderValue::from_static("x"));
        assert_eq!(status_in(&headers), None);
    }
}
