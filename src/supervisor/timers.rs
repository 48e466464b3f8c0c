//! Deadlines for the loop: backoff, "up" checks, stop grace periods, client time-outs.
//! A min-heap keyed by instant; `poll` sleeps until the earliest one. Entries are never
//! removed early: each carries the generation it was armed for, and the loop ignores
//! entries whose generation has moved on.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

struct Entry<K> {
    at: Instant,
    seq: u64,
    key: K,
}

impl<K> PartialEq for Entry<K> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl<K> Eq for Entry<K> {}
impl<K> PartialOrd for Entry<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for Entry<K> {
    // Reversed so the BinaryHeap (a max-heap) pops the earliest deadline first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

pub struct Timers<K> {
    heap: BinaryHeap<Entry<K>>,
    seq: u64,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<K> Timers<K> {
    pub fn at(&mut self, at: Instant, key: K) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            key,
        });
    }

    pub fn after(&mut self, delay: Duration, key: K) {
        self.at(Instant::now() + delay, key);
    }

    /// How long until the earliest entry is due; None when there is none.
    pub fn until_next(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|e| e.at.saturating_duration_since(now))
    }

    /// Removes and returns every entry due at `now`, earliest first.
    pub fn pop_due(&mut self, now: Instant) -> Vec<K> {
        let mut due = Vec::new();
        while self.heap.peek().is_some_and(|e| e.at <= now) {
            if let Some(e) = self.heap.pop() {
                due.push(e.key);
            }
        }
        due
    }

    /// When the earliest entry whose key `matches` is due.
    pub fn first(&self, matches: impl Fn(&K) -> bool) -> Option<Instant> {
        self.heap
            .iter()
            .filter(|e| matches(&e.key))
            .map(|e| e.at)
            .min()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let mut t = Timers::default();
        let now = Instant::now();
        t.at(now + Duration::from_millis(30), "c");
        t.at(now + Duration::from_millis(10), "a");
        t.at(now + Duration::from_millis(20), "b");
        assert!(t.pop_due(now).is_empty());
        assert_eq!(t.until_next(now), Some(Duration::from_millis(10)));
        assert_eq!(t.pop_due(now + Duration::from_millis(25)), ["a", "b"]);
        assert_eq!(t.pop_due(now + Duration::from_secs(1)), ["c"]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn empty_means_block_forever() {
        let t: Timers<u8> = Timers::default();
        assert_eq!(t.until_next(Instant::now()), None);
    }

    #[test]
    fn equal_deadlines_keep_insertion_order() {
        let mut t = Timers::default();
        let at = Instant::now();
        for k in 0..5 {
            t.at(at, k);
        }
        assert_eq!(t.pop_due(at), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn the_wait_is_exact_to_the_microsecond_and_never_negative() {
        let mut t = Timers::default();
        let now = Instant::now();
        t.at(now + Duration::from_micros(1500), ());
        assert_eq!(t.until_next(now), Some(Duration::from_micros(1500)));
        assert_eq!(
            t.until_next(now + Duration::from_secs(9)),
            Some(Duration::ZERO)
        );
    }
}
