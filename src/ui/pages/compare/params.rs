//! The Compare page's query string (`at`, `window`, `database`), read
//! once and refused by name. A window is written as seconds (what the API
//! takes, `3600`) or with a unit (`90s`, `15m`, `1h`, `7d`), within the
//! API's bounds, so a link copied from one works on the other.

use std::collections::HashMap;

use crate::service::compare::{DEFAULT_WINDOW, MAX_WINDOW, MIN_WINDOW};

/// The longest database name accepted (PostgreSQL's identifier limit).
const MAX_DATABASE_BYTES: usize = 63;

/// What the page was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// The moment to split at, Unix seconds (`None`: list the events).
    pub at: Option<i64>,
    /// Each side's length, seconds.
    pub window: i64,
    /// The database of the statements.
    pub database: String,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            at: None,
            window: DEFAULT_WINDOW,
            database: DEFAULT_DATABASE.to_owned(),
        }
    }
}

/// The database compared when none is asked (`DATABASE_URL`'s label).
pub const DEFAULT_DATABASE: &str = "default";

impl Params {
    /// Reads the query string; an absent or empty parameter takes its
    /// default, anything else out of range is refused with the sentence
    /// to show, naming the parameter.
    pub fn parse(query: &HashMap<String, String>) -> Result<Self, String> {
        let given = |name: &str| {
            query
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let at = given("at")
            .map(|text| {
                text.parse::<i64>()
                    .ok()
                    .filter(|at| *at >= 0)
                    .ok_or_else(|| {
                        "Field `at`: a moment in Unix seconds (0 or more) is required.".to_owned()
                    })
            })
            .transpose()?;
        let window = given("window").map_or(Ok(DEFAULT_WINDOW), parse_window)?;
        let database = match given("database") {
            None => DEFAULT_DATABASE.to_owned(),
            Some(name)
                if name.len() <= MAX_DATABASE_BYTES && !name.chars().any(char::is_control) =>
            {
                name.to_owned()
            }
            Some(_) => {
                return Err(format!(
                    "Field `database`: a watched database's name (at most {MAX_DATABASE_BYTES} bytes) is required."
                ));
            }
        };
        Ok(Self {
            at,
            window,
            database,
        })
    }

    /// This page's URL for `at` with these window and database (the
    /// defaults left out), its values URL-encoded.
    pub fn link(&self, at: i64) -> String {
        let mut url = format!("/ui/compare?at={at}");
        self.push_rest(&mut url);
        url
    }

    /// The same, for another database (an event that names its own).
    pub fn link_in(&self, at: i64, database: &str) -> String {
        Self {
            database: database.to_owned(),
            ..self.clone()
        }
        .link(at)
    }

    fn push_rest(&self, url: &mut String) {
        if self.window != DEFAULT_WINDOW {
            url.push_str("&window=");
            url.push_str(&window_text(self.window));
        }
        if self.database != DEFAULT_DATABASE {
            url.push_str("&database=");
            url.push_str(&crate::ui::range::query_value(&self.database));
        }
    }
}

/// Reads a window: seconds, or a whole number with `s`, `m`, `h` or `d`,
/// from [`MIN_WINDOW`] to [`MAX_WINDOW`] seconds.
pub fn parse_window(text: &str) -> Result<i64, String> {
    let refused = || {
        format!(
            "Field `window`: {} to {} is required, as seconds or with a unit (90s, 15m, 1h, 7d).",
            window_text(MIN_WINDOW),
            window_text(MAX_WINDOW)
        )
    };
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], Some(c)),
        _ => (text, None),
    };
    let scale = match unit {
        None | Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3_600,
        Some('d') => 86_400,
        Some(_) => return Err(refused()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused());
    }
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|seconds| (MIN_WINDOW..=MAX_WINDOW).contains(seconds))
        .ok_or_else(refused)
}

/// A window as the form and links write it: the largest unit that
/// divides it (`3600` → `1h`, `5400` → `90m`, `61` → `61s`).
pub fn window_text(seconds: i64) -> String {
    match seconds {
        s if s > 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s > 0 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn windows_read_as_seconds_or_with_a_unit_within_the_apis_bounds() {
        assert_eq!(parse_window("3600"), Ok(3_600));
        assert_eq!(parse_window("60"), Ok(60));
        assert_eq!(parse_window("90s"), Ok(90));
        assert_eq!(parse_window("15m"), Ok(900));
        assert_eq!(parse_window("1h"), Ok(3_600));
        assert_eq!(parse_window("30d"), Ok(MAX_WINDOW));
        for bad in [
            "59",
            "31d",
            "0",
            "-60",
            "1.5h",
            "1H",
            "h",
            "1w",
            " 1h",
            "1h ",
            "<b>",
            "99999999999999999999d",
            "9223372036854775807d",
        ] {
            let refused = parse_window(bad).expect_err(bad);
            assert!(
                refused.starts_with("Field `window`: 1m to 30d"),
                "{bad}: {refused}"
            );
        }
    }

    #[test]
    fn a_window_is_written_in_its_largest_whole_unit_and_reads_back() {
        for (seconds, text) in [
            (3_600, "1h"),
            (5_400, "90m"),
            (61, "61s"),
            (86_400, "1d"),
            (MAX_WINDOW, "30d"),
        ] {
            assert_eq!(window_text(seconds), text);
            assert_eq!(parse_window(text), Ok(seconds));
        }
    }

    #[test]
    fn parameters_take_their_defaults_and_are_refused_by_name() {
        assert_eq!(Params::parse(&query(&[])), Ok(Params::default()));
        assert_eq!(
            Params::parse(&query(&[("at", ""), ("window", ""), ("database", "")])),
            Ok(Params::default())
        );
        let params = Params::parse(&query(&[
            ("at", "1780000000"),
            ("window", "15m"),
            ("database", "a b&c"),
        ]))
        .expect("valid");
        assert_eq!(params.at, Some(1_780_000_000));
        assert_eq!(params.window, 900);
        assert_eq!(
            params.link(5),
            "/ui/compare?at=5&window=15m&database=a%20b%26c"
        );
        assert_eq!(Params::default().link(5), "/ui/compare?at=5");
        assert_eq!(
            Params::default().link_in(5, "shop"),
            "/ui/compare?at=5&database=shop"
        );
        for (name, value) in [
            ("at", "-1"),
            ("at", "soon"),
            ("window", "2w"),
            ("database", "x\ny"),
        ] {
            let refused = Params::parse(&query(&[(name, value)])).expect_err(value);
            assert!(refused.starts_with(&format!("Field `{name}`")), "{refused}");
        }
        let long = "d".repeat(64);
        assert!(Params::parse(&query(&[("database", &long)])).is_err());
    }
}
