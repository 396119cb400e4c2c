//! Length-prefixed frames.
//!
//! ```text
//! +----------------+---------------------------+
//! | size: i32 (BE) | size bytes of request     |
//! +----------------+---------------------------+
//! ```

use thiserror::Error;

/// Bytes of the size prefix.
pub const PREFIX_BYTES: usize = 4;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame size {size} exceeds socket.request.max.bytes ({max_bytes})")]
    TooLarge { size: i64, max_bytes: usize },
    #[error("frame size {0} is negative or too small to hold a request header")]
    Invalid(i32),
    #[error("this looks like a TLS handshake on a plaintext Kafka listener")]
    TlsOnPlaintext,
}

/// Checks whether `buf` starts with a complete frame. Returns the frame's
/// total length (prefix included) when it has fully arrived, `Ok(None)`
/// while it is incomplete, and an error as soon as the prefix alone shows
/// the frame can never be valid — before any buffer is sized after it.
pub fn check(buf: &[u8], max_bytes: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < PREFIX_BYTES {
        // A TLS record starts 0x16 0x03: recognise it from the first bytes
        // so the error says what happened instead of "frame too large".
        if buf.len() >= 2 && buf[0] == 0x16 && buf[1] == 0x03 {
            return Err(FrameError::TlsOnPlaintext);
        }
        return Ok(None);
    }
    if buf[0] == 0x16 && buf[1] == 0x03 && buf[2] <= 0x04 {
        return Err(FrameError::TlsOnPlaintext);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    // api_key i16 + api_version i16 + correlation_id i32 at the very least.
    if size < 8 {
        return Err(FrameError::Invalid(size));
    }
    if size as usize > max_bytes {
        return Err(FrameError::TooLarge {
            size: size as i64,
            max_bytes,
        });
    }
    let total = PREFIX_BYTES + size as usize;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_then_complete() {
        let mut buf = vec![0, 0, 0, 8];
        assert_eq!(check(&buf, 100), Ok(None));
        buf.extend_from_slice(&[0; 7]);
        assert_eq!(check(&buf, 100), Ok(None));
        buf.push(0);
        assert_eq!(check(&buf, 100), Ok(Some(12)));
    }

    #[test]
    fn rejects_oversized_and_negative_and_tls() {
        assert!(matches!(
            check(&[0x7f, 0, 0, 0], 1000),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            check(&[0xff, 0xff, 0xff, 0xff], 1000),
            Err(FrameError::Invalid(-1))
        ));
        assert_eq!(
            check(&[0x16, 0x03, 0x01, 0x02, 0], 1 << 30),
            Err(FrameError::TlsOnPlaintext)
        );
    }
}
