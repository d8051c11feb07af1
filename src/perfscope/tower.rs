//! The handle's tower side, behind the `tower` feature: the layers for
//! axum, tonic and other tower servers (see [`crate::http::tower`]).

use std::sync::Arc;

use super::Perfscope;
use crate::http::tower::{PerfscopeLayer, RouteFn, Routes};

impl Perfscope {
    /// The request measurement for an axum app, by route template
    /// (`MatchedPath`): add it inside the router, with `Router::layer`
    /// after the routes. With OTLP on it also opens each request's server
    /// span. See [`crate::http::tower`].
    #[cfg(feature = "axum")]
    pub fn axum_layer(&self) -> PerfscopeLayer {
        self.layer(Routes::MatchedPath)
    }

    /// The request measurement for a gRPC server (tonic's
    /// `Server::builder().layer(..)`), by method, `/package.Service/Method`.
    pub fn grpc_layer(&self) -> PerfscopeLayer {
        self.layer(Routes::Grpc)
    }

    /// The request measurement for any tower server: `route` names a
    /// request's route template from its head (`None`: unmatched). It must
    /// return templates, never raw paths.
    pub fn tower_layer(
        &self,
        route: impl Fn(&http::request::Parts) -> Option<Arc<str>> + Send + Sync + 'static,
    ) -> PerfscopeLayer {
        let route: Arc<RouteFn> = Arc::new(route);
        self.layer(Routes::Custom(route))
    }

    fn layer(&self, routes: Routes) -> PerfscopeLayer {
        #[cfg(feature = "otlp")]
        return PerfscopeLayer::traced(self.request_core(), routes, self.inner.otlp.clone());
        #[cfg(not(feature = "otlp"))]
        PerfscopeLayer::new(self.request_core(), routes)
    }
}
