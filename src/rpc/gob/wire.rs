//! Gob's primitive encodings and its self-describing type definitions.
//!
//! Everything here follows Go's `encoding/gob` byte for byte: unsigned
//! integers in gob's variable-length form, signed integers zig-zagged onto
//! them, floats byte-reversed, and `wireType` definitions encoded as ordinary
//! gob structs with the predefined ids 16..=23.

use super::error::{Error, Result};

/// A gob type id. Negative on the wire when it introduces a definition.
pub type TypeId = i64;

pub const BOOL: TypeId = 1;
pub const INT: TypeId = 2;
pub const UINT: TypeId = 3;
pub const FLOAT: TypeId = 4;
pub const BYTES: TypeId = 5;
pub const STRING: TypeId = 6;
pub const COMPLEX: TypeId = 7;
pub const INTERFACE: TypeId = 8;
/// The first id Go's decoder accepts for a user-defined type.
pub const FIRST_USER_ID: TypeId = 64;

/// Name of a predefined id, for dumps and error messages.
pub fn builtin_name(id: TypeId) -> Option<&'static str> {
    Some(match id {
        BOOL => "bool",
        INT => "int",
        UINT => "uint",
        FLOAT => "float",
        BYTES => "bytes",
        STRING => "string",
        COMPLEX => "complex",
        INTERFACE => "interface",
        _ => return None,
    })
}

/// A received or sent type definition (Go's `wireType`, one variant set).
#[derive(Debug, Clone, PartialEq)]
pub enum WireType {
    Array {
        name: String,
        elem: TypeId,
        len: i64,
    },
    Slice {
        name: String,
        elem: TypeId,
    },
    Struct {
        name: String,
        fields: Vec<FieldType>,
    },
    Map {
        name: String,
        key: TypeId,
        elem: TypeId,
    },
    GobEncoder {
        name: String,
    },
    BinaryMarshaler {
        name: String,
    },
    TextMarshaler {
        name: String,
    },
}

/// One field of a struct definition; its position is its field number.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldType {
    pub name: String,
    pub id: TypeId,
}

impl WireType {
    pub fn name(&self) -> &str {
        match self {
            WireType::Array { name, .. }
            | WireType::Slice { name, .. }
            | WireType::Struct { name, .. }
            | WireType::Map { name, .. }
            | WireType::GobEncoder { name }
            | WireType::BinaryMarshaler { name }
            | WireType::TextMarshaler { name } => name,
        }
    }

    /// Whether values of this type are sent as opaque length-prefixed bytes.
    pub fn is_marshaler(&self) -> bool {
        matches!(
            self,
            WireType::GobEncoder { .. }
                | WireType::BinaryMarshaler { .. }
                | WireType::TextMarshaler { .. }
        )
    }

    /// The definition as one JSON object, for dumps.
    pub fn to_dump(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            WireType::Array { name, elem, len } => {
                json!({"kind": "array", "name": name, "elem": elem, "len": len})
            }
            WireType::Slice { name, elem } => json!({"kind": "slice", "name": name, "elem": elem}),
            WireType::Struct { name, fields } => json!({
                "kind": "struct",
                "name": name,
                "fields": fields.iter().map(|f| json!({"name": f.name, "id": f.id})).collect::<Vec<_>>(),
            }),
            WireType::Map { name, key, elem } => {
                json!({"kind": "map", "name": name, "key": key, "elem": elem})
            }
            WireType::GobEncoder { name } => json!({"kind": "gob_encoder", "name": name}),
            WireType::BinaryMarshaler { name } => json!({"kind": "binary_marshaler", "name": name}),
            WireType::TextMarshaler { name } => json!({"kind": "text_marshaler", "name": name}),
        }
    }

    /// Field number of `wireType` that carries this variant.
    fn wire_field(&self) -> u64 {
        match self {
            WireType::Array { .. } => 0,
            WireType::Slice { .. } => 1,
            WireType::Struct { .. } => 2,
            WireType::Map { .. } => 3,
            WireType::GobEncoder { .. } => 4,
            WireType::BinaryMarshaler { .. } => 5,
            WireType::TextMarshaler { .. } => 6,
        }
    }

    /// Appends the gob encoding of this definition (the `wireType` struct value)
    /// as Go's encoder writes it: zero fields omitted, nested structs always sent.
    pub fn encode(&self, id: TypeId, out: &mut Vec<u8>) {
        put_uint(out, self.wire_field() + 1);
        // CommonType is field 0 of every variant.
        put_uint(out, 1);
        let name = self.name();
        let mut last = -1i64;
        if !name.is_empty() {
            put_uint(out, 1);
            put_string(out, name);
            last = 0;
        }
        put_uint(out, (1 - last) as u64);
        put_int(out, id);
        put_uint(out, 0);
        match self {
            WireType::Array { elem, len, .. } => {
                put_uint(out, 1);
                put_int(out, *elem);
                if *len != 0 {
                    put_uint(out, 1);
                    put_int(out, *len);
                }
            }
            WireType::Slice { elem, .. } => {
                put_uint(out, 1);
                put_int(out, *elem);
            }
            WireType::Struct { fields, .. } => {
                if !fields.is_empty() {
                    put_uint(out, 1);
                    put_uint(out, fields.len() as u64);
                    for f in fields {
                        let mut last = -1i64;
                        if !f.name.is_empty() {
                            put_uint(out, 1);
                            put_string(out, &f.name);
                            last = 0;
                        }
                        if f.id != 0 {
                            put_uint(out, (1 - last) as u64);
                            put_int(out, f.id);
                        }
                        put_uint(out, 0);
                    }
                }
            }
            WireType::Map { key, elem, .. } => {
                put_uint(out, 1);
                put_int(out, *key);
                put_uint(out, 1);
                put_int(out, *elem);
            }
            WireType::GobEncoder { .. }
            | WireType::BinaryMarshaler { .. }
            | WireType::TextMarshaler { .. } => {}
        }
        put_uint(out, 0); // end of the variant's struct
        put_uint(out, 0); // end of wireType
    }

    /// Parses a `wireType` value; returns the definition and the id its
    /// CommonType claims (Go ignores that id in favour of the message's).
    pub fn decode(input: &mut Input<'_>) -> Result<WireType> {
        let mut variant: Option<WireType> = None;
        let mut field = -1i64;
        while let Some(delta) = input.struct_delta()? {
            field += delta as i64;
            if variant.is_some() {
                return Err(Error::corrupt("wireType sets more than one variant"));
            }
            variant = Some(match field {
                0 => decode_array_type(input)?,
                1 => decode_slice_type(input)?,
                2 => decode_struct_type(input)?,
                3 => decode_map_type(input)?,
                4 => WireType::GobEncoder {
                    name: decode_common_only(input)?,
                },
                5 => WireType::BinaryMarshaler {
                    name: decode_common_only(input)?,
                },
                6 => WireType::TextMarshaler {
                    name: decode_common_only(input)?,
                },
                _ => return Err(Error::corrupt(format!("wireType field {field}"))),
            });
        }
        variant.ok_or_else(|| Error::corrupt("empty wireType"))
    }
}

/// Reads the fields of one of the `*Type` structs, calling `on_field` for each
/// field number after the CommonType (field 0) has been consumed into `name`.
fn decode_type_struct(
    input: &mut Input<'_>,
    name: &mut String,
    mut on_field: impl FnMut(i64, &mut Input<'_>) -> Result<()>,
) -> Result<()> {
    let mut field = -1i64;
    while let Some(delta) = input.struct_delta()? {
        field += delta as i64;
        if field == 0 {
            *name = decode_common_type(input)?;
        } else {
            on_field(field, input)?;
        }
    }
    Ok(())
}

fn decode_common_type(input: &mut Input<'_>) -> Result<String> {
    let mut name = String::new();
    let mut field = -1i64;
    while let Some(delta) = input.struct_delta()? {
        field += delta as i64;
        match field {
            0 => name = input.string()?,
            1 => {
                input.int()?;
            }
            _ => return Err(Error::corrupt(format!("CommonType field {field}"))),
        }
    }
    Ok(name)
}

fn decode_common_only(input: &mut Input<'_>) -> Result<String> {
    let mut name = String::new();
    decode_type_struct(input, &mut name, |f, _| {
        Err(Error::corrupt(format!("gobEncoderType field {f}")))
    })?;
    Ok(name)
}

fn decode_array_type(input: &mut Input<'_>) -> Result<WireType> {
    let (mut name, mut elem, mut len) = (String::new(), 0, 0);
    decode_type_struct(input, &mut name, |f, input| {
        match f {
            1 => elem = input.int()?,
            2 => len = input.int()?,
            _ => return Err(Error::corrupt(format!("arrayType field {f}"))),
        }
        Ok(())
    })?;
    Ok(WireType::Array { name, elem, len })
}

fn decode_slice_type(input: &mut Input<'_>) -> Result<WireType> {
    let (mut name, mut elem) = (String::new(), 0);
    decode_type_struct(input, &mut name, |f, input| {
        match f {
            1 => elem = input.int()?,
            _ => return Err(Error::corrupt(format!("sliceType field {f}"))),
        }
        Ok(())
    })?;
    Ok(WireType::Slice { name, elem })
}

fn decode_map_type(input: &mut Input<'_>) -> Result<WireType> {
    let (mut name, mut key, mut elem) = (String::new(), 0, 0);
    decode_type_struct(input, &mut name, |f, input| {
        match f {
            1 => key = input.int()?,
            2 => elem = input.int()?,
            _ => return Err(Error::corrupt(format!("mapType field {f}"))),
        }
        Ok(())
    })?;
    Ok(WireType::Map { name, key, elem })
}

fn decode_struct_type(input: &mut Input<'_>) -> Result<WireType> {
    let mut name = String::new();
    let mut fields = Vec::new();
    decode_type_struct(input, &mut name, |f, input| {
        if f != 1 {
            return Err(Error::corrupt(format!("structType field {f}")));
        }
        let count = input.count()?;
        fields.reserve(count);
        for _ in 0..count {
            let mut field = FieldType {
                name: String::new(),
                id: 0,
            };
            let mut n = -1i64;
            while let Some(delta) = input.struct_delta()? {
                n += delta as i64;
                match n {
                    0 => field.name = input.string()?,
                    1 => field.id = input.int()?,
                    _ => return Err(Error::corrupt(format!("fieldType field {n}"))),
                }
            }
            fields.push(field);
        }
        Ok(())
    })?;
    Ok(WireType::Struct { name, fields })
}

// ---------------------------------------------------------------------------
// Writing primitives.

/// Appends `v` in gob's unsigned form: one byte below 128, else a negated
/// byte count followed by the big-endian bytes.
#[inline]
pub fn put_uint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
        return;
    }
    let bytes = v.to_be_bytes();
    let skip = (v.leading_zeros() / 8) as usize;
    out.push((-((8 - skip) as i8)) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

#[inline]
pub fn put_int(out: &mut Vec<u8>, v: i64) {
    let u = if v < 0 {
        (!(v as u64) << 1) | 1
    } else {
        (v as u64) << 1
    };
    put_uint(out, u);
}

#[inline]
pub fn put_float(out: &mut Vec<u8>, v: f64) {
    put_uint(out, v.to_bits().swap_bytes());
}

#[inline]
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uint(out, b.len() as u64);
    out.extend_from_slice(b);
}

#[inline]
pub fn put_string(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

/// Number of bytes `put_uint` writes for `v`.
pub fn uint_len(v: u64) -> usize {
    if v < 0x80 {
        1
    } else {
        1 + 8 - (v.leading_zeros() / 8) as usize
    }
}

// ---------------------------------------------------------------------------
// Reading primitives.

/// A read position in the message(s) of one value.
///
/// A value normally lives in one message, but Go's encoder ends a message
/// right after an interface's inline type definition and continues the value
/// in the next one; `segments` holds those continuation messages. Only a type
/// sequence may step to the next segment; every other read stops at the end
/// of the current one, exactly like Go's single message buffer.
pub struct Input<'a> {
    buf: &'a [u8],
    rest: &'a [Vec<u8>],
}

impl<'a> Input<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Input { buf, rest: &[] }
    }

    /// An input over a first message and its continuation messages.
    pub fn with_continuations(buf: &'a [u8], rest: &'a [Vec<u8>]) -> Self {
        Input { buf, rest }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Steps to the next message; `false` when none has been read yet.
    pub(crate) fn next_segment(&mut self) -> bool {
        match self.rest.split_first() {
            Some((first, rest)) => {
                self.buf = first;
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// How many continuation messages are still unread.
    pub(crate) fn unread_segments(&self) -> usize {
        self.rest.len()
    }

    #[inline]
    pub fn byte(&mut self) -> Result<u8> {
        match self.buf.split_first() {
            Some((&b, rest)) => {
                self.buf = rest;
                Ok(b)
            }
            None => Err(Error::Truncated("value ends early")),
        }
    }

    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(Error::Truncated("length exceeds the message"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    #[inline]
    pub fn uint(&mut self) -> Result<u64> {
        let b = self.byte()?;
        if b < 0x80 {
            return Ok(b as u64);
        }
        let n = (b as i8).unsigned_abs() as usize;
        if n > 8 {
            return Err(Error::corrupt(format!("uint length byte {b:#04x}")));
        }
        let bytes = self.take(n)?;
        let mut v = 0u64;
        for &x in bytes {
            v = (v << 8) | x as u64;
        }
        Ok(v)
    }

    #[inline]
    pub fn int(&mut self) -> Result<i64> {
        let u = self.uint()?;
        Ok(if u & 1 == 1 {
            !(u >> 1) as i64
        } else {
            (u >> 1) as i64
        })
    }

    #[inline]
    pub fn float(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.uint()?.swap_bytes()))
    }

    #[inline]
    pub fn bool(&mut self) -> Result<bool> {
        match self.uint()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(Error::corrupt(format!("bool value {v}"))),
        }
    }

    /// A length-prefixed byte string, borrowed from the message.
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.uint()?;
        if n > self.buf.len() as u64 {
            return Err(Error::Truncated("byte length exceeds the message"));
        }
        self.take(n as usize)
    }

    #[inline]
    pub fn str(&mut self) -> Result<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Error::InvalidUtf8)
    }

    #[inline]
    pub fn string(&mut self) -> Result<String> {
        self.str().map(str::to_owned)
    }

    /// An element count, checked against what the message can still hold:
    /// every element takes at least one byte, except that the last struct may
    /// be closed by the end of the message.
    #[inline]
    pub fn count(&mut self) -> Result<usize> {
        let n = self.uint()?;
        if n > self.buf.len() as u64 + 1 {
            return Err(Error::corrupt(format!(
                "count {n} exceeds the {} bytes left in the message",
                self.buf.len()
            )));
        }
        Ok(n as usize)
    }

    /// The next field delta of a struct, or `None` at its end (a zero delta or
    /// the end of the message, as Go accepts both).
    #[inline]
    pub fn struct_delta(&mut self) -> Result<Option<u64>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        match self.uint()? {
            0 => Ok(None),
            d if d > i32::MAX as u64 => Err(Error::corrupt(format!("field delta {d}"))),
            d => Ok(Some(d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uint_bytes(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_uint(&mut out, v);
        out
    }

    fn int_bytes(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        put_int(&mut out, v);
        out
    }

    #[test]
    fn primitives_match_go_vectors() {
        assert_eq!(uint_bytes(0), [0x00]);
        assert_eq!(uint_bytes(7), [0x07]);
        assert_eq!(uint_bytes(200), [0xff, 0xc8]);
        assert_eq!(uint_bytes(256), [0xfe, 0x01, 0x00]);
        assert_eq!(int_bytes(3), [0x06]);
        assert_eq!(int_bytes(-1), [0x01]);
        assert_eq!(int_bytes(65), [0xff, 0x82]);
        assert_eq!(int_bytes(-65), [0xff, 0x81]);
        assert_eq!(int_bytes(-129), [0xfe, 0x01, 0x01]);
        assert_eq!(int_bytes(400), [0xfe, 0x03, 0x20]);
        let mut f = Vec::new();
        put_float(&mut f, 17.0);
        assert_eq!(f, [0xfe, 0x31, 0x40]);
        f.clear();
        put_float(&mut f, 1.5);
        assert_eq!(f, [0xfe, 0xf8, 0x3f]);
        for v in [0u64, 1, 127, 128, 255, 256, 1 << 40, u64::MAX] {
            assert_eq!(uint_len(v), uint_bytes(v).len());
        }
    }

    #[test]
    fn primitives_round_trip_extremes() {
        for v in [i64::MIN, i64::MAX, 0, -1, 1, -64, 64] {
            let b = int_bytes(v);
            assert_eq!(Input::new(&b).int().unwrap(), v);
        }
        for v in [u64::MAX, 0, 0x80, 0xffff_ffff] {
            let b = uint_bytes(v);
            assert_eq!(Input::new(&b).uint().unwrap(), v);
        }
    }

    #[test]
    fn bad_primitives_are_typed_errors() {
        assert!(matches!(Input::new(&[0x80]).uint(), Err(Error::Corrupt(_))));
        assert!(matches!(
            Input::new(&[0xfe, 0x01]).uint(),
            Err(Error::Truncated(_))
        ));
        assert!(matches!(
            Input::new(&[0x05, b'a']).bytes(),
            Err(Error::Truncated(_))
        ));
        assert!(matches!(
            Input::new(&[0x02, 0xff, 0xfe]).str(),
            Err(Error::InvalidUtf8)
        ));
        assert!(matches!(Input::new(&[0x02]).bool(), Err(Error::Corrupt(_))));
        // A count claiming far more elements than bytes left is refused up front.
        let huge = uint_bytes(1 << 40);
        assert!(matches!(Input::new(&huge).count(), Err(Error::Corrupt(_))));
    }

    #[test]
    fn request_definition_round_trips_byte_exact() {
        // Vector V1 of the protocol notes: the definition of net/rpc's Request.
        let go: &[u8] = &[
            0x03, 0x01, 0x01, 0x07, b'R', b'e', b'q', b'u', b'e', b's', b't', 0x01, 0xff, 0x82,
            0x00, 0x01, 0x02, 0x01, 0x0d, b'S', b'e', b'r', b'v', b'i', b'c', b'e', b'M', b'e',
            b't', b'h', b'o', b'd', 0x01, 0x0c, 0x00, 0x01, 0x03, b'S', b'e', b'q', 0x01, 0x06,
            0x00, 0x00, 0x00,
        ];
        let wt = WireType::decode(&mut Input::new(go)).unwrap();
        assert_eq!(
            wt,
            WireType::Struct {
                name: "Request".into(),
                fields: vec![
                    FieldType {
                        name: "ServiceMethod".into(),
                        id: STRING
                    },
                    FieldType {
                        name: "Seq".into(),
                        id: UINT
                    },
                ],
            }
        );
        let mut out = Vec::new();
        wt.encode(65, &mut out);
        assert_eq!(out, go);
    }

    #[test]
    fn anonymous_and_slice_definitions_match_go() {
        // V2: struct{} as id 66; V3: []string as id 68.
        let mut out = Vec::new();
        WireType::Struct {
            name: String::new(),
            fields: vec![],
        }
        .encode(66, &mut out);
        assert_eq!(out, [0x03, 0x01, 0x02, 0xff, 0x84, 0x00, 0x00, 0x00]);
        out.clear();
        WireType::Slice {
            name: String::new(),
            elem: STRING,
        }
        .encode(68, &mut out);
        assert_eq!(
            out,
            [0x02, 0x01, 0x02, 0xff, 0x88, 0x00, 0x01, 0x0c, 0x00, 0x00]
        );
        // V5: time.Time as a GobEncoder named "Time", id 75.
        out.clear();
        WireType::GobEncoder {
            name: "Time".into(),
        }
        .encode(75, &mut out);
        assert_eq!(
            out,
            [0x05, 0x01, 0x01, 0x04, b'T', b'i', b'm', b'e', 0x01, 0xff, 0x96, 0x00, 0x00, 0x00]
        );
    }
}
