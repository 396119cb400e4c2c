//! Pre-decode guard: prove a request body is shaped sanely before `kafka-protocol` sees it.
//!
//! The crate's array decoder does `Vec::with_capacity(n)` with `n` straight off the wire, so
//! a 20-byte request that claims 2^31 topics makes it allocate hundreds of gigabytes and
//! abort the process. Strings and bytes are safe there: every request field (and the
//! header's client id) decodes into `StrBytes` or `Bytes`, whose decoders check the
//! length against the bytes that remain before taking anything. (The crate's `String`
//! and `Vec<u8>` decoders zero-fill the claimed length first, but no request uses them.)
//! Arrays are not checked at all. So before decoding,
//! [`check_request_body`] walks the body by the request's schema and checks that
//!
//! * every array count, string and bytes length fits in the bytes that remain (an array
//!   element takes at least as many bytes as its smallest encoding, and at least one);
//! * every tagged-field section is well formed: its count fits, each value's size fits,
//!   and a known tagged field's value takes exactly its declared size;
//! * the whole request stays within [`Limits`]: array elements plus tagged fields in
//!   total, and struct nesting depth.
//!
//! The walk allocates nothing, and its time is linear in the body's length: each step
//! consumes bytes or has been bounded by them.
//!
//! ```text
//!   frame = size:i32 | header | body
//!                               └─ check_request_body(api_key, api_version, body)
//!                                  └─ Ok  → RequestKind::decode(api_key, body, api_version)
//!                                  └─ Err → close the connection, as Kafka does for a
//!                                           request it cannot parse
//! ```
//!
//! Schemas are static tables in a tiny DSL (`guard/schema.rs`; the tables are in
//! `guard/requests.rs`), not code per API. The walker is stricter than the crate where
//! the crate is lax in a way Kafka is not (a varint longer than five bytes, a nullable
//! struct marker other than -1 or 1), and never laxer: every body the guard accepts has
//! the shape the crate's decoder reads.
//!
//! ```
//! use eddy_protocol::guard::{check_request_body, GuardError};
//!
//! // Metadata v0 whose topic array claims i32::MAX elements in four bytes.
//! let body = [0x7f, 0xff, 0xff, 0xff];
//! assert!(matches!(
//!     check_request_body(3, 0, &body),
//!     Err(GuardError::ArrayTooLong { field: "topics", .. })
//! ));
//! // The same request asking for all topics (a null array) is fine.
//! assert_eq!(check_request_body(3, 0, &[0xff, 0xff, 0xff, 0xff]), Ok(()));
//! ```

// One field per line reads as a table; rustfmt would fold and unfold it by width.
#[rustfmt::skip]
mod requests;
mod schema;
#[cfg(test)]
mod tests;

use std::ops::RangeInclusive;

use schema::{Field, Ty};

/// Bounds on a request that its length alone does not give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Array elements plus tagged fields, summed over the whole request. Each becomes at
    /// least one heap value when decoded, so this bounds decoding memory independently of
    /// how compactly the elements are encoded.
    pub elements_max: u32,
    /// Struct nesting depth. The served requests nest three deep at most (request,
    /// topic, partition).
    pub depth_max: u32,
}

impl Limits {
    /// Generous for real clients: a Fetch or OffsetCommit for a million partitions passes.
    pub const DEFAULT: Limits = Limits {
        elements_max: 1 << 20,
        depth_max: 16,
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// Why a request body was rejected. `field` names the schema field being read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("the guard has no schema for api key {api_key}")]
    UnknownApiKey { api_key: i16 },
    #[error(
        "api key {api_key} version {api_version} is not supported \
         (the guard knows versions {min_version} to {max_version})"
    )]
    UnsupportedVersion {
        api_key: i16,
        api_version: i16,
        min_version: i16,
        max_version: i16,
    },
    #[error("`{field}` needs {needed_bytes} bytes but only {remaining_bytes} remain")]
    Truncated {
        field: &'static str,
        needed_bytes: u64,
        remaining_bytes: usize,
    },
    #[error(
        "array `{field}` claims {count} elements of at least {element_min_bytes} bytes, \
         but only {remaining_bytes} bytes remain"
    )]
    ArrayTooLong {
        field: &'static str,
        count: u64,
        element_min_bytes: usize,
        remaining_bytes: usize,
    },
    #[error("`{field}` has length {length}; only -1 (null) or a length of 0 or more is valid")]
    NegativeLength { field: &'static str, length: i64 },
    #[error("`{field}` is null, but it is not nullable in this version")]
    UnexpectedNull { field: &'static str },
    #[error("`{field}` has a varint that does not fit in 32 bits")]
    MalformedVarint { field: &'static str },
    #[error("nullable struct `{field}` has marker {marker}; only -1 (null) or 1 are valid")]
    BadStructMarker { field: &'static str, marker: i8 },
    #[error(
        "tagged fields of `{field}` claim {count} entries, but only {remaining_bytes} bytes \
         remain (each entry takes at least two)"
    )]
    TooManyTaggedFields {
        field: &'static str,
        count: u32,
        remaining_bytes: usize,
    },
    #[error(
        "tagged field `{field}` declares {declared_bytes} bytes but its value takes {used_bytes}"
    )]
    TaggedSizeMismatch {
        field: &'static str,
        declared_bytes: usize,
        used_bytes: usize,
    },
    #[error("request has more than {elements_max} array elements and tagged fields in total")]
    TooManyElements { elements_max: u32 },
    #[error("request nests structs deeper than {depth_max} at `{field}`")]
    TooDeep { field: &'static str, depth_max: u32 },
}

/// Check a request body (the bytes after the request header) before decoding it with
/// `kafka-protocol`. An api key the guard does not cover is `Ok`: the caller rejects
/// those itself. Bytes after the end of the body are allowed, as Kafka allows them;
/// [`walk_request_body`] tells how many bytes the body took.
pub fn check_request_body(api_key: i16, api_version: i16, body: &[u8]) -> Result<(), GuardError> {
    if requests::find(api_key).is_none() {
        return Ok(());
    }
    walk_request_body(api_key, api_version, body, &Limits::DEFAULT).map(|_| ())
}

/// Walk a request body as [`check_request_body`] does, with explicit limits, and return
/// the number of bytes the body takes.
pub fn walk_request_body(
    api_key: i16,
    api_version: i16,
    body: &[u8],
    limits: &Limits,
) -> Result<usize, GuardError> {
    let api = requests::find(api_key).ok_or(GuardError::UnknownApiKey { api_key })?;
    if !(api.min_version..=api.max_version).contains(&api_version) {
        return Err(GuardError::UnsupportedVersion {
            api_key,
            api_version,
            min_version: api.min_version,
            max_version: api.max_version,
        });
    }
    let mut walker = Walker {
        body,
        pos: 0,
        end: body.len(),
        version: api_version,
        flexible: api_version >= api.flexible_from,
        elements_left: limits.elements_max,
        elements_max: limits.elements_max,
        depth: 0,
        depth_max: limits.depth_max,
    };
    walker.walk_struct(api.body, api.name)?;
    debug_assert!(walker.pos <= body.len());
    Ok(walker.pos)
}

/// The request versions the guard has a schema for, `None` for an api key it does not
/// cover. These are the versions the `kafka-protocol` decoder accepts, which for a few
/// APIs is fewer than its `ApiKey::valid_versions` claims.
pub fn versions(api_key: i16) -> Option<RangeInclusive<i16>> {
    requests::find(api_key).map(|api| api.min_version..=api.max_version)
}

/// A cursor over the body. `end` is the end of the current window: the whole body, or
/// the value of the tagged field being walked.
struct Walker<'a> {
    body: &'a [u8],
    pos: usize,
    end: usize,
    version: i16,
    flexible: bool,
    elements_left: u32,
    elements_max: u32,
    depth: u32,
    depth_max: u32,
}

impl<'a> Walker<'a> {
    fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn take(&mut self, bytes: usize, field: &'static str) -> Result<&'a [u8], GuardError> {
        if bytes > self.remaining() {
            return Err(GuardError::Truncated {
                field,
                needed_bytes: bytes as u64,
                remaining_bytes: self.remaining(),
            });
        }
        let taken = &self.body[self.pos..self.pos + bytes];
        self.pos += bytes;
        Ok(taken)
    }

    fn take_array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], GuardError> {
        let taken = self.take(N, field)?;
        Ok(taken.try_into().expect("take returns exactly N bytes"))
    }

    fn int8(&mut self, field: &'static str) -> Result<i8, GuardError> {
        Ok(i8::from_be_bytes(self.take_array(field)?))
    }

    fn int16(&mut self, field: &'static str) -> Result<i16, GuardError> {
        Ok(i16::from_be_bytes(self.take_array(field)?))
    }

    fn int32(&mut self, field: &'static str) -> Result<i32, GuardError> {
        Ok(i32::from_be_bytes(self.take_array(field)?))
    }

    /// An unsigned varint of at most five bytes whose value fits in 32 bits. (The crate
    /// silently drops bits past 32; Kafka rejects such varints, and so do we.)
    fn varint(&mut self, field: &'static str) -> Result<u32, GuardError> {
        let mut value = 0u32;
        for shift in [0, 7, 14, 21] {
            let byte = self.take(1, field)?[0];
            value |= u32::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        // The fifth byte holds the top four bits and must end the varint.
        match self.take(1, field)?[0] {
            byte @ 0..=0x0f => Ok(value | u32::from(byte) << 28),
            _ => Err(GuardError::MalformedVarint { field }),
        }
    }

    /// Read a length or count prefix: `None` for null, which is an error unless the field
    /// is nullable. `classic_bytes` is the prefix width in non-flexible versions.
    fn length(
        &mut self,
        field: &'static str,
        nullable: bool,
        classic_bytes: usize,
    ) -> Result<Option<u64>, GuardError> {
        let length = if self.flexible {
            // Compact encoding: length + 1, with 0 for null.
            i64::from(self.varint(field)?) - 1
        } else if classic_bytes == 2 {
            i64::from(self.int16(field)?)
        } else {
            i64::from(self.int32(field)?)
        };
        match length {
            -1 if nullable => Ok(None),
            -1 => Err(GuardError::UnexpectedNull { field }),
            length if length < 0 => Err(GuardError::NegativeLength { field, length }),
            length => Ok(Some(length as u64)),
        }
    }

    /// Charge `count` elements against the request's element budget.
    fn spend_elements(&mut self, count: u64) -> Result<(), GuardError> {
        match u32::try_from(count) {
            Ok(count) if count <= self.elements_left => {
                self.elements_left -= count;
                Ok(())
            }
            _ => Err(GuardError::TooManyElements {
                elements_max: self.elements_max,
            }),
        }
    }

    fn walk_struct(
        &mut self,
        fields: &'static [Field],
        owner: &'static str,
    ) -> Result<(), GuardError> {
        self.depth += 1;
        if self.depth > self.depth_max {
            return Err(GuardError::TooDeep {
                field: owner,
                depth_max: self.depth_max,
            });
        }
        let version = self.version;
        for field in fields
            .iter()
            .filter(|field| field.tag.is_none() && field.present(version))
        {
            self.walk_value(field, field.ty, field.nullable)?;
        }
        if self.flexible {
            self.walk_tagged_fields(fields, owner)?;
        }
        self.depth -= 1;
        Ok(())
    }

    /// Walk one value of shape `ty` belonging to `field` (for an array element, `ty` is
    /// the element's shape and the value is never null).
    fn walk_value(&mut self, field: &Field, ty: Ty, nullable: bool) -> Result<(), GuardError> {
        let name = field.name;
        match ty {
            Ty::Str => {
                if let Some(length) = self.length(name, nullable, 2)? {
                    self.skip(length, name)?;
                }
            }
            Ty::Bytes => {
                if let Some(length) = self.length(name, nullable, 4)? {
                    self.skip(length, name)?;
                }
            }
            Ty::Struct(fields) => self.walk_struct(fields, name)?,
            Ty::OptStruct(fields) => match self.int8(name)? {
                1 => self.walk_struct(fields, name)?,
                -1 if nullable => {}
                -1 => return Err(GuardError::UnexpectedNull { field: name }),
                marker => {
                    return Err(GuardError::BadStructMarker {
                        field: name,
                        marker,
                    })
                }
            },
            Ty::Array(element) => {
                if let Some(count) = self.length(name, nullable, 4)? {
                    self.walk_array(field, *element, count)?;
                }
            }
            fixed => {
                let bytes = fixed
                    .fixed_bytes()
                    .expect("every other shape is matched above");
                self.take(bytes, name)?;
            }
        }
        Ok(())
    }

    fn walk_array(&mut self, field: &Field, element: Ty, count: u64) -> Result<(), GuardError> {
        // Bound the count by the bytes that remain before walking anything: this is the
        // check the crate's decoder lacks, and it keeps the loop below linear in the body.
        let element_min_bytes = element.min_bytes(self.version, self.flexible).max(1);
        if count.saturating_mul(element_min_bytes as u64) > self.remaining() as u64 {
            return Err(GuardError::ArrayTooLong {
                field: field.name,
                count,
                element_min_bytes,
                remaining_bytes: self.remaining(),
            });
        }
        self.spend_elements(count)?;
        if let Some(bytes) = element.fixed_bytes() {
            // Checked above: count * bytes fits in what remains.
            return self.skip(count * bytes as u64, field.name);
        }
        for _ in 0..count {
            self.walk_value(field, element, false)?;
        }
        Ok(())
    }

    fn skip(&mut self, bytes: u64, field: &'static str) -> Result<(), GuardError> {
        match usize::try_from(bytes) {
            Ok(bytes) if bytes <= self.remaining() => {
                self.pos += bytes;
                Ok(())
            }
            _ => Err(GuardError::Truncated {
                field,
                needed_bytes: bytes,
                remaining_bytes: self.remaining(),
            }),
        }
    }

    /// The tagged-field section that ends every struct in flexible versions: a count, then
    /// `tag size value` entries. Known tags are walked by their schema within exactly
    /// `size` bytes (the crate reads them from the stream, ignoring `size`); unknown tags
    /// are skipped by `size`, which is all anyone can do with them.
    fn walk_tagged_fields(
        &mut self,
        fields: &'static [Field],
        owner: &'static str,
    ) -> Result<(), GuardError> {
        let count = self.varint(owner)?;
        if count as usize > self.remaining() / 2 {
            return Err(GuardError::TooManyTaggedFields {
                field: owner,
                count,
                remaining_bytes: self.remaining(),
            });
        }
        self.spend_elements(u64::from(count))?;
        let version = self.version;
        for _ in 0..count {
            let tag = self.varint(owner)?;
            let size = u64::from(self.varint(owner)?);
            let known = fields
                .iter()
                .find(|field| field.tag == Some(tag) && field.present(version));
            let Some(field) = known else {
                self.skip(size, owner)?;
                continue;
            };
            if size > self.remaining() as u64 {
                return Err(GuardError::Truncated {
                    field: field.name,
                    needed_bytes: size,
                    remaining_bytes: self.remaining(),
                });
            }
            let (start, outer_end) = (self.pos, self.end);
            self.end = start + size as usize;
            self.walk_value(field, field.ty, field.nullable)?;
            if self.pos != self.end {
                return Err(GuardError::TaggedSizeMismatch {
                    field: field.name,
                    declared_bytes: size as usize,
                    used_bytes: self.pos - start,
                });
            }
            self.end = outer_end;
        }
        Ok(())
    }
}
