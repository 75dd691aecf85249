//! Random interleavings over seeds: members join, heartbeat in random
//! order, leave, crash, leave statically and come back; topics grow and
//! appear; time jumps so sessions and rebalance timeouts expire. After
//! every event: no partition is held twice (by the group or by clients),
//! epochs only move forward, every client owns only what the group thinks
//! it holds. At the end, with the chaos stopped, the group settles with
//! every subscribed partition assigned once, and its records replay to it.

use std::collections::BTreeSet;

use super::*;

/// SplitMix64: a small, seedable generator, enough for a test.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct World {
    h: Harness,
    rng: Random,
    clients: Vec<Client>,
    next_member: usize,
    last_group_epoch: i32,
    last_assignment_epoch: i32,
}

impl World {
    fn new(seed: u64) -> World {
        World {
            h: Harness::new(),
            rng: Random(seed),
            clients: Vec::new(),
            next_member: 0,
            last_group_epoch: 0,
            last_assignment_epoch: 0,
        }
    }

    fn new_client(&mut self) -> Client {
        self.next_member += 1;
        let subscriptions: [&[&str]; 3] = [&["a"], &["b"], &["a", "b"]];
        let mut client = Client::new(
            &format!("m{}", self.next_member),
            subscriptions[self.rng.below(3)],
        );
        match self.rng.below(4) {
            0 => client.regex = Some("a|b|c".into()),
            1 => client.instance_id = Some(format!("i{}", self.next_member)),
            _ => {}
        }
        client.assignor =
            [None, Some("uniform"), Some("range")][self.rng.below(3)].map(str::to_string);
        client
    }

    fn beat(&mut self, index: usize) {
        let client = &mut self.clients[index];
        let epoch_sent = client.epoch;
        let response = client.beat(&mut self.h);
        if response.error_code == 0 && epoch_sent > 0 {
            assert!(
                response.member_epoch >= epoch_sent,
                "epoch went back: {epoch_sent} -> {}",
                response.member_epoch
            );
        }
    }

    fn step(&mut self) {
        let live = self.clients.len();
        match self.rng.below(100) {
            0..=59 if live > 0 => {
                let index = self.rng.below(live);
                self.beat(index);
            }
            60..=67 if live < 6 => {
                let client = self.new_client();
                self.clients.push(client);
                self.beat(live);
            }
            68..=71 if live > 0 => {
                let index = self.rng.below(live);
                let mut client = self.clients.remove(index);
                if client.epoch != 0 {
                    client.leave(&mut self.h);
                }
            }
            72..=75 if live > 0 => {
                // A crash: the client forgets everything and goes silent.
                let index = self.rng.below(live);
                self.clients.remove(index);
            }
            76..=79 if live > 0 => self.static_restart(),
            80..=83 => self.change_topics(),
            _ => {
                let ms = self.rng.below(8_000) as i64;
                self.h.advance(ms);
            }
        }
        self.check();
    }

    /// A static member leaves with -2 and a new incarnation takes its place.
    fn static_restart(&mut self) {
        let Some(index) = self
            .clients
            .iter()
            .position(|c| c.instance_id.is_some() && c.epoch > 0)
        else {
            return;
        };
        let old = self.clients.remove(index);
        let leave = HeartbeatRequest {
            member_epoch: LEAVE_GROUP_STATIC_MEMBER_EPOCH,
            ..old.request()
        };
        let response = self.h.send(&leave);
        assert!(matches!(response.error_code, 0 | 25 | 110), "{response:?}");
        self.next_member += 1;
        let mut new = old.clone();
        new.member_id = format!("m{}", self.next_member);
        new.epoch = 0;
        new.owned.clear();
        self.clients.push(new);
    }

    fn change_topics(&mut self) {
        if self.rng.below(2) == 0 {
            let grown = self.h.topics.topics["a"].partition_count + 1;
            if grown <= 12 {
                self.h.topics.put("a", topic_id("a"), grown);
            }
        } else if !self.h.topics.topics.contains_key("c") {
            self.h.topics.put("c", topic_id("c"), 4);
        }
    }

    fn check(&mut self) {
        let group = &self.h.group;
        group.assert_consistent();
        assert!(group.group_epoch() >= self.last_group_epoch);
        assert!(group.assignment_epoch() >= self.last_assignment_epoch);
        assert!(group.assignment_epoch() <= group.group_epoch());
        self.last_group_epoch = group.group_epoch();
        self.last_assignment_epoch = group.assignment_epoch();
        // Clients the group still counts own only what it thinks they hold.
        let mut members = Vec::new();
        for client in &self.clients {
            let Some(member) = group.member(&client.member_id) else {
                continue;
            };
            for (topic_id, partitions) in &client.owned {
                for partition in partitions {
                    let held = [
                        &member.assigned_partitions,
                        &member.partitions_pending_revocation,
                    ]
                    .iter()
                    .any(|a| a.get(topic_id).is_some_and(|p| p.contains(partition)));
                    assert!(held, "{} owns {topic_id}-{partition}", client.member_id);
                }
            }
            members.push(client.clone());
        }
        assert_disjoint(&members);
    }

    /// Stop the chaos: live clients beat until the silent ones expired and
    /// the group is Stable.
    fn settle(&mut self) {
        for _ in 0..60 {
            self.h.advance(2_000);
            for index in 0..self.clients.len() {
                self.beat(index);
                self.check();
            }
            let group = &self.h.group;
            let silent = group.member_count() != self.clients.len()
                || self
                    .clients
                    .iter()
                    .any(|c| group.member(&c.member_id).is_none());
            let settled = match self.h.group.state() {
                ConsumerGroupState::Stable => true,
                ConsumerGroupState::Empty => self.clients.is_empty(),
                _ => false,
            };
            if !silent && settled {
                return;
            }
        }
        panic!("no settling: {:#?}", self.h.group.describe(&self.h.topics));
    }

    fn check_settled(&self) {
        let group = &self.h.group;
        let mut owned = BTreeSet::new();
        for client in &self.clients {
            let member = group
                .member(&client.member_id)
                .expect("live client is a member");
            assert_eq!(client.owned, member.assigned_partitions);
            assert!(member.partitions_pending_revocation.is_empty());
            for (topic_id, partitions) in &client.owned {
                owned.extend(partitions.iter().map(|p| (*topic_id, *p)));
            }
        }
        let mut expected = BTreeSet::new();
        for topic in group.subscription_metadata().values() {
            expected.extend((0..topic.partition_count).map(|p| (topic.topic_id, p)));
        }
        assert_eq!(
            owned, expected,
            "not every subscribed partition is assigned"
        );
    }
}

fn run(seed: u64) {
    let mut world = World::new(seed);
    for _ in 0..300 {
        world.step();
    }
    world.settle();
    world.check_settled();
    world.h.assert_replay_matches();
}

#[test]
fn random_interleavings_keep_the_invariants() {
    for seed in 0..150 {
        run(seed);
    }
}
