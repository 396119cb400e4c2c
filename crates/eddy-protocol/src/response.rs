//! Response encoding.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

use crate::{codes, versions};

/// Encodes a response frame, size prefix included. ApiVersions always uses
/// response header v0 (clients parse it before they know our versions).
pub fn encode(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, EncodeError> {
    let header_version = api_key.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| EncodeError(e.to_string()))?;
    body.encode(&mut buf, version)
        .map_err(|e| EncodeError(e.to_string()))?;
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// The ApiVersions answer listing everything Eddy serves.
pub fn api_versions(error_code: i16) -> ApiVersionsResponse {
    let api_keys = versions::SUPPORTED
        .iter()
        .filter_map(|k| {
            let (min, max) = versions::advertised(*k)?;
            Some(
                ApiVersion::default()
                    .with_api_key(*k as i16)
                    .with_min_version(min)
                    .with_max_version(max),
            )
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
}

/// v0 UNSUPPORTED_VERSION answer to an ApiVersions request of a version we
/// don't know, so the client can retry with one we do.
pub fn unsupported_api_versions(correlation_id: i32) -> Bytes {
    let body = ResponseKind::ApiVersions(api_versions(codes::UNSUPPORTED_VERSION));
    encode(ApiKey::ApiVersions, 0, correlation_id, &body)
        .expect("a v0 ApiVersions response always encodes")
}

/// The codec reports encoding failures as strings.
#[derive(Debug, thiserror::Error)]
#[error("response encoding failed: {0}")]
pub struct EncodeError(String);
