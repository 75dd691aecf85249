//! Flags and output helpers shared by the admin and console tools (`topic`,
//! `group`, `produce`, `consume`): where the brokers are, and plain aligned
//! tables for people next to `--json` for scripts.

use clap::Args;

use crate::cli::kafka::{KafkaClient, ToolError};

/// Where to find the cluster.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Comma-separated bootstrap brokers, host:port (accepted before or after the subcommand;
    /// `--bootstrap-server` as Kafka's tools spell it).
    #[arg(
        long,
        visible_alias = "bootstrap-server",
        env = "CORELOG_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub brokers: String,
}

/// The topic a command acts on: positional, or `--topic` as Kafka's tools
/// spell it (`kafka-topics --describe --topic orders`).
#[derive(Debug, Clone, Args)]
pub struct TopicArg {
    /// The topic.
    #[arg(value_name = "TOPIC", required_unless_present = "topic_flag")]
    positional: Option<String>,
    /// The topic, as a flag instead of the positional argument.
    #[arg(
        long = "topic",
        id = "topic_flag",
        value_name = "TOPIC",
        conflicts_with = "positional"
    )]
    flag: Option<String>,
}

impl TopicArg {
    pub fn name(&self) -> &str {
        // clap requires exactly one of the two.
        self.positional
            .as_deref()
            .or(self.flag.as_deref())
            .unwrap_or_default()
    }
}

impl ConnectArgs {
    /// Connects to the first reachable bootstrap broker.
    pub fn connect(&self, client_id: &str) -> Result<KafkaClient, ToolError> {
        KafkaClient::connect(&self.brokers, client_id)
    }
}

/// Formats rows under a header as columns separated by two spaces, each as
/// wide as its widest cell (the last column is not padded).
pub fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if index < widths.len() {
                widths[index] = widths[index].max(cell.chars().count());
            } else {
                widths.push(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|cell| cell.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if index + 1 < row.len() {
                let padding = widths[index].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', padding));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Parses `key=value` (the value may contain `=`; the key may not be empty).
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected key=value, got '{text}'")),
    }
}

/// Runs `operation` on each item, printing each failure on stderr as it
/// happens when there are several items; returns the only error, or a summary
/// when several failed, so the exit code is non-zero if any did.
pub fn for_each_reporting<T>(
    items: &[T],
    what: &str,
    mut operation: impl FnMut(&T) -> Result<(), ToolError>,
) -> Result<(), ToolError> {
    let mut errors = Vec::new();
    for item in items {
        if let Err(error) = operation(item) {
            if items.len() > 1 {
                eprintln!("corelog: {error}");
            }
            errors.push(error);
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 if items.len() == 1 => Err(errors.remove(0)),
        failed => Err(ToolError::Usage(format!(
            "{failed} of {} {what} failed",
            items.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_to_the_widest_cell() {
        let table = format_table(
            &["TOPIC", "PARTITIONS"],
            &[
                vec!["orders".into(), "3".into()],
                vec!["a".into(), "12".into()],
            ],
        );
        assert_eq!(table, "TOPIC   PARTITIONS\norders  3\na       12\n");
    }

    #[test]
    fn key_values_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_key_value("retention.ms=1000").unwrap(),
            ("retention.ms".to_string(), "1000".to_string())
        );
        assert_eq!(parse_key_value("a=b=c").unwrap().1, "b=c");
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=x").is_err());
    }
}
