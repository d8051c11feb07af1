//! One OpenTelemetry pipeline with the host app's: an app hands perfscope
//! its own tracer provider (`Perfscope::use_tracer_provider`) and
//! perfscope's spans go through it, to the app's exporter with the app's
//! resource, in the app's traces: under the app's own request span
//! (opened by its middleware, or by a `tracing` span bridged by
//! tracing-opentelemetry) perfscope opens no second server span and its
//! measurement and query spans are children of the app's span; without
//! one, perfscope's server span is made by the app's tracer. perfscope's
//! own exporter is not started even with `OTEL_EXPORTER_OTLP_ENDPOINT`
//! set; and without the provider, a span of the app's other pipeline is
//! not continued. Real receivers on loopback (OTLP/gRPC, `opentelemetry-proto`);
//! the app's pipeline is the stock SDK batch processor and
//! opentelemetry-otlp exporter.

#![cfg(all(feature = "otlp", feature = "axum"))]

mod support;

use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use perfscope::Perfscope;
use perfscope::telemetry::otel::opentelemetry::context::FutureExt;
use perfscope::telemetry::otel::opentelemetry::trace::{
    Span as _, TraceContextExt, Tracer, TracerProvider as _,
};
use perfscope::telemetry::otel::opentelemetry::{Context, KeyValue};
use perfscope::telemetry::otel::opentelemetry_sdk::Resource;
use perfscope::telemetry::otel::opentelemetry_sdk::trace::SdkTracerProvider;
use support::client;
use support::otlp::{Collector, Received, grpc_export, grpc_receiver, hex};

/// The app's own pipeline: the SDK's batch processor and the stock OTLP
/// exporter, to `endpoint`, as service `host-app`.
fn host_provider(endpoint: String) -> SdkTracerProvider {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .expect("exporter");
    SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("host-app").build())
        .with_batch_exporter(exporter)
        .build()
}

/// perfscope with its own OTLP endpoint set (to `own`), handed the app's
/// `provider` when there is one, started.
fn perfscope_with(
    own: String,
    provider: Option<&SdkTracerProvider>,
) -> (
    Perfscope,
    tokio_util::sync::CancellationToken,
    perfscope::BackgroundTasks,
) {
    support::otlp::started_with(grpc_export(own, "perfscope-own"), |perfscope| {
        if let Some(provider) = provider {
            perfscope.use_tracer_provider(provider);
        }
    })
}

/// Stops perfscope, then flushes the app's pipeline (the app's order) and
/// waits for at least `spans` at the app's receiver; what it got.
async fn stopped_and_flushed(
    cancel: tokio_util::sync::CancellationToken,
    tasks: perfscope::BackgroundTasks,
    provider: &SdkTracerProvider,
    host: &Collector,
    spans: usize,
) -> Vec<Received> {
    cancel.cancel();
    tasks.join().await;
    provider.force_flush().expect("the app's provider flushes");
    support::until(
        "the app's exporter delivers",
        Duration::from_secs(10),
        || host.spans().len() >= spans,
    )
    .await;
    host.spans()
}

/// An item loaded inside a measurement (an internal span of perfscope's).
async fn item(State(perfscope): State<Perfscope>, Path(id): Path<u32>) -> String {
    perfscope
        .measurements()
        .track(
            "load_item",
            async move { Ok::<_, std::convert::Infallible>(id) },
        )
        .await
        .map(|id| format!("item {id}"))
        .unwrap_or_default()
}

/// The app's own request middleware: a server span by the app's tracer,
/// current while the rest of the stack runs.
async fn host_span(
    State(provider): State<SdkTracerProvider>,
    request: Request,
    next: Next,
) -> Response {
    let tracer = provider.tracer("host-app");
    let mut span = tracer
        .span_builder("host request")
        .with_kind(perfscope::telemetry::otel::opentelemetry::trace::SpanKind::Server)
        .start(&tracer);
    span.set_attribute(KeyValue::new("host.middleware", true));
    let cx = Context::current_with_span(span);
    let response = next.run(request).with_context(cx.clone()).await;
    cx.span().end();
    response
}

fn spans_named<'a>(spans: &'a [Received], name: &str) -> Vec<&'a Received> {
    spans.iter().filter(|r| r.span.name == name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perfscopes_spans_go_through_the_host_apps_provider_under_its_request_span() {
    let host = Collector::default();
    let own = Collector::default();
    let provider = host_provider(grpc_receiver(host.clone()).await);
    let (perfscope, cancel, tasks) =
        perfscope_with(grpc_receiver(own.clone()).await, Some(&provider));
    assert!(
        perfscope
            .otel_tracing_layer::<tracing_subscriber::Registry>()
            .is_none(),
        "the app bridges its own tracing spans"
    );

    // With the app's middleware outside perfscope's layer, and without.
    let wrapped = axum::Router::new()
        .route("/wrapped/{id}", axum::routing::get(item))
        .with_state(perfscope.clone())
        .layer(perfscope.axum_layer())
        .layer(axum::middleware::from_fn_with_state(
            provider.clone(),
            host_span,
        ));
    let plain = axum::Router::new()
        .route("/plain/{id}", axum::routing::get(item))
        .with_state(perfscope.clone())
        .layer(perfscope.axum_layer());
    let wrapped = support::serve_axum(wrapped).await;
    let plain = support::serve_axum(plain).await;
    for (base, path) in [(&wrapped, "/wrapped/7"), (&plain, "/plain/8")] {
        let answer = client()
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status(), 200, "{path}");
    }
    // The app flushes its own pipeline; perfscope's stop leaves it running.
    let spans = stopped_and_flushed(cancel, tasks, &provider, &host, 4).await;

    // Under the app's span: one server span (the app's), the measurement
    // its child, one trace, all with the app's resource.
    let app_span = spans_named(&spans, "host request");
    assert_eq!(app_span.len(), 1, "{spans:#?}");
    let app_span = app_span[0];
    let loads = spans_named(&spans, "load_item");
    assert_eq!(loads.len(), 2, "{spans:#?}");
    let under_app = loads
        .iter()
        .find(|r| r.span.trace_id == app_span.span.trace_id)
        .unwrap_or_else(|| panic!("no measurement in the app's trace: {spans:#?}"));
    assert_eq!(
        hex(&under_app.span.parent_span_id),
        hex(&app_span.span.span_id)
    );
    assert_eq!(under_app.scope, "perfscope");
    assert!(
        spans_named(&spans, "GET /wrapped/{id}").is_empty(),
        "no second server span under the app's: {spans:#?}"
    );

    // Without the app's span: perfscope's server span, by the app's tracer.
    let server = spans_named(&spans, "GET /plain/{id}");
    assert_eq!(server.len(), 1, "{spans:#?}");
    let server = server[0];
    assert_eq!(server.span.kind, SpanKind::Server as i32);
    assert_eq!(server.scope, "perfscope");
    let under_server = loads
        .iter()
        .find(|r| r.span.trace_id == server.span.trace_id)
        .unwrap_or_else(|| panic!("no measurement in perfscope's trace: {spans:#?}"));
    assert_eq!(under_server.span.parent_span_id, server.span.span_id);
    assert!(spans.iter().all(|r| r.service == "host-app"), "{spans:#?}");

    // perfscope's own exporter never started.
    assert!(own.spans().is_empty(), "{:#?}", own.spans());
    provider.shutdown().expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracing_span_bridged_by_the_app_is_the_parent_of_perfscopes_spans() {
    use tracing::Instrument;
    use tracing_subscriber::layer::SubscriberExt;

    let host = Collector::default();
    let own = Collector::default();
    let provider = host_provider(grpc_receiver(host.clone()).await);
    let (perfscope, cancel, tasks) =
        perfscope_with(grpc_receiver(own.clone()).await, Some(&provider));
    // The app's subscriber with its own tracing-opentelemetry layer (this
    // test binary's only global subscriber).
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("host-app")));
    tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");

    async fn traced(request: Request, next: Next) -> Response {
        let span = tracing::info_span!("app request");
        next.run(request).instrument(span).await
    }
    let app = axum::Router::new()
        .route("/bridged/{id}", axum::routing::get(item))
        .with_state(perfscope.clone())
        .layer(perfscope.axum_layer())
        .layer(axum::middleware::from_fn(traced));
    let base = support::serve_axum(app).await;
    let answer = client()
        .get(format!("{base}/bridged/9"))
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 200);
    let spans = stopped_and_flushed(cancel, tasks, &provider, &host, 2).await;
    let app_span = spans_named(&spans, "app request");
    assert_eq!(app_span.len(), 1, "{spans:#?}");
    let load = spans_named(&spans, "load_item");
    assert_eq!(load.len(), 1, "{spans:#?}");
    assert_eq!(load[0].span.trace_id, app_span[0].span.trace_id);
    assert_eq!(load[0].span.parent_span_id, app_span[0].span.span_id);
    assert!(
        spans_named(&spans, "GET /bridged/{id}").is_empty(),
        "{spans:#?}"
    );
    assert!(own.spans().is_empty(), "{:#?}", own.spans());
    provider.shutdown().expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_apps_provider_a_span_of_another_pipeline_is_not_continued() {
    let host = Collector::default();
    let own = Collector::default();
    // The app has a pipeline of its own, but perfscope is not given it.
    let provider = host_provider(grpc_receiver(host.clone()).await);
    let (perfscope, cancel, tasks) = perfscope_with(grpc_receiver(own.clone()).await, None);
    let app = axum::Router::new()
        .route("/wrapped/{id}", axum::routing::get(item))
        .with_state(perfscope.clone())
        .layer(perfscope.axum_layer())
        .layer(axum::middleware::from_fn_with_state(
            provider.clone(),
            host_span,
        ));
    let base = support::serve_axum(app).await;
    let answer = client()
        .get(format!("{base}/wrapped/3"))
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 200);
    cancel.cancel();
    tasks.join().await;
    let spans = own.spans();
    // perfscope's own pipeline gets its whole request: its server span,
    // with the measurement under it, as in any app.
    let server = spans_named(&spans, "GET /wrapped/{id}");
    assert_eq!(server.len(), 1, "{spans:#?}");
    let load = spans_named(&spans, "load_item");
    assert_eq!(load.len(), 1, "{spans:#?}");
    assert_eq!(load[0].span.parent_span_id, server[0].span.span_id);
    assert!(
        spans.iter().all(|r| r.service == "perfscope-own"),
        "{spans:#?}"
    );
    provider.shutdown().expect("shutdown");
}
