//! The byte encodings the window and session layouts build their keys
//! from. Both keep order: comparing encodings byte by byte compares the
//! values they encode.
//!
//! ```text
//! escaped key  user key with each 0x00 written as 0x00 0xff, then 0x00 0x00
//! time         i64 milliseconds, big-endian, sign bit flipped
//! ```
//!
//! The escaped key is prefix-free: no escaped key is a prefix of another,
//! so the entries of key `a` form one contiguous range that those of `ab`
//! or `a\0` never enter, and user keys keep their lexicographic order
//! (the terminator `00 00` sorts below every escaped byte). A plain length
//! prefix would also be prefix-free but would order keys by length first.
//! Flipping the sign bit makes negative times sort before positive ones.

/// Bytes of an encoded time.
pub(crate) const TIME_BYTES: usize = 8;

const ESCAPE: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xff;
const TERMINATOR: u8 = 0x00;

/// Appends the escaped form of `key`.
pub(crate) fn put_escaped(out: &mut Vec<u8>, key: &[u8]) {
    for &b in key {
        out.push(b);
        if b == ESCAPE {
            out.push(ESCAPED_ZERO);
        }
    }
    out.extend_from_slice(&[ESCAPE, TERMINATOR]);
}

/// Splits an escaped key off the front of `bytes`: the user key and the
/// rest. `None` if the escaping is broken or the terminator missing.
pub(crate) fn take_escaped(bytes: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut key = Vec::with_capacity(bytes.len());
    let mut i = 0;
    loop {
        let b = *bytes.get(i)?;
        if b != ESCAPE {
            key.push(b);
            i += 1;
            continue;
        }
        match *bytes.get(i + 1)? {
            ESCAPED_ZERO => key.push(ESCAPE),
            TERMINATOR => return Some((key, &bytes[i + 2..])),
            _ => return None,
        }
        i += 2;
    }
}

/// Appends `ms` in its order-keeping form.
pub(crate) fn put_time(out: &mut Vec<u8>, ms: i64) {
    out.extend_from_slice(&flip(ms).to_be_bytes());
}

/// Splits a time off the front of `bytes`; `None` if too short.
pub(crate) fn take_time(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let (time, rest) = bytes.split_first_chunk::<TIME_BYTES>()?;
    Some((unflip(u64::from_be_bytes(*time)), rest))
}

fn flip(ms: i64) -> u64 {
    (ms as u64) ^ (1 << 63)
}

fn unflip(bits: u64) -> i64 {
    (bits ^ (1 << 63)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn escaped(key: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_escaped(&mut out, key);
        out
    }

    fn time(ms: i64) -> Vec<u8> {
        let mut out = Vec::new();
        put_time(&mut out, ms);
        out
    }

    // Keys drawn from a small alphabet around the escape byte, so that
    // prefixes, zeros and 0xff collide often.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(vec![0u8, 1, 0xfe, 0xff, b'a']), 0..6)
    }

    proptest! {
        #[test]
        fn escaped_keys_round_trip(k in key(), tail in prop::collection::vec(any::<u8>(), 0..4)) {
            let mut bytes = escaped(&k);
            bytes.extend_from_slice(&tail);
            let (back, rest) = take_escaped(&bytes).unwrap();
            prop_assert_eq!(back, k);
            prop_assert_eq!(rest, &tail[..]);
        }

        #[test]
        fn escaped_keys_keep_order_and_are_prefix_free(a in key(), b in key()) {
            let (ea, eb) = (escaped(&a), escaped(&b));
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
            if a != b {
                prop_assert!(!eb.starts_with(&ea));
            }
        }

        #[test]
        fn times_keep_order(a in any::<i64>(), b in any::<i64>()) {
            prop_assert_eq!(a.cmp(&b), time(a).cmp(&time(b)));
            let encoded = time(a);
            prop_assert_eq!(take_time(&encoded), Some((a, &[][..])));
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..24)) {
            if let Some((_, rest)) = take_escaped(&bytes) {
                let _ = take_time(rest);
            }
        }
    }

    #[test]
    fn broken_escapes_are_refused() {
        assert_eq!(take_escaped(b"ab"), None); // no terminator
        assert_eq!(take_escaped(&[b'a', 0]), None); // cut inside the terminator
        assert_eq!(take_escaped(&[0, 7]), None); // unknown escape
        assert_eq!(take_time(&[1; 7]), None);
        assert_eq!(
            (time(i64::MIN), time(-1), time(0)),
            (
                vec![0; 8],
                [&[0x7f][..], &[0xff; 7]].concat(),
                [&[0x80][..], &[0; 7]].concat()
            )
        );
    }
}
