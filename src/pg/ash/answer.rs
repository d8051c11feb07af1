//! What the active session history answers: the average active sessions
//! (AAS) over a range by wait class, and the top statements, routes,
//! applications, roles or wait events by sampled database time, each with
//! its wait profile. One struct is both what [`super::AshRing`] computes
//! and what the API returns (`GET /api/performance/db-time`).

/// What the top rows are grouped by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum By {
    /// The wait event (`CPU`, `IO:DataFileRead`, `Lock:transactionid`, …).
    #[default]
    Wait,
    /// The statement (normalized text).
    Statement,
    /// The route its sqlcommenter tags name.
    Route,
    /// The session's `application_name`.
    Application,
    /// The role it logged in as.
    Role,
}

/// Database time of one wait class.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct ClassTime {
    /// `CPU`, `IO`, `Lock`, `LWLock`, `Client`, `IPC`, `Timeout`, …
    pub class: String,
    /// Average active sessions in this class.
    pub aas: f64,
}

/// The average active sessions at one step of the range.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct AasPoint {
    /// The step's start, Unix seconds.
    pub at: i64,
    /// The average over the step, by wait class (classes with none left
    /// out).
    pub classes: Vec<ClassTime>,
}

/// One row of the top list.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct DbTimeRow {
    /// What the row is: the wait (`IO:DataFileRead`), the statement's
    /// normalized text, the route, the application or the role; `other`
    /// for the rest past the top rows.
    pub key: String,
    /// The statement's fingerprint (hex), for `by=statement`.
    #[oai(skip_serializing_if_is_none)]
    pub fingerprint: Option<String>,
    /// Postgres' `query_id` of the statement, when it computed one.
    #[oai(skip_serializing_if_is_none)]
    pub query_id: Option<i64>,
    /// Sampled database time, seconds (samples × the sampling interval).
    pub seconds: f64,
    /// Average active sessions over the range.
    pub aas: f64,
    /// Its share of the range's database time, 0–1.
    pub share: f64,
    /// Its wait profile: its database time by wait class, largest first.
    pub waits: Vec<ClassTime>,
    /// Up to 5 trace ids (32 hex digits) its statements carried in a
    /// sqlcommenter `traceparent`, newest first: open them in the tracing
    /// tool (or Sentry, when the id is Sentry's).
    pub trace_ids: Vec<String>,
    /// While it waited on locks: the statements of the sessions that held
    /// them (normalized), up to 3.
    pub blocked_by: Vec<String>,
}

/// Where a database's time went over a range.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct DbTime {
    /// The watched database, or none for every one.
    #[oai(skip_serializing_if_is_none)]
    pub database: Option<String>,
    /// The range's start, Unix seconds (what the history still holds:
    /// may be later than asked).
    pub since: i64,
    /// The range's end, Unix seconds.
    pub until: i64,
    /// What the rows are grouped by.
    pub by: By,
    /// The sampling interval, seconds.
    pub interval_seconds: f64,
    /// Samples taken in the range.
    pub samples: u64,
    /// Sampled database time in the range, seconds.
    pub seconds: f64,
    /// Average active sessions over the range.
    pub aas: f64,
    /// The step of `series`, seconds.
    pub step_seconds: u64,
    /// AAS over time by wait class.
    pub series: Vec<AasPoint>,
    /// The top rows by database time, largest first.
    pub top: Vec<DbTimeRow>,
    /// The rest, summed, when there are more rows than `top` holds.
    #[oai(skip_serializing_if_is_none)]
    pub other: Option<DbTimeRow>,
    /// Statement texts seen cut at `track_activity_query_size` inside
    /// their sqlcommenter comment in the range: their tags are lost (raise
    /// the setting).
    pub cut_comments: u64,
}
