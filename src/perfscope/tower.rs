//! The handle's tower side, behind the `tower` feature: the layers for
//! axum, tonic and other tower servers (see [`crate::http::tower`]).

use std::sync::Arc;

use super::Perfscope;
use crate::http::tower::{
    Exporters, Grpc, Http, Kind, PerfscopeLayer, RequestHead, RouteFn, Routes,
};

impl Perfscope {
    /// The request measurement for an axum app, by route template
    /// (`MatchedPath`): add it inside the router, with `Router::layer`
    /// after the routes. With OTLP on it also opens each request's server
    /// span. See [`crate::http::tower`].
    #[cfg(feature = "axum")]
    pub fn axum_layer(&self) -> PerfscopeLayer<Http> {
        self.layer(Routes::MatchedPath)
    }

    /// The request measurement for a gRPC server (tonic's
    /// `Server::builder().layer(..)`), by method, `/package.Service/Method`.
    pub fn grpc_layer(&self) -> PerfscopeLayer<Grpc> {
        self.layer(Routes::Grpc)
    }

    /// The request measurement for any tower server: `route` names a
    /// request's route template from its head (`None`: unmatched). It must
    /// return templates, never raw paths.
    pub fn tower_layer(
        &self,
        route: impl Fn(&RequestHead<'_>) -> Option<Arc<str>> + Send + Sync + 'static,
    ) -> PerfscopeLayer<Http> {
        let route: Arc<RouteFn> = Arc::new(route);
        self.layer(Routes::Custom(route))
    }

    fn layer<K: Kind>(&self, routes: Routes) -> PerfscopeLayer<K> {
        let exporters = Exporters {
            #[cfg(feature = "otlp")]
            otlp: self.inner.otlp.clone(),
            #[cfg(feature = "sentry")]
            sentry: Some(crate::http::sentry::Sampler::new(
                self.inner.config.telemetry.sentry.traces_sample_rate,
            )),
        };
        PerfscopeLayer::with_exporters(self.request_core(), routes, exporters)
    }
}
