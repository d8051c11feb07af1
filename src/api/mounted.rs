//! What differs when a host app mounts the API (see [`crate::mount`]):
//! everything lives under one prefix, and the agent's `/healthz` and
//! `/readyz` are not served there (a host decides whether, and where, it
//! exposes health), so its spec does not list them.

/// The one prefix the API claims in a host app.
pub const PREFIX: &str = "/api/performance";

/// Swagger UI's page in a host app.
pub const DOCS: &str = "/api/performance/docs";

/// Paths of the agent's own layout that a mounted API does not serve.
const AGENT_ONLY: &[&str] = &["/healthz", "/readyz"];

/// `spec` without [`AGENT_ONLY`]'s paths and the tag only they used.
pub(super) fn without_health(spec: String) -> String {
    let Ok(mut document) = serde_json::from_str::<serde_json::Value>(&spec) else {
        return spec;
    };
    if let Some(paths) = document
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    {
        for path in AGENT_ONLY {
            paths.remove(*path);
        }
    }
    if let Some(tags) = document
        .get_mut("tags")
        .and_then(serde_json::Value::as_array_mut)
    {
        tags.retain(|tag| tag.get("name").and_then(serde_json::Value::as_str) != Some("Health"));
    }
    serde_json::to_string_pretty(&document).unwrap_or(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mounted_spec_lists_only_paths_under_the_prefix() {
        let spec = without_health(super::super::spec_json());
        let document: serde_json::Value = serde_json::from_str(&spec).expect("json");
        let paths = document["paths"].as_object().expect("paths");
        assert!(!paths.is_empty());
        for path in paths.keys() {
            assert!(path.starts_with(PREFIX), "{path} is outside {PREFIX}");
        }
        let tags = document["tags"].as_array().expect("tags");
        assert!(tags.iter().all(|tag| tag["name"] != "Health"), "{tags:?}");
    }
}
