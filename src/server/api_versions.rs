//! ApiVersions: the table in `protocol::versions`, answered exactly as the
//! Java broker does. No optional tagged fields are sent (old librdkafka, as in
//! Debian's kcat 1.7 / librdkafka 2.0.2, fails on them), and an unknown
//! request version gets a v0-format answer with UNSUPPORTED_VERSION so the
//! client can retry with a version we know (KIP-511).

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;

use crate::protocol::errors::KafkaError;
use crate::protocol::versions::SUPPORTED_APIS;

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|api| {
            ApiVersion::default()
                .with_api_key(api.key as i16)
                .with_min_version(api.min_version)
                .with_max_version(api.max_version)
        })
        .collect()
}

/// The normal answer.
pub fn api_versions_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_keys())
}

/// The answer to an ApiVersions version we do not know; encode it as v0.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(KafkaError::UnsupportedVersion.code())
        .with_api_keys(api_keys())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn v3_answer_carries_no_tagged_fields() {
        let response = api_versions_response();
        let mut encoded = BytesMut::new();
        response.encode(&mut encoded, 3).expect("encodes");
        // error_code(2) + compact array len(1) + entries of key/min/max(6) + tag
        // count(1) each + throttle(4) + top-level tag count(1), nothing more.
        let expected = 2 + 1 + SUPPORTED_APIS.len() * 7 + 4 + 1;
        assert_eq!(encoded.len(), expected);
        assert_eq!(encoded[encoded.len() - 1], 0, "no tagged fields");
    }

    #[test]
    fn unsupported_version_answer_is_v0_with_error_35() {
        let mut encoded = BytesMut::new();
        unsupported_version_response()
            .encode(&mut encoded, 0)
            .expect("encodes");
        assert_eq!(&encoded[..2], &35i16.to_be_bytes());
        assert_eq!(&encoded[2..6], &(SUPPORTED_APIS.len() as i32).to_be_bytes());
    }
}
