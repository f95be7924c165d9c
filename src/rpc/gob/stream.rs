//! Gob over a byte stream: length-prefixed messages, and the decode loop that
//! reads definitions, values and the continuation messages of split values.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

use super::decode::{Decoder, Reader};
use super::error::{Error, Result};
use super::value::Value;
use super::wire::{Input, TypeId};
use super::GobDecode;

/// Reads one message payload into `buf` (replacing its contents). `Ok(false)`
/// at a clean end of stream (between messages). The length is checked against
/// `limit` before any allocation, and the buffer grows only as bytes arrive.
pub async fn read_message<R: AsyncBufRead + Unpin>(
    r: &mut R,
    limit: usize,
    buf: &mut Vec<u8>,
) -> Result<bool> {
    buf.clear();
    let Some(len) = read_length(r).await? else {
        return Ok(false);
    };
    if len > limit as u64 {
        return Err(Error::MessageTooLarge { len, limit });
    }
    let len = len as usize;
    if len == 0 {
        return Ok(true);
    }
    // Most messages are already in the read buffer whole: one copy, no read loop.
    let buffered = r.fill_buf().await?;
    if buffered.len() >= len {
        buf.extend_from_slice(&buffered[..len]);
        r.consume(len);
        return Ok(true);
    }
    buf.reserve(len.min(64 << 10));
    let got = r.take(len as u64).read_to_end(buf).await?;
    if got < len {
        return Err(Error::Truncated("stream ended inside a message"));
    }
    Ok(true)
}

/// The message length prefix (gob's unsigned integer encoding); `None` at end of stream.
async fn read_length<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Option<u64>> {
    if let Some((len, used)) = parse_length(r.fill_buf().await?)? {
        r.consume(used);
        return Ok(Some(len));
    }
    // The prefix is split across reads, or the stream ended: byte by byte.
    let mut prefix = [0u8; 9];
    let mut have = 0;
    loop {
        if r.read(&mut prefix[have..=have]).await? == 0 {
            if have == 0 {
                return Ok(None);
            }
            return Err(Error::Truncated("stream ended inside a message length"));
        }
        have += 1;
        if let Some((len, _)) = parse_length(&prefix[..have])? {
            return Ok(Some(len));
        }
    }
}

/// The message length at the start of `buf` and the bytes it takes; `None` when `buf` ends
/// inside it.
fn parse_length(buf: &[u8]) -> Result<Option<(u64, usize)>> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first < 0x80 {
        return Ok(Some((u64::from(first), 1)));
    }
    let n = (first as i8).unsigned_abs() as usize;
    if n > 8 {
        return Err(Error::corrupt(format!("message length byte {first:#04x}")));
    }
    let Some(digits) = buf.get(1..=n) else {
        return Ok(None);
    };
    let mut be = [0u8; 8];
    be[8 - n..].copy_from_slice(digits);
    Ok(Some((u64::from_be_bytes(be), 1 + n)))
}

/// One decoded value and the types its messages defined (for dumps).
pub struct Decoded<T> {
    pub id: TypeId,
    pub value: T,
    /// Ids of type definitions received with this value, in order.
    pub defined: Vec<TypeId>,
}

/// The receiving side of one gob stream.
pub struct StreamDecoder<R> {
    reader: BufReader<R>,
    decoder: Decoder,
    /// The message being decoded, reused from value to value.
    message: Vec<u8>,
}

impl<R: AsyncRead + Unpin> StreamDecoder<R> {
    pub fn new(reader: R) -> Self {
        Self::with_decoder(reader, Decoder::default())
    }

    pub fn with_decoder(reader: R, decoder: Decoder) -> Self {
        StreamDecoder {
            reader: BufReader::new(reader),
            decoder,
            message: Vec::new(),
        }
    }

    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The underlying reader; bytes already buffered past the last value are lost.
    pub fn into_inner(self) -> R {
        self.reader.into_inner()
    }

    /// The next value as `T`; `Ok(None)` at a clean end of stream.
    pub async fn decode<T: GobDecode>(&mut self) -> Result<Option<T>> {
        Ok(self
            .next_with(|r, id| r.top_level::<T>(id))
            .await?
            .map(|d| d.value))
    }

    /// The next value, decoded generically.
    pub async fn decode_value(&mut self) -> Result<Option<Decoded<Value>>> {
        self.next_with(|r, id| r.top_level_value(id)).await
    }

    /// Reads past the next value, keeping the type definitions it carries.
    pub async fn skip(&mut self) -> Result<Option<()>> {
        Ok(self
            .next_with(|r, id| {
                let is_struct = matches!(
                    r.wire_type(id).as_deref(),
                    Ok(super::WireType::Struct { .. })
                );
                if !is_struct && r.input.uint()? != 0 {
                    return Err(Error::corrupt("non-zero delta for a singleton value"));
                }
                r.skip(id)
            })
            .await?
            .map(drop))
    }

    /// Reads messages up to and including the next value: definitions are
    /// registered on the way, and a value that continues in later messages
    /// is decoded again once they are here.
    pub async fn next_with<T>(
        &mut self,
        f: impl Fn(&mut Reader<'_, '_>, TypeId) -> Result<T>,
    ) -> Result<Option<Decoded<T>>> {
        if let Some(decoded) = self.next_buffered(&f)? {
            return Ok(Some(decoded));
        }
        let limit = self.decoder.limits().max_message;
        let mut defined = Vec::new();
        loop {
            if !read_message(&mut self.reader, limit, &mut self.message).await? {
                if defined.is_empty() {
                    return Ok(None);
                }
                return Err(Error::Truncated("stream ended after type definitions"));
            }
            if self.message.is_empty() {
                continue;
            }
            match self.decoder.definition(&self.message)? {
                Some(id) => defined.push(id),
                None => break,
            }
        }
        let mut more = Vec::new();
        loop {
            let mut id = 0;
            let attempt = self.decoder.value(&self.message, &more, |r, value_id| {
                id = value_id;
                f(r, value_id)
            })?;
            if let Some((value, inline)) = attempt {
                defined.extend(inline);
                return Ok(Some(Decoded { id, value, defined }));
            }
            let mut next = Vec::new();
            if !read_message(&mut self.reader, limit, &mut next).await? {
                return Err(Error::Truncated("stream ended inside a split value"));
            }
            more.push(next);
        }
    }

    /// The next value straight out of the read buffer when the buffer holds the value's whole
    /// message (the usual case once a stream's types are known): no copy and no await.
    /// `Ok(None)` leaves the stream untouched for the general path: a definition, a value
    /// that continues in later messages, a message not yet (or not wholly) buffered.
    fn next_buffered<T>(
        &mut self,
        f: &impl Fn(&mut Reader<'_, '_>, TypeId) -> Result<T>,
    ) -> Result<Option<Decoded<T>>> {
        let buffered = self.reader.buffer();
        let Ok(Some((len, prefix))) = parse_length(buffered) else {
            return Ok(None);
        };
        let Some(end) = usize::try_from(len)
            .ok()
            .filter(|&len| len > 0 && len <= self.decoder.limits().max_message)
            .and_then(|len| len.checked_add(prefix))
            .filter(|&end| end <= buffered.len())
        else {
            return Ok(None);
        };
        let message = &buffered[prefix..end];
        if !matches!(Input::new(message).int(), Ok(id) if id >= 0) {
            return Ok(None);
        }
        let mut id = 0;
        let outcome = self.decoder.value(message, &[], |r, value_id| {
            id = value_id;
            f(r, value_id)
        });
        let decoded = match outcome {
            Ok(None) => return Ok(None),
            Ok(Some((value, defined))) => Ok(Some(Decoded { id, value, defined })),
            // Consumed like a message the general path read: the caller decides what next.
            Err(e) => Err(e),
        };
        self.reader.consume(end);
        decoded
    }
}
