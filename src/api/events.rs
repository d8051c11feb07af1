//! `POST /api/performance/events`, `GET /api/performance/events` and `GET
//! /api/performance/compare` (admin): deploy markers and other events of
//! the history store, and routes and statements before vs after one (see
//! [`crate::service::events`] and [`crate::service::compare`]). Without a
//! store (`PERFSCOPE_DATA_DIR=off`) each answers 503.

use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::ApiTags;
use super::auth::{BearerToken, admin_only};
use super::error::{ApiError, error_body};
use super::payload::StrictJson;
use crate::Perfscope;
use crate::http::ErrorBody;
use crate::service::compare::{self, Comparison};
use crate::service::events::{self, HistoryError, NewEvent};
use crate::store::{EventKind, EventRow};

/// What an event is, as served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum EventKindName {
    /// A new release of the app or the agent started (or was posted).
    Deploy,
    /// A marker posted through the API.
    Marker,
    /// pg_stat_statements was reset.
    Reset,
    /// An index appeared.
    IndexCreated,
    /// A maintenance task ran.
    Maintenance,
    /// A statement's plan changed shape.
    PlanChange,
}

impl From<EventKind> for EventKindName {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::Deploy => Self::Deploy,
            EventKind::Marker => Self::Marker,
            EventKind::Reset => Self::Reset,
            EventKind::IndexCreated => Self::IndexCreated,
            EventKind::Maintenance => Self::Maintenance,
            EventKind::PlanChange => Self::PlanChange,
        }
    }
}

/// What may be posted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Enum, serde::Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum PostedKind {
    /// A release.
    Deploy,
    /// Anything else worth a line on the charts.
    #[default]
    Marker,
}

/// An event to record.
#[derive(Object, Debug, serde::Deserialize)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventRequest {
    /// A short label (a release, a change): 1 to 200 printable
    /// characters, not only blanks.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    ))]
    pub label: String,
    /// `deploy` or `marker` (the default).
    pub kind: Option<PostedKind>,
    /// When, Unix seconds (default: now; at most a day ahead).
    #[oai(validator(minimum(value = "0")))]
    pub at: Option<i64>,
}

/// A stored event.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct EventEntry {
    /// Its id.
    pub id: i64,
    /// When, Unix seconds.
    pub at: i64,
    /// What.
    pub kind: EventKindName,
    /// The database it concerns, if one.
    #[oai(skip_serializing_if_is_none)]
    pub database: Option<String>,
    /// Its label.
    pub label: String,
    /// Its details (e.g. both plans of a plan change, as JSON).
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
}

impl From<EventRow> for EventEntry {
    fn from(row: EventRow) -> Self {
        Self {
            id: row.id,
            at: row.at,
            kind: row.kind.into(),
            database: row.database,
            label: row.label,
            detail: row.detail,
        }
    }
}

/// Events, newest first.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct EventList {
    /// The events.
    pub events: Vec<EventEntry>,
}

#[derive(ApiResponse)]
enum PostEventResponse {
    /// The event, as stored.
    #[oai(status = 201)]
    Created(Json<EventEntry>),
    /// No history store runs, or it cannot write now.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

#[derive(ApiResponse)]
enum ListEventsResponse {
    /// The events.
    #[oai(status = 200)]
    Ok(Json<EventList>),
    /// No history store runs, or it cannot be read now.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

#[derive(ApiResponse)]
enum CompareResponse {
    /// Before and after.
    #[oai(status = 200)]
    Ok(Json<Comparison>),
    /// No history store runs, or it cannot be read now.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

/// A use case's error: a 400, or the operation's 503 body.
fn failed(error: HistoryError) -> Result<Json<ErrorBody>, ApiError> {
    match error {
        HistoryError::BadRequest(message) => Err(ApiError::bad_request(message)),
        HistoryError::NoStore | HistoryError::Store(_) => {
            Ok(error_body("unavailable", error.to_string()))
        }
    }
}

/// The events and compare operations.
pub struct EventsApi {
    pub(super) perfscope: Perfscope,
    /// Comparisons of the last minute (see [`compare::Comparisons`]).
    pub(super) comparisons: compare::Comparisons,
}

impl EventsApi {
    fn store(&self) -> Option<&crate::store::Store> {
        self.perfscope.store()
    }
}

#[OpenApi]
impl EventsApi {
    /// Records a deploy or a marker (shown on the charts; the compare view
    /// splits at it). Admin token required.
    #[oai(
        path = "/api/performance/events",
        method = "post",
        tag = "ApiTags::Performance",
        operation_id = "postEvent"
    )]
    async fn post_event(
        &self,
        token: BearerToken,
        request: StrictJson<EventRequest>,
    ) -> Result<PostEventResponse, ApiError> {
        admin_only(&self.perfscope, &token)?;
        let StrictJson(request) = request;
        let event = NewEvent {
            label: request.label,
            kind: match request.kind.unwrap_or_default() {
                PostedKind::Deploy => EventKind::Deploy,
                PostedKind::Marker => EventKind::Marker,
            },
            at: request.at,
        };
        match events::post(self.store(), event).await {
            Ok(row) => Ok(PostEventResponse::Created(Json(row.into()))),
            Err(error) => failed(error).map(PostEventResponse::Unavailable),
        }
    }

    /// Stored events (deploys, markers, resets, indexes created,
    /// maintenance, plan changes) in `[since, until)`, newest first (none
    /// when `until` is not after `since`). Admin token required.
    #[oai(
        path = "/api/performance/events",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "listEvents"
    )]
    async fn list_events(
        &self,
        token: BearerToken,
        /// From, Unix seconds (default: the oldest kept).
        #[oai(validator(minimum(value = "0")))]
        since: Query<Option<i64>>,
        /// Until (exclusive), Unix seconds (default: no end).
        #[oai(validator(minimum(value = "0")))]
        until: Query<Option<i64>>,
        /// Most events returned (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
    ) -> Result<ListEventsResponse, ApiError> {
        admin_only(&self.perfscope, &token)?;
        let limit = limit.0.map(|limit| limit as usize);
        match events::list(self.store(), since.0, until.0, limit).await {
            Ok(rows) => Ok(ListEventsResponse::Ok(Json(EventList {
                events: rows.into_iter().map(EventEntry::from).collect(),
            }))),
            Err(error) => failed(error).map(ListEventsResponse::Unavailable),
        }
    }

    /// Routes (requests, error ratio, mean, p95) and statements (calls,
    /// mean, blocks read per call) in the `window` before `at` against the
    /// `window` after it, the largest change of the mean first; only
    /// entries with at least `minimumSamples` calls or requests on both
    /// sides, at most 50 of each. Admin token required.
    #[oai(
        path = "/api/performance/compare",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "compare"
    )]
    async fn compare(
        &self,
        token: BearerToken,
        /// The moment to compare around (a deploy's `at`), Unix seconds
        /// (the window before it starts no earlier than 0).
        #[oai(validator(minimum(value = "0")))]
        at: Query<i64>,
        /// Each window's length, seconds (default 3600, 60 to 2592000).
        #[oai(validator(minimum(value = "60"), maximum(value = "2592000")))]
        window: Query<Option<i64>>,
        /// The database of the statements (default: `default`).
        #[oai(validator(min_length = 1, max_length = 63))]
        database: Query<Option<String>>,
    ) -> Result<CompareResponse, ApiError> {
        admin_only(&self.perfscope, &token)?;
        let database = database.0.as_deref().unwrap_or("default");
        let window = window.0.unwrap_or(compare::DEFAULT_WINDOW);
        match self
            .comparisons
            .compare(self.store(), database, at.0, window)
            .await
        {
            Ok(comparison) => Ok(CompareResponse::Ok(Json(comparison))),
            Err(error) => failed(error).map(CompareResponse::Unavailable),
        }
    }
}
