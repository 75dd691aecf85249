//! `<stem>.svg`: latency by percentile, the plot HdrHistogram tools draw,
//! as one self-contained SVG the Markdown embeds. The x axis is
//! `log10(1 / (1 - percentile))`, so 90%, 99%, 99.9%, ... are evenly spaced
//! and the tail gets as much room as the median; the y axis is linear in ms.
//! Points are the same percentile ticks as the `.hgrm` files.
//!
//! The frame, gridlines, axis titles and legend are drawn by the helpers
//! below, which the partition sweep's throughput plot (`sweep.rs`) shares.

use hdrhistogram::Histogram;

use super::format::escape_xml;
use super::hgrm::{percentile_points, MICROSECONDS_PER_MILLISECOND};
use crate::loadgen::results::BenchResults;

pub(super) const WIDTH: f64 = 720.0;
pub(super) const HEIGHT: f64 = 420.0;
pub(super) const PLOT_LEFT: f64 = 72.0;
pub(super) const PLOT_RIGHT: f64 = WIDTH - 36.0;
pub(super) const PLOT_TOP: f64 = 44.0;
pub(super) const PLOT_BOTTOM: f64 = HEIGHT - 56.0;
/// The x axis ends at 99.999% (five nines, `log10(1 / 1e-5)`), where the
/// HdrHistogram plotter ends by default; higher percentiles and the max are
/// drawn at the right edge.
const NINES_MAX: f64 = 5.0;
/// Roughly this many y gridlines.
const Y_TICKS_TARGET: f64 = 5.0;

/// (series name, colour, histogram) of each line; colours stay readable for
/// the common red-green colour blindness.
fn series(results: &BenchResults) -> [(&'static str, &'static str, &Histogram<u64>); 2] {
    let measurements = &results.measurements;
    [
        ("publish", "#1f77b4", &measurements.publish_latency_us),
        ("end-to-end", "#ff7f0e", &measurements.end_to_end_latency_us),
    ]
}

fn x_of_quantile(quantile: f64) -> f64 {
    let nines = if quantile >= 1.0 {
        NINES_MAX
    } else {
        (1.0 / (1.0 - quantile)).log10().clamp(0.0, NINES_MAX)
    };
    PLOT_LEFT + nines / NINES_MAX * (PLOT_RIGHT - PLOT_LEFT)
}

/// The y coordinate of `value` on a linear axis from 0 to `axis_max`.
pub(super) fn y_of(value: f64, axis_max: f64) -> f64 {
    PLOT_BOTTOM - value / axis_max * (PLOT_BOTTOM - PLOT_TOP)
}

/// A round y-axis top and gridline step (1, 2 or 5 times a power of ten)
/// covering `max`; 1 when there is nothing to show.
pub(super) fn y_axis(max: f64) -> (f64, f64) {
    if !(max.is_finite() && max > 0.0) {
        return (1.0, 0.2);
    }
    let raw_step = max / Y_TICKS_TARGET;
    let magnitude = 10f64.powf(raw_step.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|multiple| multiple * magnitude)
        .find(|step| *step >= raw_step)
        .unwrap_or(10.0 * magnitude);
    ((max / step).ceil() * step, step)
}

/// Enough decimals to tell gridlines `step` apart.
pub(super) fn tick_label(value: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{value:.decimals$}")
}

/// The `<svg>` element with its title (also drawn at the top) and a white
/// background; finish it with `</svg>`.
pub(super) fn open_plot(title: &str) -> String {
    let title = escape_xml(title);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <title>{title}</title>\n\
         <rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{title}</text>\n",
        WIDTH / 2.0
    )
}

/// Horizontal gridlines with their labels, every `step` from 0 to `axis_max`.
pub(super) fn push_y_grid(svg: &mut String, axis_max: f64, step: f64) {
    let ticks = (axis_max / step).round() as usize;
    for tick in 0..=ticks {
        let value = tick as f64 * step;
        let y = y_of(value, axis_max);
        svg.push_str(&format!(
            "<line x1=\"{PLOT_LEFT}\" y1=\"{y:.1}\" x2=\"{PLOT_RIGHT}\" y2=\"{y:.1}\" \
             stroke=\"#e0e0e0\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            PLOT_LEFT - 6.0,
            y + 4.0,
            tick_label(value, step)
        ));
    }
}

/// A vertical gridline at `x` labelled under the plot.
pub(super) fn push_x_tick(svg: &mut String, x: f64, label: &str) {
    svg.push_str(&format!(
        "<line x1=\"{x:.1}\" y1=\"{PLOT_TOP}\" x2=\"{x:.1}\" y2=\"{PLOT_BOTTOM}\" \
         stroke=\"#e0e0e0\"/>\n<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
        PLOT_BOTTOM + 18.0,
        escape_xml(label)
    ));
}

/// The plot's frame and the two axis titles.
pub(super) fn push_frame(svg: &mut String, x_title: &str, y_title: &str) {
    svg.push_str(&format!(
        "<rect x=\"{PLOT_LEFT}\" y=\"{PLOT_TOP}\" width=\"{}\" height=\"{}\" fill=\"none\" \
         stroke=\"#808080\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n\
         <text transform=\"translate(18 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
        PLOT_RIGHT - PLOT_LEFT,
        PLOT_BOTTOM - PLOT_TOP,
        (PLOT_LEFT + PLOT_RIGHT) / 2.0,
        HEIGHT - 14.0,
        escape_xml(x_title),
        (PLOT_TOP + PLOT_BOTTOM) / 2.0,
        escape_xml(y_title)
    ));
}

/// A polyline through `points` (already in plot coordinates), tagged with
/// its series name, dashed when it may lie on top of another; nothing for
/// no points.
pub(super) fn push_line(
    svg: &mut String,
    name: &str,
    colour: &str,
    dashed: bool,
    points: &[(f64, f64)],
) {
    if points.is_empty() {
        return;
    }
    let points: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    svg.push_str(&format!(
        "<polyline data-series=\"{}\" fill=\"none\" stroke=\"{colour}\" \
         stroke-width=\"2\" stroke-linejoin=\"round\"{} points=\"{}\"/>\n",
        escape_xml(name),
        if dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        },
        points.join(" ")
    ));
}

/// Legend entry number `index` (from 0) of a legend whose first line starts
/// at (`left`, `top`): a short stroke in `colour`, then `text`.
pub(super) fn push_legend(
    svg: &mut String,
    left: f64,
    top: f64,
    index: usize,
    colour: &str,
    text: &str,
) {
    let y = top + 18.0 * index as f64;
    svg.push_str(&format!(
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" \
         stroke-width=\"2\"/>\n<text x=\"{:.1}\" y=\"{y:.1}\">{}</text>\n",
        left,
        y - 4.0,
        left + 24.0,
        y - 4.0,
        left + 30.0,
        escape_xml(text)
    ));
}

pub(super) fn render_latency_plot(results: &BenchResults) -> String {
    let lines = series(results);
    let max_ms = lines
        .iter()
        .filter(|(_, _, histogram)| !histogram.is_empty())
        .map(|(_, _, histogram)| histogram.max() as f64 / MICROSECONDS_PER_MILLISECOND)
        .fold(0.0, f64::max);
    let (axis_max_ms, step_ms) = y_axis(max_ms);

    let mut svg = open_plot(&format!(
        "corelog bench {}: latency by percentile",
        results.scenario.name
    ));
    push_y_grid(&mut svg, axis_max_ms, step_ms);
    for (quantile, label) in [
        (0.0, "0%"),
        (0.9, "90%"),
        (0.99, "99%"),
        (0.999, "99.9%"),
        (0.9999, "99.99%"),
        (0.99999, "99.999%"),
    ] {
        push_x_tick(&mut svg, x_of_quantile(quantile), label);
    }
    push_frame(&mut svg, "percentile", "latency (ms)");

    // One line per histogram, then the legend in the top-left corner, where
    // latency curves (flat, then rising to the right) leave room.
    for (index, (name, colour, histogram)) in lines.iter().enumerate() {
        let points: Vec<(f64, f64)> = percentile_points(histogram)
            .iter()
            .map(|point| {
                let latency_ms = point.value_us as f64 / MICROSECONDS_PER_MILLISECOND;
                (x_of_quantile(point.quantile), y_of(latency_ms, axis_max_ms))
            })
            .collect();
        push_line(&mut svg, name, colour, false, &points);
        let legend = if histogram.is_empty() {
            format!("{name}: no samples")
        } else {
            format!("{name} ({} samples)", histogram.len())
        };
        push_legend(
            &mut svg,
            PLOT_LEFT + 12.0,
            PLOT_TOP + 18.0,
            index,
            colour,
            &legend,
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::report::test_support::{empty_results, synthetic_results};

    #[test]
    fn plots_both_series_with_a_legend() {
        let svg = render_latency_plot(&synthetic_results());
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("<polyline data-series=\"publish\""));
        assert!(svg.contains("<polyline data-series=\"end-to-end\""));
        assert!(svg.contains("publish (10000 samples)"));
        assert!(svg.contains("end-to-end (9990 samples)"));
        assert!(svg.contains(">99.999%</text>") && svg.contains(">latency (ms)</text>"));
        // Every element that is opened is closed (a cheap well-formedness check).
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn an_empty_histogram_draws_no_line_but_says_so() {
        let svg = render_latency_plot(&empty_results());
        assert!(svg.starts_with("<svg"));
        assert!(!svg.contains("<polyline"));
        assert!(svg.contains("end-to-end: no samples"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn axes_are_log_percentile_and_round_milliseconds() {
        assert_eq!(x_of_quantile(0.0), PLOT_LEFT);
        assert_eq!(x_of_quantile(1.0), PLOT_RIGHT);
        let step = (PLOT_RIGHT - PLOT_LEFT) / NINES_MAX;
        assert!((x_of_quantile(0.99) - (PLOT_LEFT + 2.0 * step)).abs() < 1e-9);
        assert_eq!(y_axis(0.0), (1.0, 0.2));
        assert_eq!(y_axis(99.9), (100.0, 20.0));
        let (axis_max_ms, step_ms) = y_axis(0.7);
        assert!((axis_max_ms - 0.8).abs() < 1e-9 && (step_ms - 0.2).abs() < 1e-9);
        assert_eq!(tick_label(0.2, 0.2), "0.2");
        assert_eq!(tick_label(40.0, 20.0), "40");
    }
}
