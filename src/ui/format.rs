//! Numbers as the pages show them: always with a unit, rounded to what a
//! reader can compare at a glance, and a dash where there is no value.

/// A duration in seconds: `850 µs`, `12.3 ms`, `1.25 s`, and from two
/// minutes on as an age (`12 min`, `3.5 h`).
pub fn seconds(value: Option<f64>) -> String {
    match value {
        Some(s) if s.is_finite() && s >= 120.0 => age(s),
        Some(s) if s.is_finite() && s >= 1.0 => format!("{s:.2} s"),
        Some(s) if s.is_finite() && s >= 0.01 => format!("{:.1} ms", s * 1e3),
        Some(s) if s.is_finite() && s >= 0.001 => format!("{:.2} ms", s * 1e3),
        Some(s) if s.is_finite() && s >= 0.0 => format!("{:.0} µs", s * 1e6),
        _ => "–".to_owned(),
    }
}

/// Where a quantile interpolated in histogram buckets lies, as the bucket
/// that holds it rather than a point: `≤ 1 ms`, `2.5–5 ms`, `≥ 10 s`.
/// `bounds` are the histogram's finite upper bounds, ascending. The
/// interpolated value is somewhere in its bucket by construction, so the
/// bucket is all it says honestly: a single 300 µs request would read
/// "500 µs" as a point.
pub fn bucket(value: Option<f64>, bounds: &[f64]) -> String {
    let Some(value) = value.filter(|v| v.is_finite() && *v >= 0.0) else {
        return "–".to_owned();
    };
    let Some(&last) = bounds.last() else {
        return seconds(Some(value));
    };
    if value >= last {
        return format!("≥ {}", bound(last));
    }
    match bounds.iter().position(|b| value <= *b) {
        Some(0) | None => format!("≤ {}", bound(bounds[0])),
        Some(i) => {
            let (lower, upper) = (bound(bounds[i - 1]), bound(bounds[i]));
            match (lower.split_once(' '), upper.split_once(' ')) {
                (Some((low, unit)), Some((high, same))) if unit == same => {
                    format!("{low}–{high} {unit}")
                }
                _ => format!("{lower}–{upper}"),
            }
        }
    }
}

/// A bucket bound, as short as it reads: `2.5 ms`, `1 s`, `500 µs`.
fn bound(value: f64) -> String {
    let (scaled, unit) = if value >= 1.0 {
        (value, "s")
    } else if value >= 0.001 {
        (value * 1e3, "ms")
    } else {
        (value * 1e6, "µs")
    };
    let text = format!("{scaled:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {unit}")
}

/// A duration in milliseconds.
pub fn millis(value: Option<f64>) -> String {
    seconds(value.map(|ms| ms / 1e3))
}

/// A share as a percentage: `0.4 %`, `12 %`.
pub fn percent(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() && v * 100.0 < 10.0 => format!("{:.1} %", v * 100.0),
        Some(v) if v.is_finite() => format!("{:.0} %", v * 100.0),
        _ => "–".to_owned(),
    }
}

/// Bytes in binary units: `512 B`, `20.4 MiB`.
pub fn bytes(value: Option<u64>) -> String {
    let Some(value) = value else {
        return "–".to_owned();
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut scaled = value as f64;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < units.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} B")
    } else {
        format!("{scaled:.1} {}", units[unit])
    }
}

/// A count with thousands separators: `1,234,567`.
pub fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate: `0.35/s`, `12/s`, `1,204/s`.
pub fn rate(per_second: Option<f64>) -> String {
    match per_second {
        Some(r) if r.is_finite() && r < 10.0 => format!("{r:.2}/s"),
        Some(r) if r.is_finite() => format!("{}/s", count(r.round() as u64)),
        _ => "–".to_owned(),
    }
}

/// An age in seconds: `45 s`, `12 min`, `3.5 h`, `2.0 d`.
pub fn age(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        "–".to_owned()
    } else if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 7_200.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 172_800.0 {
        format!("{:.1} h", seconds / 3_600.0)
    } else {
        format!("{:.1} d", seconds / 86_400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_reads_as_its_bounds() {
        let bounds = crate::metrics::Buckets::HTTP_DEFAULT;
        assert_eq!(bucket(Some(0.0005), bounds), "≤ 1 ms");
        assert_eq!(bucket(Some(0.001), bounds), "≤ 1 ms");
        assert_eq!(bucket(Some(0.004), bounds), "2.5–5 ms");
        assert_eq!(bucket(Some(0.3), bounds), "250–500 ms");
        assert_eq!(bucket(Some(0.8), bounds), "750 ms–1 s");
        assert_eq!(bucket(Some(3.0), bounds), "2.5–5 s");
        assert_eq!(bucket(Some(10.0), bounds), "≥ 10 s");
        assert_eq!(bucket(Some(0.000_2), &[0.000_25, 0.01]), "≤ 250 µs");
        assert_eq!(bucket(None, bounds), "–");
        assert_eq!(bucket(Some(f64::NAN), bounds), "–");
        assert_eq!(bucket(Some(0.2), &[]), "200.0 ms");
    }

    #[test]
    fn units_and_rounding() {
        assert_eq!(seconds(Some(0.000_85)), "850 µs");
        assert_eq!(seconds(Some(0.0123)), "12.3 ms");
        assert_eq!(seconds(Some(0.004_56)), "4.56 ms");
        assert_eq!(seconds(Some(1.254)), "1.25 s");
        assert_eq!(seconds(Some(5_400.0)), "90 min");
        assert_eq!(seconds(None), "–");
        assert_eq!(seconds(Some(f64::NAN)), "–");
        assert_eq!(millis(Some(250.0)), "250.0 ms");
        assert_eq!(percent(Some(0.004)), "0.4 %");
        assert_eq!(percent(Some(0.5)), "50 %");
        assert_eq!(bytes(Some(512)), "512 B");
        assert_eq!(bytes(Some(21_390_000)), "20.4 MiB");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(999), "999");
        assert_eq!(rate(Some(0.345)), "0.34/s");
        assert_eq!(rate(Some(1_204.4)), "1,204/s");
        assert_eq!(age(45.0), "45 s");
        assert_eq!(age(720.0), "12 min");
        assert_eq!(age(12_600.0), "3.5 h");
    }
}
