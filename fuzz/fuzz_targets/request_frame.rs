//! Arbitrary bytes through the broker's request path: frame split, header decode, guard,
//! `kafka-protocol` decode. Must never panic or allocate absurdly; scripts/run-fuzz runs
//! it with `-malloc_limit_mb=512`, which catches the unguarded codec at once.
//!
//! Besides the broker's own entry point (`request::decode`, which only decodes the APIs
//! Eddy serves), every API the guard covers is decoded here, and where the guard accepts
//! a body and the codec decodes it, both must have read the same bytes.

#![no_main]

use bytes::{Buf, Bytes};
use eddy_protocol::guard::{self, Limits};
use eddy_protocol::{frame, request};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;

/// Kafka's default `socket.request.max.bytes`: far above any fuzz input, so frames are
/// bounded by the input, as they are by the socket buffer in the broker.
const REQUEST_MAX_BYTES: usize = 100 * 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some(total_bytes)) = frame::check(rest, REQUEST_MAX_BYTES) {
        let (one, tail) = rest.split_at(total_bytes);
        let frame = Bytes::copy_from_slice(&one[frame::PREFIX_BYTES..]);
        let _ = request::decode(frame.clone());
        guard_then_codec(frame);
        rest = tail;
    }
});

fn guard_then_codec(mut frame: Bytes) {
    let Some((key, version, _)) = request::peek(&frame) else {
        return;
    };
    let Ok(api_key) = ApiKey::try_from(key) else {
        return;
    };
    if guard::versions(key).is_none() {
        // Not served: the broker answers without decoding the body.
        return;
    }
    let header_version = api_key.request_header_version(version);
    if RequestHeader::decode(&mut frame, header_version).is_err() {
        return;
    }
    let Ok(guard_bytes) = guard::walk_request_body(key, version, &frame, &Limits::DEFAULT) else {
        return;
    };
    let body_bytes = frame.len();
    if RequestKind::decode(api_key, &mut frame, version).is_ok() {
        assert_eq!(
            guard_bytes,
            body_bytes - frame.remaining(),
            "guard and codec read different lengths of {api_key:?} v{version}"
        );
    }
}
