//! Request decoding: one frame (without its length prefix) in, a typed request
//! out, or a reason the connection must answer specially or close. Never
//! panics on any input; the fuzz/proptest targets drive this function.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use thiserror::Error;

use super::versions;

/// A decoded request: its header and its body.
#[derive(Debug)]
pub struct Request {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub body: RequestBody,
}

impl Request {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
}

/// The request bodies corelog understands (see `versions::SUPPORTED_APIS`).
#[derive(Debug)]
pub enum RequestBody {
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    ApiVersions(ApiVersionsRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    InitProducerId(InitProducerIdRequest),
    DescribeConfigs(DescribeConfigsRequest),
    DescribeCluster(DescribeClusterRequest),
}

/// Why a frame did not become a `Request`.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the fixed header fields (api key, version, correlation id).
    #[error("frame of {0} bytes is shorter than a request header")]
    TooShort(usize),
    /// An API key we do not implement: Kafka closes the connection.
    #[error("unknown or unsupported api key {0}")]
    UnknownApiKey(i16),
    /// ApiVersions at a version we do not know: answer v0 with UNSUPPORTED_VERSION
    /// so the client can retry lower (KIP-511 behaviour of the Java broker).
    #[error("ApiVersions v{version} is not supported")]
    UnsupportedApiVersionsVersion { version: i16, correlation_id: i32 },
    /// A version of another API we do not implement: the connection is closed.
    #[error("{api_key:?} v{version} is not supported")]
    UnsupportedVersion { api_key: ApiKey, version: i16 },
    /// The bytes do not decode as the announced request.
    #[error("malformed {api_key:?} v{version} request: {reason}")]
    Malformed {
        api_key: ApiKey,
        version: i16,
        reason: String,
    },
}

/// Decodes a request frame. `frame` excludes the 4-byte length prefix.
pub fn decode_request(mut frame: Bytes) -> Result<Request, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::TooShort(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|_| DecodeError::UnknownApiKey(raw_key))?;
    if versions::supported_range(api_key).is_none() {
        return Err(DecodeError::UnknownApiKey(raw_key));
    }
    if !versions::is_supported(api_key, version) {
        if api_key == ApiKey::ApiVersions {
            return Err(DecodeError::UnsupportedApiVersionsVersion {
                version,
                correlation_id,
            });
        }
        return Err(DecodeError::UnsupportedVersion { api_key, version });
    }
    let malformed = |reason: String| DecodeError::Malformed {
        api_key,
        version,
        reason,
    };
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|error| malformed(format!("header: {error}")))?;
    let body = decode_body(api_key, version, &mut frame).map_err(|error| malformed(error.to_string()))?;
    // Kafka ignores trailing bytes after the body; so do we, but they are
    // usually a sign of a client bug worth a debug line.
    if frame.has_remaining() {
        tracing::debug!(?api_key, version, trailing = frame.remaining(), "trailing bytes after request body");
    }
    Ok(Request {
        header,
        api_key,
        body,
    })
}

fn decode_body(api_key: ApiKey, version: i16, frame: &mut Bytes) -> anyhow::Result<RequestBody> {
    Ok(match api_key {
        ApiKey::Produce => RequestBody::Produce(ProduceRequest::decode(frame, version)?),
        ApiKey::Fetch => RequestBody::Fetch(FetchRequest::decode(frame, version)?),
        ApiKey::ListOffsets => RequestBody::ListOffsets(ListOffsetsRequest::decode(frame, version)?),
        ApiKey::Metadata => RequestBody::Metadata(MetadataRequest::decode(frame, version)?),
        ApiKey::ApiVersions => RequestBody::ApiVersions(ApiVersionsRequest::decode(frame, version)?),
        ApiKey::CreateTopics => {
            RequestBody::CreateTopics(CreateTopicsRequest::decode(frame, version)?)
        }
        ApiKey::DeleteTopics => {
            RequestBody::DeleteTopics(DeleteTopicsRequest::decode(frame, version)?)
        }
        ApiKey::InitProducerId => {
            RequestBody::InitProducerId(InitProducerIdRequest::decode(frame, version)?)
        }
        ApiKey::DescribeConfigs => {
            RequestBody::DescribeConfigs(DescribeConfigsRequest::decode(frame, version)?)
        }
        ApiKey::DescribeCluster => {
            RequestBody::DescribeCluster(DescribeClusterRequest::decode(frame, version)?)
        }
        other => anyhow::bail!("no decoder wired for {other:?}"),
    })
}
