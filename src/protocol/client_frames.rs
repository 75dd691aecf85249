//! A Kafka client's framing of one exchange: the size-prefixed request with
//! its header, and the response's header and body decoded with the
//! correlation id checked. Pure code over bytes, shared by the CLI tools
//! (`cli::kafka`) and by brokers calling each other (`server::peer_brokers`).
//! A malformed response is an error, never a panic.

use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

/// The size-prefixed bytes of one request: header, then body.
pub fn encode_request<R: Request>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
    request: &R,
) -> Result<Bytes, String> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let mut frame = BytesMut::with_capacity(256);
    frame.extend_from_slice(&[0; 4]);
    let encode_error =
        |error: anyhow::Error| format!("cannot encode {api_key:?} v{version}: {error}");
    header
        .encode(&mut frame, api_key.request_header_version(version))
        .map_err(encode_error)?;
    request.encode(&mut frame, version).map_err(encode_error)?;
    let size =
        i32::try_from(frame.len() - 4).map_err(|_| format!("{api_key:?} request too large"))?;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame.freeze())
}

/// Decodes a response frame's header and body (the bytes after the size).
pub fn decode_response<T: Decodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &mut Bytes,
) -> Result<T, String> {
    let decode_error =
        |error: String| format!("cannot decode {api_key:?} v{version} response: {error}");
    // The decoder trusts array lengths from the wire (Vec::with_capacity);
    // a hostile length must not take the caller down with a panic.
    let decoded = catch_unwind(AssertUnwindSafe(|| {
        let header = ResponseHeader::decode(body, api_key.response_header_version(version))?;
        let response = T::decode(body, version)?;
        Ok::<_, anyhow::Error>((header, response))
    }));
    let (header, response) = match decoded {
        Ok(Ok(decoded)) => decoded,
        Ok(Err(error)) => return Err(decode_error(error.to_string())),
        Err(_) => return Err(decode_error("decoder panicked".to_string())),
    };
    if header.correlation_id != correlation_id {
        return Err(format!(
            "{api_key:?} response has correlation id {}, expected {correlation_id}",
            header.correlation_id
        ));
    }
    Ok(response)
}
