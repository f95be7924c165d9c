//! The keeper under tokio's paused clock, with nodes sharing an in-memory KV store whose
//! answers each node's test can make fail, hang, or get lost after the write landed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc::error::TryRecvError;

use super::*;

const BASE_MS: u64 = 1_700_000_000_000;
const SESSION: &str = "s1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Ok,
    /// Calls fail without touching the store.
    Fail,
    /// Calls wait until the mode changes, then act on the store as it is then.
    Hang,
    /// Calls act on the store, then fail (the answer was lost).
    LoseAnswer,
}

/// The KV store all nodes share.
#[derive(Default)]
struct Store {
    values: Mutex<HashMap<String, Vec<u8>>>,
}

impl Store {
    fn value(&self, session: &str) -> Option<Vec<u8>> {
        self.values
            .lock()
            .unwrap()
            .get(&lease::key(session))
            .cloned()
    }

    fn record(&self, session: &str) -> Option<LeaseRecord> {
        self.value(session)
            .map(|v| LeaseRecord::decode(&v).unwrap())
    }

    fn overwrite(&self, session: &str, record: &LeaseRecord) {
        self.values
            .lock()
            .unwrap()
            .insert(lease::key(session), record.encode());
    }
}

/// One node's connection to the store.
struct MemKv {
    store: Arc<Store>,
    mode: watch::Sender<Mode>,
}

impl MemKv {
    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Lets other tasks run first (so that concurrent calls interleave), then waits while hung.
    async fn gate(&self) -> Result<Mode, ApiError> {
        tokio::task::yield_now().await;
        let mode = *self
            .mode
            .subscribe()
            .wait_for(|m| *m != Mode::Hang)
            .await
            .unwrap();
        match mode {
            Mode::Fail => Err(down()),
            mode => Ok(mode),
        }
    }
}

fn down() -> ApiError {
    ApiError::Error("kv down".into())
}

fn answer<T>(mode: Mode, value: T) -> Result<T, ApiError> {
    match mode {
        Mode::LoseAnswer => Err(down()),
        _ => Ok(value),
    }
}

impl LeaseKv for MemKv {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let mode = self.gate().await?;
            let value = self.store.values.lock().unwrap().get(key).cloned();
            answer(mode, value)
        })
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        old: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> KvFuture<'a, bool> {
        Box::pin(async move {
            let mode = self.gate().await?;
            let mut values = self.store.values.lock().unwrap();
            let set = values.get(key) == old.as_ref();
            if set {
                values.insert(key.to_owned(), new);
            }
            answer(mode, set)
        })
    }
}

struct Node {
    kv: Arc<MemKv>,
    leases: Arc<Leases>,
    lost: mpsc::UnboundedReceiver<Lost>,
    renewals: Option<JoinHandle<()>>,
}

impl Node {
    fn new(store: &Arc<Store>, id: &str, wall: &WallClock) -> Node {
        let kv = Arc::new(MemKv {
            store: store.clone(),
            mode: watch::channel(Mode::Ok).0,
        });
        let leases = Leases::with_clock(
            kv.clone(),
            NodeId {
                id: id.into(),
                clustered: true,
            },
            LeaseTiming::default(),
            wall.clone(),
        );
        let lost = leases.take_lost().unwrap();
        Node {
            kv,
            leases,
            lost,
            renewals: None,
        }
    }

    fn renewing(mut self) -> Node {
        self.renewals = self.leases.spawn_renewals();
        self
    }

    fn no_loss(&mut self) {
        assert!(
            matches!(self.lost.try_recv(), Err(TryRecvError::Empty)),
            "a loss was reported"
        );
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(task) = &self.renewals {
            task.abort();
        }
    }
}

/// Unix ms moving with tokio's (paused) clock.
fn wall() -> WallClock {
    let start = Instant::now();
    Arc::new(move || BASE_MS + u64::try_from(start.elapsed().as_millis()).unwrap())
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// Lets every task that can run, run (the clock does not move).
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn renewals_keep_a_lease_across_many_periods_with_one_call_each() {
    let (store, wall) = (Arc::new(Store::default()), wall());
    let mut a = Node::new(&store, "node-a", &wall).renewing();
    let start = Instant::now();
    let got = a.leases.acquire(SESSION).await.unwrap();
    assert_eq!(
        got,
        Acquired {
            fence: 1,
            previous: Previous::New
        }
    );
    assert_eq!(a.leases.kv_calls(), 2, "a read and a write");
    let deadline = a.leases.deadline(SESSION);
    assert_eq!(*deadline.borrow(), Some((start + secs(25)).into_std()));

    // Ten periods and a half: ten renewals, one write each.
    tokio::time::sleep(secs(105)).await;
    assert_eq!(a.leases.holds(SESSION), Some(1));
    assert_eq!(a.leases.kv_calls(), 12);
    let last_renewal = start + secs(100);
    assert_eq!(
        *deadline.borrow(),
        Some((last_renewal + secs(25)).into_std())
    );
    assert_eq!(
        store.record(SESSION),
        Some(LeaseRecord {
            node: "node-a".into(),
            fence: 1,
            expires_at: BASE_MS + 130_000
        })
    );
    // Asking again and asking who owns it cost nothing while held.
    assert_eq!(
        a.leases.acquire(SESSION).await.unwrap(),
        Acquired {
            fence: 1,
            previous: Previous::Held
        }
    );
    assert_eq!(
        a.leases.owner(SESSION).await.unwrap(),
        Owner::Me { fence: 1 }
    );
    assert_eq!(a.leases.kv_calls(), 12);
    a.no_loss();
}

#[tokio::test(start_paused = true)]
async fn another_node_cannot_acquire_while_the_holder_renews() {
    let (store, wall) = (Arc::new(Store::default()), wall());
    let mut a = Node::new(&store, "node-a", &wall).renewing();
    let b = Node::new(&store, "node-b", &wall).renewing();
    a.leases.acquire(SESSION).await.unwrap();
    for _ in 0..12 {
        tokio::time::sleep(secs(7)).await;
        match b.leases.acquire(SESSION).await {
            Err(LeaseError::Held { node, fence }) => {
                assert_eq!((node.as_str(), fence), ("node-a", 1))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            b.leases.owner(SESSION).await.unwrap(),
            Owner::Node {
                node: "node-a".into(),
                fence: 1
            }
        );
        assert_eq!(b.leases.holds(SESSION), None);
    }
    assert_eq!(a.leases.holds(SESSION), Some(1));
    a.no_loss();
}

#[tokio::test(start_paused = true)]
async fn holds_is_false_from_valid_until_without_any_task_running() {
    let (store, wall) = (Arc::new(Store::default()), wall());
    // No renewal loop: nothing runs but the test.
    let mut a = Node::new(&store, "node-a", &wall);
    a.leases.acquire(SESSION).await.unwrap();
    tokio::time::advance(secs(25) - ms(1)).await;
    assert_eq!(a.leases.holds(SESSION), Some(1));
    tokio::time::advance(ms(1)).await;
    assert_eq!(a.leases.holds(SESSION), None);
    // The loss is reported by the next call that looks (here the owner query).
    a.no_loss();
    assert_eq!(
        a.leases.owner(SESSION).await.unwrap(),
        Owner::Free {
            previous: Previous::Mine
        }
    );
    let lost = a.lost.try_recv().unwrap();
    assert!(matches!(lost.why, LostWhy::Expired), "{lost:?}");
    assert_eq!(*a.leases.deadline(SESSION).borrow(), None);
}

/// A's KV calls hang: A stops at valid_until (not before, and without waiting for its hung
/// renewal), B takes over only after expires_at + skew with the next fence, and A's renewal,
/// when it finally reaches the store, overwrites nothing and reports nothing more.
#[tokio::test(start_paused = true)]
async fn a_holder_whose_kv_hangs_loses_at_valid_until_and_another_takes_after_expiry() {
    let (store, wall) = (Arc::new(Store::default()), wall());
    let mut a = Node::new(&store, "node-a", &wall).renewing();
    let b = Node::new(&store, "node-b", &wall).renewing();
    let start = Instant::now();
    a.leases.acquire(SESSION).await.unwrap();
    let deadline = a.leases.deadline(SESSION);
    a.kv.set(Mode::Hang);

    tokio::time::sleep_until(start + secs(25) - ms(1)).await;
    settle().await;
    assert_eq!(a.leases.holds(SESSION), Some(1));
    a.no_loss();
    assert_eq!(*deadline.borrow(), Some((start + secs(25)).into_std()));

    tokio::time::sleep_until(start + secs(25)).await;
    assert_eq!(a.leases.holds(SESSION), None);
    settle().await;
    let lost = a.lost.try_recv().unwrap();
    assert_eq!((lost.session.as_str(), lost.fence), (SESSION, 1));
    assert!(matches!(lost.why, LostWhy::Expired), "{lost:?}");
    assert_eq!(*deadline.borrow(), None);

    // expires_at = start + 30 s; + 2 s of skew.
    tokio::time::sleep_until(start + secs(32) - ms(1)).await;
    assert!(matches!(
        b.leases.acquire(SESSION).await,
        Err(LeaseError::Held { .. })
    ));
    tokio::time::sleep_until(start + secs(32)).await;
    assert_eq!(
        b.leases.acquire(SESSION).await.unwrap(),
        Acquired {
            fence: 2,
            previous: Previous::Expired {
                node: "node-a".into()
            }
        }
    );
    let b_value = store.value(SESSION);

    a.kv.set(Mode::Ok);
    settle().await;
    assert_eq!(
        store.value(SESSION),
        b_value,
        "A's stale renewal overwrote B"
    );
    a.no_loss();
    tokio::time::sleep(secs(40)).await;
    assert_eq!(b.leases.holds(SESSION), Some(2));
    assert_eq!(a.leases.holds(SESSION), None);
    a.no_loss();
}

/// The store says someone else holds the lease (taken under a clock skew, or by hand): A's
/// next renewal is refused, A reports the loss once, and the other value stays.
#[tokio::test(start_paused = true)]
async fn a_renewal_refused_by_another_holder_is_lost_and_overwrites_nothing() {
    let (store, wall) = (Arc::new(Store::default()), wall());
    let mut a = Node::new(&store, "node-a", &wall).renewing();
    a.leases.acquire(SESSION).await.unwrap();
    let deadline = a.leases.deadline(SESSION);
    tokio::time::sleep(secs(3)).await;
    let b_record = LeaseRecord {
        node: "node-b".into(),
        fence: 2,
        expires_at: wall() + 30_000,
    };
    store.overwrite(SESSION, &b_record);
    // Until its next renewal A cannot know.
    assert_eq!(a.leases.holds(SESSION), Some(1));
    tokio::time::sleep(secs(8)).await;
    assert_eq!(a.leases.holds(SESSION), None);
    let lost = a.lost.try_recv().unwrap();
    match lost.why {
        LostWhy::Taken {
            holder: Holder::Node { node, fence },
        } => assert_eq!((node.as_str(), fence), ("node-b", 2)),
        other => panic!("{other:?}"),
    }
    assert_eq!(*deadline.borrow(), None);
    assert_eq!(store.record(SESSION), Some(b_record));
    tokio::time::sleep(secs(60)).await;
    a.no_loss();
    // renew (refused) + read.
    assert_eq!(a.leases.kv_calls(), 2 + 2);
}

/// A renewal that landed but whose answer was lost is read back as ours, not as a loss.
#[tokio::test(start_paused = true)]
async fn a_renewal_whose_answer_was_lost_is_read_back_as_ours() {
    let (store, wall) = (Arc::new(Store::default()), wall());
    let mut a = Node::new(&store, "node-a", &wall).renewing();
    let start = Instant::now();
    a.leases.acquire(SESSION).await.unwrap();
    a.kv.set(Mode::LoseAnswer);
    tokio::time::sleep(secs(15)).await;
    assert_eq!(store.record(SESSION).unwrap().expires_at, BASE_MS + 40_000);
    a.kv.set(Mode::Ok);
    tokio::time::sleep(secs(10)).await;
    assert_eq!(a.leases.holds(SESSION), Some(1));
    assert_eq!(store.record(SESSION).unwrap().expires_at, BASE_MS + 50_000);
    assert_eq!(
        *a.leases.deadline(SESSION).borrow(),
        Some((start + secs(20) + secs(25)).into_std())
    );
    // acquire 2; the lost answer 1; then a refused renewal, the read-back, the renewal.
    assert_eq!(a.leases.kv_calls(), 2 + 1 + 3);
    a.no_loss();
}

#[tokio::test(start_paused = true)]
async fn concurrent_acquires_have_exactly_one_winner() {
    let (store, wall) = (Arc::new(Store::default()), wall());
    let nodes: Vec<Node> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|id| Node::new(&store, id, &wall))
        .collect();
    for i in 0..20 {
        let session = format!("s{i}");
        let (x, y, z) = tokio::join!(
            nodes[0].leases.acquire(&session),
            nodes[1].leases.acquire(&session),
            nodes[2].leases.acquire(&session),
        );
        let wins: Vec<_> = [x, y, z].into_iter().filter_map(Result::ok).collect();
        assert_eq!(
            wins,
            vec![Acquired {
                fence: 1,
                previous: Previous::New
            }]
        );
        let holders = nodes.iter().filter(|n| n.leases.holds(&session).is_some());
        assert_eq!(holders.count(), 1);
    }
    // Within one process, concurrent acquires share one: one KV round trip, one fence.
    let a = &nodes[0];
    let before = a.leases.kv_calls();
    let (x, y) = tokio::join!(a.leases.acquire("solo"), a.leases.acquire("solo"));
    let mut got = vec![x.unwrap(), y.unwrap()];
    got.sort_by_key(|g| g.previous != Previous::New);
    assert_eq!(
        got,
        vec![
            Acquired {
                fence: 1,
                previous: Previous::New
            },
            Acquired {
                fence: 1,
                previous: Previous::Held
            }
        ]
    );
    assert_eq!(a.leases.kv_calls() - before, 2);
}

#[tokio::test(start_paused = true)]
async fn a_released_lease_is_taken_at_once_with_the_next_fence() {
    let (store, wall) = (Arc::new(Store::default()), wall());
    let mut a = Node::new(&store, "node-a", &wall).renewing();
    let b = Node::new(&store, "node-b", &wall).renewing();
    a.leases.acquire(SESSION).await.unwrap();
    tokio::time::sleep(secs(12)).await;
    let deadline = a.leases.deadline(SESSION);
    a.leases.release(SESSION).await;
    assert_eq!(a.leases.holds(SESSION), None);
    assert_eq!(*deadline.borrow(), None);
    assert_eq!(
        store.record(SESSION),
        Some(LeaseRecord {
            node: "node-a".into(),
            fence: 1,
            expires_at: 0
        })
    );
    assert_eq!(
        b.leases.acquire(SESSION).await.unwrap(),
        Acquired {
            fence: 2,
            previous: Previous::Released {
                node: "node-a".into()
            }
        }
    );
    tokio::time::sleep(secs(60)).await;
    a.no_loss();
    // The releaser asks and is sent to B.
    assert_eq!(
        a.leases.owner(SESSION).await.unwrap(),
        Owner::Node {
            node: "node-b".into(),
            fence: 2
        }
    );
}

/// The same node id in a new process (a plugin restart on a cluster node) takes its old,
/// unexpired lease at once, with the next fence.
#[tokio::test(start_paused = true)]
async fn a_new_process_of_the_same_node_takes_its_lease_with_the_next_fence() {
    let (store, wall) = (Arc::new(Store::default()), wall());
    let old = Node::new(&store, "node-a", &wall);
    old.leases.acquire(SESSION).await.unwrap();
    drop(old);
    let new = Node::new(&store, "node-a", &wall);
    assert_eq!(
        new.leases.owner(SESSION).await.unwrap(),
        Owner::Free {
            previous: Previous::Mine
        }
    );
    assert_eq!(
        new.leases.acquire(SESSION).await.unwrap(),
        Acquired {
            fence: 2,
            previous: Previous::Mine
        }
    );
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_lease_is_never_taken() {
    let (store, wall) = (Arc::new(Store::default()), wall());
    let a = Node::new(&store, "node-a", &wall);
    store
        .values
        .lock()
        .unwrap()
        .insert(lease::key(SESSION), b"v2:node-b:9".to_vec());
    for _ in 0..3 {
        assert!(matches!(
            a.leases.acquire(SESSION).await,
            Err(LeaseError::Unreadable(_))
        ));
        assert!(matches!(
            a.leases.owner(SESSION).await,
            Err(LeaseError::Unreadable(_))
        ));
        tokio::time::sleep(secs(3600)).await;
    }
    assert_eq!(store.value(SESSION).unwrap(), b"v2:node-b:9");
}

/// A small xorshift: the interleavings are random but the same at every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Three nodes acquire, release, fail, hang, lose answers and wait at random: the stored
/// fence never goes down, no fence is granted twice, and at no moment do two nodes hold a
/// session.
#[tokio::test(start_paused = true)]
async fn the_fence_never_decreases_and_one_node_holds_over_random_interleavings() {
    const SESSIONS: [&str; 2] = ["s1", "s2"];
    let mut takeovers = 0;
    for seed in 1..=100u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (store, wall) = (Arc::new(Store::default()), wall());
        let nodes: Vec<Node> = ["node-a", "node-b", "node-c"]
            .iter()
            .map(|id| Node::new(&store, id, &wall).renewing())
            .collect();
        let granted = Arc::new(Mutex::new(Vec::<(String, u64)>::new()));
        let mut stored_max: HashMap<&str, u64> = HashMap::new();
        for _step in 0..40 {
            let node = &nodes[rng.below(3) as usize];
            let session = SESSIONS[rng.below(2) as usize];
            match rng.below(8) {
                0..=2 => {
                    let (leases, granted) = (node.leases.clone(), granted.clone());
                    tokio::spawn(async move {
                        if let Ok(got) = leases.acquire(session).await {
                            if got.previous != Previous::Held {
                                granted.lock().unwrap().push((session.into(), got.fence));
                            }
                        }
                    });
                }
                3 => {
                    let leases = node.leases.clone();
                    tokio::spawn(async move { leases.release(session).await });
                }
                4 | 5 => node.kv.set(match rng.below(6) {
                    0 => Mode::Fail,
                    1 => Mode::Hang,
                    2 => Mode::LoseAnswer,
                    _ => Mode::Ok,
                }),
                _ => tokio::time::sleep(ms(rng.below(15_000))).await,
            }
            settle().await;
            for s in SESSIONS {
                let holders: Vec<&str> = nodes
                    .iter()
                    .filter(|n| n.leases.holds(s).is_some())
                    .map(|n| n.leases.node().id.as_str())
                    .collect();
                assert!(holders.len() <= 1, "seed {seed}: {s} held by {holders:?}");
                let fence = store.record(s).map_or(0, |r| r.fence);
                let max = stored_max.entry(s).or_default();
                assert!(fence >= *max, "seed {seed}: {s} fence {max} -> {fence}");
                *max = fence;
            }
        }
        let mut granted = granted.lock().unwrap().clone();
        let n = granted.len();
        granted.sort();
        granted.dedup();
        assert_eq!(granted.len(), n, "seed {seed}: a fence granted twice");
        takeovers += n;
        for node in &nodes {
            node.kv.set(Mode::Ok);
        }
    }
    // The loop did exercise takeovers, not only refusals.
    assert!(takeovers > 200, "{takeovers} grants in 100 runs");
}

/// In production `expires_at` is unix time in ms from the system clock.
#[tokio::test]
async fn the_system_clock_stamps_expires_at() {
    let store = Arc::new(Store::default());
    let kv = Arc::new(MemKv {
        store: store.clone(),
        mode: watch::channel(Mode::Ok).0,
    });
    let node = NodeId {
        id: "node-a".into(),
        clustered: false,
    };
    let leases = Leases::new(kv, node, LeaseTiming::default());
    let before = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    leases.acquire(SESSION).await.unwrap();
    let expires_at = store.record(SESSION).unwrap().expires_at;
    assert!(
        (before + 30_000..before + 35_000).contains(&expires_at),
        "{before} {expires_at}"
    );
}

/// A renewal sent in time but answered after `valid_until` does not bring the lease back:
/// `holds` already said no, and whoever read the deadline may have stopped the CLI.
#[tokio::test(start_paused = true)]
async fn a_renewal_answered_after_valid_until_does_not_revive_the_lease() {
    let (store, wall) = (Arc::new(Store::default()), wall());
    // No loop: the renewal is started by hand and no timer looks at valid_until.
    let mut a = Node::new(&store, "node-a", &wall);
    a.leases.acquire(SESSION).await.unwrap();
    tokio::time::advance(secs(10)).await;
    a.kv.set(Mode::Hang);
    a.leases.renew_all();
    settle().await;
    tokio::time::advance(secs(15)).await;
    a.no_loss();
    a.kv.set(Mode::Ok);
    settle().await;
    // The write landed (sent at 10 s, so it runs to 40 s in the store) ...
    assert_eq!(store.record(SESSION).unwrap().expires_at, BASE_MS + 40_000);
    // ... but the hold ended at 25 s.
    assert_eq!(a.leases.holds(SESSION), None);
    assert!(matches!(a.lost.try_recv().unwrap().why, LostWhy::Expired));
    assert_eq!(*a.leases.deadline(SESSION).borrow(), None);
}

/// A KV record lost or reset (the fence would restart at 1) does not take a fence the store
/// already saw: the lease is taken above the floor, and renewed with it.
#[tokio::test(start_paused = true)]
async fn a_lease_is_taken_above_the_floor_the_store_saw() {
    let (store, wall) = (Arc::new(Store::default()), wall());
    let a = Node::new(&store, "node-a", &wall).renewing();
    let got = a.leases.acquire_above(SESSION, 5).await.unwrap();
    assert_eq!(
        got,
        Acquired {
            fence: 6,
            previous: Previous::New
        }
    );
    tokio::time::sleep(secs(25)).await;
    assert_eq!(a.leases.holds(SESSION), Some(6));
    assert_eq!(store.record(SESSION).map(|r| r.fence), Some(6));
    // A floor below the record's fence changes nothing.
    let b = Node::new(&store, "node-b", &wall);
    a.leases.release(SESSION).await;
    assert_eq!(b.leases.acquire_above(SESSION, 2).await.unwrap().fence, 7);
}

/// On a server that is not clustered a hold does not run out and is never renewed: an idle
/// single server makes no KV call.
#[tokio::test(start_paused = true)]
async fn a_single_servers_hold_is_never_renewed_nor_lost() {
    let (store, wall) = (Arc::new(Store::default()), wall());
    let kv = Arc::new(MemKv {
        store: store.clone(),
        mode: watch::channel(Mode::Ok).0,
    });
    let node = NodeId {
        id: "solo-1".into(),
        clustered: false,
    };
    let leases = Leases::with_clock(kv, node, LeaseTiming::default(), wall);
    let mut lost = leases.take_lost().unwrap();
    assert!(leases.spawn_renewals().is_none(), "a renewal loop runs");
    leases.acquire(SESSION).await.unwrap();
    let calls = leases.kv_calls();
    tokio::time::advance(secs(24 * 3600)).await;
    assert_eq!(leases.holds(SESSION), Some(1));
    assert_eq!(leases.owner(SESSION).await.unwrap(), Owner::Me { fence: 1 });
    assert_eq!(leases.kv_calls(), calls, "KV calls while idle");
    assert!(matches!(lost.try_recv(), Err(TryRecvError::Empty)));
}

/// An abandoned lease is neither renewed nor released: it runs out as a dead node's does, and
/// another node then takes it as expired.
#[tokio::test(start_paused = true)]
async fn an_abandoned_lease_runs_out_as_a_dead_nodes_does() {
    let (store, wall) = (Arc::new(Store::default()), wall());
    let mut a = Node::new(&store, "node-a", &wall).renewing();
    let b = Node::new(&store, "node-b", &wall).renewing();
    a.leases.acquire(SESSION).await.unwrap();
    let written = store.record(SESSION);
    a.leases.abandon(SESSION);
    assert_eq!(a.leases.holds(SESSION), None);
    tokio::time::sleep(secs(20)).await;
    assert_eq!(store.record(SESSION), written, "not renewed, not released");
    assert!(matches!(
        b.leases.acquire(SESSION).await,
        Err(LeaseError::Held { .. })
    ));
    tokio::time::sleep(secs(60)).await;
    assert_eq!(
        b.leases.acquire(SESSION).await.unwrap().previous,
        Previous::Expired {
            node: "node-a".into()
        }
    );
    a.no_loss();
}
