//! Request decoding: header, limit guard, body.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use thiserror::Error;

use crate::{guard, versions};

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: RequestKind,
}

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("request too short for a header")]
    Truncated,
    #[error("unknown api key {api_key}")]
    UnknownApiKey { api_key: i16, correlation_id: i32 },
    /// ApiVersions at a version we don't know: answered with a v0
    /// UNSUPPORTED_VERSION response listing what we do support.
    #[error("ApiVersions v{version} is not supported")]
    UnsupportedApiVersions { version: i16, correlation_id: i32 },
    #[error("{api_key:?} v{version} is not supported")]
    UnsupportedVersion {
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
    },
    #[error("malformed request header: {0}")]
    Header(String),
    #[error("{api_key:?} v{version}: {reason}")]
    Body {
        api_key: ApiKey,
        version: i16,
        reason: String,
    },
}

/// The first eight bytes of every request: enough to route an error.
pub fn peek(frame: &[u8]) -> Option<(i16, i16, i32)> {
    if frame.len() < 8 {
        return None;
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    Some((api_key, version, correlation_id))
}

/// Decodes one request from a frame without its size prefix.
pub fn decode(mut frame: Bytes) -> Result<Request, DecodeError> {
    let (key, version, correlation_id) = peek(&frame).ok_or(DecodeError::Truncated)?;
    let api_key = ApiKey::try_from(key).map_err(|_| DecodeError::UnknownApiKey {
        api_key: key,
        correlation_id,
    })?;
    if !versions::is_supported(api_key, version) {
        if api_key == ApiKey::ApiVersions {
            return Err(DecodeError::UnsupportedApiVersions {
                version,
                correlation_id,
            });
        }
        return Err(DecodeError::UnsupportedVersion {
            api_key,
            version,
            correlation_id,
        });
    }
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| DecodeError::Header(e.to_string()))?;
    guard::walk_request_body(key, version, frame.chunk(), &guard::Limits::default()).map_err(
        |e| DecodeError::Body {
            api_key,
            version,
            reason: e.to_string(),
        },
    )?;
    let body =
        RequestKind::decode(api_key, &mut frame, version).map_err(|e| DecodeError::Body {
            api_key,
            version,
            reason: e.to_string(),
        })?;
    Ok(Request {
        api_key,
        header,
        body,
    })
}
