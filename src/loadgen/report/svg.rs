//! `<stem>.svg`: latency by percentile, the plot HdrHistogram tools draw,
//! as one self-contained SVG the Markdown embeds. The x axis is
//! `log10(1 / (1 - percentile))`, so 90%, 99%, 99.9%, ... are evenly spaced
//! and the tail gets as much room as the median; the y axis is linear in ms.
//! Points are the same percentile ticks as the `.hgrm` files.

use hdrhistogram::Histogram;

use super::format::escape_xml;
use super::hgrm::{percentile_points, MICROSECONDS_PER_MILLISECOND};
use crate::loadgen::results::BenchResults;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const PLOT_LEFT: f64 = 72.0;
const PLOT_RIGHT: f64 = WIDTH - 36.0;
const PLOT_TOP: f64 = 44.0;
const PLOT_BOTTOM: f64 = HEIGHT - 56.0;
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

fn y_of_ms(latency_ms: f64, axis_max_ms: f64) -> f64 {
    PLOT_BOTTOM - latency_ms / axis_max_ms * (PLOT_BOTTOM - PLOT_TOP)
}

/// A round y-axis top and gridline step (1, 2 or 5 times a power of ten)
/// covering `max_ms`; 1 ms when there is nothing to show.
fn y_axis(max_ms: f64) -> (f64, f64) {
    if !(max_ms.is_finite() && max_ms > 0.0) {
        return (1.0, 0.2);
    }
    let raw_step = max_ms / Y_TICKS_TARGET;
    let magnitude = 10f64.powf(raw_step.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|multiple| multiple * magnitude)
        .find(|step| *step >= raw_step)
        .unwrap_or(10.0 * magnitude);
    ((max_ms / step).ceil() * step, step)
}

/// Enough decimals to tell gridlines `step` apart.
fn tick_label(value_ms: f64, step_ms: f64) -> String {
    let decimals = (-step_ms.log10().floor()).max(0.0) as usize;
    format!("{value_ms:.decimals$}")
}

pub(super) fn render_latency_plot(results: &BenchResults) -> String {
    let lines = series(results);
    let max_ms = lines
        .iter()
        .filter(|(_, _, histogram)| !histogram.is_empty())
        .map(|(_, _, histogram)| histogram.max() as f64 / MICROSECONDS_PER_MILLISECOND)
        .fold(0.0, f64::max);
    let (axis_max_ms, step_ms) = y_axis(max_ms);

    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    );
    let title = format!(
        "corelog bench {}: latency by percentile",
        escape_xml(&results.scenario.name)
    );
    svg.push_str(&format!("<title>{title}</title>\n"));
    svg.push_str(&format!(
        "<rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{title}</text>\n",
        WIDTH / 2.0
    ));

    // Gridlines and tick labels.
    let y_ticks = (axis_max_ms / step_ms).round() as usize;
    for tick in 0..=y_ticks {
        let value_ms = tick as f64 * step_ms;
        let y = y_of_ms(value_ms, axis_max_ms);
        svg.push_str(&format!(
            "<line x1=\"{PLOT_LEFT}\" y1=\"{y:.1}\" x2=\"{PLOT_RIGHT}\" y2=\"{y:.1}\" \
             stroke=\"#e0e0e0\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            PLOT_LEFT - 6.0,
            y + 4.0,
            tick_label(value_ms, step_ms)
        ));
    }
    for (quantile, label) in [
        (0.0, "0%"),
        (0.9, "90%"),
        (0.99, "99%"),
        (0.999, "99.9%"),
        (0.9999, "99.99%"),
        (0.99999, "99.999%"),
    ] {
        let x = x_of_quantile(quantile);
        svg.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"{PLOT_TOP}\" x2=\"{x:.1}\" y2=\"{PLOT_BOTTOM}\" \
             stroke=\"#e0e0e0\"/>\n<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>\n",
            PLOT_BOTTOM + 18.0
        ));
    }
    svg.push_str(&format!(
        "<rect x=\"{PLOT_LEFT}\" y=\"{PLOT_TOP}\" width=\"{}\" height=\"{}\" fill=\"none\" \
         stroke=\"#808080\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">percentile</text>\n\
         <text transform=\"translate(18 {:.1}) rotate(-90)\" text-anchor=\"middle\">latency (ms)</text>\n",
        PLOT_RIGHT - PLOT_LEFT,
        PLOT_BOTTOM - PLOT_TOP,
        (PLOT_LEFT + PLOT_RIGHT) / 2.0,
        HEIGHT - 14.0,
        (PLOT_TOP + PLOT_BOTTOM) / 2.0
    ));

    // One line per histogram, then the legend in the top-left corner, where
    // latency curves (flat, then rising to the right) leave room.
    for (index, (name, colour, histogram)) in lines.iter().enumerate() {
        let points: Vec<String> = percentile_points(histogram)
            .iter()
            .map(|point| {
                let latency_ms = point.value_us as f64 / MICROSECONDS_PER_MILLISECOND;
                format!(
                    "{:.1},{:.1}",
                    x_of_quantile(point.quantile),
                    y_of_ms(latency_ms, axis_max_ms)
                )
            })
            .collect();
        if !points.is_empty() {
            svg.push_str(&format!(
                "<polyline data-series=\"{name}\" fill=\"none\" stroke=\"{colour}\" \
                 stroke-width=\"2\" stroke-linejoin=\"round\" points=\"{}\"/>\n",
                points.join(" ")
            ));
        }
        let legend_y = PLOT_TOP + 18.0 + 18.0 * index as f64;
        let legend = if histogram.is_empty() {
            format!("{name}: no samples")
        } else {
            format!("{name} ({} samples)", histogram.len())
        };
        svg.push_str(&format!(
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" \
             stroke-width=\"2\"/>\n<text x=\"{:.1}\" y=\"{:.1}\">{legend}</text>\n",
            PLOT_LEFT + 12.0,
            legend_y - 4.0,
            PLOT_LEFT + 36.0,
            legend_y - 4.0,
            PLOT_LEFT + 42.0,
            legend_y
        ));
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
