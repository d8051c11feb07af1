//! `GET /api/performance/growth` (admin, since it names tables, indexes
//! and sequences): the fastest-growing tables and indexes of a watched
//! database and the database itself, with growth per day by the trend of
//! the history store's daily sizes and the days until each doubles (or
//! reaches a size the request names), and the days until each watched
//! sequence runs out (see [`crate::service::growth`]).

use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::ApiTags;
use super::auth::{BearerToken, admin_only};
use super::error::{ApiError, answer, answers_refusals};
use crate::Perfscope;
use crate::findings::growth::{Fit, MIN_DAYS, WINDOW_DAYS};
use crate::http::ErrorBody;
use crate::service::growth::{self as service, History, SequenceGrowth, SizeGrowth};

/// Whether a series has a trend.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum TrendState {
    /// Enough days: the figures are by its trend.
    Trend,
    /// Fewer days with a reading than `minDays`: no forecast.
    NotEnoughHistory,
}

/// Whether history is kept at all.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum HistoryState {
    /// The store is open.
    Kept,
    /// No store (see `note`).
    NotKept,
}

/// One table's, index's or the database's growth.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ObjectGrowth {
    /// `database`, `table` (with its TOAST and indexes) or `index`.
    pub kind: String,
    /// `schema.name`, or the database's name.
    pub name: String,
    /// Bytes at the newest daily reading.
    pub bytes: Option<i64>,
    /// Whether there is a trend.
    pub trend: TrendState,
    /// Bytes per day by the trend (Theil–Sen over the window).
    pub growth_bytes_per_day: Option<f64>,
    /// Days with a reading the trend used (or that there are).
    pub days_of_history: u32,
    /// Days until it is twice `bytes`, by the trend.
    pub days_until_double: Option<f64>,
    /// Days until `targetBytes`, by the trend (0: already there).
    pub days_until_target: Option<f64>,
}

/// One sequence's advance towards its bound.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SequenceForecast {
    /// `schema.name`.
    pub name: String,
    /// Its last value at the newest daily reading.
    pub last_value: Option<f64>,
    /// The value it runs out at (maximum, or minimum if descending).
    pub bound: Option<f64>,
    /// Whether there is a trend.
    pub trend: TrendState,
    /// Values per day by the trend.
    pub per_day: Option<f64>,
    /// Days with a reading the trend used (or that there are).
    pub days_of_history: u32,
    /// Days until it reaches `bound`, by the trend.
    pub days_until_exhausted: Option<f64>,
}

/// One database's growth.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct GrowthReport {
    /// The watched database.
    pub database: String,
    /// Whether history is kept.
    pub history: HistoryState,
    /// Why not, when it is not; "not enough history" while no series
    /// has a trend yet.
    pub note: Option<String>,
    /// The most recent days a trend is fitted over.
    pub window_days: u32,
    /// The fewest days with a reading a trend needs.
    pub min_days: u32,
    /// The target size the request named, bytes.
    pub target_bytes: Option<i64>,
    /// The database as a whole (none before its first daily reading).
    pub total: Option<ObjectGrowth>,
    /// Tables and indexes, fastest-growing first.
    pub objects: Vec<ObjectGrowth>,
    /// Sequences past 75% of their range (those the checks reader
    /// watches), soonest exhausted first.
    pub sequences: Vec<SequenceForecast>,
}

#[derive(ApiResponse)]
enum GrowthResponse {
    /// The forecasts.
    #[oai(status = 200)]
    Ok(Json<GrowthReport>),
    /// No watched database by that name.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// No database is configured.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

answers_refusals!(GrowthResponse {
    NotFound => NotFound,
    Unavailable => Unavailable,
});

/// The growth operation.
pub struct GrowthApi {
    pub(super) perfscope: Perfscope,
}

#[OpenApi]
impl GrowthApi {
    /// Growth per day of the database and its fastest-growing tables and
    /// indexes, and the days until each doubles (or reaches
    /// `targetBytes`), by the trend of the daily sizes the history store
    /// kept (at least 3 days, at most the last 30); the days until each
    /// sequence past 75% of its range runs out. Admin token required.
    #[oai(
        path = "/api/performance/growth",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "getGrowth"
    )]
    async fn growth(
        &self,
        token: BearerToken,
        /// The watched database (default: `default`, the `DATABASE_URL`).
        #[oai(validator(min_length = 1, max_length = 63))]
        database: Query<Option<String>>,
        /// Tables and indexes (and sequences) listed, at most 100
        /// (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// A size to forecast the days until, bytes (e.g. the volume's).
        #[oai(
            name = "targetBytes",
            validator(minimum(value = "1"), maximum(value = "9007199254740991"))
        )]
        target_bytes: Query<Option<i64>>,
    ) -> Result<GrowthResponse, ApiError> {
        answer(
            async {
                admin_only(&self.perfscope, &token)?;
                let report = service::report(
                    &self.perfscope,
                    database.0.as_deref(),
                    limit.0.map(|l| l as usize),
                    target_bytes.0,
                )
                .await?;
                Ok(GrowthResponse::Ok(Json(wire(report))))
            }
            .await,
        )
    }
}

fn wire(report: service::GrowthReport) -> GrowthReport {
    let (history, note) = match report.history {
        History::Kept => (HistoryState::Kept, None),
        History::NotKept(why) => (HistoryState::NotKept, Some(why)),
    };
    // No series has a trend yet (a fresh store, or one day of sizes).
    let empty = history == HistoryState::Kept
        && report
            .total
            .iter()
            .chain(&report.objects)
            .all(|growth| growth.fit.trend().is_none())
        && report.sequences.iter().all(|s| s.fit.trend().is_none());
    let note = note.or_else(|| {
        empty.then(|| {
            format!(
                "not enough history: sizes are kept once a day, and a trend needs {MIN_DAYS} days"
            )
        })
    });
    GrowthReport {
        database: report.database,
        history,
        note,
        window_days: WINDOW_DAYS as u32,
        min_days: MIN_DAYS as u32,
        target_bytes: report.target_bytes,
        total: report.total.map(object),
        objects: report.objects.into_iter().map(object).collect(),
        sequences: report.sequences.into_iter().map(sequence).collect(),
    }
}

fn state(fit: &Fit) -> TrendState {
    match fit {
        Fit::Trend(_) => TrendState::Trend,
        Fit::NotEnoughHistory { .. } => TrendState::NotEnoughHistory,
    }
}

fn object(growth: SizeGrowth) -> ObjectGrowth {
    ObjectGrowth {
        kind: growth.kind.as_str().to_owned(),
        name: growth.name,
        bytes: growth.fit.now().map(|b| b as i64),
        trend: state(&growth.fit),
        growth_bytes_per_day: growth.fit.trend().map(|t| t.per_day),
        days_of_history: u32::try_from(growth.fit.days()).unwrap_or(u32::MAX),
        days_until_double: growth.days_until_double,
        days_until_target: growth.days_until_target,
    }
}

fn sequence(growth: SequenceGrowth) -> SequenceForecast {
    SequenceForecast {
        name: growth.name,
        last_value: growth.fit.now(),
        bound: growth.bound,
        trend: state(&growth.fit),
        per_day: growth.fit.trend().map(|t| t.per_day),
        days_of_history: u32::try_from(growth.fit.days()).unwrap_or(u32::MAX),
        days_until_exhausted: growth.days_until_exhausted,
    }
}
