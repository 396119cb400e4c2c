//! Kafka framing on the client side, sans-io: bytes in, typed messages out, no sockets.
//!
//! ```text
//! request:  | size: i32 | RequestHeader (v1 or v2) | request body |
//! response: | size: i32 | correlation_id: i32 [tagged fields if header v1] | response body |
//! ```
//!
//! `size` counts the bytes after itself. A frame is read in two steps: [`check`] that a whole
//! frame has arrived (an incomplete one is `Ok(None)`, not an error), then split it off.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::error::{Error, Result};

const SIZE_PREFIX_BYTES: usize = 4;

/// Appends one whole request frame (size prefix, header, body) to `buf`.
pub fn encode_request<R: Request>(
    buf: &mut BytesMut,
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
) -> Result<()> {
    let api = api_name(R::KEY);
    let encode_err = |detail: String| Error::Encode {
        what: format!("{api} v{version} request"),
        detail,
    };
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let header_version = R::header_version(version);
    let start = buf.len();
    buf.put_i32(0); // patched below, once the size is known
    header
        .encode(buf, header_version)
        .map_err(|e| encode_err(e.to_string()))?;
    request
        .encode(buf, version)
        .map_err(|e| encode_err(e.to_string()))?;
    let size = buf.len() - start - SIZE_PREFIX_BYTES;
    let size = i32::try_from(size)
        .map_err(|_| encode_err(format!("{size} bytes do not fit a Kafka frame")))?;
    buf[start..start + SIZE_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// The length of the whole frame at the front of `buf` (prefix included) if it has fully
/// arrived, `None` if more bytes are needed. A frame over `max_bytes` is an error: a peer that
/// announces 2 GiB must not make us allocate it.
pub fn check(buf: &[u8], max_bytes: usize) -> std::result::Result<Option<usize>, usize> {
    if buf.len() < SIZE_PREFIX_BYTES {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let size = usize::try_from(size).map_err(|_| usize::MAX)?;
    if size > max_bytes {
        return Err(size);
    }
    let total = SIZE_PREFIX_BYTES + size;
    Ok((buf.len() >= total).then_some(total))
}

/// Splits one checked frame off `buf`, returning its payload (without the size prefix).
pub fn split_frame(buf: &mut BytesMut, total_len: usize) -> Bytes {
    assert!(total_len >= SIZE_PREFIX_BYTES && buf.len() >= total_len);
    let mut frame = buf.split_to(total_len).freeze();
    frame.advance(SIZE_PREFIX_BYTES);
    frame
}

/// The correlation id that opens every response payload, whatever its header version.
pub fn peek_correlation_id(payload: &[u8]) -> Option<i32> {
    let bytes: [u8; 4] = payload.get(..4)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes))
}

/// Decodes a response payload (header and body) of request type `R` at `version`.
pub fn decode_response<R: Request>(mut payload: Bytes, version: i16) -> Result<R::Response> {
    let what = || format!("{} v{version} response", api_name(R::KEY));
    let header_version = <R::Response as HeaderVersion>::header_version(version);
    ResponseHeader::decode(&mut payload, header_version).map_err(|e| Error::Decode {
        what: what(),
        detail: e.to_string(),
    })?;
    R::Response::decode(&mut payload, version).map_err(|e| Error::Decode {
        what: what(),
        detail: e.to_string(),
    })
}

/// `Produce`, `Fetch`, ... for messages; the number for keys the codec does not know.
pub fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(k) => format!("{k:?}"),
        Err(()) => format!("api key {key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn request_round_trips_through_the_frame() {
        let mut buf = BytesMut::new();
        let req = MetadataRequest::default().with_topics(None);
        let client_id = StrBytes::from_static_str("t");
        encode_request(&mut buf, &req, 12, 77, &client_id).unwrap();
        let total = check(&buf, 1 << 20).unwrap().unwrap();
        assert_eq!(total, buf.len());
        let mut payload = split_frame(&mut buf, total);
        assert!(buf.is_empty());
        let header = RequestHeader::decode(&mut payload, MetadataRequest::header_version(12));
        let header = header.unwrap();
        assert_eq!(header.correlation_id, 77);
        assert_eq!(header.request_api_version, 12);
        assert_eq!(MetadataRequest::decode(&mut payload, 12).unwrap(), req);
    }

    #[test]
    fn check_waits_for_a_whole_frame_and_bounds_its_size() {
        let mut buf = BytesMut::new();
        let client_id = StrBytes::from_static_str("t");
        encode_request(&mut buf, &ApiVersionsRequest::default(), 3, 1, &client_id).unwrap();
        for cut in 0..buf.len() {
            assert_eq!(check(&buf[..cut], 1 << 20), Ok(None), "cut at {cut}");
        }
        assert_eq!(check(&buf, 4), Err(buf.len() - 4));
        assert_eq!(check(&[0xff, 0, 0, 0], 1 << 20), Err(usize::MAX));
    }
}
