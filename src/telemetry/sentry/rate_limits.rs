//! Sentry's rate-limit answers, honoured per category
//! (<https://develop.sentry.dev/sdk/expected-features/rate-limiting/>), so a
//! throttled project costs no HTTP request: while a category is limited,
//! the transport drops its envelopes before sending and counts them.
//!
//! What is read: `X-Sentry-Rate-Limits: <retry_after>:<categories>:<scope>
//! [:<reason_code>…], …` on any answer (categories `;`-separated, empty for
//! every category), and, on a 429 that does not carry it (or carries
//! nothing usable), `Retry-After: <seconds>` for every category (60 s
//! when absent or not a number). The headers come from whatever answers
//! at the DSN's address, so they are untrusted: only the first
//! [`MAX_HEADER_BYTES`] and [`MAX_GROUPS`] groups are read, a group that
//! does not parse is skipped, unknown categories are ignored (the state is
//! a fixed array, one slot per known category), and no limit lasts longer
//! than [`MAX_RETRY_AFTER`]. A later, shorter answer never shortens a
//! limit already in force.

use std::time::{Duration, Instant};

use sentry::Envelope;
use sentry::protocol::{EnvelopeItem, ItemContainer};

/// The longest limit honoured, whatever a header says.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// The limit of a 429 without a usable `Retry-After`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Bytes of `X-Sentry-Rate-Limits` read; the rest is ignored.
pub const MAX_HEADER_BYTES: usize = 4096;
/// Groups of `X-Sentry-Rate-Limits` read; the rest are ignored.
pub const MAX_GROUPS: usize = 32;

/// The data categories perfscope's envelopes can carry (the label of
/// `perfscope_telemetry_rate_limited_total{category}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// Events: perfscope's 5xx, panic and alert events (limited by
    /// Sentry's `error` or `default` category).
    Error,
    /// Transactions.
    Transaction,
    /// Release-health sessions.
    Session,
    /// Attachments.
    Attachment,
    /// Cron check-ins (`monitor`).
    Monitor,
    /// Client reports (`internal`).
    Internal,
    /// Logs (`log_item`).
    LogItem,
    /// Metrics (`trace_metric`).
    TraceMetric,
    /// Anything else: limited only when every category is.
    Other,
}

impl Category {
    const ALL: [Category; 9] = [
        Category::Error,
        Category::Transaction,
        Category::Session,
        Category::Attachment,
        Category::Monitor,
        Category::Internal,
        Category::LogItem,
        Category::TraceMetric,
        Category::Other,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Category::Error => "error",
            Category::Transaction => "transaction",
            Category::Session => "session",
            Category::Attachment => "attachment",
            Category::Monitor => "monitor",
            Category::Internal => "internal",
            Category::LogItem => "log_item",
            Category::TraceMetric => "trace_metric",
            Category::Other => "other",
        }
    }

    /// The category a header names, `None` for one perfscope never sends
    /// (or garbage). `default` is the category of events that are not
    /// errors, which perfscope's message events are.
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "error" | "default" => Category::Error,
            "transaction" => Category::Transaction,
            "session" => Category::Session,
            "attachment" => Category::Attachment,
            "monitor" => Category::Monitor,
            "internal" => Category::Internal,
            "log_item" => Category::LogItem,
            "trace_metric" => Category::TraceMetric,
            _ => return None,
        })
    }

    /// The category of an envelope item.
    pub fn of(item: &EnvelopeItem) -> Self {
        match item {
            EnvelopeItem::Event(_) => Category::Error,
            EnvelopeItem::Transaction(_) => Category::Transaction,
            EnvelopeItem::SessionUpdate(_) | EnvelopeItem::SessionAggregates(_) => {
                Category::Session
            }
            EnvelopeItem::Attachment(_) => Category::Attachment,
            EnvelopeItem::MonitorCheckIn(_) => Category::Monitor,
            EnvelopeItem::ClientReport(_) => Category::Internal,
            EnvelopeItem::ItemContainer(ItemContainer::Logs(_)) => Category::LogItem,
            EnvelopeItem::ItemContainer(ItemContainer::Metrics(_)) => Category::TraceMetric,
            _ => Category::Other,
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// What to do with an envelope under the limits in force.
#[derive(Debug)]
pub enum Admission {
    /// Send it (perhaps without its limited items).
    Send(Box<Envelope>),
    /// Drop it: every item is limited; the category of its first item.
    Limited(Category),
}

/// The limits in force: until when each category, and every category, is
/// limited.
#[derive(Debug, Default)]
pub struct RateLimits {
    all: Option<Instant>,
    by_category: [Option<Instant>; Category::ALL.len()],
}

impl RateLimits {
    /// Whether `category` is limited at `now`.
    pub fn is_limited(&self, category: Category, now: Instant) -> bool {
        let until = |limit: Option<Instant>| limit.is_some_and(|until| now < until);
        until(self.all) || until(self.by_category[category.slot()])
    }

    /// `envelope` as it may be sent at `now`: whole when nothing in it is
    /// limited, without its limited items when some are, not at all when
    /// all are.
    pub fn admit(&self, envelope: Envelope, now: Instant) -> Admission {
        let mut items = envelope.items().map(Category::of).peekable();
        let first = items.peek().copied().unwrap_or(Category::Other);
        let (mut limited, mut open) = (0usize, 0usize);
        for category in items {
            if self.is_limited(category, now) {
                limited += 1;
            } else {
                open += 1;
            }
        }
        if limited == 0 && open > 0 {
            return Admission::Send(Box::new(envelope));
        }
        if open == 0 {
            // Every item is limited (or there is none, and an empty
            // envelope is only sent when nothing is limited).
            return if self.is_limited(first, now) {
                Admission::Limited(first)
            } else {
                Admission::Send(Box::new(envelope))
            };
        }
        // Mixed: the filter rebuilds the envelope, whose headers (the
        // trace's sampling context) are put back when its event or
        // transaction is the one kept.
        let headers = envelope.headers().clone();
        let id = envelope.uuid().copied();
        match envelope.filter(|item: &EnvelopeItem| !self.is_limited(Category::of(item), now)) {
            Some(kept) if kept.uuid().copied() == id => {
                Admission::Send(Box::new(kept.with_headers(headers)))
            }
            Some(kept) => Admission::Send(Box::new(kept)),
            None => Admission::Limited(first),
        }
    }

    /// Takes in an answer of the Sentry endpoint at `now`: its status and
    /// its `X-Sentry-Rate-Limits` and `Retry-After` headers, as received.
    pub fn update(
        &mut self,
        status: u16,
        rate_limits: Option<&[u8]>,
        retry_after: Option<&[u8]>,
        now: Instant,
    ) {
        let applied = rate_limits.is_some_and(|header| self.apply_header(header, now));
        if status == 429 && !applied {
            let wait = retry_after
                .and_then(|value| std::str::from_utf8(value).ok())
                .and_then(seconds)
                .unwrap_or(DEFAULT_RETRY_AFTER);
            self.limit(None, wait, now);
        }
    }

    /// Applies the groups of an `X-Sentry-Rate-Limits` value; whether any
    /// was usable.
    fn apply_header(&mut self, header: &[u8], now: Instant) -> bool {
        let cut = header.len() > MAX_HEADER_BYTES;
        let header = &header[..header.len().min(MAX_HEADER_BYTES)];
        // A value cut inside a UTF-8 sequence keeps what came before it.
        let text = match std::str::from_utf8(header) {
            Ok(text) => text,
            Err(error) => std::str::from_utf8(&header[..error.valid_up_to()]).unwrap_or(""),
        };
        let mut groups: Vec<&str> = text.split(',').take(MAX_GROUPS + 1).collect();
        if cut || groups.len() > MAX_GROUPS {
            // The last group read may be a cut one.
            groups.pop();
        }
        let mut applied = false;
        for group in groups {
            if let Some((wait, categories)) = parse_group(group) {
                applied = true;
                match categories {
                    Categories::All => self.limit(None, wait, now),
                    Categories::Some(names) => {
                        for category in names.split(';').filter_map(|n| Category::named(n.trim())) {
                            self.limit(Some(category), wait, now);
                        }
                    }
                }
            }
        }
        applied
    }

    /// Limits `category` (every category when `None`) for `wait` from
    /// `now`, unless a longer limit is already in force.
    fn limit(&mut self, category: Option<Category>, wait: Duration, now: Instant) {
        let until = now + wait.min(MAX_RETRY_AFTER);
        let slot = match category {
            None => &mut self.all,
            Some(category) => &mut self.by_category[category.slot()],
        };
        if slot.is_none_or(|current| current < until) {
            *slot = Some(until);
        }
    }
}

/// The categories field of a group.
#[derive(Debug, PartialEq)]
enum Categories<'a> {
    All,
    Some(&'a str),
}

/// One group: `<retry_after>:<categories>[:<scope>[:<reason>…]]`. `None`
/// when the wait is no number or the categories name none perfscope
/// knows (an unknown category must not widen into all of them).
fn parse_group(group: &str) -> Option<(Duration, Categories<'_>)> {
    let mut fields = group.trim().split(':');
    let wait = seconds(fields.next()?)?;
    let categories = fields.next()?.trim();
    if categories.is_empty() {
        return Some((wait, Categories::All));
    }
    categories
        .split(';')
        .any(|name| Category::named(name.trim()).is_some())
        .then_some((wait, Categories::Some(categories)))
}

/// A number of seconds, whole or not, rounded up and capped at
/// [`MAX_RETRY_AFTER`]; `None` for anything else (negative, not finite, a
/// date).
fn seconds(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() || text.len() > 32 {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(
        value.ceil().min(MAX_RETRY_AFTER.as_secs_f64()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentry::protocol::{Event, Transaction};

    fn transaction() -> Envelope {
        let mut envelope = Envelope::new();
        envelope.add_item(Transaction::default());
        envelope
    }

    fn event() -> Envelope {
        let mut envelope = Envelope::new();
        envelope.add_item(Event::default());
        envelope
    }

    fn limited_after(limits: &RateLimits, category: Category, now: Instant) -> Option<u64> {
        (0..=3601).find(|s| !limits.is_limited(category, now + Duration::from_secs(*s)))
    }

    #[test]
    fn the_header_limits_its_categories_for_their_time() {
        let now = Instant::now();
        let mut limits = RateLimits::default();
        limits.update(
            200,
            Some(b"60:transaction:key, 120:error;session:organization:quota_exceeded"),
            None,
            now,
        );
        assert_eq!(limited_after(&limits, Category::Transaction, now), Some(60));
        assert_eq!(limited_after(&limits, Category::Error, now), Some(120));
        assert_eq!(limited_after(&limits, Category::Session, now), Some(120));
        assert_eq!(limited_after(&limits, Category::Attachment, now), Some(0));
        assert_eq!(limited_after(&limits, Category::Other, now), Some(0));
        // `default` is an event's category too; fractions round up.
        let mut limits = RateLimits::default();
        limits.update(200, Some(b"2.1:default:project"), None, now);
        assert_eq!(limited_after(&limits, Category::Error, now), Some(3));
        assert_eq!(limited_after(&limits, Category::Transaction, now), Some(0));
    }

    #[test]
    fn empty_categories_limit_everything() {
        let now = Instant::now();
        let mut limits = RateLimits::default();
        limits.update(200, Some(b"30::organization"), None, now);
        for category in Category::ALL {
            assert_eq!(
                limited_after(&limits, category, now),
                Some(30),
                "{category:?}"
            );
        }
    }

    #[test]
    fn on_a_429_the_header_wins_over_retry_after() {
        let now = Instant::now();
        let mut limits = RateLimits::default();
        limits.update(429, Some(b"10:transaction:key"), Some(b"300"), now);
        assert_eq!(limited_after(&limits, Category::Transaction, now), Some(10));
        assert_eq!(limited_after(&limits, Category::Error, now), Some(0));
    }

    #[test]
    fn a_429_without_the_header_limits_everything_for_retry_after_or_a_minute() {
        let now = Instant::now();
        for (retry_after, expected) in [
            (Some(&b"2"[..]), 2),
            (Some(b" 7 "), 7),
            (Some(b"Wed, 21 Oct 2015 07:28:00 GMT"), 60),
            (Some(b"-4"), 60),
            (Some(b"NaN"), 60),
            (Some(b"inf"), 60),
            (Some(b"\xff\xfe"), 60),
            (Some(b"99999999999"), 3600),
            (None, 60),
        ] {
            let mut limits = RateLimits::default();
            limits.update(429, None, retry_after, now);
            for category in Category::ALL {
                assert_eq!(
                    limited_after(&limits, category, now),
                    Some(expected),
                    "{retry_after:?} {category:?}"
                );
            }
        }
        // A 429 whose header holds nothing usable falls back too.
        let mut limits = RateLimits::default();
        limits.update(429, Some(b"garbage"), Some(b"5"), now);
        assert_eq!(limited_after(&limits, Category::Transaction, now), Some(5));
    }

    #[test]
    fn retry_after_without_a_429_and_garbage_headers_limit_nothing() {
        let now = Instant::now();
        let long = "x".repeat(100_000);
        for header in [
            &b"garbage"[..],
            b"",
            b",,,",
            b":::",
            b"abc:transaction:key",
            b"-5:transaction:key",
            b"NaN:transaction:key",
            b"inf:transaction:key",
            b"60:nosuchcategory:key",
            b"60",
            b"\xff\xfe:transaction",
            long.as_bytes(),
        ] {
            let mut limits = RateLimits::default();
            limits.update(200, Some(header), Some(b"60"), now);
            for category in Category::ALL {
                assert!(
                    !limits.is_limited(category, now),
                    "{:?} limited {category:?}",
                    String::from_utf8_lossy(&header[..header.len().min(40)])
                );
            }
        }
    }

    #[test]
    fn a_long_header_is_read_up_to_its_cap_and_its_cut_group_ignored() {
        let now = Instant::now();
        // A usable group after 4 KiB of padding is not read.
        let padded = format!("{}, 60:transaction:key", "1:nosuch:key,".repeat(400));
        let mut limits = RateLimits::default();
        limits.update(200, Some(padded.as_bytes()), None, now);
        assert!(!limits.is_limited(Category::Transaction, now));
        // One before the cap is; a group cut at the cap is not.
        let cut = format!(
            "60:transaction:key,{}",
            "x".repeat(MAX_HEADER_BYTES - 25) + ",9:error:key"
        );
        let mut limits = RateLimits::default();
        limits.update(200, Some(cut.as_bytes()), None, now);
        assert!(limits.is_limited(Category::Transaction, now));
        assert!(!limits.is_limited(Category::Error, now));
        // Past MAX_GROUPS, groups are ignored.
        let many = format!("{}60:error:key", "1:nosuch:key,".repeat(MAX_GROUPS));
        let mut limits = RateLimits::default();
        limits.update(200, Some(many.as_bytes()), None, now);
        assert!(!limits.is_limited(Category::Error, now));
    }

    #[test]
    fn a_shorter_answer_does_not_shorten_a_limit_and_limits_end() {
        let now = Instant::now();
        let mut limits = RateLimits::default();
        limits.update(200, Some(b"100:transaction:key"), None, now);
        limits.update(200, Some(b"1:transaction:key"), None, now);
        assert_eq!(
            limited_after(&limits, Category::Transaction, now),
            Some(100)
        );
        limits.update(200, Some(b"200:transaction:key"), None, now);
        assert_eq!(
            limited_after(&limits, Category::Transaction, now),
            Some(200)
        );
    }

    #[test]
    fn envelopes_of_a_limited_category_are_not_admitted() {
        let now = Instant::now();
        let mut limits = RateLimits::default();
        assert!(matches!(
            limits.admit(transaction(), now),
            Admission::Send(_)
        ));
        limits.update(200, Some(b"60:transaction:key"), None, now);
        assert!(matches!(
            limits.admit(transaction(), now),
            Admission::Limited(Category::Transaction)
        ));
        assert!(matches!(limits.admit(event(), now), Admission::Send(_)));
        assert!(matches!(
            limits.admit(transaction(), now + Duration::from_secs(60)),
            Admission::Send(_)
        ));
        // A mixed envelope keeps what is not limited, and its headers.
        let mut mixed = event();
        mixed.add_item(Transaction::default());
        let id = mixed.uuid().copied();
        match limits.admit(mixed, now) {
            Admission::Send(kept) => {
                let categories: Vec<_> = kept.items().map(Category::of).collect();
                assert_eq!(categories, vec![Category::Error]);
                assert_eq!(kept.uuid().copied(), id);
            }
            Admission::Limited(category) => panic!("dropped as {category:?}"),
        }
    }
}
