//! The schema DSL the guard walks.
//!
//! A request body is a struct; a struct is a list of [`Field`]s, each with a wire shape
//! ([`Ty`]), the versions it is on the wire, whether it may be null and, for tagged fields,
//! its tag. Only shapes matter here (widths, length prefixes, nesting), so e.g. every
//! 4-byte integer is `I32` whatever it means.
//!
//! Whether a version is *flexible* (compact lengths, a tagged-field section at the end of
//! every struct) is a property of the whole message, so it lives on [`Api`], not on fields.

/// Wire shape of one field.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ty {
    Bool,
    I8,
    I16,
    I32,
    I64,
    Uuid,
    /// STRING (i16 length, -1 = null), or COMPACT_STRING (unsigned varint length + 1,
    /// 0 = null) in flexible versions.
    Str,
    /// BYTES (i32 length, -1 = null), or COMPACT_BYTES in flexible versions.
    Bytes,
    /// A struct inline, without any prefix.
    Struct(&'static [Field]),
    /// A nullable struct: an i8 marker (-1 = null, 1 = present), then the struct.
    OptStruct(&'static [Field]),
    /// ARRAY (i32 count, -1 = null), or COMPACT_ARRAY (unsigned varint count + 1, 0 = null)
    /// in flexible versions. Elements are never null.
    Array(&'static Ty),
}

impl Ty {
    /// Width of a fixed-width value, `None` for anything with a prefix or fields.
    pub(super) const fn fixed_bytes(self) -> Option<usize> {
        match self {
            Ty::Bool | Ty::I8 => Some(1),
            Ty::I16 => Some(2),
            Ty::I32 => Some(4),
            Ty::I64 => Some(8),
            Ty::Uuid => Some(16),
            Ty::Str | Ty::Bytes | Ty::Struct(_) | Ty::OptStruct(_) | Ty::Array(_) => None,
        }
    }

    /// The fewest bytes a non-null value of this shape takes on the wire. Arrays use it to
    /// bound their declared count by the bytes that remain, before walking any element.
    pub(super) fn min_bytes(self, version: i16, flexible: bool) -> usize {
        let prefix_bytes = |classic_bytes: usize| if flexible { 1 } else { classic_bytes };
        match self {
            Ty::Str => prefix_bytes(2),
            Ty::Bytes | Ty::Array(_) => prefix_bytes(4),
            Ty::OptStruct(_) => 1,
            Ty::Struct(fields) => {
                let fields_bytes: usize = fields
                    .iter()
                    .filter(|field| field.tag.is_none() && field.present(version))
                    .map(|field| field.ty.min_bytes(version, flexible))
                    .sum();
                // A flexible struct always ends with its tagged-field count.
                fields_bytes + usize::from(flexible)
            }
            fixed => fixed.fixed_bytes().unwrap_or(0),
        }
    }
}

/// One field of a struct, as the wire sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field {
    pub(super) name: &'static str,
    pub(super) ty: Ty,
    pub(super) since: i16,
    pub(super) until: i16,
    pub(super) nullable: bool,
    /// `Some(tag)` for a tagged field: it is not in the field sequence but may appear in
    /// the struct's tagged-field section (flexible versions only).
    pub(super) tag: Option<u32>,
}

impl Field {
    pub(super) const fn nullable(mut self) -> Field {
        self.nullable = true;
        self
    }

    pub(super) const fn present(&self, version: i16) -> bool {
        self.since <= version && version <= self.until
    }
}

/// An inclusive version range, built with [`ALL`], [`from`], [`to`] or [`range`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Versions(i16, i16);

pub(super) const ALL: Versions = Versions(0, i16::MAX);

pub(super) const fn from(since: i16) -> Versions {
    Versions(since, i16::MAX)
}

pub(super) const fn to(until: i16) -> Versions {
    Versions(0, until)
}

pub(super) const fn range(since: i16, until: i16) -> Versions {
    Versions(since, until)
}

/// A field in the struct's field sequence.
pub(super) const fn f(name: &'static str, ty: Ty, versions: Versions) -> Field {
    Field {
        name,
        ty,
        since: versions.0,
        until: versions.1,
        nullable: false,
        tag: None,
    }
}

/// A tagged field: only ever in the tagged-field section.
pub(super) const fn tagged(tag: u32, name: &'static str, ty: Ty, versions: Versions) -> Field {
    Field {
        tag: Some(tag),
        ..f(name, ty, versions)
    }
}

/// The request schema of one Kafka API.
#[derive(Debug, Clone, Copy)]
pub(super) struct Api {
    pub(super) key: i16,
    pub(super) name: &'static str,
    pub(super) min_version: i16,
    pub(super) max_version: i16,
    /// First flexible version ([`NEVER`] when the API has none).
    pub(super) flexible_from: i16,
    pub(super) body: &'static [Field],
}

/// `flexible_from` of an API with no flexible version.
pub(super) const NEVER: i16 = i16::MAX;

pub(super) const fn api(
    key: i16,
    name: &'static str,
    min_version: i16,
    max_version: i16,
    flexible_from: i16,
    body: &'static [Field],
) -> Api {
    Api {
        key,
        name,
        min_version,
        max_version,
        flexible_from,
        body,
    }
}
