//! Kafka's record-batch codecs, over the records section of a v2 batch
//! (the bytes after the 61-byte header; the header itself is never
//! compressed). The codec id sits in the low three bits of the batch
//! attributes.
//!
//! ```text
//! 0 none    the records as they are
//! 1 gzip    one or more gzip members (RFC 1952)
//! 2 snappy  xerial framing, as Kafka's Java producer writes it:
//!             "\x82SNAPPY\0"  version i32 BE (1)  compatible version i32 BE (1)
//!             then blocks of [compressed length i32 BE][raw snappy block]
//!           or one raw snappy block (librdkafka can send that; so does snappy-java)
//! 3 lz4     one LZ4 frame with independent blocks (Java rejects linked ones)
//! 4 zstd    one or more zstd frames
//! ```
//!
//! Decompression is bounded: a batch of a few KiB can expand to gigabytes
//! (a decompression bomb), so every codec reads through a limit and fails
//! with [`BatchError::DecompressedTooLarge`] past it, and a snappy block's
//! declared length is checked before anything is allocated for it. No input
//! makes these functions panic.
//!
//! ```
//! use eddy_log::compression::{compress, decompress, ZSTD};
//! let records = b"records section of a v2 batch".repeat(10);
//! let packed = compress(ZSTD, &records).unwrap();
//! assert_eq!(decompress(ZSTD, &packed, 1 << 20).unwrap(), records);
//! assert!(decompress(ZSTD, &packed, 100).is_err()); // over the limit
//! ```

use std::io::{Read, Write};

use crate::batch::BatchError;

pub const NONE: i16 = 0;
pub const GZIP: i16 = 1;
pub const SNAPPY: i16 = 2;
pub const LZ4: i16 = 3;
pub const ZSTD: i16 = 4;

/// Kafka's default `compression.gzip.level` (java.util.zip's default).
const GZIP_LEVEL: u32 = 6;
/// Kafka's default `compression.lz4.level` (KIP-390).
const LZ4_LEVEL: u32 = 9;
/// Kafka's default `compression.zstd.level` (KIP-390).
const ZSTD_LEVEL: i32 = 3;

const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
/// Magic, then version 1 and minimum compatible version 1, as snappy-java writes.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// snappy-java's default block size, which Kafka's producer uses.
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;
/// A snappy copy element of 3 bytes yields at most 64 bytes, so no valid
/// block expands by more than ~22x; a larger claim is garbage, refused
/// before its buffer is allocated.
const SNAPPY_EXPANSION_MAX: u64 = 32;

/// The name Kafka's `compression.type` uses for `codec`.
pub fn codec_name(codec: i16) -> &'static str {
    match codec {
        NONE => "uncompressed",
        GZIP => "gzip",
        SNAPPY => "snappy",
        LZ4 => "lz4",
        ZSTD => "zstd",
        _ => "unknown",
    }
}

/// Decompresses a records section written with `codec`, failing if the
/// result would exceed `limit_bytes`.
pub fn decompress(codec: i16, data: &[u8], limit_bytes: usize) -> Result<Vec<u8>, BatchError> {
    match codec {
        NONE => read_bounded(codec, data, limit_bytes),
        GZIP => read_bounded(codec, flate2::read::MultiGzDecoder::new(data), limit_bytes),
        SNAPPY => snappy_decompress(data, limit_bytes),
        LZ4 => {
            let decoder = lz4::Decoder::new(data).map_err(|e| decompress_error(codec, e))?;
            read_bounded(codec, decoder, limit_bytes)
        }
        ZSTD => {
            let decoder = zstd::stream::read::Decoder::with_buffer(data)
                .map_err(|e| decompress_error(codec, e))?;
            read_bounded(codec, decoder, limit_bytes)
        }
        other => Err(BatchError::UnknownCodec(other)),
    }
}

/// Compresses a records section the way Kafka's Java producer does with
/// its default levels: xerial-framed snappy, an LZ4 frame of independent
/// 64 KiB blocks without checksums, one gzip member, one zstd frame.
pub fn compress(codec: i16, data: &[u8]) -> Result<Vec<u8>, BatchError> {
    let fail = |e: std::io::Error| BatchError::Compress {
        codec: codec_name(codec),
        reason: e.to_string(),
    };
    match codec {
        NONE => Ok(data.to_vec()),
        GZIP => {
            let level = flate2::Compression::new(GZIP_LEVEL);
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
            encoder.write_all(data).map_err(fail)?;
            encoder.finish().map_err(fail)
        }
        SNAPPY => snappy_compress(data),
        LZ4 => {
            let mut encoder = lz4::EncoderBuilder::new()
                .level(LZ4_LEVEL)
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(Vec::new())
                .map_err(fail)?;
            encoder.write_all(data).map_err(fail)?;
            let (out, finished) = encoder.finish();
            finished.map_err(fail)?;
            Ok(out)
        }
        ZSTD => zstd::bulk::compress(data, ZSTD_LEVEL).map_err(fail),
        other => Err(BatchError::UnknownCodec(other)),
    }
}

/// Reads `reader` to its end, but never more than `limit_bytes` (plus one
/// byte, to tell "exactly at the limit" from "over it").
fn read_bounded(codec: i16, reader: impl Read, limit_bytes: usize) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    reader
        .take(limit_bytes as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| decompress_error(codec, e))?;
    if out.len() > limit_bytes {
        return Err(too_large(codec, limit_bytes));
    }
    Ok(out)
}

fn snappy_decompress(data: &[u8], limit_bytes: usize) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    // snappy-java decides on the 8-byte magic alone, and so do we.
    if data.len() < XERIAL_HEADER.len() || !data.starts_with(XERIAL_MAGIC) {
        snappy_block(data, limit_bytes, &mut out)?;
        return Ok(out);
    }
    let mut rest = &data[XERIAL_HEADER.len()..];
    while !rest.is_empty() {
        let Some((length, tail)) = rest.split_first_chunk::<4>() else {
            return Err(snappy_error("truncated xerial block length"));
        };
        let length = u32::from_be_bytes(*length) as usize;
        if length > tail.len() {
            return Err(snappy_error("xerial block runs past the data"));
        }
        let (block, tail) = tail.split_at(length);
        snappy_block(block, limit_bytes, &mut out)?;
        rest = tail;
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, keeping `out` within `limit_bytes`.
fn snappy_block(block: &[u8], limit_bytes: usize, out: &mut Vec<u8>) -> Result<(), BatchError> {
    let declared_bytes =
        snap::raw::decompress_len(block).map_err(|e| decompress_error(SNAPPY, e))?;
    if declared_bytes as u64 > block.len() as u64 * SNAPPY_EXPANSION_MAX {
        return Err(snappy_error(
            "block declares more than snappy can expand to",
        ));
    }
    if declared_bytes > limit_bytes.saturating_sub(out.len()) {
        return Err(too_large(SNAPPY, limit_bytes));
    }
    let start = out.len();
    out.resize(start + declared_bytes, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| decompress_error(SNAPPY, e))?;
    out.truncate(start + written);
    Ok(())
}

fn snappy_compress(data: &[u8]) -> Result<Vec<u8>, BatchError> {
    let blocks = data.len().div_ceil(XERIAL_BLOCK_BYTES);
    let block_max_bytes = snap::raw::max_compress_len(XERIAL_BLOCK_BYTES.min(data.len()));
    let mut out = Vec::with_capacity(XERIAL_HEADER.len() + blocks * (4 + block_max_bytes));
    out.extend_from_slice(XERIAL_HEADER);
    let mut encoder = snap::raw::Encoder::new();
    let mut block = vec![0u8; block_max_bytes];
    for chunk in data.chunks(XERIAL_BLOCK_BYTES) {
        let written = encoder
            .compress(chunk, &mut block)
            .map_err(|e| BatchError::Compress {
                codec: codec_name(SNAPPY),
                reason: e.to_string(),
            })?;
        // A 32 KiB chunk compresses to well under 4 GiB.
        out.extend_from_slice(&(written as u32).to_be_bytes());
        out.extend_from_slice(&block[..written]);
    }
    Ok(out)
}

fn decompress_error(codec: i16, error: impl std::fmt::Display) -> BatchError {
    BatchError::Decompress {
        codec: codec_name(codec),
        reason: error.to_string(),
    }
}

fn snappy_error(reason: &str) -> BatchError {
    decompress_error(SNAPPY, reason)
}

fn too_large(codec: i16, limit_bytes: usize) -> BatchError {
    BatchError::DecompressedTooLarge {
        codec: codec_name(codec),
        limit_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CODECS: [i16; 5] = [NONE, GZIP, SNAPPY, LZ4, ZSTD];

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivially so: text with a counter in it.
        let mut out = Vec::with_capacity(len + 32);
        let mut i = 0u64;
        while out.len() < len {
            out.extend_from_slice(format!("record {i} value {} ", i * 7919 % 1000).as_bytes());
            i += 1;
        }
        out.truncate(len);
        out
    }

    #[test]
    fn every_codec_round_trips() {
        for codec in CODECS {
            for len in [
                0,
                1,
                100,
                XERIAL_BLOCK_BYTES,
                3 * XERIAL_BLOCK_BYTES + 17,
                300_000,
            ] {
                let data = sample(len);
                let packed = compress(codec, &data).unwrap();
                let name = codec_name(codec);
                assert_eq!(
                    decompress(codec, &packed, len).unwrap(),
                    data,
                    "{name} {len}"
                );
                if len > 0 {
                    let err = decompress(codec, &packed, len - 1).unwrap_err();
                    assert!(
                        matches!(err, BatchError::DecompressedTooLarge { .. }),
                        "{name} {len}: {err}"
                    );
                }
            }
        }
    }

    #[test]
    fn snappy_writes_xerial_blocks_of_32_kib() {
        let data = sample(2 * XERIAL_BLOCK_BYTES + 1);
        let packed = compress(SNAPPY, &data).unwrap();
        assert_eq!(&packed[..16], XERIAL_HEADER);
        let mut rest = &packed[16..];
        let mut sizes = Vec::new();
        while !rest.is_empty() {
            let n = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let block = &rest[4..4 + n];
            sizes.push(snap::raw::decompress_len(block).unwrap());
            rest = &rest[4 + n..];
        }
        assert_eq!(sizes, [XERIAL_BLOCK_BYTES, XERIAL_BLOCK_BYTES, 1]);
    }

    #[test]
    fn snappy_accepts_raw_blocks() {
        let data = sample(5000);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(SNAPPY, &raw, 5000).unwrap(), data);
        // The bytes snappy-java writes for one tiny record set (from kafka-protocol's tests).
        let java = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x0f\x0d\x30\x18\x00\x00\x00\x01\x0csdfdsf\x00";
        let raw = b"\r0\x18\0\0\0\x01\x0csdfdsf\0";
        assert_eq!(
            decompress(SNAPPY, java, 100).unwrap(),
            decompress(SNAPPY, raw, 100).unwrap()
        );
        assert_eq!(
            compress(SNAPPY, &decompress(SNAPPY, raw, 100).unwrap()).unwrap(),
            java
        );
    }

    #[test]
    fn lz4_frames_use_independent_64_kib_blocks() {
        let packed = compress(LZ4, b"hello").unwrap();
        assert_eq!(&packed[..4], &0x184D_2204u32.to_le_bytes()); // frame magic
        let flg = packed[4];
        assert_eq!(flg >> 6, 1, "version 1");
        assert_ne!(flg & 0x20, 0, "independent blocks");
        assert_eq!(
            flg & 0x1c,
            0,
            "no block checksum, content size or content checksum"
        );
        assert_eq!((packed[5] >> 4) & 0x07, 4, "64 KiB blocks");
    }

    #[test]
    fn bombs_are_refused_by_the_limit() {
        let zeros = vec![0u8; 64 << 20];
        for codec in [GZIP, SNAPPY, LZ4, ZSTD] {
            let bomb = compress(codec, &zeros).unwrap();
            assert!(bomb.len() < 4 << 20, "{} {}", codec_name(codec), bomb.len());
            let err = decompress(codec, &bomb, 1 << 20).unwrap_err();
            assert!(
                matches!(err, BatchError::DecompressedTooLarge { .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn snappy_declared_length_is_checked_before_allocating() {
        // A raw block claiming 4 GiB - 1 in a 5-byte varint, then nothing.
        let lie = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decompress(SNAPPY, &lie, usize::MAX).is_err());
        // A plausible claim over the limit: a 1 MiB run in a few bytes.
        let run = snap::raw::Encoder::new()
            .compress_vec(&vec![7u8; 1 << 20])
            .unwrap();
        let mut framed = XERIAL_HEADER.to_vec();
        framed.extend_from_slice(&(run.len() as u32).to_be_bytes());
        framed.extend_from_slice(&run);
        let err = decompress(SNAPPY, &framed, 1000).unwrap_err();
        assert!(
            matches!(err, BatchError::DecompressedTooLarge { .. }),
            "{err}"
        );
        // A block length past the data, and a torn length.
        let mut torn = XERIAL_HEADER.to_vec();
        torn.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(decompress(SNAPPY, &torn, 1000).is_err());
        assert!(decompress(SNAPPY, &torn[..18], 1000).is_err());
    }

    #[test]
    fn unknown_codecs_are_refused() {
        for codec in [5, 7, -1] {
            assert_eq!(compress(codec, b"x"), Err(BatchError::UnknownCodec(codec)));
            assert_eq!(
                decompress(codec, b"x", 10),
                Err(BatchError::UnknownCodec(codec))
            );
        }
    }

    /// Garbage after each codec's real magic bytes reaches deeper into the decoders.
    fn with_magic(codec: i16, tail: &[u8]) -> Vec<u8> {
        let magic: &[u8] = match codec {
            GZIP => &[0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff],
            SNAPPY => XERIAL_HEADER,
            LZ4 => &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82],
            ZSTD => &[0x28, 0xb5, 0x2f, 0xfd],
            _ => &[],
        };
        [magic, tail].concat()
    }

    proptest! {
        #[test]
        fn garbage_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            limit in 0usize..100_000,
        ) {
            for codec in CODECS {
                if let Ok(out) = decompress(codec, &bytes, limit) {
                    prop_assert!(out.len() <= limit);
                }
                if let Ok(out) = decompress(codec, &with_magic(codec, &bytes), limit) {
                    prop_assert!(out.len() <= limit);
                }
            }
        }

        #[test]
        fn mutated_streams_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            for codec in CODECS {
                let mut packed = compress(codec, &data).unwrap();
                prop_assert_eq!(decompress(codec, &packed, data.len()).unwrap(), data.clone());
                if packed.is_empty() {
                    continue;
                }
                for (at, value) in &edits {
                    let i = at.index(packed.len());
                    packed[i] = *value;
                }
                if let Ok(out) = decompress(codec, &packed, 4000) {
                    prop_assert!(out.len() <= 4000);
                }
            }
        }
    }
}
