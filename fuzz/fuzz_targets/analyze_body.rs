//! Any bytes as the body of `POST /api/performance/analyze`, under any of
//! a few content types, through the agent's real routes and middleware: the
//! answer is a 2xx, or a 4xx with a JSON `error`, never a 5xx or a panic.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use poem::endpoint::BoxEndpoint;
use poem::test::TestClient;
use poem::EndpointExt;

const TOKEN: &str = "fuzz-admin-token-0123456789";
const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "application/problem+json",
    "text/plain",
    "application/x-www-form-urlencoded",
];

#[derive(Arbitrary, Debug)]
struct Input {
    content_type: u8,
    body: Vec<u8>,
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    client: TestClient<BoxEndpoint<'static>>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let perfscope = runtime.block_on(async {
            perfscope::Perfscope::new(perfscope::Config {
                server: perfscope::config::ServerConfig {
                    admin_token: Some(perfscope::config::Secret::new(TOKEN)),
                    ..Default::default()
                },
                ..Default::default()
            })
        });
        let endpoint = perfscope::api::endpoint(&perfscope)
            .map_to_response()
            .boxed();
        Harness {
            runtime,
            client: TestClient::new(endpoint),
        }
    })
}

fuzz_target!(|input: Input| {
    let harness = harness();
    let content_type = CONTENT_TYPES[usize::from(input.content_type) % CONTENT_TYPES.len()];
    let (status, answer) = harness.runtime.block_on(async {
        let response = harness
            .client
            .post("/api/performance/analyze")
            .header("authorization", format!("Bearer {TOKEN}"))
            .content_type(content_type)
            .body(input.body)
            .send()
            .await;
        let status = response.0.status();
        (
            status,
            response.0.into_body().into_vec().await.unwrap_or_default(),
        )
    });
    assert!(
        status.is_success() || status.is_client_error(),
        "{status} {}",
        String::from_utf8_lossy(&answer)
    );
    if status.is_client_error() {
        let json: serde_json::Value = serde_json::from_slice(&answer).expect("a JSON error body");
        assert!(
            json["error"].is_string(),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
});
