//! Decoding: the per-stream type registry and the reader that typed values,
//! generic values and skipped values are decoded through.

use std::any::TypeId as RustTypeId;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::error::{Error, Result};
use super::value::Value;
use super::wire::{self, Input, TypeId, WireType};
use super::GobDecode;

/// Limits that keep a hostile peer from exhausting memory or stack.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message accepted; checked before anything is allocated.
    pub max_message: usize,
    /// Deepest nesting of values (structs in slices in maps ...).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 128 << 20,
            max_depth: 128,
        }
    }
}

/// How a received struct's fields map onto a Rust struct's fields, computed
/// once per (wire type, Rust type) pair and cached on the stream.
pub struct StructPlan {
    /// Indexed by wire field number: (our field index if known, wire type id).
    fields: Vec<(Option<u16>, TypeId)>,
}

/// A multiply-rotate hasher for the decoder's small integer keys, looked up
/// several times per value. The keys come from the Mattermost host, which we
/// trust not to flood hash buckets, so SipHash's protection is not needed.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_i64(&mut self, word: i64) {
        self.write_u64(word as u64);
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// The receiving half of one gob stream direction: every type definition the
/// peer sent, plus caches derived from them.
pub struct Decoder {
    types: IdMap<TypeId, Arc<WireType>>,
    plans: IdMap<(TypeId, RustTypeId), Arc<StructPlan>>,
    limits: Limits,
    /// Ids defined while decoding the value in progress; withdrawn when the
    /// value turns out to continue in a message that has not arrived yet, so
    /// that decoding it again from the start does not see them as duplicates.
    fresh: Vec<TypeId>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder {
            types: IdMap::default(),
            plans: IdMap::default(),
            limits,
            fresh: Vec::new(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The definition received for `id`, if any.
    pub fn wire_type(&self, id: TypeId) -> Option<&WireType> {
        self.types.get(&id).map(|w| &**w)
    }

    fn define(&mut self, id: TypeId, wt: WireType) -> Result<()> {
        if id < wire::FIRST_USER_ID || self.types.contains_key(&id) {
            return Err(Error::DuplicateType(id));
        }
        self.types.insert(id, Arc::new(wt));
        self.fresh.push(id);
        Ok(())
    }

    /// Handles a message if it is a type definition; returns the defined id,
    /// or `None` when the message starts a value.
    pub fn definition(&mut self, msg: &[u8]) -> Result<Option<TypeId>> {
        let mut input = Input::new(msg);
        let id = input.int()?;
        if id >= 0 {
            return Ok(None);
        }
        let wt = WireType::decode(&mut input)?;
        if !input.is_empty() {
            return Err(Error::corrupt("extra data after a type definition"));
        }
        self.define(-id, wt)?;
        self.fresh.clear();
        Ok(Some(-id))
    }

    /// Decodes the value that starts in message `first` (which must not be a
    /// definition) and may continue in `more`, calling `f` with the value's
    /// type id. Returns `Ok(None)` when the value continues in a message not
    /// yet received: read one more, append it to `more`, and call again.
    /// On success `defined` lists the types the value defined inline.
    pub fn value<T>(
        &mut self,
        first: &[u8],
        more: &[Vec<u8>],
        f: impl FnOnce(&mut Reader<'_, '_>, TypeId) -> Result<T>,
    ) -> Result<Option<(T, Vec<TypeId>)>> {
        self.fresh.clear();
        let mut reader = Reader {
            input: Input::with_continuations(first, more),
            dec: self,
            depth: 0,
            needs_more: false,
        };
        let outcome = (|| {
            let id = reader.input.int()?;
            if id < 0 {
                return Err(Error::corrupt("type definition where a value was expected"));
            }
            let value = f(&mut reader, id)?;
            if !reader.input.is_empty() || reader.input.unread_segments() != 0 {
                return Err(Error::corrupt("extra data after a value"));
            }
            Ok(value)
        })();
        let needs_more = reader.needs_more;
        match outcome {
            Ok(v) => Ok(Some((v, std::mem::take(&mut self.fresh)))),
            Err(_) if needs_more => {
                for id in self.fresh.drain(..) {
                    self.types.remove(&id);
                }
                Ok(None)
            }
            Err(e) => {
                self.fresh.clear();
                Err(e)
            }
        }
    }
}

/// The read side handed to [`Gob::decode`]: the bytes of the value and the
/// stream's type registry.
pub struct Reader<'d, 'a> {
    pub input: Input<'a>,
    dec: &'d mut Decoder,
    depth: usize,
    needs_more: bool,
}

impl<'d, 'a> Reader<'d, 'a> {
    pub fn wire_type(&self, id: TypeId) -> Result<Arc<WireType>> {
        self.dec
            .types
            .get(&id)
            .cloned()
            .ok_or(Error::UnknownType(id))
    }

    /// Runs `f` one nesting level deeper, refusing runaway recursion.
    #[inline]
    pub fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= self.dec.limits.max_depth {
            return Err(Error::TooDeep(self.dec.limits.max_depth));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// Fails unless the wire type is the predefined `want`.
    #[inline]
    pub fn expect(&self, wire: TypeId, want: TypeId, rust: &str) -> Result<()> {
        if wire == want {
            Ok(())
        } else {
            Err(self.mismatch(wire, rust))
        }
    }

    pub fn mismatch(&self, wire: TypeId, rust: &str) -> Error {
        let wire_desc = match wire::builtin_name(wire) {
            Some(n) => n.to_owned(),
            None => match self.dec.types.get(&wire) {
                Some(w) => format!("{:?} {:?}", kind_name(w), w.name()),
                None => format!("undefined id {wire}"),
            },
        };
        Error::mismatch(format!("wire type {wire_desc} into Rust {rust}"))
    }

    /// Decodes a value as it stands at the top of a message or inside an
    /// interface: structs directly, everything else after a zero "singleton"
    /// field delta.
    pub fn top_level<T: GobDecode>(&mut self, wire: TypeId) -> Result<T> {
        let is_struct = matches!(
            self.dec.types.get(&wire).map(|w| &**w),
            Some(WireType::Struct { .. })
        );
        if !is_struct && self.input.uint()? != 0 {
            return Err(Error::corrupt("non-zero delta for a singleton value"));
        }
        T::decode(self, wire)
    }

    /// The generic counterpart of [`Reader::top_level`].
    pub fn top_level_value(&mut self, wire: TypeId) -> Result<Value> {
        self.top_level::<Value>(wire)
    }

    /// The field mapping from wire struct `wire` onto Rust struct `R` whose Go
    /// field names are `names`.
    pub fn struct_plan<R: 'static>(
        &mut self,
        wire: TypeId,
        names: &[&str],
        rust: &str,
    ) -> Result<Arc<StructPlan>> {
        let key = (wire, RustTypeId::of::<R>());
        if let Some(plan) = self.dec.plans.get(&key) {
            return Ok(plan.clone());
        }
        let wt = self.wire_type(wire)?;
        let WireType::Struct { fields, .. } = &*wt else {
            return Err(self.mismatch(wire, rust));
        };
        let mapped: Vec<(Option<u16>, TypeId)> = fields
            .iter()
            .map(|f| {
                (
                    names.iter().position(|n| *n == f.name).map(|i| i as u16),
                    f.id,
                )
            })
            .collect();
        if !fields.is_empty() && !names.is_empty() && mapped.iter().all(|(m, _)| m.is_none()) {
            return Err(Error::mismatch(format!(
                "no fields matched compiling decoder for {rust} from wire struct {:?}",
                wt.name()
            )));
        }
        let plan = Arc::new(StructPlan { fields: mapped });
        self.dec.plans.insert(key, plan.clone());
        Ok(plan)
    }

    /// Walks the fields of a struct value with `plan`, handing each field the
    /// Rust side knows to `on_field(index, wire type)` and skipping the rest.
    #[inline]
    pub fn struct_fields(
        &mut self,
        plan: &StructPlan,
        mut on_field: impl FnMut(&mut Self, u16, TypeId) -> Result<()>,
    ) -> Result<()> {
        self.nested(|r| {
            let mut field = -1i64;
            while let Some(delta) = r.input.struct_delta()? {
                field += delta as i64;
                let Some(&(ours, wire)) = plan.fields.get(field as usize) else {
                    return Err(Error::corrupt(format!("field number {field} out of range")));
                };
                match ours {
                    Some(i) => on_field(r, i, wire)?,
                    None => r.skip(wire)?,
                }
            }
            Ok(())
        })
    }

    /// Reads an interface value's header: `None` for a nil interface, else the
    /// registered name, the concrete type id and the value's byte count. The
    /// value follows and must be read with [`Reader::top_level`]. Decoding does
    /// not rely on the byte count (after a split message it only covers the
    /// first part; Go's decoder ignores it too); skipping uses it, as Go does.
    pub fn interface_header(&mut self) -> Result<Option<InterfaceHeader<'a>>> {
        let name = self.input.str()?;
        if name.is_empty() {
            return Ok(None);
        }
        let id = self.type_sequence()?;
        let len = self.input.uint()?;
        Ok(Some(InterfaceHeader { name, id, len }))
    }

    /// Type definitions may precede an interface's concrete id; each may end
    /// the message, in which case the value continues in the next one.
    fn type_sequence(&mut self) -> Result<TypeId> {
        loop {
            if self.input.is_empty() && !self.input.next_segment() {
                self.needs_more = true;
                return Err(Error::Truncated(
                    "interface value continues in a later message",
                ));
            }
            let id = self.input.int()?;
            if id >= 0 {
                return Ok(id);
            }
            let wt = WireType::decode(&mut self.input)?;
            self.dec.define(-id, wt)?;
            if !self.input.is_empty() {
                self.input.uint()?;
            }
        }
    }

    /// Skips a value of wire type `wire`, registering any type definitions
    /// carried inside interfaces (the peer will not send them again).
    pub fn skip(&mut self, wire: TypeId) -> Result<()> {
        match wire {
            wire::BOOL | wire::INT | wire::UINT | wire::FLOAT => self.input.uint().map(drop),
            wire::COMPLEX => {
                self.input.uint()?;
                self.input.uint().map(drop)
            }
            wire::BYTES | wire::STRING => self.input.bytes().map(drop),
            wire::INTERFACE => {
                if let Some(h) = self.interface_header()? {
                    if h.len > self.input.remaining() as u64 {
                        return Err(Error::Truncated(
                            "interface value length exceeds the message",
                        ));
                    }
                    self.input.take(h.len as usize)?;
                }
                Ok(())
            }
            _ => {
                let wt = self.wire_type(wire)?;
                self.nested(|r| match &*wt {
                    WireType::Struct { fields, .. } => {
                        let mut field = -1i64;
                        while let Some(delta) = r.input.struct_delta()? {
                            field += delta as i64;
                            let Some(f) = fields.get(field as usize) else {
                                return Err(Error::corrupt(format!(
                                    "field number {field} out of range"
                                )));
                            };
                            r.skip(f.id)?;
                        }
                        Ok(())
                    }
                    WireType::Slice { elem, .. } | WireType::Array { elem, .. } => {
                        let n = r.input.count()?;
                        for _ in 0..n {
                            r.skip(*elem)?;
                        }
                        Ok(())
                    }
                    WireType::Map { key, elem, .. } => {
                        let n = r.input.count()?;
                        for _ in 0..n {
                            r.skip(*key)?;
                            r.skip(*elem)?;
                        }
                        Ok(())
                    }
                    _ => r.input.bytes().map(drop),
                })
            }
        }
    }
}

/// The start of a non-nil interface value.
#[derive(Debug, Clone, Copy)]
pub struct InterfaceHeader<'a> {
    pub name: &'a str,
    pub id: TypeId,
    pub len: u64,
}

fn kind_name(w: &WireType) -> &'static str {
    match w {
        WireType::Array { .. } => "array",
        WireType::Slice { .. } => "slice",
        WireType::Struct { .. } => "struct",
        WireType::Map { .. } => "map",
        WireType::GobEncoder { .. } => "GobEncoder",
        WireType::BinaryMarshaler { .. } => "BinaryMarshaler",
        WireType::TextMarshaler { .. } => "TextMarshaler",
    }
}
