//! Go's `time.Time`, which gob sends through its GobEncode method.

use super::error::{Error, Result};
use super::wire::{TypeId, WireType};
use super::{GobDecode, GobEncode, Reader, Types, Writer};

/// Seconds from 0001-01-01 UTC (Go's internal epoch) to the Unix epoch.
const UNIX_TO_INTERNAL: i64 = 62_135_596_800;

/// A Go `time.Time` as its binary form carries it: an instant plus the zone
/// offset it was expressed in. The zero value is Go's zero time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GoTime {
    /// Seconds since 0001-01-01T00:00:00Z.
    pub seconds: i64,
    pub nanos: i32,
    /// Zone offset in minutes east of UTC, or -1 for UTC itself.
    pub offset_minutes: i16,
    /// Extra offset seconds (format version 2), for zones with second offsets.
    pub offset_seconds: i8,
}

impl GoTime {
    pub fn from_unix(secs: i64, nanos: i32) -> Self {
        GoTime {
            seconds: secs + UNIX_TO_INTERNAL,
            nanos,
            offset_minutes: -1,
            offset_seconds: 0,
        }
    }

    pub fn unix_seconds(&self) -> i64 {
        self.seconds - UNIX_TO_INTERNAL
    }

    pub fn is_zero(&self) -> bool {
        self.seconds == 0 && self.nanos == 0
    }

    /// Go's `Time.MarshalBinary` bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16);
        b.push(if self.offset_seconds != 0 { 2 } else { 1 });
        b.extend_from_slice(&self.seconds.to_be_bytes());
        b.extend_from_slice(&self.nanos.to_be_bytes());
        b.extend_from_slice(&self.offset_minutes.to_be_bytes());
        if self.offset_seconds != 0 {
            b.push(self.offset_seconds as u8);
        }
        b
    }

    /// Parses Go's `Time.MarshalBinary` bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        let bad = || Error::corrupt("time.Time: invalid binary form");
        let (&version, rest) = b.split_first().ok_or_else(bad)?;
        let want = match version {
            1 => 14,
            2 => 15,
            _ => return Err(bad()),
        };
        if rest.len() != want {
            return Err(bad());
        }
        let seconds = i64::from_be_bytes(rest[0..8].try_into().map_err(|_| bad())?);
        let nanos = i32::from_be_bytes(rest[8..12].try_into().map_err(|_| bad())?);
        let offset_minutes = i16::from_be_bytes(rest[12..14].try_into().map_err(|_| bad())?);
        let offset_seconds = if version == 2 { rest[14] as i8 } else { 0 };
        Ok(GoTime {
            seconds,
            nanos,
            offset_minutes,
            offset_seconds,
        })
    }
}

impl GobEncode for GoTime {
    fn define(types: &mut Types<'_>) -> TypeId {
        types.define::<Self>(|_| WireType::GobEncoder {
            name: "Time".into(),
        })
    }
    fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        w.bytes(&self.to_bytes());
        Ok(())
    }
    fn is_zero(&self) -> bool {
        GoTime::is_zero(self)
    }
}

impl GobDecode for GoTime {
    fn decode(r: &mut Reader<'_, '_>, wire: TypeId) -> Result<Self> {
        match r.wire_type(wire).as_deref() {
            Ok(WireType::GobEncoder { .. }) => GoTime::from_bytes(r.input.bytes()?),
            _ => Err(r.mismatch(wire, "GoTime")),
        }
    }
}
