//! `.hgrm` files: a histogram's percentile distribution in the text format
//! HdrHistogram's Java `outputPercentileDistribution(out, 1000.0)` prints and
//! its plotter (hdrhistogram.github.io/HdrHistogram/plotFiles.html) and
//! wrk2/OMB tooling read: values in milliseconds with 3 decimals (the
//! histograms hold microseconds), 5 percentile ticks per half-distance to
//! 100%, and the `#[Mean ...]`, `#[Max ...]`, `#[Buckets ...]` footer.

use hdrhistogram::Histogram;

/// Java's default for `outputPercentileDistribution`; also the plot's points.
const PERCENTILE_TICKS_PER_HALF_DISTANCE: u32 = 5;
/// The files are in ms, the histograms in µs.
pub(super) const MICROSECONDS_PER_MILLISECOND: f64 = 1000.0;

/// One row of the distribution: the latency at or below which `quantile` of
/// the `total_count` samples so far fall.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct PercentilePoint {
    pub value_us: u64,
    pub quantile: f64,
    pub total_count: u64,
}

/// The rows `outputPercentileDistribution` would print, ending at quantile
/// 1.0 (the max); empty for an empty histogram.
pub(super) fn percentile_points(histogram: &Histogram<u64>) -> Vec<PercentilePoint> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let mut total_count = 0u64;
    histogram
        .iter_quantiles(PERCENTILE_TICKS_PER_HALF_DISTANCE)
        .map(|step| {
            total_count += step.count_since_last_iteration();
            PercentilePoint {
                value_us: step.value_iterated_to(),
                quantile: step.quantile_iterated_to(),
                total_count,
            }
        })
        .collect()
}

/// The whole `.hgrm` text. An empty histogram gets the header and a footer
/// of zeros, so the Markdown's link still leads somewhere readable.
pub(super) fn render_percentile_distribution(histogram: &Histogram<u64>) -> String {
    let to_ms = |value_us: f64| value_us / MICROSECONDS_PER_MILLISECOND;
    let mut text = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for point in percentile_points(histogram) {
        let value_ms = to_ms(point.value_us as f64);
        if point.quantile < 1.0 {
            text.push_str(&format!(
                "{value_ms:12.3} {:2.12} {:10} {:14.2}\n",
                point.quantile,
                point.total_count,
                1.0 / (1.0 - point.quantile)
            ));
        } else {
            // Java leaves out the infinite 1/(1-1) on the last row.
            text.push_str(&format!(
                "{value_ms:12.3} {:2.12} {:10}\n",
                point.quantile, point.total_count
            ));
        }
    }
    let max_ms = if histogram.is_empty() {
        0.0
    } else {
        to_ms(histogram.max() as f64)
    };
    text.push_str(&format!(
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n",
        to_ms(histogram.mean()),
        to_ms(histogram.stdev())
    ));
    text.push_str(&format!(
        "#[Max     = {max_ms:12.3}, Total count    = {:12}]\n",
        histogram.len()
    ));
    text.push_str(&format!(
        "#[Buckets = {:12}, SubBuckets     = {:12}]\n",
        histogram.buckets(),
        sub_bucket_count(histogram.sigfig())
    ));
    text
}

/// HdrHistogram's sub-bucket count: the power of two that resolves single
/// units up to 2 * 10^sigfig (the crate keeps it private).
fn sub_bucket_count(significant_figures: u8) -> u32 {
    let largest_single_unit_value = 2 * 10_u32.pow(u32::from(significant_figures));
    largest_single_unit_value.next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::report::test_support::synthetic_results;
    use crate::loadgen::results::new_latency_histogram;

    /// (value ms, percentile, total count) of every data row.
    fn rows(text: &str) -> Vec<(f64, f64, u64)> {
        text.lines()
            .skip(2)
            .take_while(|line| !line.starts_with('#'))
            .map(|line| {
                let columns: Vec<&str> = line.split_whitespace().collect();
                assert!(matches!(columns.len(), 3 | 4), "{line}");
                (
                    columns[0].parse().expect("value"),
                    columns[1].parse().expect("percentile"),
                    columns[2].parse().expect("count"),
                )
            })
            .collect()
    }

    #[test]
    fn matches_hdrhistograms_percentile_distribution_format() {
        let results = synthetic_results();
        let histogram = &results.measurements.publish_latency_us;
        let text = render_percentile_distribution(histogram);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        let footer = &lines[lines.len() - 3..];
        assert!(footer[0].starts_with("#[Mean    = ") && footer[0].contains(", StdDeviation   = "));
        assert!(footer[1].starts_with("#[Max     = ") && footer[1].ends_with("10000]"));
        assert_eq!(
            footer[2],
            "#[Buckets =           16, SubBuckets     =         2048]"
        );

        let rows = rows(&text);
        assert!(rows.len() > 20, "{text}");
        assert!(
            rows.windows(2).all(|pair| pair[0].1 < pair[1].1),
            "percentiles increase"
        );
        assert!(
            rows.windows(2).all(|pair| pair[0].0 <= pair[1].0),
            "values never decrease"
        );
        assert!(
            rows.windows(2).all(|pair| pair[0].2 <= pair[1].2),
            "counts never decrease"
        );
        let last = rows.last().expect("rows");
        assert_eq!((last.1, last.2), (1.0, 10_000));
        assert_eq!(last.0, histogram.max() as f64 / 1000.0, "milliseconds");
        let median = rows.iter().find(|row| row.1 >= 0.5).expect("median row");
        assert_eq!(median.0, histogram.value_at_quantile(0.5) as f64 / 1000.0);
        // Three decimals, as the plotter expects.
        assert!(lines[2]
            .split_whitespace()
            .next()
            .expect("value")
            .ends_with(|c: char| c.is_ascii_digit()));
        assert_eq!(
            lines[2]
                .split_whitespace()
                .next()
                .expect("value")
                .split('.')
                .nth(1)
                .map(str::len),
            Some(3)
        );
    }

    #[test]
    fn an_empty_histogram_has_header_and_footer_only() {
        let text = render_percentile_distribution(&new_latency_histogram());
        assert!(rows(&text).is_empty());
        assert!(text.contains("#[Max     =        0.000, Total count    =            0]"));
        assert!(!text.contains("NaN"));
    }

    #[test]
    fn sub_buckets_match_hdrhistogram() {
        assert_eq!(sub_bucket_count(3), 2048);
        assert_eq!(sub_bucket_count(2), 256);
        assert_eq!(sub_bucket_count(5), 262_144);
    }
}
