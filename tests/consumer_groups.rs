//! Consumer groups as librdkafka drives them (rdkafka's `BaseConsumer` with `subscribe`),
//! plus Debian's kcat as a member that dies without leaving: partitions split between
//! members (eager `range` and `cooperative-sticky`), move on LeaveGroup and on session
//! expiry, committed offsets resume reading, survive restarts and crashes and never go
//! backwards while members come and go under load; ListGroups/DescribeGroups and
//! DeleteGroups as an admin sees them; static membership (KIP-345).
//!
//! Brokers run with `--group-initial-rebalance-delay-ms 0` (or a small delay) so the first
//! join is not held back by Kafka's default 3 s. Members are polled round-robin from the
//! test thread: librdkafka hands out rebalances, and so assignments, only from `poll`.

mod common;
// The group helpers live next to this file, one concern each.
#[path = "consumer_groups/load.rs"]
mod load;
#[path = "consumer_groups/members.rs"]
mod members;
#[path = "consumer_groups/observers.rs"]
mod observers;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, RebalanceProtocol};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use common::{create_topic, delete_groups, poll_until, produce_simple, Broker};
use load::{churn_id, missing_by_partition, BackgroundProducer, KcatMember};
use members::{
    assert_even_split_of_six, assert_resumed_at, assignments, next_offsets, poll_for,
    read_and_commit, settle, split_problem, wait_for_split, Member, RebalanceEvent, POLL_SLICE,
    SETTLE_TIMEOUT,
};
use observers::{
    committed_offsets, committed_view, describe_group, end_offsets, list_groups,
    CommittedOffsetsWatch, Outsider,
};

/// No initial rebalance delay: groups form as soon as the first member joins.
const NO_JOIN_DELAY: &[&str] = &["--group-initial-rebalance-delay-ms", "0"];

/// [`settle`] while `watch` checks committed offsets in between polls.
fn drive(
    members: &mut [Member],
    watch: &mut CommittedOffsetsWatch,
    what: &str,
    mut done: impl FnMut(&[Member], &CommittedOffsetsWatch) -> Result<(), String>,
) {
    settle(members, SETTLE_TIMEOUT, what, |members| {
        watch.check_if_due();
        done(members, watch)
    });
}

/// Each phase of the churn test lasts at least this long, so that several auto-commits
/// (every 200 ms) and committed-offset checks fall into it.
const PHASE_DURATION: Duration = Duration::from_secs(2);

/// Member `index` read `count` records and the phase that began at `started` is over.
fn phase_done(
    members: &[Member],
    index: usize,
    count: usize,
    started: Instant,
) -> Result<(), String> {
    match members[index].records.len() {
        read if read < count => Err(format!("member {index} read {read} of {count}")),
        _ if started.elapsed() < PHASE_DURATION => Err("phase still running".into()),
        _ => Ok(()),
    }
}

#[test]
fn two_members_split_six_partitions_with_range() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "split-range";
    create_topic(&bootstrap, topic, 6);
    let range = [("partition.assignment.strategy", "range")];
    let mut members = [
        Member::join(&bootstrap, "split-range", "range-a", topic, &range),
        Member::join(&bootstrap, "split-range", "range-b", topic, &range),
    ];
    let split = wait_for_split(&mut members, 6, &[3, 3]);
    assert_even_split_of_six(&split);
    assert!(matches!(
        members[0].consumer.rebalance_protocol(),
        RebalanceProtocol::Eager
    ));
}

#[test]
fn two_members_split_six_partitions_with_cooperative_sticky() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "split-cooperative";
    create_topic(&bootstrap, topic, 6);
    let group = "split-cooperative";
    let cooperative = [("partition.assignment.strategy", "cooperative-sticky")];
    let mut members = vec![Member::join(
        &bootstrap,
        group,
        "cooperative-a",
        topic,
        &cooperative,
    )];
    wait_for_split(&mut members, 6, &[6]);
    members.push(Member::join(
        &bootstrap,
        group,
        "cooperative-b",
        topic,
        &cooperative,
    ));
    let split = wait_for_split(&mut members, 6, &[3, 3]);
    assert_even_split_of_six(&split);
    for member in &members {
        assert!(
            matches!(
                member.consumer.rebalance_protocol(),
                RebalanceProtocol::Cooperative
            ),
            "{} is not cooperative",
            member.name
        );
    }
    // Incremental rebalancing: the first member gave up exactly what the second one got
    // (an eager rebalance would have revoked all six).
    let revoked: BTreeSet<i32> = members[0]
        .rebalances()
        .into_iter()
        .filter_map(|event| match event {
            RebalanceEvent::Revoked(partitions) => Some(partitions),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(revoked, split[1], "{}", members[0].describe());
}

#[test]
fn survivor_takes_all_partitions_when_a_member_leaves() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "leave-failover";
    create_topic(&bootstrap, topic, 6);
    // A session far longer than the handover bound: only LeaveGroup, not session expiry,
    // can explain the survivor getting everything in time.
    let settings = [
        ("partition.assignment.strategy", "range"),
        ("session.timeout.ms", "30000"),
    ];
    let mut members = vec![
        Member::join(&bootstrap, "leave-failover", "stays", topic, &settings),
        Member::join(&bootstrap, "leave-failover", "leaves", topic, &settings),
    ];
    assert_even_split_of_six(&wait_for_split(&mut members, 6, &[3, 3]));

    let leaver = members.pop().expect("two members");
    drop(leaver); // close(): revoke, then LeaveGroup.
    settle(
        &mut members,
        Duration::from_secs(15),
        "the survivor owns all six partitions after the other member left",
        |members| split_problem(&assignments(members), 6, &[6]),
    );
}

#[test]
fn survivor_takes_all_partitions_when_a_member_dies_without_leaving() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "dead-member-failover";
    let group = "dead-member-failover";
    create_topic(&bootstrap, topic, 6);
    let range = [("partition.assignment.strategy", "range")];
    let mut members = [Member::join(&bootstrap, group, "survivor", topic, &range)];
    wait_for_split(&mut members, 6, &[6]);

    let Some(mut kcat) = KcatMember::join(&bootstrap, group, topic, "kcat-member") else {
        return;
    };
    let what = "the kcat member takes three partitions";
    settle(
        &mut members,
        SETTLE_TIMEOUT,
        what,
        |members| match members[0].partitions().len() {
            3 => Ok(()),
            owned => Err(format!(
                "survivor owns {owned}; kcat said:\n{}",
                kcat.stderr()
            )),
        },
    );
    let described = describe_group(&bootstrap, group).expect("group is listed");
    let client_ids: BTreeSet<&str> = described
        .members
        .iter()
        .map(|member| member.client_id.as_str())
        .collect();
    assert_eq!(client_ids, BTreeSet::from(["kcat-member", "survivor"]));

    kcat.kill9();
    // Session timeout (6 s) plus a heartbeat and a rejoin, with a wide margin.
    settle(
        &mut members,
        Duration::from_secs(20),
        "the survivor owns all six partitions after the kcat member was killed",
        |members| split_problem(&assignments(members), 6, &[6]),
    );
}

#[test]
fn committed_progress_is_never_lost_while_members_come_and_go_under_load() {
    churn_under_load("range");
}

#[test]
fn committed_progress_is_never_lost_under_load_with_cooperative_rebalancing() {
    churn_under_load("cooperative-sticky");
}

/// With a producer running throughout, one member reads, a second joins, the first leaves;
/// members auto-commit what they read. Every acknowledged message is read at least once,
/// committed offsets never move backwards, and they end at the end of every partition.
fn churn_under_load(strategy: &str) {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = format!("churn-{strategy}");
    let topic = topic.as_str();
    let group = topic;
    create_topic(&bootstrap, topic, 6);
    let auto_commit = [
        ("partition.assignment.strategy", strategy),
        ("enable.auto.commit", "true"),
        ("auto.commit.interval.ms", "200"),
    ];
    let load = BackgroundProducer::start(&bootstrap, topic);
    let mut watch = CommittedOffsetsWatch::new(&bootstrap, group, topic, 6);

    // Phase 1: one member owns everything and reads.
    let started = Instant::now();
    let mut members = vec![Member::join(
        &bootstrap,
        group,
        "churn-a",
        topic,
        &auto_commit,
    )];
    drive(
        &mut members,
        &mut watch,
        "phase 1: the only member owns six partitions and reads",
        |members, _| {
            split_problem(&assignments(members), 6, &[6])?;
            phase_done(members, 0, 300, started)
        },
    );

    // Phase 2: a second member joins; the partitions split and both read.
    let started = Instant::now();
    members.push(Member::join(
        &bootstrap,
        group,
        "churn-b",
        topic,
        &auto_commit,
    ));
    drive(
        &mut members,
        &mut watch,
        "phase 2: two members split six partitions and the new one reads",
        |members, _| {
            split_problem(&assignments(members), 6, &[3, 3])?;
            phase_done(members, 1, 300, started)
        },
    );

    // Phase 3: the first member leaves (committing on close); the second takes over.
    let leaver = members.remove(0);
    let mut seen: HashSet<usize> = leaver.records.iter().map(churn_id).collect();
    let leaver_read_up_to = next_offsets(&leaver.records);
    drop(leaver);
    let read_before = members[0].records.len();
    let started = Instant::now();
    drive(
        &mut members,
        &mut watch,
        "phase 3: the remaining member owns six partitions and reads on",
        |members, _| {
            split_problem(&assignments(members), 6, &[6])?;
            phase_done(members, 0, read_before + 300, started)
        },
    );

    let placed = load.stop();
    let produced = placed.len();
    let mut missing: BTreeSet<usize> = (0..produced).filter(|id| !seen.contains(id)).collect();
    let mut scanned = 0;
    drive(
        &mut members,
        &mut watch,
        "every acknowledged message is read at least once",
        |members, watch| {
            for consumed in &members[0].records[scanned..] {
                missing.remove(&churn_id(consumed));
            }
            scanned = members[0].records.len();
            if missing.is_empty() {
                return Ok(());
            }
            let mut first_after_handover: BTreeMap<i32, i64> = BTreeMap::new();
            for consumed in &members[0].records[read_before..] {
                first_after_handover
                    .entry(consumed.partition)
                    .or_insert(consumed.offset);
            }
            Err(format!(
                "{}; the member that left read up to {leaver_read_up_to:?}, the other \
                 resumed at {first_after_handover:?}; committed now {:?}",
                missing_by_partition(&missing, &placed),
                watch.last
            ))
        },
    );
    seen.extend(members[0].records.iter().map(churn_id));
    assert!((0..produced).all(|id| seen.contains(&id)));

    let end = end_offsets(&bootstrap, topic, 6);
    assert_eq!(end.values().sum::<i64>(), produced as i64, "{end:?}");
    drive(
        &mut members,
        &mut watch,
        "committed offsets reach the end of every partition",
        |_, watch| match watch.last == end {
            true => Ok(()),
            false => Err(format!("committed {:?}, end {end:?}", watch.last)),
        },
    );
    assert!(
        watch.checks >= 10,
        "committed offsets were only checked {} times",
        watch.checks
    );
    eprintln!(
        "{produced} messages, committed offsets checked {} times",
        watch.checks
    );
}

#[test]
fn next_member_resumes_exactly_at_committed_offsets() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "resume";
    let group = "resume";
    create_topic(&bootstrap, topic, 3);
    for partition in 0..3 {
        produce_simple(&bootstrap, topic, partition, 200);
    }

    let first = read_and_commit(&bootstrap, group, topic, 250);
    let committed = next_offsets(&first);
    assert_eq!(
        committed_offsets(&bootstrap, group, topic, 3),
        committed_view(&committed, 3),
        "OffsetFetch after the first member committed what it read"
    );

    let remaining = 600 - 250;
    let second = read_and_commit(&bootstrap, group, topic, remaining);
    assert_resumed_at(&second, &committed);
    let read_twice: Vec<(i32, i64)> = second
        .iter()
        .filter(|consumed| first.iter().any(|earlier| earlier == *consumed))
        .map(|consumed| (consumed.partition, consumed.offset))
        .collect();
    assert!(read_twice.is_empty(), "read again: {read_twice:?}");
    let all = end_offsets(&bootstrap, topic, 3);
    assert_eq!(all, BTreeMap::from([(0, 200), (1, 200), (2, 200)]));
    assert_eq!(
        committed_offsets(&bootstrap, group, topic, 3),
        committed_view(&all, 3)
    );
}

#[test]
fn two_groups_read_the_same_topic_independently() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "two-groups";
    create_topic(&bootstrap, topic, 3);
    for partition in 0..3 {
        produce_simple(&bootstrap, topic, partition, 100);
    }
    let mut members = [
        Member::join(&bootstrap, "independent-x", "group-x", topic, &[]),
        Member::join(&bootstrap, "independent-y", "group-y", topic, &[]),
    ];
    settle(
        &mut members,
        SETTLE_TIMEOUT,
        "each group reads all 300 records",
        |members| {
            let counts: Vec<usize> = members.iter().map(|member| member.records.len()).collect();
            match counts.iter().all(|count| *count >= 300) {
                true => Ok(()),
                false => Err(format!("read {counts:?}")),
            }
        },
    );
    let everything: BTreeSet<(i32, i64)> = (0..3)
        .flat_map(|partition| (0..100).map(move |offset| (partition, offset)))
        .collect();
    for member in &members {
        let read: Vec<(i32, i64)> = member
            .records
            .iter()
            .map(|consumed| (consumed.partition, consumed.offset))
            .collect();
        assert_eq!(read.len(), 300, "{} read duplicates", member.name);
        assert_eq!(read.into_iter().collect::<BTreeSet<_>>(), everything);
    }
    // Offsets are per group too: X commits, Y does not.
    members[0]
        .consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit in group X");
    let all = BTreeMap::from([(0, 100), (1, 100), (2, 100)]);
    assert_eq!(
        committed_offsets(&bootstrap, "independent-x", topic, 3),
        committed_view(&all, 3)
    );
    assert_eq!(
        committed_offsets(&bootstrap, "independent-y", topic, 3),
        committed_view(&BTreeMap::new(), 3)
    );
}

#[test]
fn committed_offsets_survive_graceful_restart_and_kill9() {
    let mut broker = Broker::start(2, NO_JOIN_DELAY);
    let topic = "durable-commits";
    let group = "durable-commits";
    create_topic(&broker.bootstrap(), topic, 3);
    for partition in 0..3 {
        produce_simple(&broker.bootstrap(), topic, partition, 200);
    }
    let first = read_and_commit(&broker.bootstrap(), group, topic, 150);
    let mut committed = next_offsets(&first);
    assert_eq!(
        committed_offsets(&broker.bootstrap(), group, topic, 3),
        committed_view(&committed, 3)
    );

    broker.restart();
    assert_eq!(
        committed_offsets(&broker.bootstrap(), group, topic, 3),
        committed_view(&committed, 3),
        "committed offsets after a graceful restart"
    );
    let second = read_and_commit(&broker.bootstrap(), group, topic, 150);
    assert_resumed_at(&second, &committed);
    committed.extend(next_offsets(&second));
    assert_eq!(
        committed_offsets(&broker.bootstrap(), group, topic, 3),
        committed_view(&committed, 3)
    );

    broker.kill9();
    broker.restart();
    assert_eq!(
        committed_offsets(&broker.bootstrap(), group, topic, 3),
        committed_view(&committed, 3),
        "committed offsets after kill -9"
    );
    let rest = read_and_commit(&broker.bootstrap(), group, topic, 300);
    assert_resumed_at(&rest, &committed);
    let end = BTreeMap::from([(0, 200), (1, 200), (2, 200)]);
    assert_eq!(
        committed_offsets(&broker.bootstrap(), group, topic, 3),
        committed_view(&end, 3)
    );
}

#[test]
fn list_and_describe_groups_show_members_and_assignments() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "described";
    let group = "described";
    create_topic(&bootstrap, topic, 6);
    // Groups with offsets but no members, spread over the shards by their names.
    let idle_groups: Vec<String> = (0..6).map(|index| format!("idle-{index}")).collect();
    for idle in &idle_groups {
        Outsider::new(&bootstrap, idle, topic, 6).commit(&BTreeMap::from([(0, 0)]));
    }
    let range = [("partition.assignment.strategy", "range")];
    let mut members = [
        Member::join(&bootstrap, group, "describe-a", topic, &range),
        Member::join(&bootstrap, group, "describe-b", topic, &range),
    ];
    assert_even_split_of_six(&wait_for_split(&mut members, 6, &[3, 3]));

    let described = describe_group(&bootstrap, group).expect("group is listed");
    assert_eq!(described.state, "Stable");
    assert_eq!(described.protocol_type, "consumer");
    assert_eq!(described.protocol, "range");
    assert_eq!(described.members.len(), 2, "{described:?}");
    let member_ids: BTreeSet<&str> = described
        .members
        .iter()
        .map(|member| member.member_id.as_str())
        .collect();
    assert_eq!(member_ids.len(), 2, "member ids distinct: {described:?}");
    for member in &members {
        let shown = described
            .members
            .iter()
            .find(|shown| shown.client_id == member.name)
            .unwrap_or_else(|| panic!("{} not described: {described:?}", member.name));
        assert!(!shown.member_id.is_empty());
        assert!(
            shown.client_host.contains("127.0.0.1"),
            "client host {:?}",
            shown.client_host
        );
        assert_eq!(shown.subscribed_topics, vec![topic.to_string()]);
        assert_eq!(
            shown.assignment,
            BTreeMap::from([(topic.to_string(), member.partitions())]),
            "assignment of {}",
            member.name
        );
    }

    let listed = list_groups(&bootstrap, None);
    assert_eq!(listed[group].state, "Stable");
    for idle in &idle_groups {
        let shown = listed
            .get(idle)
            .unwrap_or_else(|| panic!("{idle} not listed: {:?}", listed.keys()));
        assert_eq!(shown.state, "Empty", "{idle}");
        assert!(shown.members.is_empty(), "{idle}: {shown:?}");
    }

    // Offsets keep the group after its members are gone.
    for member in &members {
        let mut offsets = TopicPartitionList::new();
        for partition in member.partitions() {
            offsets
                .add_partition_offset(topic, partition, Offset::Offset(0))
                .expect("add partition offset");
        }
        member
            .consumer
            .commit(&offsets, CommitMode::Sync)
            .unwrap_or_else(|error| panic!("{} commit: {error}", member.name));
    }
    drop(members);
    let empty = poll_until(SETTLE_TIMEOUT, "the group shows Empty", || {
        describe_group(&bootstrap, group).filter(|described| described.state == "Empty")
    });
    assert!(empty.members.is_empty(), "{empty:?}");
    assert_eq!(
        committed_offsets(&bootstrap, group, topic, 6),
        committed_view(&(0..6).map(|partition| (partition, 0)).collect(), 6)
    );
}

#[test]
fn delete_groups_removes_empty_groups_only() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "deleted-groups";
    create_topic(&bootstrap, topic, 3);
    for partition in 0..3 {
        produce_simple(&bootstrap, topic, partition, 10);
    }
    let emptied = "emptied";
    let committed = next_offsets(&read_and_commit(&bootstrap, emptied, topic, 20));
    assert_eq!(
        committed_offsets(&bootstrap, emptied, topic, 3),
        committed_view(&committed, 3)
    );
    let live = "live";
    let mut members = [Member::join(&bootstrap, live, "live-member", topic, &[])];
    wait_for_split(&mut members, 3, &[3]);

    let results = delete_groups(&bootstrap, &[emptied, live, "never-existed"]);
    assert_eq!(
        results,
        BTreeMap::from([
            (emptied.to_string(), Ok(())),
            (live.to_string(), Err(RDKafkaErrorCode::NonEmptyGroup)),
            (
                "never-existed".to_string(),
                Err(RDKafkaErrorCode::GroupIdNotFound)
            ),
        ])
    );
    assert_eq!(
        committed_offsets(&bootstrap, emptied, topic, 3),
        committed_view(&BTreeMap::new(), 3),
        "offsets of a deleted group"
    );
    let listed = list_groups(&bootstrap, None);
    assert!(!listed.contains_key(emptied), "{:?}", listed.keys());
    assert_eq!(listed[live].state, "Stable");

    // The refused delete left the live member alone; once it leaves, the delete works.
    let rebalances = members[0].rebalances();
    poll_for(&mut members, Duration::from_secs(3));
    assert_eq!(members[0].partitions(), BTreeSet::from([0, 1, 2]));
    assert_eq!(
        members[0].rebalances(),
        rebalances,
        "live member was rebalanced"
    );
    drop(members);
    assert_eq!(
        delete_groups(&bootstrap, &[live]),
        BTreeMap::from([(live.to_string(), Ok(()))])
    );
}

#[test]
fn static_member_rejoins_with_its_partitions_without_rebalancing_the_other() {
    let broker = Broker::start(2, NO_JOIN_DELAY);
    let bootstrap = broker.bootstrap();
    let topic = "static-members";
    let group = "static-members";
    create_topic(&bootstrap, topic, 6);
    // A session long enough for the restarted member to be back well before it expires.
    let settings = |instance| {
        [
            ("partition.assignment.strategy", "range"),
            ("session.timeout.ms", "10000"),
            ("group.instance.id", instance),
        ]
    };
    let mut members = vec![
        Member::join(
            &bootstrap,
            group,
            "static-a",
            topic,
            &settings("instance-a"),
        ),
        Member::join(
            &bootstrap,
            group,
            "static-b",
            topic,
            &settings("instance-b"),
        ),
    ];
    let split = wait_for_split(&mut members, 6, &[3, 3]);
    assert_even_split_of_six(&split);
    let other_rebalances = members[1].rebalances();

    // A static member's close() sends no LeaveGroup (KIP-345): the group keeps its slot.
    drop(members.remove(0));
    members.push(Member::join(
        &bootstrap,
        group,
        "static-a-again",
        topic,
        &settings("instance-a"),
    ));
    let what = "the restarted static member gets its partitions back";
    settle(
        &mut members,
        SETTLE_TIMEOUT,
        what,
        |members| match members[1].partitions() {
            owned if owned == split[0] => Ok(()),
            owned => Err(format!("it owns {owned:?}, had {:?}", split[0])),
        },
    );
    // Past a few heartbeats: nothing else happens to either member.
    poll_for(&mut members, Duration::from_secs(3));
    assert_eq!(members[0].partitions(), split[1]);
    assert_eq!(members[1].partitions(), split[0]);
    assert_eq!(
        members[0].rebalances(),
        other_rebalances,
        "the other member was rebalanced when the static member came back"
    );
    assert_eq!(
        members[1].rebalances(),
        vec![RebalanceEvent::Assigned(split[0].clone())]
    );
    let described = describe_group(&bootstrap, group).expect("group is listed");
    assert_eq!(described.state, "Stable");
    assert_eq!(described.members.len(), 2, "{described:?}");
}

#[test]
fn two_members_split_partitions_on_a_single_shard_broker() {
    // One shard owns every partition and every group; a short initial delay this time.
    let broker = Broker::start(1, &["--group-initial-rebalance-delay-ms", "300"]);
    let bootstrap = broker.bootstrap();
    let topic = "single-shard";
    create_topic(&bootstrap, topic, 6);
    let range = [("partition.assignment.strategy", "range")];
    let mut members = [
        Member::join(&bootstrap, "single-shard", "single-a", topic, &range),
        Member::join(&bootstrap, "single-shard", "single-b", topic, &range),
    ];
    assert_even_split_of_six(&wait_for_split(&mut members, 6, &[3, 3]));
    let described = describe_group(&bootstrap, "single-shard").expect("group is listed");
    assert_eq!(described.state, "Stable");
    assert_eq!(described.members.len(), 2, "{described:?}");
}

/// How a test takes the broker down before restarting it.
type StopBroker = fn(&mut Broker);

/// A member that was in the group when the broker stopped is restored with the group, and
/// expires after its session like any silent member: a newcomer then gets everything
/// (Kafka re-arms every loaded member's heartbeat expiry when it loads a group).
#[test]
fn members_lost_with_the_broker_expire_so_a_newcomer_takes_over() {
    let stops: [(&str, StopBroker); 2] = [
        ("graceful", |broker| {
            broker.stop_graceful();
        }),
        ("kill9", Broker::kill9),
    ];
    let mut broker = Broker::start(2, NO_JOIN_DELAY);
    for (how, stop) in stops {
        let group = format!("lost-members-{how}");
        let topic = group.as_str();
        create_topic(&broker.bootstrap(), topic, 3);
        let Some(mut kcat) = KcatMember::join(&broker.bootstrap(), &group, topic, "kcat-lost")
        else {
            return;
        };
        let what = format!("{how}: the kcat member holds all three partitions");
        poll_until(SETTLE_TIMEOUT, &what, || {
            describe_group(&broker.bootstrap(), &group).filter(|described| {
                described.state == "Stable"
                    && described.members.len() == 1
                    && described.members[0]
                        .assignment
                        .get(topic)
                        .map(BTreeSet::len)
                        == Some(3)
            })
        });

        stop(&mut broker);
        kcat.kill9();
        broker.restart();
        let restored = describe_group(&broker.bootstrap(), &group)
            .unwrap_or_else(|| panic!("{how}: group not listed after the restart"));
        assert_eq!(restored.members.len(), 1, "{how}: {restored:?}");

        // Session (6 s) of the lost member, then one rebalance, with a margin.
        let range = [("partition.assignment.strategy", "range")];
        let mut members = [Member::join(
            &broker.bootstrap(),
            &group,
            "newcomer",
            topic,
            &range,
        )];
        let what = format!("{how}: the newcomer owns all three partitions");
        settle(&mut members, Duration::from_secs(20), &what, |members| {
            split_problem(&assignments(members), 3, &[3])
        });
    }
}

#[test]
fn join_with_a_session_below_the_broker_minimum_is_refused() {
    let broker = Broker::start(
        2,
        &[
            "--group-initial-rebalance-delay-ms",
            "0",
            "--group-min-session-timeout-ms",
            "6000",
        ],
    );
    let bootstrap = broker.bootstrap();
    let topic = "short-session";
    create_topic(&bootstrap, topic, 1);
    let short = [("session.timeout.ms", "3000")];
    let member = Member::join(&bootstrap, "short-session", "impatient", topic, &short);
    let error = poll_until(SETTLE_TIMEOUT, "JoinGroup is refused", || {
        match member.consumer.poll(POLL_SLICE) {
            Some(Err(error)) => Some(error),
            _ => None,
        }
    });
    assert_eq!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::InvalidSessionTimeout),
        "{error}"
    );
    assert!(member.partitions().is_empty());
}
