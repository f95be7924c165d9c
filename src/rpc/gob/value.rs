//! [`Value`]: any gob value, decoded by its wire type alone.

use serde_json::json;

use super::decode::Reader;
use super::error::{Error, Result};
use super::wire::{self, TypeId, WireType};
use super::GobDecode;

/// A gob value as the wire describes it, with no Rust type in mind.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Complex(f64, f64),
    Bytes(Vec<u8>),
    String(String),
    /// The fields that were sent, in field-number order, by name.
    Struct(Vec<(String, Value)>),
    Slice(Vec<Value>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    /// `None` is a nil interface; otherwise the registered name and the value.
    Interface(Option<Box<(String, Value)>>),
    /// The bytes of a GobEncoder, BinaryMarshaler or TextMarshaler.
    Encoded(Vec<u8>),
}

impl GobDecode for Value {
    fn decode(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Self> {
        Ok(match wire {
            wire::BOOL => Value::Bool(r.input.bool()?),
            wire::INT => Value::Int(r.input.int()?),
            wire::UINT => Value::Uint(r.input.uint()?),
            wire::FLOAT => Value::Float(r.input.float()?),
            wire::COMPLEX => Value::Complex(r.input.float()?, r.input.float()?),
            wire::BYTES => Value::Bytes(r.input.bytes()?.to_vec()),
            wire::STRING => Value::String(r.input.string()?),
            wire::INTERFACE => match r.interface_header()? {
                None => Value::Interface(None),
                Some(h) => {
                    let name = h.name.to_owned();
                    let value = r.nested(|r| r.top_level::<Value>(h.id))?;
                    Value::Interface(Some(Box::new((name, value))))
                }
            },
            _ => {
                let wt = r.wire_type(wire)?;
                r.nested(|r| decode_composite(r, &wt))?
            }
        })
    }
}

fn decode_composite(r: &mut Reader<'_, '_>, wt: &WireType) -> Result<Value> {
    Ok(match wt {
        WireType::Struct { fields, .. } => {
            let mut out = Vec::new();
            let mut field = -1i64;
            while let Some(delta) = r.input.struct_delta()? {
                field += delta as i64;
                let Some(f) = fields.get(field as usize) else {
                    return Err(Error::corrupt(format!("field number {field} out of range")));
                };
                out.push((f.name.clone(), Value::decode(r, f.id)?));
            }
            Value::Struct(out)
        }
        WireType::Slice { elem, .. } => Value::Slice(decode_elems(r, *elem)?),
        WireType::Array { elem, len, .. } => {
            let items = decode_elems(r, *elem)?;
            if items.len() as i64 != *len {
                return Err(Error::corrupt(format!(
                    "array of {} elements, declared {len}",
                    items.len()
                )));
            }
            Value::Array(items)
        }
        WireType::Map { key, elem, .. } => {
            let n = r.input.count()?;
            let mut out = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let k = Value::decode(r, *key)?;
                out.push((k, Value::decode(r, *elem)?));
            }
            Value::Map(out)
        }
        WireType::GobEncoder { .. }
        | WireType::BinaryMarshaler { .. }
        | WireType::TextMarshaler { .. } => Value::Encoded(r.input.bytes()?.to_vec()),
    })
}

fn decode_elems(r: &mut Reader<'_, '_>, elem: TypeId) -> Result<Vec<Value>> {
    let n = r.input.count()?;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        out.push(Value::decode(r, elem)?);
    }
    Ok(out)
}

impl Value {
    /// The value in the project's dump format (see tests/conformance/README.md):
    /// structs as objects of the fields sent, bytes as `{"bytes": hex}`, maps
    /// as `[key, value]` pairs sorted by the key's JSON text, interfaces as
    /// `{"type": name, "value": ...}` or null.
    pub fn to_dump(&self) -> serde_json::Value {
        match self {
            Value::Bool(b) => json!(b),
            Value::Int(i) => json!(i),
            Value::Uint(u) => json!(u),
            Value::Float(f) => float_dump(*f),
            Value::Complex(re, im) => json!([float_dump(*re), float_dump(*im)]),
            Value::Bytes(b) => json!({ "bytes": hex(b) }),
            Value::String(s) => json!(s),
            Value::Struct(fields) => serde_json::Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_dump()))
                    .collect(),
            ),
            Value::Slice(items) | Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_dump).collect())
            }
            Value::Map(pairs) => {
                let mut pairs: Vec<(String, serde_json::Value)> = pairs
                    .iter()
                    .map(|(k, v)| {
                        let k = k.to_dump();
                        (k.to_string(), json!([k, v.to_dump()]))
                    })
                    .collect();
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Array(pairs.into_iter().map(|(_, p)| p).collect())
            }
            Value::Interface(None) => serde_json::Value::Null,
            Value::Interface(Some(inner)) => json!({ "type": inner.0, "value": inner.1.to_dump() }),
            Value::Encoded(b) => json!({ "encoded": hex(b) }),
        }
    }
}

fn float_dump(f: f64) -> serde_json::Value {
    if f.is_nan() {
        json!("NaN")
    } else if f.is_infinite() {
        json!(if f > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        json!(f)
    }
}

/// Lowercase hex, as the dump format writes bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}
