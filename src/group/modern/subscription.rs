//! What the group subscribes to: the union of its members' topic names and
//! the topics their server-side regexes match, and the metadata (id,
//! partition count) of those that exist. A change of either bumps the
//! group epoch, which makes the next heartbeat compute a new target
//! assignment (KIP-848: subscription changes, joins, leaves and topic
//! metadata changes all trigger a rebalance this way).
//!
//! Regexes are RE2 (the `regex` crate shares RE2's syntax and linear-time
//! matching; Kafka uses RE2/J) and must match a whole topic name. Kafka
//! resolves them asynchronously, at most every 10 s per group; we resolve
//! them synchronously against the topic view the caller passes, with the
//! same 10 s bound on re-resolving after the metadata changed.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;

use super::error::HeartbeatError;
use super::group::ConsumerGroup;
use super::messages::{TopicInfo, TopicView};
use super::records::{ConsumerGroupRecord, ResolvedRegex};
use super::{SUBSCRIBED_TOPIC_REGEX_BYTES_MAX, SUBSCRIBED_TOPIC_REGEX_COMPILED_BYTES_MAX};

/// Kafka's `REGEX_BATCH_REFRESH_INTERVAL_MS`: a group re-resolves its
/// regexes after a metadata change at most this often.
pub const REGEX_REFRESH_INTERVAL_MS: i64 = 10_000;

/// Compile a subscription regex so that it matches whole topic names.
pub(super) fn compile_regex(regex: &str) -> Result<Regex, HeartbeatError> {
    let invalid = |why: String| {
        HeartbeatError::InvalidRegularExpression(format!(
            "SubscribedTopicRegex `{regex}` is not a valid regular expression: {why}."
        ))
    };
    if regex.len() > SUBSCRIBED_TOPIC_REGEX_BYTES_MAX {
        return Err(invalid(format!(
            "longer than {SUBSCRIBED_TOPIC_REGEX_BYTES_MAX} bytes"
        )));
    }
    regex::RegexBuilder::new(&format!("^(?:{regex})$"))
        .size_limit(SUBSCRIBED_TOPIC_REGEX_COMPILED_BYTES_MAX)
        .build()
        .map_err(|error| invalid(error.to_string()))
}

impl ConsumerGroup {
    /// Regexes some member subscribes with.
    pub(super) fn regexes_in_use(&self) -> BTreeSet<String> {
        self.members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.clone())
            .collect()
    }

    /// Every topic name some member subscribes to, by name or regex.
    pub(super) fn subscribed_topic_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for member in self.members.values() {
            names.extend(member.subscribed_topic_names.iter().cloned());
            if let Some(resolved) = member
                .subscribed_topic_regex
                .as_ref()
                .and_then(|regex| self.resolved_regexes.get(regex))
            {
                names.extend(resolved.topics.iter().cloned());
            }
        }
        names
    }

    /// Bring regex resolutions and the subscription metadata up to date with
    /// the members and `topics`, appending (and applying) the records.
    /// Returns whether the group epoch must be bumped.
    pub(super) fn refresh_subscriptions(
        &mut self,
        topics: &dyn TopicView,
        now_ms: i64,
        records: &mut Vec<ConsumerGroupRecord>,
    ) -> bool {
        let mut bump = self.refresh_regexes(topics, now_ms, records);
        let metadata: BTreeMap<String, TopicInfo> = self
            .subscribed_topic_names()
            .into_iter()
            .filter_map(|name| topics.topic(&name).map(|topic| (name, topic)))
            .collect();
        if metadata != self.subscription_metadata {
            self.apply(
                ConsumerGroupRecord::SubscriptionMetadata(Some(metadata)),
                records,
            );
            bump = true;
        }
        bump
    }

    /// After a member left: drop regexes nobody uses and topics nobody
    /// subscribes to any more (no topic view needed: it can only shrink).
    pub(super) fn shrink_subscriptions(&mut self, records: &mut Vec<ConsumerGroupRecord>) {
        self.drop_unused_regexes(records);
        let names = self.subscribed_topic_names();
        let metadata: BTreeMap<String, TopicInfo> = self
            .subscription_metadata
            .iter()
            .filter(|(name, _)| names.contains(*name))
            .map(|(name, topic)| (name.clone(), *topic))
            .collect();
        if metadata != self.subscription_metadata {
            self.apply(
                ConsumerGroupRecord::SubscriptionMetadata(Some(metadata)),
                records,
            );
        }
    }

    fn drop_unused_regexes(&mut self, records: &mut Vec<ConsumerGroupRecord>) -> bool {
        let in_use = self.regexes_in_use();
        let unused: Vec<String> = self
            .resolved_regexes
            .keys()
            .filter(|regex| !in_use.contains(*regex))
            .cloned()
            .collect();
        let dropped_topics = unused.iter().any(|regex| {
            self.resolved_regexes
                .get(regex)
                .is_some_and(|r| !r.topics.is_empty())
        });
        for regex in unused {
            self.apply(
                ConsumerGroupRecord::RegularExpression { regex, value: None },
                records,
            );
        }
        dropped_topics
    }

    fn refresh_regexes(
        &mut self,
        topics: &dyn TopicView,
        now_ms: i64,
        records: &mut Vec<ConsumerGroupRecord>,
    ) -> bool {
        let mut bump = self.drop_unused_regexes(records);
        let version = topics.version();
        for regex in self.regexes_in_use() {
            let stale = match self.resolved_regexes.get(&regex) {
                None => true,
                Some(resolved) => {
                    resolved.version != version
                        && now_ms >= resolved.timestamp_ms + REGEX_REFRESH_INTERVAL_MS
                }
            };
            if !stale {
                continue;
            }
            // Validated when the member sent it; a regex that no longer
            // compiles (a stricter build) matches nothing.
            let mut matched = BTreeSet::new();
            if let Ok(compiled) = compile_regex(&regex) {
                topics.for_each_topic_name(&mut |name| {
                    if compiled.is_match(name) {
                        matched.insert(name.to_string());
                    }
                });
            }
            let changed = self
                .resolved_regexes
                .get(&regex)
                .is_none_or(|old| old.topics != matched);
            bump |= changed;
            let value = ResolvedRegex {
                topics: matched,
                version,
                timestamp_ms: now_ms,
            };
            self.apply(
                ConsumerGroupRecord::RegularExpression {
                    regex,
                    value: Some(value),
                },
                records,
            );
        }
        bump
    }
}
