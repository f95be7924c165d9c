//! The lease of one session, without I/O: its record in the plugin KV store, its timing, and
//! the one table that says what a node may write over what it reads.
//!
//! The record lives at [`key`]`(session)` as `{"node":"<id>","fence":<u64>,"expires_at":<unix
//! ms>}` and is only ever written by compare-and-set, never deleted: the fence must keep growing
//! across owners (the store refuses writes tagged with an older fence). `expires_at == 0` is a
//! released lease.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

/// The environment variable that sets the lease length in whole seconds (tests, operators).
pub(crate) const LEASE_SECONDS_ENV: &str = "MM_CLAUDE_CODE_LEASE_SECONDS";

/// The KV key of a session's lease.
pub(crate) fn key(session: &str) -> String {
    format!("lease_{session}")
}

/// A lease as stored. Unknown fields are ignored when reading (a newer plugin may add some).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct LeaseRecord {
    pub node: String,
    pub fence: u64,
    /// Unix time in ms after which (plus [`LeaseTiming::skew`]) anyone may take the lease;
    /// 0 when released.
    pub expires_at: u64,
}

/// A KV value that is not a lease record.
#[derive(Debug, thiserror::Error)]
#[error("the lease record ({len} bytes) cannot be read: {source}")]
pub struct RecordError {
    len: usize,
    #[source]
    source: serde_json::Error,
}

impl LeaseRecord {
    pub(crate) fn decode(bytes: &[u8]) -> Result<LeaseRecord, RecordError> {
        serde_json::from_slice(bytes).map_err(|source| RecordError {
            len: bytes.len(),
            source,
        })
    }

    /// The stored bytes, fields in a fixed order. Compare-and-set compares bytes, so a record is
    /// always written by this one function.
    pub(crate) fn encode(&self) -> Vec<u8> {
        format!(
            r#"{{"node":{},"fence":{},"expires_at":{}}}"#,
            serde_json::Value::from(self.node.as_str()),
            self.fence,
            self.expires_at
        )
        .into_bytes()
    }

    /// The same hold (node, fence) running until `now_ms + lease`.
    pub(crate) fn renewed(&self, now_ms: u64, timing: &LeaseTiming) -> LeaseRecord {
        LeaseRecord {
            expires_at: now_ms.saturating_add(millis(timing.lease)),
            ..self.clone()
        }
    }

    /// The same hold given up: anyone may take it at once, with the next fence.
    pub(crate) fn released(&self) -> LeaseRecord {
        LeaseRecord {
            expires_at: 0,
            ..self.clone()
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How long a lease lasts and how its holder and the others keep clear of its end.
///
/// The holder renews every `renew` and stops acting `margin` before the lease's end by its own
/// monotonic clock (`valid_until = sent + lease - margin`, from when the renewing write was
/// sent); another node takes it only `skew` after `expires_at` by its wall clock. So two nodes
/// never both act as long as their wall clocks differ by less than `margin + skew`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeaseTiming {
    pub lease: Duration,
    pub renew: Duration,
    pub margin: Duration,
    pub skew: Duration,
}

/// A lease length the environment asks for that the plugin does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{LEASE_SECONDS_ENV}={value:?} is not a whole number of seconds from 6 to 600; using the default lease of 30 s")]
pub(crate) struct TimingError {
    value: String,
}

impl Default for LeaseTiming {
    /// 30 s leases renewed every 10 s, a 5 s margin and 2 s of clock skew.
    fn default() -> Self {
        LeaseTiming::for_lease(Duration::from_secs(30))
    }
}

impl LeaseTiming {
    /// Renew three times per lease (two renewals may fail before the hold ends), margin a sixth.
    pub(crate) fn for_lease(lease: Duration) -> LeaseTiming {
        LeaseTiming {
            lease,
            renew: lease / 3,
            margin: lease / 6,
            skew: Duration::from_secs(2),
        }
    }

    /// From [`LEASE_SECONDS_ENV`]; unset is the default, an invalid value the default with a
    /// warning (a typo must not stop the plugin).
    pub(crate) fn from_env() -> LeaseTiming {
        match LeaseTiming::from_setting(std::env::var(LEASE_SECONDS_ENV).ok().as_deref()) {
            Ok(timing) => timing,
            Err(e) => {
                tracing::warn!("{e}");
                LeaseTiming::default()
            }
        }
    }

    pub(crate) fn from_setting(value: Option<&str>) -> Result<LeaseTiming, TimingError> {
        let Some(value) = value else {
            return Ok(LeaseTiming::default());
        };
        match value.trim().parse::<u64>() {
            Ok(seconds @ 6..=600) => Ok(LeaseTiming::for_lease(Duration::from_secs(seconds))),
            _ => Err(TimingError {
                value: value.to_owned(),
            }),
        }
    }

    /// How long after sending a write that succeeded the holder may act.
    pub(crate) fn valid_for(&self) -> Duration {
        self.lease.saturating_sub(self.margin)
    }
}

/// Who a lease's KV value says holds it, when that is not us.
#[derive(Debug, Clone)]
pub(crate) enum Holder {
    /// No value (the key was deleted).
    Nobody,
    Node {
        node: String,
        fence: u64,
    },
    /// A value that is not a record.
    Unreadable(Arc<RecordError>),
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Nobody => f.write_str("nobody (the lease record is gone)"),
            Holder::Node { node, fence } => write!(f, "node {node} (fence {fence})"),
            Holder::Unreadable(e) => write!(f, "an unknown holder: {e}"),
        }
    }
}

/// What was there before a lease was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Previous {
    /// No lease had ever been written.
    New,
    /// `node` gave it up cleanly.
    Released { node: String },
    /// `node`'s lease ran out: `node` stopped (or could not reach the KV store) without
    /// releasing. A takeover.
    Expired { node: String },
    /// An unexpired lease of this node: a previous process on this node, or this process after
    /// it lost its hold locally. Taken with the next fence all the same, so that the store
    /// fences out whatever that earlier hold still writes.
    Mine,
    /// This process holds it already (no KV call was made, the fence is unchanged).
    Held,
}

/// What a node that does not hold the lease may do, given the KV value.
#[derive(Debug, Clone)]
pub(crate) enum Decision {
    /// Write `record` (the next fence) over the value read.
    Take {
        record: LeaseRecord,
        previous: Previous,
    },
    /// Someone else's: leave it.
    Refuse { holder: Refusal },
}

/// Why a lease cannot be taken.
#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    /// `node` holds it and its lease has not run out.
    Node { node: String, fence: u64 },
    /// The value is not a record (a newer plugin's format, or damage): never overwritten,
    /// since its holder, if any, cannot be known. It stays refused until someone rewrites
    /// the key; the keeper logs it at every attempt.
    Unreadable(Arc<RecordError>),
}

/// What the holder of a lease does, given the KV value read after its renewal was refused.
#[derive(Debug, Clone)]
pub(crate) enum Renewal {
    /// Ours and unchanged: write it again with a new expiry (same node and fence).
    Renew,
    /// The value is no longer what we wrote: someone took the lease.
    Lost { holder: Holder },
}

// The lease table. `current` is the KV value (None = absent), `ours` the bytes this process
// last wrote for the key while it holds the lease, `me` this node.
//
// | who asks        | current                          | decision                          |
// |-----------------|----------------------------------|-----------------------------------|
// | holder (ours)   | == ours                          | Renew (same fence)                |
// | holder (ours)   | anything else                    | Lost (holder of current)          |
// | anyone else     | absent                           | Take fence 1, New                 |
// | anyone else     | not a record                     | Refuse (Unreadable)               |
// | anyone else     | `expires_at == 0`                | Take fence + 1, Released          |
// | anyone else     | `expires_at + skew <= now`       | Take fence + 1, Expired           |
// | anyone else     | unexpired, `node == me`          | Take fence + 1, Mine              |
// | anyone else     | unexpired, another node          | Refuse (that node)                |
//
// Every Take writes a fence greater than any fence written before for the key, since the record
// is never deleted and Take reads it. `Mine` takes a new fence rather than keeping the old one: a
// holder that lost its hold locally, or a previous process of this node, may still have writes in
// flight, and only a greater fence lets the store refuse them.

/// The table's rows for a node that does not hold the lease (see the table above).
pub(crate) fn decide(
    current: Option<&[u8]>,
    me: &str,
    now_ms: u64,
    timing: &LeaseTiming,
) -> Decision {
    let take = |fence: u64, previous| Decision::Take {
        record: LeaseRecord {
            node: me.to_owned(),
            fence,
            expires_at: now_ms.saturating_add(millis(timing.lease)),
        },
        previous,
    };
    match current.map(LeaseRecord::decode) {
        None => take(1, Previous::New),
        Some(Err(e)) => Decision::Refuse {
            holder: Refusal::Unreadable(Arc::new(e)),
        },
        Some(Ok(r)) if r.expires_at == 0 => take(r.fence + 1, Previous::Released { node: r.node }),
        Some(Ok(r)) if r.expires_at.saturating_add(millis(timing.skew)) <= now_ms => {
            take(r.fence + 1, Previous::Expired { node: r.node })
        }
        Some(Ok(r)) if same_server(&r.node, me) => take(r.fence + 1, Previous::Mine),
        Some(Ok(r)) => Decision::Refuse {
            holder: Refusal::Node {
                node: r.node,
                fence: r.fence,
            },
        },
    }
}

/// Whether a lease written by `holder` was written by this node: the same id, or, on a server
/// that is not clustered, any earlier process of it (each makes up its own `solo-` id, and
/// there is no other node there: a restart must not wait for its own leases to run out).
fn same_server(holder: &str, me: &str) -> bool {
    let solo = |id: &str| id.starts_with(super::node::SOLO_PREFIX);
    holder == me || (solo(holder) && solo(me))
}

/// The table's rows for the holder, who last wrote `ours` (see the table above).
pub(crate) fn decide_renewal(current: Option<&[u8]>, ours: &[u8]) -> Renewal {
    let record = current.map(LeaseRecord::decode);
    match (current, record) {
        (Some(bytes), Some(Ok(_))) if bytes == ours => Renewal::Renew,
        (_, record) => Renewal::Lost {
            holder: holder(record),
        },
    }
}

fn holder(record: Option<Result<LeaseRecord, RecordError>>) -> Holder {
    match record {
        None => Holder::Nobody,
        Some(Ok(r)) => Holder::Node {
            node: r.node,
            fence: r.fence,
        },
        Some(Err(e)) => Holder::Unreadable(Arc::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;
    const ME: &str = "node-a";

    fn timing() -> LeaseTiming {
        LeaseTiming::default()
    }

    fn rec(node: &str, fence: u64, expires_at: u64) -> Vec<u8> {
        LeaseRecord {
            node: node.into(),
            fence,
            expires_at,
        }
        .encode()
    }

    /// The record a Take or Renew must write: `node` with `fence`, expiring a lease from now.
    fn written(node: &str, fence: u64) -> LeaseRecord {
        LeaseRecord {
            node: node.into(),
            fence,
            expires_at: NOW + 30_000,
        }
    }

    fn decide_now(current: Option<&[u8]>) -> Decision {
        decide(current, ME, NOW, &timing())
    }

    fn renewal_now(current: Option<&[u8]>, ours: &[u8]) -> Renewal {
        decide_renewal(current, ours)
    }

    fn assert_take(d: Decision, fence: u64, previous: Previous) {
        match d {
            Decision::Take {
                record,
                previous: p,
            } => {
                assert_eq!(record, written(ME, fence));
                assert_eq!(p, previous);
            }
            other => panic!("expected Take, got {other:?}"),
        }
    }

    #[test]
    fn the_record_is_the_contracts_json_and_reads_back() {
        let r = LeaseRecord {
            node: "node \"a\"".into(),
            fence: 7,
            expires_at: NOW,
        };
        assert_eq!(
            String::from_utf8(r.encode()).unwrap(),
            r#"{"node":"node \"a\"","fence":7,"expires_at":1700000000000}"#
        );
        assert_eq!(LeaseRecord::decode(&r.encode()).unwrap(), r);
        // A newer plugin's extra field is ignored.
        assert_eq!(
            LeaseRecord::decode(br#"{"node":"b","fence":2,"expires_at":5,"epoch":9}"#).unwrap(),
            LeaseRecord {
                node: "b".into(),
                fence: 2,
                expires_at: 5
            }
        );
        for garbled in [
            &b"not json"[..],
            br#"{"node":"b","fence":2}"#,
            br#"{"node":"b","fence":-1,"expires_at":5}"#,
            br#"{"node":2,"fence":2,"expires_at":5}"#,
        ] {
            let e = LeaseRecord::decode(garbled).unwrap_err();
            assert!(e.to_string().contains("cannot be read"), "{e}");
        }
    }

    #[test]
    fn row_ours_unchanged_renews_with_the_same_fence() {
        let ours = rec(ME, 4, NOW - 5_000);
        match renewal_now(Some(&ours), &ours) {
            Renewal::Renew => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn row_ours_changed_is_lost_to_whoever_wrote() {
        let ours = rec(ME, 4, NOW + 5_000);
        match renewal_now(Some(&rec("node-b", 5, NOW + 30_000)), &ours) {
            Renewal::Lost {
                holder: Holder::Node { node, fence },
            } => assert_eq!((node.as_str(), fence), ("node-b", 5)),
            other => panic!("{other:?}"),
        }
        // Our own node and fence with another expiry is another writer too (another process).
        assert!(matches!(
            renewal_now(Some(&rec(ME, 4, NOW + 6_000)), &ours),
            Renewal::Lost {
                holder: Holder::Node { .. }
            }
        ));
        assert!(matches!(
            renewal_now(None, &ours),
            Renewal::Lost {
                holder: Holder::Nobody
            }
        ));
        assert!(matches!(
            renewal_now(Some(b"garbage"), &ours),
            Renewal::Lost {
                holder: Holder::Unreadable(_)
            }
        ));
    }

    #[test]
    fn row_absent_takes_fence_one() {
        assert_take(decide_now(None), 1, Previous::New);
    }

    #[test]
    fn row_unreadable_is_refused() {
        match decide_now(Some(b"{\"node\":")) {
            Decision::Refuse {
                holder: Refusal::Unreadable(e),
            } => assert!(e.to_string().contains("8 bytes"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn row_released_takes_the_next_fence() {
        assert_take(
            decide_now(Some(&rec("node-b", 6, 0))),
            7,
            Previous::Released {
                node: "node-b".into(),
            },
        );
    }

    #[test]
    fn row_expired_takes_the_next_fence_only_after_the_skew() {
        // expires_at + skew == now: expired.
        assert_take(
            decide_now(Some(&rec("node-b", 6, NOW - 2_000))),
            7,
            Previous::Expired {
                node: "node-b".into(),
            },
        );
        // One ms earlier it is still node-b's.
        assert!(matches!(
            decide_now(Some(&rec("node-b", 6, NOW - 1_999))),
            Decision::Refuse {
                holder: Refusal::Node { .. }
            }
        ));
    }

    #[test]
    fn row_mine_unexpired_takes_the_next_fence() {
        assert_take(
            decide_now(Some(&rec(ME, 3, NOW + 20_000))),
            4,
            Previous::Mine,
        );
    }

    /// On a server that is not clustered every `solo-` id is an earlier process of this one:
    /// a restart takes its leases at once. A cluster node never takes a solo lease early, nor a
    /// solo node a cluster node's.
    #[test]
    fn row_an_earlier_solo_process_is_mine_on_a_single_server() {
        let decide_as = |me: &str, holder: &str| {
            decide(
                Some(&rec(holder, 3, NOW + 20_000)),
                me,
                NOW,
                &LeaseTiming::default(),
            )
        };
        match decide_as("solo-bbbb", "solo-aaaa") {
            Decision::Take { record, previous } => {
                assert_eq!((record.node.as_str(), record.fence), ("solo-bbbb", 4));
                assert_eq!(previous, Previous::Mine);
            }
            other => panic!("expected Take, got {other:?}"),
        }
        for (me, holder) in [("node-a", "solo-aaaa"), ("solo-bbbb", "node-a")] {
            assert!(
                matches!(decide_as(me, holder), Decision::Refuse { .. }),
                "{me} over {holder}"
            );
        }
    }

    #[test]
    fn row_another_nodes_unexpired_lease_is_refused() {
        match decide_now(Some(&rec("node-b", 3, NOW + 20_000))) {
            Decision::Refuse {
                holder: Refusal::Node { node, fence },
            } => assert_eq!((node.as_str(), fence), ("node-b", 3)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timing_defaults_and_environment() {
        let d = LeaseTiming::default();
        assert_eq!(
            (d.lease, d.renew, d.margin, d.skew),
            (
                Duration::from_secs(30),
                Duration::from_secs(10),
                Duration::from_secs(5),
                Duration::from_secs(2)
            )
        );
        assert_eq!(d.valid_for(), Duration::from_secs(25));
        assert_eq!(LeaseTiming::from_setting(None), Ok(d));
        let six = LeaseTiming::from_setting(Some("6")).unwrap();
        assert_eq!(
            (six.lease, six.renew, six.margin, six.skew),
            (
                Duration::from_secs(6),
                Duration::from_secs(2),
                Duration::from_secs(1),
                Duration::from_secs(2)
            )
        );
        assert_eq!(
            LeaseTiming::from_setting(Some(" 600 ")).unwrap().lease,
            Duration::from_secs(600)
        );
        for bad in ["5", "601", "", "ten", "-30", "30s", "1e2"] {
            let e = LeaseTiming::from_setting(Some(bad)).unwrap_err();
            assert!(e.to_string().contains(LEASE_SECONDS_ENV), "{e}");
        }
    }
}
