//! Where the tower layer finds a request's route template: axum's
//! `MatchedPath`, a gRPC method, or the caller's own function. Never the
//! raw path: a request with no template is `unmatched`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// A request's head as a route function sees it: read in place, never
/// copied out of the request.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    /// The method.
    pub method: &'a http::Method,
    /// The URI (its path is the raw path: never a label).
    pub uri: &'a http::Uri,
    /// The headers.
    pub headers: &'a http::HeaderMap,
    /// The extensions the router set (e.g. its matched route).
    pub extensions: &'a http::Extensions,
}

impl<'a> RequestHead<'a> {
    /// The head of `request`.
    pub fn of<B>(request: &'a http::Request<B>) -> Self {
        Self {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }
}

/// A caller's route function: the template of a request, `None` when it
/// matched no route. It must return templates (`/users/{id}`), never the
/// raw path, or the histogram's series grow with the ids.
pub type RouteFn = dyn Fn(&RequestHead<'_>) -> Option<Arc<str>> + Send + Sync;

/// How the layer names a request's route.
#[derive(Clone)]
pub enum Routes {
    /// axum's `MatchedPath`, which the router sets before it calls a
    /// route's service: present only when the layer is added inside the
    /// router (`Router::layer`, `route_layer`, on a nested router).
    #[cfg(feature = "axum")]
    MatchedPath,
    /// The gRPC method, `/package.Service/Method`, as tonic and every gRPC
    /// server route it; a call answered UNIMPLEMENTED matched nothing.
    Grpc,
    /// The caller's function, for other routers.
    Custom(Arc<RouteFn>),
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            #[cfg(feature = "axum")]
            Self::MatchedPath => "MatchedPath",
            Self::Grpc => "Grpc",
            Self::Custom(_) => "Custom",
        })
    }
}

impl Routes {
    /// The template of the request `head` describes, if it has one.
    pub(super) fn template(&self, head: &RequestHead<'_>) -> Option<Arc<str>> {
        match self {
            #[cfg(feature = "axum")]
            Self::MatchedPath => head
                .extensions
                .get::<axum::extract::MatchedPath>()
                .map(|path| Arc::from(path.as_str())),
            Self::Grpc => grpc_method(head.uri.path()).map(Arc::from),
            Self::Custom(route) => route(head),
        }
    }

    /// Whether the template comes from axum's router, so a layer that
    /// sees none wraps the router from outside (the warning below).
    pub(super) fn reads_matched_path(&self) -> bool {
        #[cfg(feature = "axum")]
        return matches!(self, Self::MatchedPath);
        #[cfg(not(feature = "axum"))]
        false
    }
}

/// Longest gRPC method path kept as a label.
const MAX_GRPC_PATH: usize = 256;

/// `path` when it has the shape of a gRPC method, `/package.Service/Method`
/// (the service's dot-separated names and the method each an identifier:
/// a letter or `_`, then letters, digits and `_`), else `None`.
pub(super) fn grpc_method(path: &str) -> Option<&str> {
    if path.len() > MAX_GRPC_PATH {
        return None;
    }
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let identifier = |name: &str| {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    (service.split('.').all(identifier) && identifier(method)).then_some(path)
}

/// Distinct gRPC methods kept as route labels; later ones are `unmatched`
/// (a server has tens, not thousands: past this, paths are invented).
pub(super) const MAX_GRPC_METHODS: usize = 256;

/// The gRPC methods answered so far, interned (one `Arc` per method) and
/// capped at [`MAX_GRPC_METHODS`].
#[derive(Debug, Default)]
pub(super) struct KnownMethods {
    methods: parking_lot::RwLock<std::collections::HashSet<Arc<str>>>,
}

impl KnownMethods {
    /// The interned name of `method`, or `None` when the cap is reached
    /// and it is new.
    pub(super) fn admit(&self, method: Arc<str>) -> Option<Arc<str>> {
        if let Some(known) = self.methods.read().get(&method) {
            return Some(known.clone());
        }
        let mut methods = self.methods.write();
        if let Some(known) = methods.get(&method) {
            return Some(known.clone());
        }
        if methods.len() >= MAX_GRPC_METHODS {
            return None;
        }
        methods.insert(method.clone());
        Some(method)
    }
}

/// Says once in the log when a layer that reads `MatchedPath` sees none
/// on its first requests: it wraps the router from outside, where no
/// route is known, and every request is `unmatched`.
#[derive(Debug, Default)]
pub(super) struct UnroutedWarning {
    seen_template: AtomicBool,
    without: AtomicU32,
}

/// Requests without a template before the warning (a fallback-only start
/// is possible, a hundred is not).
const UNROUTED_BEFORE_WARNING: u32 = 100;

impl UnroutedWarning {
    pub(super) fn observe(&self, has_template: bool) {
        if has_template {
            if !self.seen_template.load(Ordering::Relaxed) {
                self.seen_template.store(true, Ordering::Relaxed);
            }
            return;
        }
        if self.seen_template.load(Ordering::Relaxed) {
            return;
        }
        if self.without.fetch_add(1, Ordering::Relaxed) + 1 == UNROUTED_BEFORE_WARNING {
            tracing::warn!(
                requests = UNROUTED_BEFORE_WARNING,
                "perfscope's layer has seen no route template: it wraps the router from \
                 outside, so every request is recorded as `unmatched`; add it inside the \
                 router with `Router::layer(perfscope.axum_layer())`"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_method_shaped_paths_are_grpc_methods() {
        assert_eq!(
            grpc_method("/shop.v1.Orders/Place"),
            Some("/shop.v1.Orders/Place")
        );
        assert_eq!(
            grpc_method("/grpc.health.v1.Health/Check"),
            Some("/grpc.health.v1.Health/Check")
        );
        for path in [
            "/",
            "/users/42",
            "/shop.Orders/Place/extra",
            "/shop.Orders/",
            "//Place",
            "/shop Orders/Place",
            "/shop.Orders/Pla-ce",
            "/shop..Orders/Place",
            "/shop.2Orders/Place",
            "shop.Orders/Place",
        ] {
            assert_eq!(grpc_method(path), None, "{path}");
        }
        let long = format!("/{}/M", "a".repeat(300));
        assert_eq!(grpc_method(&long), None);
    }

    #[test]
    fn known_methods_are_interned_and_capped() {
        let known = KnownMethods::default();
        let first = known
            .admit(Arc::from("/shop.Orders/Get"))
            .expect("admitted");
        let again = known
            .admit(Arc::from("/shop.Orders/Get"))
            .expect("admitted");
        assert!(Arc::ptr_eq(&first, &again), "one Arc per method");
        for i in 1..MAX_GRPC_METHODS {
            assert!(
                known
                    .admit(Arc::from(format!("/shop.Orders/M{i}")))
                    .is_some()
            );
        }
        assert_eq!(known.admit(Arc::from("/shop.Orders/Extra")), None);
        assert!(
            known.admit(Arc::from("/shop.Orders/Get")).is_some(),
            "known stay"
        );
    }

    #[test]
    fn the_outer_wrap_warning_fires_only_without_any_template() {
        let warning = UnroutedWarning::default();
        warning.observe(true);
        for _ in 0..200 {
            warning.observe(false);
        }
        assert_eq!(warning.without.load(Ordering::Relaxed), 0);
        let outer = UnroutedWarning::default();
        for _ in 0..200 {
            outer.observe(false);
        }
        assert_eq!(outer.without.load(Ordering::Relaxed), 200);
    }
}
