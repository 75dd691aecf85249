//! The server-side assignors of KIP-848: `uniform` (Kafka's default) and
//! `range`. Pure functions from the members' subscriptions, the topics and
//! the previous target assignment to the next target assignment.
//!
//! `uniform` spreads partitions so that no member could take a partition
//! from a member holding two or more partitions more than it (with equal
//! subscriptions: counts differ by at most one), and is sticky: a member
//! keeps every partition of its previous target it is still subscribed to
//! unless balance needs it elsewhere, and only the surplus moves. Kafka's
//! `UniformAssignor` gets there with quotas (homogeneous) and an iterative
//! balancer (heterogeneous); ours is one procedure for both: keep, place the
//! free partitions on the least loaded subscriber, then move single
//! partitions from the most to the least loaded member until balanced.
//!
//! `range` is Kafka's server-side `RangeAssignor`: per topic, contiguous
//! ranges in member order (static members by instance id first, then member
//! ids), the first members getting one extra partition. Not sticky.
//!
//! Both are deterministic: ordered maps throughout, ties broken by order.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::Assignment;

/// A server-side assignor by its Kafka name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AssignorName {
    Uniform,
    Range,
}

impl AssignorName {
    pub fn name(self) -> &'static str {
        match self {
            AssignorName::Uniform => "uniform",
            AssignorName::Range => "range",
        }
    }

    pub fn from_name(name: &str) -> Option<AssignorName> {
        match name {
            "uniform" => Some(AssignorName::Uniform),
            "range" => Some(AssignorName::Range),
            _ => None,
        }
    }
}

/// One member as an assignor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSpec {
    pub member_id: String,
    pub instance_id: Option<String>,
    /// Ids of the existing topics it subscribes to.
    pub topic_ids: BTreeSet<Uuid>,
    /// Its previous target assignment.
    pub previous: Assignment,
}

/// Compute the target assignment of every member (members with nothing get
/// an empty entry). `topics` gives each subscribed topic's partition count.
pub fn assign(
    assignor: AssignorName,
    members: &[MemberSpec],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    match assignor {
        AssignorName::Uniform => assign_uniform(members, topics),
        AssignorName::Range => assign_range(members, topics),
    }
}

fn partitions_of(topics: &BTreeMap<Uuid, i32>, topic_id: &Uuid) -> i32 {
    topics.get(topic_id).copied().unwrap_or(0).max(0)
}

// ---- range -----------------------------------------------------------------

fn assign_range(
    members: &[MemberSpec],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut order: Vec<&MemberSpec> = members.iter().collect();
    order.sort_by(|a, b| match (&a.instance_id, &b.instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    });
    let mut result: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect();
    for topic_id in topics.keys() {
        let subscribers: Vec<&&MemberSpec> = order
            .iter()
            .filter(|m| m.topic_ids.contains(topic_id))
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        let count = partitions_of(topics, topic_id);
        // Fewer than 2^31 members, so the cast back is lossless.
        let members_count = subscribers.len() as i32;
        let quota = count / members_count;
        let mut extra = count % members_count;
        let mut next = 0;
        for member in subscribers {
            let mut size = quota;
            if extra > 0 {
                size += 1;
                extra -= 1;
            }
            if size > 0 {
                let range: BTreeSet<i32> = (next..next + size).collect();
                if let Some(assignment) = result.get_mut(&member.member_id) {
                    assignment.insert(*topic_id, range);
                }
            }
            next += size;
        }
        debug_assert_eq!(next, count);
    }
    result
}

// ---- uniform ---------------------------------------------------------------

struct Uniform<'a> {
    members: &'a [MemberSpec],
    /// Per member, what it holds: (topic id, partition).
    held: Vec<BTreeSet<(Uuid, i32)>>,
    /// Per topic, the indexes of its subscribers.
    subscribers: BTreeMap<Uuid, Vec<usize>>,
}

fn assign_uniform(
    members: &[MemberSpec],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut subscribers: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for (index, member) in members.iter().enumerate() {
        for topic_id in &member.topic_ids {
            if topics.contains_key(topic_id) {
                subscribers.entry(*topic_id).or_default().push(index);
            }
        }
    }
    let mut uniform = Uniform {
        members,
        held: vec![BTreeSet::new(); members.len()],
        subscribers,
    };
    let free = uniform.keep_previous(topics);
    for (topic_id, partition) in free {
        uniform.place(topic_id, partition);
    }
    uniform.balance();
    uniform
        .held
        .iter()
        .zip(members)
        .map(|(held, member)| {
            let mut assignment = Assignment::new();
            for (topic_id, partition) in held {
                assignment.entry(*topic_id).or_default().insert(*partition);
            }
            (member.member_id.clone(), assignment)
        })
        .collect()
}

impl Uniform<'_> {
    /// Keep what each member had and may still have; return every other
    /// partition of a subscribed topic, topics with fewer subscribers first
    /// (they have fewer places to go).
    fn keep_previous(&mut self, topics: &BTreeMap<Uuid, i32>) -> Vec<(Uuid, i32)> {
        let mut taken = BTreeSet::new();
        for (index, member) in self.members.iter().enumerate() {
            for (topic_id, partitions) in &member.previous {
                if !member.topic_ids.contains(topic_id) {
                    continue;
                }
                let count = partitions_of(topics, topic_id);
                for partition in partitions.iter().filter(|p| (0..count).contains(*p)) {
                    if taken.insert((*topic_id, *partition)) {
                        self.held[index].insert((*topic_id, *partition));
                    }
                }
            }
        }
        let mut topic_order: Vec<(&Uuid, usize)> = self
            .subscribers
            .iter()
            .map(|(topic_id, subscribers)| (topic_id, subscribers.len()))
            .collect();
        topic_order.sort_by_key(|(topic_id, subscribers)| (*subscribers, **topic_id));
        let mut free = Vec::new();
        for (topic_id, _) in topic_order {
            for partition in 0..partitions_of(topics, topic_id) {
                if !taken.contains(&(*topic_id, partition)) {
                    free.push((*topic_id, partition));
                }
            }
        }
        free
    }

    /// Give a free partition to its least loaded subscriber.
    fn place(&mut self, topic_id: Uuid, partition: i32) {
        let Some(subscribers) = self.subscribers.get(&topic_id) else {
            return;
        };
        let least = subscribers
            .iter()
            .min_by_key(|index| (self.held[**index].len(), **index))
            .copied();
        if let Some(index) = least {
            self.held[index].insert((topic_id, partition));
        }
    }

    /// Move single partitions from heavier to lighter members until no
    /// member could take one from a member with two or more than it.
    /// Every move lowers the sum of squared loads, so this ends; the bound
    /// only guards against a bug.
    fn balance(&mut self) {
        let total: usize = self.held.iter().map(BTreeSet::len).sum();
        for _ in 0..=total * total.max(1) {
            if !self.move_one() {
                return;
            }
        }
        debug_assert!(false, "uniform assignor did not settle");
    }

    fn move_one(&mut self) -> bool {
        let mut donors: Vec<usize> = (0..self.members.len()).collect();
        donors.sort_by_key(|index| (std::cmp::Reverse(self.held[*index].len()), *index));
        for donor in donors {
            let donor_load = self.held[donor].len();
            if donor_load < 2 {
                return false;
            }
            // The donor's last partition that a light enough member takes.
            let found = self.held[donor]
                .iter()
                .rev()
                .find_map(|(topic_id, partition)| {
                    let subscribers = self.subscribers.get(topic_id)?;
                    subscribers
                        .iter()
                        .filter(|index| self.held[**index].len() + 2 <= donor_load)
                        .min_by_key(|index| (self.held[**index].len(), **index))
                        .map(|receiver| (*topic_id, *partition, *receiver))
                });
            if let Some((topic_id, partition, receiver)) = found {
                self.held[donor].remove(&(topic_id, partition));
                self.held[receiver].insert((topic_id, partition));
                return true;
            }
        }
        false
    }
}
