//! How `corelog consume` prints a record: a `--format` template (kcat-style
//! `%` placeholders and `\n`/`\t` escapes), parsed once into pieces, or one
//! JSON object per line with `--json`. Pure functions, unit-tested here.

use serde_json::{json, Value};

use crate::cli::records::{FetchedRecord, Header};

/// The default `--format`: the value and a newline, as Kafka's console consumer.
pub const DEFAULT_FORMAT: &str = "%v\\n";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    Timestamp,
    Headers,
    KeyLength,
    ValueLength,
}

/// A parsed `--format` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFormat {
    pieces: Vec<Piece>,
}

impl RecordFormat {
    /// Parses `%t %p %o %k %v %T %h %K %S %%` and the escapes `\n \t \r \\`.
    pub fn parse(template: &str) -> Result<RecordFormat, String> {
        let mut pieces = Vec::new();
        let mut literal = Vec::new();
        let mut characters = template.chars();
        while let Some(character) = characters.next() {
            match character {
                '%' => {
                    let placeholder = match characters.next() {
                        Some('t') => Piece::Topic,
                        Some('p') => Piece::Partition,
                        Some('o') => Piece::Offset,
                        Some('k') => Piece::Key,
                        Some('v') => Piece::Value,
                        Some('T') => Piece::Timestamp,
                        Some('h') => Piece::Headers,
                        Some('K') => Piece::KeyLength,
                        Some('S') => Piece::ValueLength,
                        Some('%') => {
                            literal.push(b'%');
                            continue;
                        }
                        Some(other) => {
                            return Err(format!("unknown placeholder %{other} in --format"))
                        }
                        None => return Err("--format ends with a lone %".into()),
                    };
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(placeholder);
                }
                '\\' => {
                    let escaped = match characters.next() {
                        Some('n') => b'\n',
                        Some('t') => b'\t',
                        Some('r') => b'\r',
                        Some('\\') => b'\\',
                        Some(other) => return Err(format!("unknown escape \\{other} in --format")),
                        None => return Err("--format ends with a lone \\".into()),
                    };
                    literal.push(escaped);
                }
                other => {
                    let mut utf8 = [0u8; 4];
                    literal.extend_from_slice(other.encode_utf8(&mut utf8).as_bytes());
                }
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(RecordFormat { pieces })
    }

    /// Appends `record` as the template says. Keys and values are written as
    /// raw bytes; a null key or value prints nothing (its length prints -1).
    pub fn write(&self, out: &mut Vec<u8>, topic: &str, partition: i32, record: &FetchedRecord) {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(bytes) => out.extend_from_slice(bytes),
                Piece::Topic => out.extend_from_slice(topic.as_bytes()),
                Piece::Partition => out.extend_from_slice(partition.to_string().as_bytes()),
                Piece::Offset => out.extend_from_slice(record.offset.to_string().as_bytes()),
                Piece::Key => out.extend_from_slice(record.key.as_deref().unwrap_or_default()),
                Piece::Value => out.extend_from_slice(record.value.as_deref().unwrap_or_default()),
                Piece::Timestamp => {
                    out.extend_from_slice(record.timestamp_ms.to_string().as_bytes())
                }
                Piece::Headers => write_headers(out, &record.headers),
                Piece::KeyLength => out.extend_from_slice(length(record.key.as_deref()).as_bytes()),
                Piece::ValueLength => {
                    out.extend_from_slice(length(record.value.as_deref()).as_bytes())
                }
            }
        }
    }
}

fn length(bytes: Option<&[u8]>) -> String {
    bytes.map_or(-1, |bytes| bytes.len() as i64).to_string()
}

/// `k1=v1,k2=v2`; a header with a null value prints as its key alone.
fn write_headers(out: &mut Vec<u8>, headers: &[Header]) {
    for (index, header) in headers.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(header.key.as_bytes());
        if let Some(value) = &header.value {
            out.push(b'=');
            out.extend_from_slice(value);
        }
    }
}

/// One record as a JSON object (no newline). Keys, values and header values
/// are strings (bytes that are not UTF-8 are replaced with U+FFFD) or null;
/// headers are a list of `{"key", "value"}` so repeated keys survive.
pub fn json_record(topic: &str, partition: i32, record: &FetchedRecord) -> Value {
    let text = |bytes: Option<&[u8]>| match bytes {
        Some(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        None => Value::Null,
    };
    let headers: Vec<Value> = record
        .headers
        .iter()
        .map(|header| json!({"key": header.key, "value": text(header.value.as_deref())}))
        .collect();
    json!({
        "topic": topic,
        "partition": partition,
        "offset": record.offset,
        "timestamp": record.timestamp_ms,
        "key": text(record.key.as_deref()),
        "value": text(record.value.as_deref()),
        "headers": headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record() -> FetchedRecord {
        FetchedRecord {
            offset: 42,
            timestamp_ms: 1_700_000_000_000,
            key: Some(Bytes::from_static(b"user-1")),
            value: Some(Bytes::from_static(b"hello")),
            headers: vec![
                Header {
                    key: "trace".into(),
                    value: Some(Bytes::from_static(b"t1")),
                },
                Header {
                    key: "flag".into(),
                    value: None,
                },
            ],
        }
    }

    fn render(template: &str, record: &FetchedRecord) -> String {
        let format = RecordFormat::parse(template).expect("parses");
        let mut out = Vec::new();
        format.write(&mut out, "orders", 3, record);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn every_placeholder_renders() {
        assert_eq!(
            render("%t/%p@%o %k=%v %T [%h] %K %S 100%%\\n", &record()),
            "orders/3@42 user-1=hello 1700000000000 [trace=t1,flag] 6 5 100%\n"
        );
        assert_eq!(render(DEFAULT_FORMAT, &record()), "hello\n");
        assert_eq!(render("a\\tb\\\\c\\r", &record()), "a\tb\\c\r");
    }

    #[test]
    fn null_keys_and_values_print_empty_with_length_minus_one() {
        let mut nulls = record();
        nulls.key = None;
        nulls.value = None;
        nulls.headers.clear();
        assert_eq!(render("[%k][%v][%h] %K %S", &nulls), "[][][] -1 -1");
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(RecordFormat::parse("%x").is_err());
        assert!(RecordFormat::parse("abc%").is_err());
        assert!(RecordFormat::parse("\\q").is_err());
        assert!(RecordFormat::parse("abc\\").is_err());
        assert!(RecordFormat::parse("plain é text").is_ok());
    }

    #[test]
    fn json_keeps_every_field_and_null() {
        let mut keyless = record();
        keyless.key = None;
        let value = json_record("orders", 3, &keyless);
        assert_eq!(value["topic"], "orders");
        assert_eq!(value["partition"], 3);
        assert_eq!(value["offset"], 42);
        assert_eq!(value["timestamp"], 1_700_000_000_000i64);
        assert_eq!(value["key"], Value::Null);
        assert_eq!(value["value"], "hello");
        assert_eq!(value["headers"][0]["key"], "trace");
        assert_eq!(value["headers"][0]["value"], "t1");
        assert_eq!(value["headers"][1]["value"], Value::Null);
    }
}
