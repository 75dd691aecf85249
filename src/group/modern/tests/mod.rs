//! Deterministic scenarios of the KIP-848 consumer group: simulated time,
//! fixed topic ids, clients that behave like Kafka 4 consumers (they give
//! up revoked partitions on the next heartbeat), every record replayed
//! into a second group to check the round trip.

mod assignor_tests;
mod heartbeat_tests;
mod offset_tests;
mod random_tests;
mod rebalance_tests;
mod replay_tests;

use std::collections::BTreeSet;

use uuid::Uuid;

use super::*;

pub(super) const SESSION_MS: i64 = 45_000;
pub(super) const REBALANCE_MS: i32 = 30_000;

pub(super) fn topic_id(name: &str) -> Uuid {
    let seed = name.bytes().fold(0u128, |acc, b| acc * 131 + u128::from(b));
    Uuid::from_u128(seed + 1000)
}

/// Topics "a" (6 partitions) and "b" (3).
pub(super) fn topics() -> TopicTable {
    let mut table = TopicTable::default();
    table.put("a", topic_id("a"), 6);
    table.put("b", topic_id("b"), 3);
    table
}

pub(super) fn partitions(entries: &[(&str, &[i32])]) -> Assignment {
    entries
        .iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(name, p)| (topic_id(name), p.iter().copied().collect::<BTreeSet<i32>>()))
        .collect()
}

/// A group, its topics, the clock and every record it wrote.
pub(super) struct Harness {
    pub group: ConsumerGroup,
    pub topics: TopicTable,
    pub now_ms: i64,
    pub log: Vec<ConsumerGroupRecord>,
    next_generated_id: u32,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config(ConsumerGroupConfig::default())
    }

    pub fn with_config(config: ConsumerGroupConfig) -> Harness {
        Harness {
            group: ConsumerGroup::new("g1", config),
            topics: topics(),
            now_ms: 1_000,
            log: Vec::new(),
            next_generated_id: 0,
        }
    }

    pub fn send(&mut self, request: &HeartbeatRequest) -> HeartbeatResponse {
        self.next_generated_id += 1;
        let generated = format!("generated-{}", self.next_generated_id);
        let outcome = self
            .group
            .heartbeat(request, &self.topics, self.now_ms, || generated);
        self.log.extend(outcome.records);
        outcome.response
    }

    pub fn advance(&mut self, ms: i64) {
        self.now_ms += ms;
        let records = self.group.tick(self.now_ms);
        self.log.extend(records);
    }

    /// The group rebuilt from every record it wrote.
    pub fn replayed(&self) -> ConsumerGroup {
        let mut group = ConsumerGroup::new("g1", self.group.config().clone());
        for record in &self.log {
            group.replay(record).expect("own record replays");
        }
        group
    }

    pub fn assert_replay_matches(&self) {
        let replayed = self.replayed();
        replayed.assert_consistent();
        assert_eq!(replayed.to_records(), self.group.to_records());
        assert_eq!(replayed.state(), self.group.state());
    }

    pub fn member(&self, member_id: &str) -> &ConsumerMember {
        self.group.member(member_id).expect("member exists")
    }
}

/// A consumer as Kafka 4's client behaves towards the coordinator.
#[derive(Debug, Clone)]
pub(super) struct Client {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub epoch: i32,
    pub owned: Assignment,
    pub topics: Vec<String>,
    pub regex: Option<String>,
    pub assignor: Option<String>,
}

impl Client {
    pub fn new(member_id: &str, topics: &[&str]) -> Client {
        Client {
            member_id: member_id.to_string(),
            instance_id: None,
            epoch: 0,
            owned: Assignment::new(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            regex: None,
            assignor: None,
        }
    }

    pub fn with_instance(mut self, instance_id: &str) -> Client {
        self.instance_id = Some(instance_id.to_string());
        self
    }

    pub fn join_request(&self) -> HeartbeatRequest {
        HeartbeatRequest {
            api_version: 1,
            group_id: "g1".to_string(),
            member_id: self.member_id.clone(),
            member_epoch: 0,
            instance_id: self.instance_id.clone(),
            rack_id: None,
            rebalance_timeout_ms: REBALANCE_MS,
            subscribed_topic_names: Some(self.topics.clone()),
            subscribed_topic_regex: self.regex.clone(),
            server_assignor: self.assignor.clone(),
            topic_partitions: Some(Vec::new()),
            client_id: format!("client-{}", self.member_id),
            client_host: "/127.0.0.1".to_string(),
        }
    }

    /// A regular heartbeat: the epoch and what it owns, nothing else.
    pub fn request(&self) -> HeartbeatRequest {
        HeartbeatRequest {
            member_epoch: self.epoch,
            rebalance_timeout_ms: -1,
            subscribed_topic_names: None,
            subscribed_topic_regex: None,
            server_assignor: None,
            instance_id: self.instance_id.clone(),
            topic_partitions: Some(owned_list(&self.owned)),
            ..self.join_request()
        }
    }

    /// Send a join (epoch 0) or a heartbeat and act on the response like
    /// the client: fenced or unknown means give everything up and rejoin.
    pub fn beat(&mut self, harness: &mut Harness) -> HeartbeatResponse {
        let request = if self.epoch == 0 {
            self.join_request()
        } else {
            self.request()
        };
        let response = harness.send(&request);
        self.absorb(&response);
        response
    }

    pub fn absorb(&mut self, response: &HeartbeatResponse) {
        match response.error_code {
            0 => {
                self.epoch = response.member_epoch;
                if let Some(assignment) = &response.assignment {
                    self.owned = assignment.clone();
                }
            }
            110 | 25 => {
                self.owned.clear();
                self.epoch = 0;
            }
            other => panic!("client {} got error {other}: {response:?}", self.member_id),
        }
    }

    pub fn leave(&mut self, harness: &mut Harness) -> HeartbeatResponse {
        let request = HeartbeatRequest {
            member_epoch: LEAVE_GROUP_MEMBER_EPOCH,
            topic_partitions: None,
            ..self.request()
        };
        self.owned.clear();
        self.epoch = 0;
        harness.send(&request)
    }
}

pub(super) fn owned_list(assignment: &Assignment) -> Vec<OwnedTopicPartitions> {
    assignment
        .iter()
        .map(|(topic_id, partitions)| OwnedTopicPartitions {
            topic_id: *topic_id,
            partitions: partitions.iter().copied().collect(),
        })
        .collect()
}

/// Heartbeat every client in turn until the group is Stable (bounded).
pub(super) fn settle(harness: &mut Harness, clients: &mut [Client]) {
    for _ in 0..20 {
        for client in clients.iter_mut() {
            client.beat(harness);
        }
        if harness.group.state() == ConsumerGroupState::Stable {
            return;
        }
        harness.advance(100);
    }
    panic!(
        "group did not settle: {:?}",
        harness.group.describe(&harness.topics)
    );
}

/// No partition owned by two clients at once.
pub(super) fn assert_disjoint(clients: &[Client]) {
    let mut seen = BTreeSet::new();
    for client in clients {
        for (topic_id, partitions) in &client.owned {
            for partition in partitions {
                assert!(
                    seen.insert((*topic_id, *partition)),
                    "{topic_id}-{partition} owned twice (second: {})",
                    client.member_id
                );
            }
        }
    }
}
