//! Maven Surefire's XML reports (`<reports-dir>/TEST-*.xml`) read back by the driver of the
//! Maven suites (`maven.rs`): one line per JUnit test case with its verdict, time and failure
//! message, and the totals, so that `cargo test` output says which Java test failed and why
//! without opening the reports. Surefire's format is regular enough that no XML library is
//! needed.

use std::fs;
use std::path::Path;

/// How one test case ended.
pub enum Outcome {
    Passed,
    Failed(String),
    Error(String),
    Skipped,
}

/// One `<testcase>` of a Surefire report.
pub struct TestCase {
    /// `<class>.<method or display name>`.
    pub name: String,
    pub seconds: String,
    pub outcome: Outcome,
}

/// Every test case in `<reports>/TEST-*.xml`, sorted by name; none when the directory is
/// missing (Maven failed before the tests ran).
pub fn test_cases(reports: &Path) -> Vec<TestCase> {
    let Ok(entries) = fs::read_dir(reports) else {
        return Vec::new();
    };
    let mut cases = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().to_string();
        if !(file_name.starts_with("TEST-") && file_name.ends_with(".xml")) {
            continue;
        }
        let Ok(xml) = fs::read_to_string(entry.path()) else {
            continue;
        };
        cases.extend(parse_test_cases(&xml));
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

/// The `<testcase>` elements of one report, with their first failure, error or skip.
fn parse_test_cases(xml: &str) -> Vec<TestCase> {
    let mut cases = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<testcase ") {
        let element = &rest[start..];
        let end = element[1..]
            .find("<testcase ")
            .map_or(element.len(), |next| next + 1);
        let (case, tail) = element.split_at(end);
        rest = tail;
        let tag = &case[..case.find('>').unwrap_or(case.len())];
        let class = attribute(tag, "classname").unwrap_or_default();
        let method = attribute(tag, "name").unwrap_or_default();
        let outcome = if let Some(message) = child_message(case, "<failure") {
            Outcome::Failed(message)
        } else if let Some(message) = child_message(case, "<error") {
            Outcome::Error(message)
        } else if case.contains("<skipped") {
            Outcome::Skipped
        } else {
            Outcome::Passed
        };
        cases.push(TestCase {
            name: format!("{class}.{method}"),
            seconds: attribute(tag, "time").unwrap_or_default(),
            outcome,
        });
    }
    cases
}

/// The `message` of the first `marker` element (`<failure`, `<error`) inside `case`.
fn child_message(case: &str, marker: &str) -> Option<String> {
    let start = case.find(marker)?;
    let end = case[start..]
        .find('>')
        .map_or(case.len(), |end| start + end);
    Some(attribute(&case[start..end], "message").unwrap_or_default())
}

/// The unescaped value of `name="..."` in one XML start tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let length = tag[start..].find('"')?;
    Some(unescape_xml(&tag[start..start + length]))
}

fn unescape_xml(text: &str) -> String {
    text.replace("&#10;", " ")
        .replace("&#13;", "")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// One line per test case (with its failure message, cut to a few hundred characters), then
/// the totals; with `problems_only`, the passing cases are left out.
pub fn render_summary(cases: &[TestCase], problems_only: bool) -> String {
    /// A failure message is cut here; the full one is in Maven's output and the report.
    const MESSAGE_CHARS: usize = 600;
    let mut text = String::new();
    let (mut passed, mut failed, mut errors, mut skipped) = (0, 0, 0, 0);
    for case in cases {
        let (verdict, message) = match &case.outcome {
            Outcome::Passed => {
                passed += 1;
                if problems_only {
                    continue;
                }
                ("PASS", None)
            }
            Outcome::Failed(message) => {
                failed += 1;
                ("FAIL", Some(message))
            }
            Outcome::Error(message) => {
                errors += 1;
                ("ERROR", Some(message))
            }
            Outcome::Skipped => {
                skipped += 1;
                ("SKIPPED", None)
            }
        };
        text.push_str(&format!(
            "  {verdict:<7} {} ({} s)\n",
            case.name, case.seconds
        ));
        if let Some(message) = message {
            let message: String = message.chars().take(MESSAGE_CHARS).collect();
            text.push_str(&format!("          {message}\n"));
        }
    }
    text.push_str(&format!(
        "surefire totals: {} tests; {passed} passed, {failed} failed, {errors} errors, \
         {skipped} skipped\n",
        cases.len()
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cases_are_read_with_their_outcome_and_unescaped_message() {
        let xml = r#"<testsuite>
  <testcase name="counts" classname="dev.corelog.streams.StatefulCountTest" time="9.7"/>
  <testcase name="restart stopped by KILL" classname="dev.corelog.streams.ExactlyOnceRestartTest" time="21.8">
    <failure message="expected: &lt;[a=1]&gt; but was: &lt;[a=1, a=1]&gt;" type="org.opentest4j.AssertionFailedError">trace</failure>
  </testcase>
  <testcase name="skipped" classname="X" time="0"><skipped/></testcase>
</testsuite>"#;
        let cases = parse_test_cases(xml);
        assert_eq!(cases.len(), 3);
        assert_eq!(
            cases[0].name,
            "dev.corelog.streams.StatefulCountTest.counts"
        );
        assert!(matches!(cases[0].outcome, Outcome::Passed));
        assert!(
            matches!(&cases[1].outcome, Outcome::Failed(message) if message == "expected: <[a=1]> but was: <[a=1, a=1]>")
        );
        assert!(matches!(cases[2].outcome, Outcome::Skipped));
        let summary = render_summary(&cases, true);
        assert!(!summary.contains("StatefulCountTest"), "{summary}");
        assert!(
            summary.contains("1 passed, 1 failed, 0 errors, 1 skipped"),
            "{summary}"
        );
    }
}
