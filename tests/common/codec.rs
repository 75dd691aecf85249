//! Framing with the `kafka-protocol` codec over a raw socket: one request written with the
//! header its version uses, one answer read and decoded at that same version. A response
//! that does not decode exactly (wrong correlation id, trailing bytes) is an error, so a
//! field the broker encodes wrongly for a version fails the test that used it.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicI32, Ordering};

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

use crate::common::wire::{frame, read_frame};
use crate::CLIENT_ID;

static NEXT_CORRELATION_ID: AtomicI32 = AtomicI32::new(1);

fn api_name<R: Request>() -> String {
    ApiKey::try_from(R::KEY).map_or_else(|_| format!("api {}", R::KEY), |key| format!("{key:?}"))
}

/// Writes `request` at `version` with the header that version uses; returns the
/// correlation id to pass to [`receive`].
pub(crate) fn send<R: Request>(stream: &mut TcpStream, version: i16, request: &R) -> i32 {
    let api_key = ApiKey::try_from(R::KEY).expect("known api key");
    let correlation_id = NEXT_CORRELATION_ID.fetch_add(1, Ordering::Relaxed);
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut payload = Vec::new();
    header
        .encode(&mut payload, api_key.request_header_version(version))
        .expect("encode request header");
    request
        .encode(&mut payload, version)
        .unwrap_or_else(|error| {
            panic!(
                "test bug: {} v{version} request does not encode: {error}",
                api_name::<R>()
            )
        });
    stream
        .write_all(&frame(&payload))
        .unwrap_or_else(|error| panic!("send {} v{version}: {error}", api_name::<R>()));
    correlation_id
}

/// Reads the answer to the request [`send`] numbered `correlation_id`, decoded at
/// `version`; an error if the connection closed, stayed silent, or the answer does not
/// decode exactly (no trailing bytes).
pub(crate) fn receive<R: Request>(
    stream: &mut TcpStream,
    version: i16,
    correlation_id: i32,
) -> Result<R::Response, String> {
    let api_key = ApiKey::try_from(R::KEY).expect("known api key");
    let what = format!("{} v{version}", api_name::<R>());
    let mut payload = Bytes::from(read_frame(stream).map_err(|error| format!("{what}: {error}"))?);
    let header = ResponseHeader::decode(&mut payload, api_key.response_header_version(version))
        .map_err(|error| format!("{what}: response header does not decode: {error}"))?;
    if header.correlation_id != correlation_id {
        return Err(format!(
            "{what}: correlation id {} answered, {correlation_id} expected",
            header.correlation_id
        ));
    }
    let response = R::Response::decode(&mut payload, version)
        .map_err(|error| format!("{what}: response does not decode: {error}"))?;
    if payload.has_remaining() {
        return Err(format!(
            "{what}: {} trailing bytes after the response",
            payload.remaining()
        ));
    }
    Ok(response)
}

/// One request, one decoded answer; panics (naming the API and version) otherwise.
pub(crate) fn call<R: Request>(stream: &mut TcpStream, version: i16, request: &R) -> R::Response {
    let correlation_id = send(stream, version, request);
    receive::<R>(stream, version, correlation_id).unwrap_or_else(|error| panic!("{error}"))
}
