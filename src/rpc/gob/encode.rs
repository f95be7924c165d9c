//! Encoding: the per-stream record of types already sent, and the writer that
//! [`GobEncode`](super::GobEncode) implementations append to.

use std::any::TypeId as RustTypeId;
use std::collections::HashMap;

use super::error::Result;
use super::wire::{self, TypeId, WireType};
use super::GobEncode;

/// The sending half of one gob stream direction.
///
/// Every type is defined once per stream, before the first value that needs
/// it. Definitions for the concrete types inside interface values are sent as
/// separate messages ahead of the value message, so our values never split
/// across messages (Go's decoder accepts definitions at any point).
pub struct Encoder {
    sent: HashMap<RustTypeId, TypeId>,
    next_id: TypeId,
    /// Types first defined by the value being encoded; forgotten again if
    /// that value fails, since their definitions are then not sent either.
    fresh: Vec<RustTypeId>,
    /// Reusable buffers for values and for interface payloads.
    spare: Vec<Vec<u8>>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Self {
        // Go's own first user id is 65; any id >= 64 unique on the stream works.
        Encoder {
            sent: HashMap::new(),
            next_id: 65,
            fresh: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// Appends the messages for `value` to `out`: any type definitions it
    /// needs, then the value message. On error `out` and the stream state are
    /// left as they were, so the stream stays usable.
    pub fn encode<T: GobEncode>(&mut self, value: &T, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let buf = self.spare.pop().unwrap_or_default();
        let mut w = Writer {
            enc: self,
            defs: out,
            buf,
        };
        let result = w.top_level(value);
        let Writer { enc, defs, mut buf } = w;
        match result {
            Ok(()) => {
                wire::put_uint(defs, buf.len() as u64);
                defs.extend_from_slice(&buf);
            }
            Err(_) => {
                defs.truncate(start);
                for key in enc.fresh.drain(..) {
                    enc.sent.remove(&key);
                }
            }
        }
        enc.fresh.clear();
        buf.clear();
        enc.spare.push(buf);
        result
    }

    fn take_buf(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }
}

/// Where [`GobEncode::define`] records and emits type definitions.
pub struct Types<'w> {
    enc: &'w mut Encoder,
    defs: &'w mut Vec<u8>,
}

impl Types<'_> {
    /// The id of Rust type `T`, defining it with `build` on first use. The id
    /// is reserved before `build` runs, so recursive types refer to themselves.
    pub fn define<T: 'static>(&mut self, build: impl FnOnce(&mut Self) -> WireType) -> TypeId {
        let key = RustTypeId::of::<T>();
        if let Some(&id) = self.enc.sent.get(&key) {
            return id;
        }
        let id = self.enc.next_id;
        self.enc.next_id += 1;
        self.enc.sent.insert(key, id);
        self.enc.fresh.push(key);
        let wt = build(self);
        let mut msg = Vec::with_capacity(64);
        wire::put_int(&mut msg, -id);
        wt.encode(id, &mut msg);
        wire::put_uint(self.defs, msg.len() as u64);
        self.defs.extend_from_slice(&msg);
        id
    }
}

/// The value buffer handed to [`GobEncode::encode`].
pub struct Writer<'w> {
    enc: &'w mut Encoder,
    defs: &'w mut Vec<u8>,
    pub buf: Vec<u8>,
}

impl Writer<'_> {
    /// A value at the top of a message: its type id, the singleton marker
    /// for non-structs, then the value.
    fn top_level<T: GobEncode>(&mut self, value: &T) -> Result<()> {
        let id = T::define(&mut self.types());
        wire::put_int(&mut self.buf, id);
        if !T::STRUCT {
            wire::put_uint(&mut self.buf, 0);
        }
        value.encode(self)
    }

    pub fn types(&mut self) -> Types<'_> {
        Types {
            enc: self.enc,
            defs: self.defs,
        }
    }

    #[inline]
    pub fn uint(&mut self, v: u64) {
        wire::put_uint(&mut self.buf, v);
    }

    #[inline]
    pub fn int(&mut self, v: i64) {
        wire::put_int(&mut self.buf, v);
    }

    #[inline]
    pub fn bytes(&mut self, b: &[u8]) {
        wire::put_bytes(&mut self.buf, b);
    }

    /// A nil interface value (as a slice or map element; as a struct field it
    /// is simply omitted).
    pub fn nil_interface(&mut self) {
        self.buf.push(0);
    }

    /// A non-nil interface value holding `value`, registered in Go under `name`.
    pub fn interface<T: GobEncode>(&mut self, name: &str, value: &T) -> Result<()> {
        let id = T::define(&mut self.types());
        wire::put_string(&mut self.buf, name);
        wire::put_int(&mut self.buf, id);
        let payload = self.enc.take_buf();
        let outer = std::mem::replace(&mut self.buf, payload);
        if !T::STRUCT {
            self.buf.push(0);
        }
        let result = value.encode(self);
        let mut payload = std::mem::replace(&mut self.buf, outer);
        if result.is_ok() {
            wire::put_bytes(&mut self.buf, &payload);
        }
        payload.clear();
        self.enc.spare.push(payload);
        result
    }
}
