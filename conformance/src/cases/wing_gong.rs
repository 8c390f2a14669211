//! A linearizability checker for recorded histories of key-value operations: the
//! Wing–Gong search over orders consistent with real time, memoised on (operations
//! already placed, model state) so small histories check quickly.

use std::collections::HashSet;
use std::time::Instant;

use storage_api::{Condition, Version};

/// What a recorded operation asked for. Values are small ids; keys are indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Get(usize),
    Put {
        key: usize,
        value: u32,
        cond: Condition,
    },
    Delete {
        key: usize,
        cond: Condition,
    },
    /// Every key of the round, in order.
    Scan,
    /// Unconditional puts, applied atomically in order.
    Batch(Vec<(usize, u32)>),
}

/// What it returned. `None` for a put or delete means `ConditionFailed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ret {
    Get(Option<(u32, Version)>),
    Put(Option<Version>),
    Delete(Option<bool>),
    Scan(Vec<(usize, u32, Version)>),
    Batch(Vec<Version>),
}

/// One completed operation with its real-time interval.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) task: usize,
    pub(crate) invoke: Instant,
    pub(crate) ret: Instant,
    pub(crate) call: Call,
    pub(crate) result: Ret,
}

/// The sequential specification's state: each key's value and version, and the highest
/// version each key ever had (new versions must exceed it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct State {
    slots: Vec<Option<(u32, Version)>>,
    highest: Vec<Option<Version>>,
}

impl State {
    fn new(keys: usize) -> Self {
        Self {
            slots: vec![None; keys],
            highest: vec![None; keys],
        }
    }

    fn holds(&self, key: usize, cond: Condition) -> bool {
        cond.holds(self.slots[key].map(|(_, v)| v))
    }

    fn write(&mut self, key: usize, value: u32, version: Version) -> bool {
        if self.highest[key].is_some_and(|h| version <= h) {
            return false;
        }
        self.slots[key] = Some((value, version));
        self.highest[key] = Some(version);
        true
    }

    /// The state after `call` returned `ret`, or `None` if no sequential execution from
    /// this state returns that.
    fn step(&self, call: &Call, ret: &Ret) -> Option<Self> {
        let key_in = |k: &usize| *k < self.slots.len();
        let mut next = self.clone();
        let ok = match (call, ret) {
            (Call::Get(k), Ret::Get(got)) => key_in(k) && self.slots[*k] == *got,
            (Call::Put { key, value, cond }, Ret::Put(got)) => {
                key_in(key)
                    && match got {
                        Some(version) => {
                            self.holds(*key, *cond) && next.write(*key, *value, *version)
                        }
                        None => !self.holds(*key, *cond),
                    }
            }
            (Call::Delete { key, cond }, Ret::Delete(got)) => {
                key_in(key)
                    && match got {
                        Some(removed) => {
                            next.slots[*key] = None;
                            self.holds(*key, *cond) && *removed == self.slots[*key].is_some()
                        }
                        None => !self.holds(*key, *cond),
                    }
            }
            (Call::Scan, Ret::Scan(got)) => {
                let live: Vec<(usize, u32, Version)> = self
                    .slots
                    .iter()
                    .enumerate()
                    .filter_map(|(k, s)| s.map(|(value, v)| (k, value, v)))
                    .collect();
                live == *got
            }
            (Call::Batch(puts), Ret::Batch(versions)) => {
                puts.len() == versions.len()
                    && puts
                        .iter()
                        .zip(versions)
                        .all(|((k, value), v)| key_in(k) && next.write(*k, *value, *v))
            }
            _ => false,
        };
        ok.then_some(next)
    }
}

/// Whether `events` (at most 64) has a linearization: a total order consistent with
/// real time (an operation that returned before another was invoked comes first) in
/// which every result is what the sequential specification gives.
pub(crate) fn is_linearizable(events: &[Event], keys: usize) -> bool {
    if events.len() > 64 {
        return false;
    }
    let mut memo = HashSet::new();
    search(events, 0, State::new(keys), &mut memo)
}

fn search(events: &[Event], placed: u64, state: State, memo: &mut HashSet<(u64, State)>) -> bool {
    let all = if events.len() == 64 {
        u64::MAX
    } else {
        (1u64 << events.len()) - 1
    };
    if placed == all {
        return true;
    }
    if !memo.insert((placed, state.clone())) {
        return false;
    }
    let pending = |i: &usize| placed & (1 << i) == 0;
    let Some(first_return) = (0..events.len())
        .filter(pending)
        .map(|i| events[i].ret)
        .min()
    else {
        return true;
    };
    for i in (0..events.len()).filter(pending) {
        // Only an operation invoked before every pending one returned may go next.
        if events[i].invoke > first_return {
            continue;
        }
        if let Some(next) = state.step(&events[i].call, &events[i].result)
            && search(events, placed | (1 << i), next, memo)
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn v(n: u64) -> Version {
        Version::new(n).unwrap()
    }

    struct Recorder(Instant);

    impl Recorder {
        fn event(&self, task: usize, ms: (u64, u64), call: Call, result: Ret) -> Event {
            Event {
                task,
                invoke: self.0 + Duration::from_millis(ms.0),
                ret: self.0 + Duration::from_millis(ms.1),
                call,
                result,
            }
        }
    }

    fn put(key: usize, value: u32) -> Call {
        Call::Put {
            key,
            value,
            cond: Condition::Any,
        }
    }

    #[test]
    fn overlapping_writes_may_be_read_in_either_order_but_versions_must_rise() {
        let r = Recorder(Instant::now());
        let mut events = vec![
            r.event(0, (0, 10), put(0, 1), Ret::Put(Some(v(1)))),
            r.event(1, (0, 10), put(0, 2), Ret::Put(Some(v(2)))),
            r.event(2, (20, 30), Call::Get(0), Ret::Get(Some((2, v(2))))),
        ];
        assert!(is_linearizable(&events, 1));
        events[2].result = Ret::Get(Some((1, v(1))));
        assert!(
            !is_linearizable(&events, 1),
            "version 1 cannot be last after version 2"
        );
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_rejected() {
        let r = Recorder(Instant::now());
        let mut events = vec![
            r.event(0, (0, 5), put(0, 1), Ret::Put(Some(v(3)))),
            r.event(1, (10, 15), Call::Get(0), Ret::Get(None)),
        ];
        assert!(!is_linearizable(&events, 1));
        events[1] = r.event(1, (1, 15), Call::Get(0), Ret::Get(None));
        assert!(
            is_linearizable(&events, 1),
            "a read overlapping the write may miss it"
        );
    }

    #[test]
    fn two_successful_swaps_from_one_version_are_rejected() {
        let r = Recorder(Instant::now());
        let swap = |value| Call::Put {
            key: 0,
            value,
            cond: Condition::Version(v(1)),
        };
        let mut events = vec![
            r.event(0, (0, 1), put(0, 1), Ret::Put(Some(v(1)))),
            r.event(1, (2, 9), swap(2), Ret::Put(Some(v(2)))),
            r.event(2, (2, 9), swap(3), Ret::Put(Some(v(3)))),
        ];
        assert!(!is_linearizable(&events, 1));
        events[2].result = Ret::Put(None);
        assert!(is_linearizable(&events, 1));
    }

    #[test]
    fn a_batch_is_seen_whole_or_not_at_all() {
        let r = Recorder(Instant::now());
        let mut events = vec![
            r.event(
                0,
                (0, 10),
                Call::Batch(vec![(0, 1), (1, 2)]),
                Ret::Batch(vec![v(1), v(2)]),
            ),
            r.event(1, (2, 8), Call::Scan, Ret::Scan(vec![(0, 1, v(1))])),
        ];
        assert!(!is_linearizable(&events, 2));
        events[1].result = Ret::Scan(vec![]);
        assert!(is_linearizable(&events, 2));
    }
}
