//! The "Database time" page's query string: `database` (a watched one;
//! absent or empty, every database) and `range` (`15m`, `1h`, `6h` or
//! `24h`: what the in-memory history holds; longer ranges come with the
//! history store's minutes). Anything else is the page's 400 naming the
//! parameter, never another range than the one asked for.

use std::collections::HashMap;

/// A range of the page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Range {
    /// The last 15 minutes (a point every 10 s).
    #[default]
    Quarter,
    /// The last hour.
    Hour,
    /// The last 6 hours.
    SixHours,
    /// The last 24 hours.
    Day,
}

impl Range {
    /// Every range, shortest first, as the selector lists them.
    pub const ALL: [Self; 4] = [Self::Quarter, Self::Hour, Self::SixHours, Self::Day];

    /// Its name in the query string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quarter => "15m",
            Self::Hour => "1h",
            Self::SixHours => "6h",
            Self::Day => "24h",
        }
    }

    /// Its length in words, after "the last".
    pub fn words(self) -> &'static str {
        match self {
            Self::Quarter => "15 minutes",
            Self::Hour => "hour",
            Self::SixHours => "6 hours",
            Self::Day => "24 hours",
        }
    }

    /// Its length, seconds.
    pub fn span_secs(self) -> i64 {
        match self {
            Self::Quarter => 15 * 60,
            Self::Hour => 3_600,
            Self::SixHours => 6 * 3_600,
            Self::Day => 86_400,
        }
    }
}

/// What the page shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    /// The watched database; `None`: every one.
    pub database: Option<String>,
    /// The range.
    pub range: Range,
}

impl Params {
    /// Reads the query string; a bad value is refused with the sentence
    /// to show.
    pub fn parse(query: &HashMap<String, String>) -> Result<Self, String> {
        let range = match query.get("range").map(String::as_str).unwrap_or_default() {
            "" => Range::default(),
            text => Range::ALL
                .into_iter()
                .find(|r| r.as_str() == text)
                .ok_or_else(|| {
                    "Field `range`: one of 15m, 1h, 6h or 24h is required.".to_owned()
                })?,
        };
        let database = match query.get("database").map(String::as_str) {
            None | Some("") => None,
            Some(name) if name.len() > 63 || name.chars().any(char::is_control) => {
                return Err("Field `database`: a watched database's name is required.".to_owned());
            }
            Some(name) => Some(name.to_owned()),
        };
        Ok(Self { database, range })
    }

    /// This page's path with `database` and `range` (each value encoded).
    pub fn href(database: Option<&str>, range: Range) -> String {
        match database {
            Some(name) => format!(
                "/ui/db-time?database={}&range={}",
                crate::ui::range::query_value(name),
                range.as_str()
            ),
            None => format!("/ui/db-time?range={}", range.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Params, String> {
        Params::parse(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn the_range_and_database_are_read_or_refused_by_name() {
        assert_eq!(parse(&[]), Ok(Params::default()));
        let params = parse(&[("range", "6h"), ("database", "shop")]).expect("valid");
        assert_eq!(params.range, Range::SixHours);
        assert_eq!(params.database.as_deref(), Some("shop"));
        assert!(
            parse(&[("range", "7d")])
                .expect_err("7d")
                .contains("`range`")
        );
        assert!(
            parse(&[("database", "a\nb")])
                .expect_err("control")
                .contains("`database`")
        );
        assert_eq!(
            Params::href(Some("a b&c"), Range::Hour),
            "/ui/db-time?database=a%20b%26c&range=1h"
        );
    }
}
