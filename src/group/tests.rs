//! Deterministic scenarios of the group state machine: simulated time,
//! fixed member id suffixes, every response checked.

use bytes::Bytes;
use uuid::Uuid;

use super::error::*;
use super::*;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;
const DELAY_MS: i32 = 3_000;

fn group(initial_rebalance_delay_ms: i32) -> Group {
    Group::new(
        "g1",
        GroupConfig {
            initial_rebalance_delay_ms,
            ..GroupConfig::default()
        },
    )
}

fn request(client_id: &str, member_id: &str) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        group_instance_id: None,
        client_id: client_id.to_string(),
        client_host: "/127.0.0.1".to_string(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".to_string(),
        protocols: vec![Protocol::new("range", format!("meta-{client_id}"))],
        require_known_member_id: true,
    }
}

fn static_request(instance_id: &str, member_id: &str) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(instance_id.to_string()),
        ..request(instance_id, member_id)
    }
}

fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// First step of a v4+ join: the member id comes back with MEMBER_ID_REQUIRED.
fn get_member_id(g: &mut Group, client_id: &str, now_ms: i64, n: u128) -> String {
    let reply = g.join(request(client_id, ""), now_ms, uuid(n));
    match reply.outcome {
        JoinOutcome::Response(r) => {
            assert_eq!(r.error_code, MEMBER_ID_REQUIRED);
            assert_eq!(r.member_id, format!("{client_id}-{}", uuid(n)));
            r.member_id
        }
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    }
}

fn join(g: &mut Group, client_id: &str, member_id: &str, now_ms: i64) -> Reply<JoinOutcome> {
    g.join(request(client_id, member_id), now_ms, uuid(999))
}

fn joined(effects: &[Effect], member_id: &str) -> JoinResponse {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Join {
                member_id: id,
                response,
            } if id == member_id => Some(response.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no join response for {member_id} in {effects:?}"))
}

fn synced(effects: &[Effect], member_id: &str) -> SyncResponse {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Sync {
                member_id: id,
                response,
            } if id == member_id => Some(response.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no sync response for {member_id} in {effects:?}"))
}

fn removed(effects: &[Effect]) -> Vec<(String, RemovalReason)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::MemberRemoved {
                member_id, reason, ..
            } => Some((member_id.clone(), *reason)),
            _ => None,
        })
        .collect()
}

fn response(outcome: JoinOutcome) -> JoinResponse {
    match outcome {
        JoinOutcome::Response(r) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn heartbeat(g: &mut Group, member_id: &str, generation_id: i32, now_ms: i64) -> i16 {
    let request = HeartbeatRequest {
        member_id: member_id.to_string(),
        group_instance_id: None,
        generation_id,
    };
    g.heartbeat(request, now_ms).outcome
}

fn sync(g: &mut Group, member_id: &str, generation_id: i32, now_ms: i64) -> Reply<SyncOutcome> {
    g.sync(
        SyncRequest {
            member_id: member_id.to_string(),
            generation_id,
            ..SyncRequest::default()
        },
        now_ms,
    )
}

fn leader_sync(g: &mut Group, leader: &str, generation_id: i32, now_ms: i64) -> Reply<SyncOutcome> {
    let assignments = g
        .members()
        .iter()
        .map(|m| {
            (
                m.member_id.clone(),
                Bytes::from(format!("assign-{}", m.member_id)),
            )
        })
        .collect();
    g.sync(
        SyncRequest {
            member_id: leader.to_string(),
            generation_id,
            assignments,
            ..SyncRequest::default()
        },
        now_ms,
    )
}

/// Two members join within the initial delay; returns (a, b) with `a` the
/// leader, the group in CompletingRebalance at generation 1, time 3_000.
fn two_members_joined(g: &mut Group) -> (String, String) {
    let a = get_member_id(g, "a", 0, 1);
    let b = get_member_id(g, "b", 0, 2);
    assert!(matches!(
        join(g, "a", &a, 0).outcome,
        JoinOutcome::Pending { .. }
    ));
    assert!(matches!(
        join(g, "b", &b, 100).outcome,
        JoinOutcome::Pending { .. }
    ));
    // Extended once by b's arrival: the round ends at 2 * delay.
    assert!(g.tick(i64::from(DELAY_MS)).is_empty());
    let effects = g.tick(2 * i64::from(DELAY_MS));
    assert_eq!(joined(&effects, &a).generation_id, 1);
    assert_eq!(joined(&effects, &b).generation_id, 1);
    (a, b)
}

/// Two members in a Stable generation 1 at time 6_000.
fn stable_pair(g: &mut Group) -> (String, String) {
    let (a, b) = two_members_joined(g);
    let now = 2 * i64::from(DELAY_MS);
    assert!(matches!(
        sync(g, &b, 1, now).outcome,
        SyncOutcome::Pending { .. }
    ));
    let reply = leader_sync(g, &a, 1, now);
    assert!(matches!(reply.outcome, SyncOutcome::Response(ref r) if r.error_code == NONE));
    assert_eq!(
        synced(&reply.effects, &b).assignment,
        Bytes::from(format!("assign-{b}"))
    );
    assert_eq!(g.state(), GroupState::Stable);
    (a, b)
}

#[test]
fn two_members_get_one_generation_with_one_leader() {
    let mut g = group(DELAY_MS);
    let a = get_member_id(&mut g, "a", 0, 1);
    let b = get_member_id(&mut g, "b", 0, 2);
    join(&mut g, "a", &a, 0);
    join(&mut g, "b", &b, 0);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    // b's arrival extends the initial delay once.
    assert!(g.tick(i64::from(DELAY_MS)).is_empty());
    let effects = g.tick(2 * i64::from(DELAY_MS));
    let ra = joined(&effects, &a);
    let rb = joined(&effects, &b);
    assert_eq!((ra.error_code, rb.error_code), (NONE, NONE));
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    assert_eq!(ra.leader, a);
    assert_eq!(rb.leader, a);
    assert_eq!(ra.protocol_name.as_deref(), Some("range"));
    assert_eq!(ra.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(ra.members.len(), 2, "the leader sees every member");
    assert_eq!(ra.members[1].metadata, Bytes::from("meta-b"));
    assert!(rb.members.is_empty(), "followers see no members");
    assert_eq!(g.state(), GroupState::CompletingRebalance);
}

#[test]
fn member_id_required_two_step() {
    let mut g = group(0);
    let first = g.join(request("client", ""), 0, uuid(7));
    let r = response(first.outcome);
    assert_eq!(r.error_code, MEMBER_ID_REQUIRED);
    assert_eq!(r.member_id, format!("client-{}", uuid(7)));
    assert!(g.members().is_empty(), "not a member until it rejoins");
    assert_eq!(g.state(), GroupState::Empty);
    // Second step with the id: zero delay completes the round at once.
    let r = response(join(&mut g, "client", &r.member_id, 0).outcome);
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader, r.member_id);
    assert_eq!(g.members().len(), 1);
}

#[test]
fn old_join_version_gets_member_id_directly() {
    let mut g = group(0);
    let old = JoinRequest {
        require_known_member_id: false,
        ..request("old", "")
    };
    let r = response(g.join(old, 0, uuid(3)).outcome);
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.member_id, format!("old-{}", uuid(3)));
}

#[test]
fn pending_member_whose_round_completed_without_it_still_joins() {
    let mut g = group(DELAY_MS);
    let a = get_member_id(&mut g, "a", 0, 1);
    let b = get_member_id(&mut g, "b", 0, 2);
    assert!(matches!(
        join(&mut g, "a", &a, 0).outcome,
        JoinOutcome::Pending { .. }
    ));
    // The round ends at its deadline (within b's session) with only `a`;
    // `b` is still pending.
    let round_end = g.next_deadline_ms().expect("a join deadline");
    assert!(round_end < i64::from(SESSION_MS));
    let effects = g.tick(round_end);
    assert_eq!(joined(&effects, &a).generation_id, 1);
    let reply = join(&mut g, "b", &b, round_end + 10);
    assert!(
        matches!(reply.outcome, JoinOutcome::Pending { .. }),
        "the pending member is accepted into a new round: {:?}",
        reply.outcome
    );
    assert_eq!(g.state(), GroupState::PreparingRebalance);
}

#[test]
fn pending_member_that_never_rejoins_expires() {
    let mut g = group(0);
    get_member_id(&mut g, "ghost", 0, 1);
    assert_eq!(g.next_deadline_ms(), Some(i64::from(SESSION_MS)));
    g.tick(i64::from(SESSION_MS));
    assert_eq!(g.next_deadline_ms(), None);
    // Its id is no good any more.
    let r = response(join(&mut g, "ghost", &format!("ghost-{}", uuid(1)), 20_000).outcome);
    assert_eq!(r.error_code, UNKNOWN_MEMBER_ID);
}

#[test]
fn third_member_triggers_rebalance_and_a_new_generation() {
    let mut g = group(DELAY_MS);
    let (a, b) = stable_pair(&mut g);
    let now = 7_000;
    let c = get_member_id(&mut g, "c", now, 3);
    assert!(matches!(
        join(&mut g, "c", &c, now).outcome,
        JoinOutcome::Pending { .. }
    ));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(heartbeat(&mut g, &a, 1, now + 100), REBALANCE_IN_PROGRESS);
    assert_eq!(heartbeat(&mut g, &b, 1, now + 100), REBALANCE_IN_PROGRESS);
    assert!(matches!(
        join(&mut g, "a", &a, now + 200).outcome,
        JoinOutcome::Pending { .. }
    ));
    // The last one in completes the round in its own call.
    let reply = join(&mut g, "b", &b, now + 300);
    let rb = response(reply.outcome);
    assert_eq!(rb.generation_id, 2);
    assert_eq!(rb.member_id, b, "a rejoining member keeps its id");
    let ra = joined(&reply.effects, &a);
    assert_eq!(ra.leader, a, "the leader stays the leader");
    assert_eq!(ra.members.len(), 3);
    assert_eq!(joined(&reply.effects, &c).generation_id, 2);
    // Old generation is refused now.
    assert_eq!(heartbeat(&mut g, &a, 1, now + 400), ILLEGAL_GENERATION);
    assert_eq!(heartbeat(&mut g, &a, 2, now + 400), NONE);
}

#[test]
fn silent_member_expires_and_survivor_forms_next_generation() {
    let mut g = group(DELAY_MS);
    let (a, b) = stable_pair(&mut g);
    let mut now = 6_000;
    // a keeps heartbeating, b falls silent after its sync at 6_000.
    while now < 6_000 + i64::from(SESSION_MS) - 1_000 {
        now += 3_000;
        assert_eq!(heartbeat(&mut g, &a, 1, now), NONE);
    }
    let effects = g.tick(6_000 + i64::from(SESSION_MS));
    assert_eq!(
        removed(&effects),
        vec![(b.clone(), RemovalReason::SessionExpired)]
    );
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(heartbeat(&mut g, &a, 1, 16_500), REBALANCE_IN_PROGRESS);
    let r = response(join(&mut g, "a", &a, 16_600).outcome);
    assert_eq!((r.generation_id, r.leader.as_str()), (2, a.as_str()));
    assert_eq!(r.members.len(), 1);
}

#[test]
fn member_joins_during_a_rebalance() {
    let mut g = group(DELAY_MS);
    let (a, b) = stable_pair(&mut g);
    join(&mut g, "a", &a, 7_000); // leader rejoin starts a round
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let c = get_member_id(&mut g, "c", 7_100, 3);
    // c's pending id holds the round even though a and b are in.
    join(&mut g, "b", &b, 7_200);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let reply = join(&mut g, "c", &c, 7_300);
    assert_eq!(response(reply.outcome).generation_id, 2);
    assert_eq!(joined(&reply.effects, &a).members.len(), 3);
}

#[test]
fn member_not_rejoining_within_rebalance_timeout_is_dropped() {
    let mut g = group(DELAY_MS);
    let (a, b) = stable_pair(&mut g);
    let start = 7_000;
    join(&mut g, "a", &a, start);
    // b keeps heartbeating (told to rejoin) but never does.
    for t in (start..start + i64::from(REBALANCE_MS))
        .step_by(3_000)
        .skip(1)
    {
        assert_eq!(heartbeat(&mut g, &b, 1, t), REBALANCE_IN_PROGRESS);
    }
    assert_eq!(g.next_deadline_ms(), Some(start + i64::from(REBALANCE_MS)));
    let effects = g.tick(start + i64::from(REBALANCE_MS));
    assert_eq!(
        removed(&effects),
        vec![(b.clone(), RemovalReason::NotRejoined)]
    );
    let ra = joined(&effects, &a);
    assert_eq!((ra.generation_id, ra.members.len()), (2, 1));
    assert_eq!(heartbeat(&mut g, &b, 2, start + 31_000), UNKNOWN_MEMBER_ID);
}

#[test]
fn leader_that_never_syncs_times_out_and_group_rebalances() {
    let mut g = group(DELAY_MS);
    let (a, b) = two_members_joined(&mut g);
    // b waits for the assignment; its pending sync keeps it alive.
    assert!(matches!(
        sync(&mut g, &b, 1, 6_000).outcome,
        SyncOutcome::Pending { .. }
    ));
    let effects = g.tick(6_000 + i64::from(SESSION_MS));
    assert_eq!(
        removed(&effects),
        vec![(a.clone(), RemovalReason::SessionExpired)]
    );
    assert_eq!(synced(&effects, &b).error_code, REBALANCE_IN_PROGRESS);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.leader_id(), Some(b.as_str()));
    let r = response(join(&mut g, "b", &b, 16_100).outcome);
    assert_eq!((r.generation_id, r.leader.as_str()), (2, b.as_str()));
}

#[test]
fn stale_generation_is_illegal_for_sync_heartbeat_and_commit() {
    let mut g = group(DELAY_MS);
    let (a, b) = stable_pair(&mut g);
    assert_eq!(heartbeat(&mut g, &b, 0, 6_100), ILLEGAL_GENERATION);
    let r = sync(&mut g, &b, 7, 6_100).outcome;
    assert!(matches!(r, SyncOutcome::Response(ref r) if r.error_code == ILLEGAL_GENERATION));
    assert_eq!(
        g.validate_offset_commit(&a, None, 0, 6_100).outcome,
        ILLEGAL_GENERATION
    );
    assert_eq!(g.validate_offset_commit(&a, None, 1, 6_100).outcome, NONE);
    assert_eq!(
        g.validate_offset_commit("nobody", None, 1, 6_100).outcome,
        UNKNOWN_MEMBER_ID
    );
    // Stable: a sync of the current generation returns the assignment again.
    let r = sync(&mut g, &b, 1, 6_200).outcome;
    assert!(matches!(r, SyncOutcome::Response(ref r) if r.assignment == format!("assign-{b}")));
}

#[test]
fn commit_rules_follow_group_state() {
    let mut g = group(DELAY_MS);
    assert_eq!(
        g.validate_offset_commit("", None, -1, 0).outcome,
        NONE,
        "standalone consumer"
    );
    let (a, _) = two_members_joined(&mut g);
    assert_eq!(
        g.validate_offset_commit(&a, None, 1, 6_000).outcome,
        REBALANCE_IN_PROGRESS
    );
    leader_sync(&mut g, &a, 1, 6_000);
    join(&mut g, "a", &a, 6_100);
    // During PreparingRebalance the old generation may still commit
    // (what eager and cooperative clients do before revoking).
    assert_eq!(g.validate_offset_commit(&a, None, 1, 6_200).outcome, NONE);
}

#[test]
fn txn_offset_commit_checks_member_and_generation_only_when_named() {
    let mut g = group(DELAY_MS);
    // v0-2 (no member, no generation): any state, even mid-rebalance.
    assert_eq!(g.validate_txn_offset_commit("", None, -1), NONE);
    let (a, _) = two_members_joined(&mut g);
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(g.validate_txn_offset_commit("", None, -1), NONE);
    // KIP-447: a named member must be current, at the current generation;
    // CompletingRebalance is no reason to refuse (unlike OffsetCommit).
    assert_eq!(g.validate_txn_offset_commit(&a, None, 1), NONE);
    assert_eq!(
        g.validate_txn_offset_commit(&a, None, 0),
        ILLEGAL_GENERATION
    );
    assert_eq!(
        g.validate_txn_offset_commit("nobody", None, 1),
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        g.validate_txn_offset_commit("", None, 1),
        UNKNOWN_MEMBER_ID,
        "a generation without a member"
    );
}

#[test]
fn txn_offset_commit_of_a_fenced_static_member_is_refused() {
    let mut g = group(0);
    let old = response(g.join(static_request("pod-1", ""), 0, uuid(1)).outcome).member_id;
    leader_sync(&mut g, &old, 1, 0);
    let new = response(g.join(static_request("pod-1", ""), 5_000, uuid(2)).outcome).member_id;
    assert_eq!(g.validate_txn_offset_commit(&new, Some("pod-1"), 1), NONE);
    assert_eq!(
        g.validate_txn_offset_commit(&old, Some("pod-1"), 1),
        FENCED_INSTANCE_ID
    );
}

#[test]
fn unknown_member_is_refused_everywhere() {
    let mut g = group(DELAY_MS);
    stable_pair(&mut g);
    assert_eq!(heartbeat(&mut g, "x", 1, 6_100), UNKNOWN_MEMBER_ID);
    let r = sync(&mut g, "x", 1, 6_100).outcome;
    assert!(matches!(r, SyncOutcome::Response(ref r) if r.error_code == UNKNOWN_MEMBER_ID));
    assert_eq!(
        response(join(&mut g, "x", "x-1", 6_100).outcome).error_code,
        UNKNOWN_MEMBER_ID
    );
}

#[test]
fn sync_during_preparing_rebalance_says_rebalance_in_progress() {
    let mut g = group(DELAY_MS);
    let (a, b) = stable_pair(&mut g);
    join(&mut g, "a", &a, 6_100);
    let r = sync(&mut g, &b, 1, 6_200).outcome;
    assert!(matches!(r, SyncOutcome::Response(ref r) if r.error_code == REBALANCE_IN_PROGRESS));
}

#[test]
fn static_member_restart_replaces_old_id_without_rebalance() {
    let mut g = group(0);
    let r = response(g.join(static_request("pod-1", ""), 0, uuid(1)).outcome);
    assert_eq!(r.error_code, NONE, "static members skip MEMBER_ID_REQUIRED");
    let old = r.member_id.clone();
    assert_eq!(old, format!("pod-1-{}", uuid(1)));
    leader_sync(&mut g, &old, 1, 0);
    assert_eq!(g.state(), GroupState::Stable);
    // The process restarts: same instance id, no member id, same protocols.
    let reply = g.join(static_request("pod-1", ""), 5_000, uuid(2));
    let r = response(reply.outcome);
    let new = format!("pod-1-{}", uuid(2));
    assert_eq!(
        (r.error_code, r.member_id.as_str(), r.generation_id),
        (NONE, new.as_str(), 1)
    );
    assert_eq!(r.leader, old, "the old leader id, so it does not reassign");
    assert_eq!(
        removed(&reply.effects),
        vec![(old.clone(), RemovalReason::Fenced)]
    );
    assert_eq!(g.state(), GroupState::Stable, "no rebalance");
    // The new incarnation gets the old assignment; the old one is fenced.
    let resync = g.sync(
        SyncRequest {
            member_id: new.clone(),
            group_instance_id: Some("pod-1".into()),
            generation_id: 1,
            ..SyncRequest::default()
        },
        5_100,
    );
    assert!(matches!(resync.outcome,
        SyncOutcome::Response(ref r) if r.assignment == format!("assign-{old}")));
    let stale = HeartbeatRequest {
        member_id: old.clone(),
        group_instance_id: Some("pod-1".into()),
        generation_id: 1,
    };
    assert_eq!(g.heartbeat(stale, 5_200).outcome, FENCED_INSTANCE_ID);
    let stale_join = g.join(static_request("pod-1", &old), 5_300, uuid(3));
    assert_eq!(response(stale_join.outcome).error_code, FENCED_INSTANCE_ID);
}

#[test]
fn static_member_restart_with_new_protocols_rebalances() {
    let mut g = group(0);
    let old = response(g.join(static_request("pod-1", ""), 0, uuid(1)).outcome).member_id;
    leader_sync(&mut g, &old, 1, 0);
    let mut changed = static_request("pod-1", "");
    changed.protocols = vec![Protocol::new("range", "new-subscription")];
    let r = response(g.join(changed, 1_000, uuid(2)).outcome);
    assert_eq!(
        r.generation_id, 2,
        "sole member: the round completes at once"
    );
    assert_eq!(r.leader, r.member_id);
}

#[test]
fn static_member_pending_join_is_fenced_by_newer_incarnation() {
    let mut g = group(DELAY_MS);
    let old = match g.join(static_request("pod-1", ""), 0, uuid(1)).outcome {
        JoinOutcome::Pending { member_id } => member_id,
        other => panic!("{other:?}"),
    };
    let reply = g.join(static_request("pod-1", ""), 100, uuid(2));
    assert_eq!(joined(&reply.effects, &old).error_code, FENCED_INSTANCE_ID);
    let effects = g.tick(10_000);
    let r = joined(&effects, &format!("pod-1-{}", uuid(2)));
    assert_eq!((r.generation_id, g.members().len()), (1, 1));
}

#[test]
fn leave_group_batch_removes_members_and_rebalances() {
    let mut g = group(DELAY_MS);
    let (a, b) = stable_pair(&mut g);
    let reply = g.leave(
        &[
            LeaveMember {
                member_id: b.clone(),
                group_instance_id: None,
            },
            LeaveMember {
                member_id: "ghost".into(),
                group_instance_id: None,
            },
            LeaveMember {
                member_id: String::new(),
                group_instance_id: Some("nope".into()),
            },
        ],
        7_000,
    );
    let codes: Vec<i16> = reply.outcome.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![NONE, UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID]);
    assert_eq!(reply.outcome.error_code, NONE);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let r = response(join(&mut g, "a", &a, 7_100).outcome);
    assert_eq!((r.generation_id, r.members.len()), (2, 1));
    // Everyone leaves: after the round the group is Empty.
    let reply = g.leave(
        &[LeaveMember {
            member_id: a.clone(),
            group_instance_id: None,
        }],
        7_200,
    );
    assert_eq!(g.state(), GroupState::Empty);
    assert!(g.members().is_empty());
    assert_eq!(g.generation_id(), 3);
    assert!(reply
        .effects
        .contains(&Effect::StoreGroup { generation_id: 3 }));
}

#[test]
fn static_member_leaves_by_instance_id() {
    let mut g = group(0);
    let id = response(g.join(static_request("pod-1", ""), 0, uuid(1)).outcome).member_id;
    let wrong = LeaveMember {
        member_id: "other".into(),
        group_instance_id: Some("pod-1".into()),
    };
    assert_eq!(
        g.leave(&[wrong], 10).outcome.members[0].error_code,
        FENCED_INSTANCE_ID
    );
    let right = LeaveMember {
        member_id: String::new(),
        group_instance_id: Some("pod-1".into()),
    };
    assert_eq!(g.leave(&[right], 20).outcome.members[0].error_code, NONE);
    assert!(g.member(&id).is_none());
    assert_eq!(g.state(), GroupState::Empty);
}

#[test]
fn initial_rebalance_delay_is_honoured_and_extended_up_to_rebalance_timeout() {
    let mut g = group(DELAY_MS);
    let a = get_member_id(&mut g, "a", 0, 1);
    assert!(matches!(
        join(&mut g, "a", &a, 0).outcome,
        JoinOutcome::Pending { .. }
    ));
    assert!(
        g.tick(i64::from(DELAY_MS) - 1).is_empty(),
        "held for the delay"
    );
    assert_eq!(g.next_deadline_ms(), Some(i64::from(DELAY_MS)));
    // A new joiner every 2 s keeps extending it, but never past the
    // rebalance timeout.
    let mut now = 0;
    let mut n = 2;
    let mut done = None;
    while done.is_none() {
        now += 2_000;
        let effects = g.tick(now);
        if !effects.is_empty() {
            done = Some((now, effects));
            break;
        }
        let id = get_member_id(&mut g, "x", now, n);
        join(&mut g, "x", &id, now);
        n += 1;
    }
    let (at, effects) = done.unwrap();
    assert!(
        at <= i64::from(REBALANCE_MS) + 2_000,
        "bounded by the rebalance timeout"
    );
    assert!(at > i64::from(DELAY_MS), "extended by joiners");
    assert_eq!(joined(&effects, &a).generation_id, 1);
}

#[test]
fn zero_initial_delay_completes_first_join_at_once() {
    let mut g = group(0);
    let a = get_member_id(&mut g, "a", 0, 1);
    let r = response(join(&mut g, "a", &a, 0).outcome);
    assert_eq!((r.error_code, r.generation_id), (NONE, 1));
    assert_eq!(g.state(), GroupState::CompletingRebalance);
}

#[test]
fn inconsistent_protocols_are_refused() {
    let mut g = group(0);
    let a = get_member_id(&mut g, "a", 0, 1);
    join(&mut g, "a", &a, 0);
    let mut other = request("b", "");
    other.protocols = vec![Protocol::new("roundrobin", "m")];
    assert_eq!(
        response(g.join(other, 10, uuid(2)).outcome).error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
    let mut connect = request("c", "");
    connect.protocol_type = "connect".into();
    assert_eq!(
        response(g.join(connect, 10, uuid(3)).outcome).error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
    let mut none = request("d", "");
    none.protocols.clear();
    assert_eq!(
        response(g.join(none, 10, uuid(4)).outcome).error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
}

#[test]
fn protocol_is_chosen_by_vote_among_common_ones() {
    let mut g = group(DELAY_MS);
    let prefs = [
        vec!["cooperative-sticky", "range"],
        vec!["range", "cooperative-sticky", "roundrobin"],
        vec!["cooperative-sticky", "range"],
    ];
    let mut ids = Vec::new();
    for (n, names) in prefs.iter().enumerate() {
        let mut r = request(&format!("c{n}"), "");
        r.protocols = names.iter().map(|p| Protocol::new(p, *p)).collect();
        r.require_known_member_id = false;
        ids.push(match g.join(r, 0, uuid(n as u128)).outcome {
            JoinOutcome::Pending { member_id } => member_id,
            other => panic!("{other:?}"),
        });
    }
    let effects = g.tick(60_000);
    let leader = joined(&effects, &ids[0]);
    assert_eq!(leader.protocol_name.as_deref(), Some("cooperative-sticky"));
    assert_eq!(
        leader.members[1].metadata,
        Bytes::from("cooperative-sticky")
    );
}

#[test]
fn invalid_session_timeout_is_refused() {
    let mut g = group(0);
    let mut r = request("a", "");
    r.session_timeout_ms = 1;
    assert_eq!(
        response(g.join(r, 0, uuid(1)).outcome).error_code,
        INVALID_SESSION_TIMEOUT
    );
}

#[test]
fn group_max_size_is_enforced() {
    let mut g = Group::new(
        "g",
        GroupConfig {
            group_size_max: 2,
            ..GroupConfig::default()
        },
    );
    get_member_id(&mut g, "a", 0, 1);
    get_member_id(&mut g, "b", 0, 2);
    let r = response(g.join(request("c", ""), 0, uuid(3)).outcome);
    assert_eq!(r.error_code, GROUP_MAX_SIZE_REACHED);
}

#[test]
fn dead_group_answers_coordinator_not_available() {
    let mut g = group(0);
    assert_eq!(g.delete(), Ok(()));
    assert_eq!(g.state(), GroupState::Dead);
    let r = response(g.join(request("a", ""), 0, uuid(1)).outcome);
    assert_eq!(r.error_code, COORDINATOR_NOT_AVAILABLE);
    assert_eq!(heartbeat(&mut g, "a", 1, 0), COORDINATOR_NOT_AVAILABLE);
    assert_eq!(g.delete(), Err(GroupError::GroupIdNotFound));
}

#[test]
fn non_empty_group_cannot_be_deleted() {
    let mut g = group(0);
    let a = get_member_id(&mut g, "a", 0, 1);
    join(&mut g, "a", &a, 0);
    assert_eq!(g.delete().map_err(GroupError::code), Err(NON_EMPTY_GROUP));
}

#[test]
fn cooperative_member_rejoining_keeps_its_id_and_assignment_flow() {
    // Cooperative clients rejoin with their member id while the group is
    // PreparingRebalance; the classic machinery must keep that id.
    let mut g = group(DELAY_MS);
    let (a, b) = stable_pair(&mut g);
    let c = get_member_id(&mut g, "c", 7_000, 3);
    join(&mut g, "c", &c, 7_000);
    join(&mut g, "b", &b, 7_100);
    let reply = join(&mut g, "a", &a, 7_200);
    let ra = response(reply.outcome);
    assert_eq!(ra.member_id, a);
    assert_eq!(joined(&reply.effects, &b).member_id, b);
    assert_eq!(ra.generation_id, 2);
    // Second (cooperative) round right after: leader rejoins again.
    leader_sync(&mut g, &a, 2, 7_300);
    join(&mut g, "a", &a, 7_400);
    join(&mut g, "c", &c, 7_400);
    let r = response(join(&mut g, "b", &b, 7_500).outcome);
    assert_eq!((r.member_id.as_str(), r.generation_id), (b.as_str(), 3));
}

#[test]
fn lost_join_response_is_resent_in_completing_rebalance() {
    let mut g = group(DELAY_MS);
    let (a, b) = two_members_joined(&mut g);
    let r = response(join(&mut g, "a", &a, 6_100).outcome);
    assert_eq!((r.generation_id, r.members.len()), (1, 2));
    let r = response(join(&mut g, "b", &b, 6_100).outcome);
    assert!(r.members.is_empty());
    assert_eq!(g.state(), GroupState::CompletingRebalance);
}

#[test]
fn timers_fire_in_order_when_ticks_are_late() {
    let mut g = group(DELAY_MS);
    let (a, _b) = stable_pair(&mut g);
    // Nobody heartbeats; a single very late tick expires both, one after
    // the other, and leaves an Empty group, never panicking.
    let effects = g.tick(1_000_000);
    assert_eq!(removed(&effects).len(), 2);
    assert_eq!(g.state(), GroupState::Empty);
    assert!(g.member(&a).is_none());
    assert_eq!(g.next_deadline_ms(), None);
}

// ---- stored group metadata (persist.rs) --------------------------------------

#[test]
fn stored_group_restores_stable_with_assignments_and_fresh_sessions() {
    let mut g = group(DELAY_MS);
    let (a, b) = stable_pair(&mut g);
    let stored = g.to_stored(6_000);
    assert_eq!(stored.generation, 1);
    assert_eq!(stored.protocol.as_deref(), Some("range"));
    assert_eq!(stored.leader.as_deref(), Some(a.as_str()));
    assert_eq!(stored.members.len(), 2);
    assert_eq!(stored.members[1].subscription, b"meta-b".to_vec());

    // The broker restarts an hour later and replays the record.
    let restart = 3_600_000;
    let mut restored = Group::restore("g1", GroupConfig::default(), &stored, restart);
    assert_eq!(restored.state(), GroupState::Stable);
    assert_eq!(restored.generation_id(), 1);
    assert_eq!(restored.leader_id(), Some(a.as_str()));
    assert_eq!(restored.protocol_name(), Some("range"));
    assert_eq!(
        restored.member(&b).map(|m| m.assignment.clone()),
        Some(Bytes::from(format!("assign-{b}")))
    );
    // Members that keep heartbeating carry on without a rebalance.
    assert_eq!(heartbeat(&mut restored, &a, 1, restart + 1_000), NONE);
    assert_eq!(heartbeat(&mut restored, &b, 1, restart + 1_000), NONE);
    // One that does not come back expires after its session timeout and
    // the survivor is told to rejoin.
    assert_eq!(heartbeat(&mut restored, &a, 1, restart + 9_000), NONE);
    let effects = restored.tick(restart + 1_000 + i64::from(SESSION_MS));
    assert_eq!(
        removed(&effects),
        vec![(b.clone(), RemovalReason::SessionExpired)]
    );
    assert_eq!(
        heartbeat(&mut restored, &a, 1, restart + 11_500),
        REBALANCE_IN_PROGRESS
    );
    // A stale generation from before the restart is still refused.
    assert_eq!(
        heartbeat(&mut restored, &a, 0, restart + 11_600),
        ILLEGAL_GENERATION
    );
}

#[test]
fn stored_empty_group_restores_empty_at_its_generation() {
    let mut g = group(0);
    let a = get_member_id(&mut g, "a", 0, 1);
    let reply = join(&mut g, "a", &a, 0);
    assert_eq!(response(reply.outcome).generation_id, 1);
    let left = g.leave(
        &[LeaveMember {
            member_id: a.clone(),
            group_instance_id: None,
        }],
        10,
    );
    assert!(left
        .effects
        .iter()
        .any(|e| matches!(e, Effect::StoreGroup { .. })));
    assert_eq!(g.state(), GroupState::Empty);
    let stored = g.to_stored(10);
    assert!(stored.members.is_empty());
    let restored = Group::restore("g1", GroupConfig::default(), &stored, 20);
    assert_eq!(restored.state(), GroupState::Empty);
    // Kafka ends a generation when the last member leaves, too.
    assert_eq!(restored.generation_id(), g.generation_id());
    assert_eq!(restored.protocol_type(), Some("consumer"));
    assert!(restored.members().is_empty());
}

#[test]
fn restored_static_member_is_replaced_by_its_new_incarnation() {
    let mut g = group(0);
    let first = g.join(static_request("instance-1", ""), 0, uuid(1));
    let old_id = response(first.outcome).member_id;
    let sync_reply = g.sync(
        SyncRequest {
            member_id: old_id.clone(),
            group_instance_id: Some("instance-1".into()),
            generation_id: 1,
            assignments: vec![(old_id.clone(), Bytes::from_static(b"p0-5"))],
            ..SyncRequest::default()
        },
        0,
    );
    assert!(matches!(sync_reply.outcome, SyncOutcome::Response(ref r) if r.error_code == NONE));
    let restored = Group::restore("g1", GroupConfig::default(), &g.to_stored(0), 1_000);
    let mut restored = restored;
    // The consumer restarted too: same instance id, no member id.
    let rejoin = restored.join(static_request("instance-1", ""), 2_000, uuid(2));
    let rejoined = response(rejoin.outcome);
    assert_eq!(rejoined.error_code, NONE);
    assert_ne!(rejoined.member_id, old_id);
    assert_eq!(
        restored.generation_id(),
        1,
        "no rebalance for a static member"
    );
    assert_eq!(
        restored
            .member(&rejoined.member_id)
            .map(|m| m.assignment.clone()),
        Some(Bytes::from_static(b"p0-5"))
    );
    // The old incarnation is fenced.
    let old = restored.heartbeat(
        HeartbeatRequest {
            member_id: old_id,
            group_instance_id: Some("instance-1".into()),
            generation_id: 1,
        },
        2_100,
    );
    assert_eq!(old.outcome, FENCED_INSTANCE_ID);
}
