//! Go's `encoding/gob`, byte-compatible in both directions.
//!
//! Layout:
//! - [`wire`]: primitives (gob's uint/int/float forms) and type definitions.
//! - [`decode`]: the receiving half of a stream: [`Decoder`] keeps the peer's
//!   type definitions; [`Reader`] is what values are decoded through.
//! - [`encode`]: the sending half: [`Encoder`] remembers which types were sent;
//!   [`Writer`] is what values are encoded into.
//! - [`value`]: [`Value`], any gob value decoded without a Rust type (for
//!   dumps and for fields nobody modelled), and its JSON dump form.
//! - [`stream`]: message framing over async byte streams.
//! - [`time`]: Go's `time.Time` (a GobEncoder).
//!
//! Rust types take part through [`GobEncode`] and [`GobDecode`], implemented
//! here for the basic kinds and containers and by [`gob_struct!`] for structs.
//! Decoding matches struct fields by Go name, skips fields the Rust type does
//! not model and leaves missing ones at their defaults, as Go does.
//!
//! Nothing here knows about Mattermost.
//!
//! The `gob` crate on crates.io (0.1.0) was evaluated first and not adopted:
//! it has no interface values (wire id 8), no GobEncoder/BinaryMarshaler/
//! TextMarshaler types, and no support for values split across messages, all
//! of which Mattermost's traffic needs.

pub mod decode;
pub mod encode;
pub mod error;
pub mod stream;
pub mod time;
pub mod value;
pub mod wire;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use decode::{Decoder, InterfaceHeader, Limits, Reader};
pub use encode::{Encoder, Types, Writer};
pub use error::{Error, Result};
pub use value::Value;
pub use wire::{TypeId, WireType};

/// A Rust type that can be sent as a gob value.
pub trait GobEncode: 'static {
    /// Whether the Go type is a struct (top-level structs carry no singleton marker).
    const STRUCT: bool = false;

    /// This type's gob id on the stream, defining it (and what it contains) first.
    fn define(types: &mut Types<'_>) -> TypeId;

    /// Appends the value: a struct's fields and terminator, or a bare value.
    fn encode(&self, w: &mut Writer<'_>) -> Result<()>;

    /// Whether a struct field holding this value is left out, as Go leaves
    /// out zero values (structs themselves are always sent).
    fn is_zero(&self) -> bool;

    /// `define` for `Vec<Self>`; bytes override it to use gob's `[]byte`.
    fn define_vec(types: &mut Types<'_>) -> TypeId
    where
        Self: Sized,
    {
        types.define::<Vec<Self>>(|t| WireType::Slice {
            name: String::new(),
            elem: Self::define(t),
        })
    }

    /// `encode` for a slice of this type.
    fn encode_vec(items: &[Self], w: &mut Writer<'_>) -> Result<()>
    where
        Self: Sized,
    {
        w.uint(items.len() as u64);
        items.iter().try_for_each(|item| item.encode(w))
    }
}

/// A Rust type that can be read from a gob value of a compatible wire type.
pub trait GobDecode: Sized {
    /// Decodes a value whose wire type is `wire`.
    fn decode(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Self>;

    /// `decode` for `Vec<Self>`; bytes override it to read gob's `[]byte`.
    fn decode_vec(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Vec<Self>> {
        let wt = r.wire_type(wire).map_err(|_| r.mismatch(wire, "slice"))?;
        let WireType::Slice { elem, .. } = *wt else {
            return Err(r.mismatch(wire, "slice"));
        };
        let n = r.input.count()?;
        r.nested(|r| {
            let mut out = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                out.push(Self::decode(r, elem)?);
            }
            Ok(out)
        })
    }
}

/// Both directions.
pub trait Gob: GobEncode + GobDecode {}
impl<T: GobEncode + GobDecode> Gob for T {}

macro_rules! gob_int {
    ($($t:ty => $wire:ident, $put:ident, $get:ident, $via:ty;)*) => {$(
        impl GobEncode for $t {
            fn define(_: &mut Types<'_>) -> TypeId {
                wire::$wire
            }
            #[inline]
            fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
                w.$put(*self as $via);
                Ok(())
            }
            #[inline]
            fn is_zero(&self) -> bool {
                *self == 0
            }
        }
        impl GobDecode for $t {
            #[inline]
            fn decode(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Self> {
                r.expect(wire, wire::$wire, stringify!($t))?;
                let v = r.input.$get()?;
                <$t>::try_from(v).map_err(|_| Error::OutOfRange(stringify!($t)))
            }
        }
    )*};
}

gob_int! {
    i64 => INT, int, int, i64;
    i32 => INT, int, int, i64;
    i16 => INT, int, int, i64;
    i8 => INT, int, int, i64;
    u64 => UINT, uint, uint, u64;
    u32 => UINT, uint, uint, u64;
    u16 => UINT, uint, uint, u64;
}

/// A lone `u8` is a gob uint; `Vec<u8>` is gob's `[]byte`.
impl GobEncode for u8 {
    fn define(_: &mut Types<'_>) -> TypeId {
        wire::UINT
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        w.uint(*self as u64);
        Ok(())
    }
    fn is_zero(&self) -> bool {
        *self == 0
    }
    fn define_vec(_: &mut Types<'_>) -> TypeId {
        wire::BYTES
    }
    fn encode_vec(items: &[Self], w: &mut Writer<'_>) -> Result<()> {
        w.bytes(items);
        Ok(())
    }
}

impl GobDecode for u8 {
    fn decode(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Self> {
        r.expect(wire, wire::UINT, "u8")?;
        u8::try_from(r.input.uint()?).map_err(|_| Error::OutOfRange("u8"))
    }
    fn decode_vec(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Vec<Self>> {
        r.expect(wire, wire::BYTES, "Vec<u8>")?;
        Ok(r.input.bytes()?.to_vec())
    }
}

impl GobEncode for bool {
    fn define(_: &mut Types<'_>) -> TypeId {
        wire::BOOL
    }
    #[inline]
    fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        w.uint(*self as u64);
        Ok(())
    }
    #[inline]
    fn is_zero(&self) -> bool {
        !*self
    }
}

impl GobDecode for bool {
    #[inline]
    fn decode(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Self> {
        r.expect(wire, wire::BOOL, "bool")?;
        r.input.bool()
    }
}

impl GobEncode for f64 {
    fn define(_: &mut Types<'_>) -> TypeId {
        wire::FLOAT
    }
    #[inline]
    fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        wire::put_float(&mut w.buf, *self);
        Ok(())
    }
    #[inline]
    fn is_zero(&self) -> bool {
        // Go compares with == 0, so -0.0 is omitted too.
        *self == 0.0
    }
}

impl GobDecode for f64 {
    #[inline]
    fn decode(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Self> {
        r.expect(wire, wire::FLOAT, "f64")?;
        r.input.float()
    }
}

impl GobEncode for f32 {
    fn define(_: &mut Types<'_>) -> TypeId {
        wire::FLOAT
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        wire::put_float(&mut w.buf, *self as f64);
        Ok(())
    }
    fn is_zero(&self) -> bool {
        *self == 0.0
    }
}

impl GobDecode for f32 {
    fn decode(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Self> {
        r.expect(wire, wire::FLOAT, "f32")?;
        let v = r.input.float()?;
        // Go refuses float64 values that overflow a float32 destination.
        if v.is_finite() && v.abs() > f32::MAX as f64 {
            return Err(Error::OutOfRange("f32"));
        }
        Ok(v as f32)
    }
}

/// Go's complex128 (complex64 values widen to it on the wire).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Complex {
    pub re: f64,
    pub im: f64,
}

impl GobEncode for Complex {
    fn define(_: &mut Types<'_>) -> TypeId {
        wire::COMPLEX
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        wire::put_float(&mut w.buf, self.re);
        wire::put_float(&mut w.buf, self.im);
        Ok(())
    }
    fn is_zero(&self) -> bool {
        self.re == 0.0 && self.im == 0.0
    }
}

impl GobDecode for Complex {
    fn decode(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Self> {
        r.expect(wire, wire::COMPLEX, "Complex")?;
        Ok(Complex {
            re: r.input.float()?,
            im: r.input.float()?,
        })
    }
}

impl GobEncode for String {
    fn define(_: &mut Types<'_>) -> TypeId {
        wire::STRING
    }
    #[inline]
    fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        w.bytes(self.as_bytes());
        Ok(())
    }
    #[inline]
    fn is_zero(&self) -> bool {
        self.is_empty()
    }
}

/// A Go string may hold any bytes: a typed string takes invalid UTF-8 as U+FFFD, so that one
/// bad byte in a post or a command does not make the whole call fail (a failed hook call is
/// an empty answer for the user). Type and field names, and untyped [`Value`]s, stay strict.
impl GobDecode for String {
    #[inline]
    fn decode(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Self> {
        r.expect(wire, wire::STRING, "String")?;
        Ok(String::from_utf8_lossy(r.input.bytes()?).into_owned())
    }
}

impl<T: GobEncode> GobEncode for Vec<T> {
    fn define(types: &mut Types<'_>) -> TypeId {
        T::define_vec(types)
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        T::encode_vec(self, w)
    }
    fn is_zero(&self) -> bool {
        self.is_empty()
    }
}

impl<T: GobDecode> GobDecode for Vec<T> {
    fn decode(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Self> {
        T::decode_vec(r, wire)
    }
}

/// A Go pointer: `None` is nil (omitted in structs); `Some` is sent as the
/// pointee. Go cannot tell a pointer to a zero scalar from nil on the wire.
impl<T: GobEncode> GobEncode for Option<T> {
    const STRUCT: bool = T::STRUCT;
    fn define(types: &mut Types<'_>) -> TypeId {
        T::define(types)
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        match self {
            Some(v) => v.encode(w),
            None => Err(Error::Unencodable(
                "nil pointer outside a struct field".into(),
            )),
        }
    }
    fn is_zero(&self) -> bool {
        self.as_ref().is_none_or(T::is_zero)
    }
}

impl<T: GobDecode> GobDecode for Option<T> {
    fn decode(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Self> {
        T::decode(r, wire).map(Some)
    }
}

impl<T: GobEncode> GobEncode for Box<T> {
    const STRUCT: bool = T::STRUCT;
    fn define(types: &mut Types<'_>) -> TypeId {
        T::define(types)
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        (**self).encode(w)
    }
    fn is_zero(&self) -> bool {
        (**self).is_zero()
    }
}

impl<T: GobDecode> GobDecode for Box<T> {
    fn decode(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Self> {
        T::decode(r, wire).map(Box::new)
    }
}

/// A non-nil Go map (sent even when empty); wrap it in `Option` for a map
/// that may be nil.
impl<K: GobEncode + Ord, V: GobEncode> GobEncode for BTreeMap<K, V> {
    fn define(types: &mut Types<'_>) -> TypeId {
        types.define::<Self>(|t| WireType::Map {
            name: String::new(),
            key: K::define(t),
            elem: V::define(t),
        })
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        w.uint(self.len() as u64);
        for (k, v) in self {
            k.encode(w)?;
            v.encode(w)?;
        }
        Ok(())
    }
    fn is_zero(&self) -> bool {
        false
    }
}

impl<K: GobDecode + Ord, V: GobDecode> GobDecode for BTreeMap<K, V> {
    fn decode(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Self> {
        let wt = r.wire_type(wire).map_err(|_| r.mismatch(wire, "map"))?;
        let WireType::Map { key, elem, .. } = *wt else {
            return Err(r.mismatch(wire, "map"));
        };
        let n = r.input.count()?;
        r.nested(|r| {
            let mut out = BTreeMap::new();
            for _ in 0..n {
                let k = K::decode(r, key)?;
                let v = V::decode(r, elem)?;
                out.insert(k, v);
            }
            Ok(out)
        })
    }
}

/// Declares a Rust struct that mirrors a Go struct on the wire.
///
/// ```ignore
/// gob_struct! {
///     /// net/rpc's request header.
///     pub struct Request("Request") {
///         pub service_method: String => "ServiceMethod",
///         pub seq: u64 => "Seq",
///     }
/// }
/// ```
/// Field order is the Go declaration order (it fixes the field numbers we
/// send); decoding matches fields by their Go names.
#[macro_export]
macro_rules! gob_struct {
    ($(
        $(#[$meta:meta])*
        $vis:vis struct $name:ident $(<$($gp:ident),+>)? ($go_name:literal) {
            $(
                $(#[$fmeta:meta])*
                $fvis:vis $field:ident : $ty:ty => $go_field:literal
            ),* $(,)?
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        $vis struct $name $(<$($gp),+>)? {
            $( $(#[$fmeta])* $fvis $field: $ty, )*
        }

        impl $(<$($gp: $crate::rpc::gob::GobEncode),+>)? $crate::rpc::gob::GobEncode
            for $name $(<$($gp),+>)?
        {
            const STRUCT: bool = true;

            fn define(types: &mut $crate::rpc::gob::Types<'_>) -> $crate::rpc::gob::TypeId {
                types.define::<Self>(|_t| $crate::rpc::gob::WireType::Struct {
                    name: $go_name.to_owned(),
                    fields: vec![$(
                        $crate::rpc::gob::wire::FieldType {
                            name: $go_field.to_owned(),
                            id: <$ty as $crate::rpc::gob::GobEncode>::define(_t),
                        },
                    )*],
                })
            }

            #[allow(unused_assignments, unused_variables, unused_mut)]
            fn encode(&self, w: &mut $crate::rpc::gob::Writer<'_>) -> $crate::rpc::gob::Result<()> {
                let mut last: i64 = -1;
                let mut index: i64 = 0;
                $(
                    if !$crate::rpc::gob::GobEncode::is_zero(&self.$field) {
                        w.uint((index - last) as u64);
                        last = index;
                        $crate::rpc::gob::GobEncode::encode(&self.$field, w)?;
                    }
                    index += 1;
                )*
                w.uint(0);
                Ok(())
            }

            fn is_zero(&self) -> bool {
                false
            }
        }

        impl $(<$($gp: $crate::rpc::gob::GobDecode + Default + 'static),+>)? $crate::rpc::gob::GobDecode
            for $name $(<$($gp),+>)?
        {
            #[allow(unused_assignments, unused_variables, unused_mut)]
            fn decode(
                r: &mut $crate::rpc::gob::Reader<'_, '_>,
                wire: $crate::rpc::gob::TypeId,
            ) -> $crate::rpc::gob::Result<Self> {
                const NAMES: &[&str] = &[$($go_field),*];
                let plan = r.struct_plan::<Self>(wire, NAMES, stringify!($name))?;
                let mut out = Self::default();
                r.struct_fields(&plan, |r, index, wire| {
                    let mut k: u16 = 0;
                    $(
                        if index == k {
                            out.$field = $crate::rpc::gob::GobDecode::decode(r, wire)?;
                            return Ok(());
                        }
                        k += 1;
                    )*
                    Ok(())
                })?;
                Ok(out)
            }
        }
    )*};
}
