//! A broken JoinGroup frame (a body cut inside the group id, or bytes that are no
//! JoinGroup at all) closes only its own connection without an answer; the broker and a
//! member on another connection carry on.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::Encodable;

use crate::common::wire::{connect, frame, wait_for_close, write_lenient, Hangup};
use crate::common::Broker;
use crate::flows::{find_group_coordinator, heartbeat, stable_single_member_group};
use crate::requests::text;
use crate::{BROKER_FLAGS, NONE};

#[test]
fn broken_join_group_frame_closes_only_that_connection() {
    let mut broker = Broker::start(2, BROKER_FLAGS);
    let mut stream = connect(&broker.bootstrap());
    find_group_coordinator(&mut stream, "survivor");
    let (member_id, generation_id) =
        stable_single_member_group(&mut stream, "survivor", &["orders"]);

    // A JoinGroup v5 whose body stops inside the group id string.
    let mut truncated = Vec::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::JoinGroup as i16)
        .with_request_api_version(5)
        .with_correlation_id(1)
        .with_client_id(Some(text("truncating")))
        .encode(&mut truncated, ApiKey::JoinGroup.request_header_version(5))
        .expect("encode header");
    truncated.extend_from_slice(&100i16.to_be_bytes());
    truncated.extend_from_slice(b"sur");
    // A flexible JoinGroup v9 header followed by bytes that are no JoinGroup at all.
    let mut garbage = Vec::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::JoinGroup as i16)
        .with_request_api_version(9)
        .with_correlation_id(2)
        .with_client_id(Some(text("garbage")))
        .encode(&mut garbage, ApiKey::JoinGroup.request_header_version(9))
        .expect("encode header");
    garbage.extend_from_slice(&[0xff; 64]);

    for (what, payload) in [("truncated", truncated), ("garbage", garbage)] {
        let mut broken = connect(&broker.bootstrap());
        write_lenient(&mut broken, &frame(&payload));
        let hangup = wait_for_close(&mut broken);
        assert!(
            matches!(
                hangup,
                Hangup::Closed {
                    bytes_before_close: 0
                }
            ),
            "{what} JoinGroup: expected the connection closed without an answer, got {hangup:?}"
        );
        broker.assert_alive();
        assert_eq!(
            heartbeat(&mut stream, 4, "survivor", generation_id, &member_id),
            NONE,
            "the other connection's member after a {what} JoinGroup"
        );
    }
}
