//! The page's SVG: the average active sessions (AAS) stacked by wait
//! class over the range, its legend, and a row's wait profile as one
//! small stacked bar. Colours are CSS classes (`aas-cpu`, `aas-io`, …):
//! the pages' content security policy allows no inline style, and one
//! class per wait class keeps the chart, the legend and the bars the same.

use maud::{Markup, html};

use crate::pg::ash::WaitClass;
use crate::pg::ash::answer::{AasPoint, ClassTime};

/// The chart's box, CSS pixels.
const WIDTH: f64 = 720.0;
/// The chart's height.
const HEIGHT: f64 = 180.0;
/// A profile bar's width.
const BAR_WIDTH: f64 = 120.0;

/// The CSS class of a wait class' colour.
pub fn colour(class: &str) -> String {
    format!("aas-{}", class.to_ascii_lowercase())
}

/// The AAS of `class` in `classes` (0 when absent).
fn aas_of(classes: &[ClassTime], class: WaitClass) -> f64 {
    classes
        .iter()
        .filter(|c| c.class == class.as_str())
        .map(|c| c.aas)
        .sum()
}

/// The stacked chart of `series` from `since` to `until` (Unix seconds),
/// one band per wait class in [`WaitClass::ALL`]'s order, CPU at the
/// bottom; a step without samples is a gap at zero.
pub fn stacked(series: &[AasPoint], since: i64, until: i64, step: u64) -> Markup {
    let span = (until - since).max(1) as f64;
    let step = step.max(1) as f64;
    let max = series
        .iter()
        .map(|p| p.classes.iter().map(|c| c.aas).sum::<f64>())
        .fold(0.0f64, f64::max);
    let top = if max > 0.0 { max } else { 1.0 };
    let x = |at: f64| ((at - since as f64) / span * WIDTH).clamp(0.0, WIDTH);
    let y = |aas: f64| HEIGHT - (aas / top) * (HEIGHT - 4.0);
    let mut bands: Vec<(WaitClass, String)> = Vec::new();
    let mut below = vec![0.0f64; series.len()];
    for class in WaitClass::ALL {
        if series.iter().all(|p| aas_of(&p.classes, class) == 0.0) {
            continue;
        }
        let above: Vec<f64> = series
            .iter()
            .zip(&below)
            .map(|(p, b)| b + aas_of(&p.classes, class))
            .collect();
        // Each point covers its step: a flat top from its start to its
        // end, so a band's area is its database time.
        let mut points = Vec::new();
        for (p, a) in series.iter().zip(&above) {
            let start = p.at as f64;
            points.push(format!("{:.1},{:.1}", x(start), y(*a)));
            points.push(format!("{:.1},{:.1}", x(start + step), y(*a)));
        }
        for (p, b) in series.iter().zip(&below).rev() {
            let start = p.at as f64;
            points.push(format!("{:.1},{:.1}", x(start + step), y(*b)));
            points.push(format!("{:.1},{:.1}", x(start), y(*b)));
        }
        bands.push((class, points.join(" ")));
        below = above;
    }
    let label = format!(
        "Average active sessions by wait class, at most {}",
        super::view::aas_text(max)
    );
    html! {
        svg.aas-chart width=(WIDTH) height=(HEIGHT) viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
            role="img" aria-label=(label) {
            title { (label) }
            line.aas-axis x1="0" y1=(HEIGHT - 0.5) x2=(WIDTH) y2=(HEIGHT - 0.5) {}
            @for (class, points) in &bands {
                polygon class=(colour(class.as_str())) points=(points) { title { (class.as_str()) } }
            }
            text.aas-max x="4" y="12" { (super::view::aas_text(top)) " AAS" }
        }
    }
}

/// A swatch of `class`' colour, for the legend.
pub fn swatch(class: &str) -> Markup {
    html! {
        svg.swatch width="10" height="10" viewBox="0 0 10 10" aria-hidden="true" {
            rect class=(colour(class)) x="0" y="0" width="10" height="10" {}
        }
    }
}

/// A row's wait profile: its classes side by side, each as wide as its
/// share of the row's time.
pub fn profile(waits: &[ClassTime]) -> Markup {
    let total: f64 = waits.iter().map(|w| w.aas).sum();
    let mut left = 0.0;
    let mut parts = Vec::new();
    if total > 0.0 {
        for wait in waits {
            let width = wait.aas / total * BAR_WIDTH;
            parts.push((wait.class.as_str(), left, width, wait.aas / total));
            left += width;
        }
    }
    let label: Vec<String> = parts
        .iter()
        .map(|(class, _, _, share)| format!("{class} {:.0} %", share * 100.0))
        .collect();
    let label = label.join(", ");
    html! {
        svg.profile width=(BAR_WIDTH) height="8" viewBox=(format!("0 0 {BAR_WIDTH} 8")) role="img" aria-label=(label) {
            title { (label) }
            @for (class, x, width, _) in &parts {
                rect class=(colour(class)) x=(format!("{x:.1}")) y="0" width=(format!("{width:.1}")) height="8" {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(at: i64, classes: &[(&str, f64)]) -> AasPoint {
        AasPoint {
            at,
            classes: classes
                .iter()
                .map(|(class, aas)| ClassTime {
                    class: (*class).to_owned(),
                    aas: *aas,
                })
                .collect(),
        }
    }

    #[test]
    fn bands_stack_cpu_first_and_lock_above_it() {
        let svg = stacked(
            &[
                point(0, &[("CPU", 2.0), ("Lock", 1.0)]),
                point(10, &[("CPU", 2.0), ("Lock", 1.0)]),
            ],
            0,
            20,
            10,
        )
        .into_string();
        // CPU from 0 to 2 of 3 (y 180 → 180 − 176 × 2/3), Lock from there to the top (4).
        assert!(
            svg.contains(r#"<polygon class="aas-cpu" points="0.0,62.7 360.0,62.7 360.0,62.7 720.0,62.7 720.0,180.0 360.0,180.0 360.0,180.0 0.0,180.0">"#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"<polygon class="aas-lock" points="0.0,4.0 "#),
            "{svg}"
        );
        assert!(!svg.contains("aas-io"), "{svg}");
        let bar = profile(&[
            ClassTime {
                class: "CPU".into(),
                aas: 3.0,
            },
            ClassTime {
                class: "IO".into(),
                aas: 1.0,
            },
        ])
        .into_string();
        assert!(
            bar.contains(r#"<rect class="aas-io" x="90.0" y="0" width="30.0""#),
            "{bar}"
        );
        assert!(bar.contains("CPU 75 %, IO 25 %"), "{bar}");
    }
}
