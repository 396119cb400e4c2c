//! Kafka wire protocol for Eddy: framing, request decoding with limits,
//! response encoding, error codes. A pure codec: no I/O, no async.
//!
//! # Layout
//! - [`frame`]: length-prefixed frames; `check` says whether a whole frame
//!   has arrived (`Ok(None)` while incomplete), enforcing the size limit
//!   before anything is allocated.
//! - [`request`]: request header + body decoding into `kafka-protocol`
//!   messages, with [`guard`] walking the body first so that no count on
//!   the wire can make the codec allocate more than the frame holds.
//! - [`response`]: response encoding with the right header version.
//! - [`versions`]: the API versions Eddy serves.
//! - [`codes`]: Kafka error codes by their Kafka names.
//! - [`consumer_protocol`]: bounded reads of consumer group subscriptions
//!   and assignments (member metadata is client bytes).
//!
//! ```
//! use eddy_protocol::frame;
//! // A frame holds at least a request header's first 8 bytes.
//! let buf = [0u8, 0, 0, 8, 0, 18, 0, 3, 0, 0, 0, 7];
//! assert_eq!(frame::check(&buf, 1024).unwrap(), Some(12));
//! assert_eq!(frame::check(&buf[..5], 1024).unwrap(), None);
//! ```

pub mod codes;
pub mod consumer_protocol;
pub mod frame;
pub mod guard;
pub mod request;
pub mod response;
pub mod versions;

pub use kafka_protocol;
