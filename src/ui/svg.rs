//! Server-rendered SVG charts: a sparkline is a polyline over the points
//! of the history, scaled to its own maximum; gaps (no traffic in an
//! interval) break the line; events are vertical markers with their
//! label as a tooltip, each a link when given one. No script, no
//! external asset.

use maud::{Markup, PreEscaped, html};

/// Width and height of a sparkline, in CSS pixels.
pub const SPARK_WIDTH: u32 = 120;
/// Height of a sparkline.
pub const SPARK_HEIGHT: u32 = 24;

/// The polyline segments of `points` in a `width` × `height` box (a `None`
/// point ends a segment), each as SVG `points` text.
pub fn segments(points: &[Option<f64>], width: f64, height: f64) -> Vec<String> {
    let max = points
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let step = if points.len() > 1 {
        width / (points.len() - 1) as f64
    } else {
        0.0
    };
    let mut segments = Vec::new();
    let mut current = String::new();
    for (i, point) in points.iter().enumerate() {
        match point.filter(|v| v.is_finite()) {
            Some(value) => {
                let y = if max > 0.0 {
                    height - 1.0 - (value / max) * (height - 2.0)
                } else {
                    height - 1.0
                };
                if !current.is_empty() {
                    current.push(' ');
                }
                current.push_str(&format!("{:.1},{:.1}", i as f64 * step, y));
            }
            None if !current.is_empty() => segments.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

/// An event on a chart: a vertical line at `share` of its width (0 the
/// first point, 1 the last) with `label` as its tooltip, and a link when
/// it has one (the compare view split at that moment).
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    /// Where, 0..=1.
    pub share: f64,
    /// What (escaped where drawn).
    pub label: String,
    /// Where a click on it leads, a path of these pages.
    pub href: Option<String>,
}

/// A sparkline of `points` with `label` as its accessible name; an empty
/// history draws a flat dotted line.
pub fn sparkline(points: &[Option<f64>], label: &str) -> Markup {
    chart(points, label, &[])
}

/// A sparkline with event markers.
pub fn chart(points: &[Option<f64>], label: &str, markers: &[Marker]) -> Markup {
    let (w, h) = (f64::from(SPARK_WIDTH), f64::from(SPARK_HEIGHT));
    let lines = segments(points, w, h);
    html! {
        svg class="spark" width=(SPARK_WIDTH) height=(SPARK_HEIGHT)
            viewBox=(format!("0 0 {SPARK_WIDTH} {SPARK_HEIGHT}")) role="img" aria-label=(label) {
            title { (label) }
            @if lines.is_empty() {
                line class="spark-empty" x1="0" y1=(h - 1.0) x2=(w) y2=(h - 1.0) {}
            }
            @for marker in markers {
                @let x = format!("{:.1}", marker.share.clamp(0.0, 1.0) * w);
                @if let Some(href) = &marker.href {
                    // A wider transparent line under the visible one, so
                    // the link is not one pixel wide.
                    a href=(href) {
                        line class="marker-hit" x1=(x) y1="0" x2=(x) y2=(h) {}
                        line class="marker" x1=(x) y1="0" x2=(x) y2=(h) { title { (marker.label) } }
                    }
                } @else {
                    line class="marker" x1=(x) y1="0" x2=(x) y2=(h) { title { (marker.label) } }
                }
            }
            @for segment in &lines {
                @if segment.contains(' ') {
                    polyline points=(segment) {}
                } @else {
                    // One point alone: a dot.
                    (PreEscaped(dot(segment)))
                }
            }
        }
    }
}

fn dot(point: &str) -> String {
    let (x, y) = point.split_once(',').unwrap_or(("0", "0"));
    format!("<circle cx=\"{x}\" cy=\"{y}\" r=\"1.5\"></circle>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_scale_to_the_box_and_gaps_split_the_line() {
        let lines = segments(
            &[Some(0.0), Some(2.0), None, Some(1.0), Some(2.0)],
            40.0,
            12.0,
        );
        assert_eq!(lines, vec!["0.0,11.0 10.0,1.0", "30.0,6.0 40.0,1.0"]);
        assert!(segments(&[None, None], 40.0, 12.0).is_empty());
        let svg = sparkline(&[Some(1.0)], "p95 <route>").into_string();
        assert!(svg.contains("<circle"), "{svg}");
        assert!(svg.contains("p95 &lt;route&gt;"), "{svg}");
    }

    #[test]
    fn markers_are_vertical_lines_with_escaped_titles() {
        let svg = chart(
            &[Some(1.0), Some(2.0)],
            "calls",
            &[Marker {
                share: 0.5,
                label: "deploy <v2>".into(),
                href: None,
            }],
        )
        .into_string();
        assert!(
            svg.contains(r#"<line class="marker" x1="60.0" y1="0" x2="60.0" y2="24"><title>deploy &lt;v2&gt;</title></line>"#),
            "{svg}"
        );
        assert!(!svg.contains("<a "), "{svg}");
        let linked = chart(
            &[Some(1.0), Some(2.0)],
            "calls",
            &[Marker {
                share: 1.0,
                label: "marker".into(),
                href: Some("/ui/compare?at=5&window=1h".into()),
            }],
        )
        .into_string();
        assert!(
            linked.contains(
                r#"<a href="/ui/compare?at=5&amp;window=1h"><line class="marker-hit" x1="120.0""#
            ),
            "{linked}"
        );
        assert!(
            linked.contains(r#"<line class="marker" x1="120.0" y1="0" x2="120.0" y2="24"><title>marker</title></line></a>"#),
            "{linked}"
        );
    }
}
