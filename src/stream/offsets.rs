//! Offset bookkeeping for at-least-once delivery with out-of-order completion.
//!
//! Articles of one partition are processed concurrently and finish in any order, but Kafka stores one committed
//! position per partition, meaning "everything before this offset is done". [`PartitionOffsets`] therefore
//! keeps the offsets still in progress and commits only the contiguous prefix: the position is the lowest
//! offset still pending, or one past the highest consumed when nothing is pending. Gaps in the offset sequence
//! (compaction, transaction markers) need no special case because the position is derived from what was
//! actually consumed, never from `offset + 1` arithmetic on neighbours.
//!
//! An article keeps its in-flight slot until the broker has acknowledged a commit past its offset, not merely
//! until its outputs are acknowledged. That makes `max_in_flight` the bound on what a crash can replay: at any
//! moment, at most that many consumed offsets lie beyond the committed position.
//!
//! Each assignment of a partition gets a fresh generation. Work still running for a partition that was revoked
//! (and perhaps assigned again) carries the old generation, so its late completion cannot move the new owner's
//! position.
//!
//! The same bookkeeping knows how far behind a partition is in time ([`PartitionOffsets::lag`]): the Kafka
//! timestamps of the records it holds, and the end of the partition as librdkafka's statistics last saw it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Offsets of one assigned partition, for one generation of its assignment.
#[derive(Debug, Clone, Default)]
pub struct PartitionOffsets {
    generation: u64,
    /// Consumed, outputs not yet all acknowledged.
    pending: BTreeSet<i64>,
    /// Outputs acknowledged, commit not yet acknowledged.
    done: BTreeSet<i64>,
    /// One past the highest offset consumed.
    next: Option<i64>,
    /// Highest position the broker acknowledged as committed.
    committed: Option<i64>,
    /// The offset this partition is stopped at: a record that could be delivered nowhere. Nothing is
    /// committed past it; its partition's work counts neither toward the in-flight limit (the partition is
    /// paused, so it holds a bounded number of slots) nor toward draining (it would never drain).
    blocked: Option<i64>,
    /// Kafka timestamps (ms since the epoch) of the consumed, uncommitted offsets that have one: the first
    /// entry is the oldest record not yet processed. Trimmed with `done` when a commit is acknowledged.
    timestamps: BTreeMap<i64, i64>,
    /// Timestamp of the most recently consumed record that had one.
    last_timestamp: Option<i64>,
    /// The partition's end and the group's committed offset, from librdkafka's latest statistics.
    stats: Option<EndStats>,
}

/// A partition's end as librdkafka's statistics report it (the high watermark, or the last stable offset for
/// a `read_committed` consumer: the offset `consumer_lag` is counted to), with the committed offset it was
/// counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndStats {
    pub end: i64,
    pub committed: i64,
}

/// Where a partition stands in time, at the moment [`PartitionOffsets::lag`] is asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lag {
    /// Age in seconds of the oldest record not yet processed (0 when caught up; never negative).
    Seconds(f64),
    /// Records wait, but no timestamp is known to measure them by (nothing with a timestamp consumed yet in
    /// this assignment, or no statistics yet): no figure rather than a wrong one.
    Unknown,
}

/// The age at `now_ms` of a record stamped `timestamp_ms`, in seconds. A timestamp from a clock ahead of
/// ours would give a negative age: the record is as fresh as can be, so 0.
pub fn age_seconds(timestamp_ms: i64, now_ms: i64) -> f64 {
    now_ms.saturating_sub(timestamp_ms).max(0) as f64 / 1000.0
}

/// A usable Kafka timestamp: librdkafka reports a missing one as None (or -1, which rdkafka maps to None);
/// 0 and below (the epoch or before, what a producer that never set one can leave) would measure decades of
/// lag, so they count as missing too.
fn usable_timestamp(timestamp_ms: Option<i64>) -> Option<i64> {
    timestamp_ms.filter(|&t| t > 0)
}

/// What can go wrong when recording a consumed offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetError {
    #[error("offset {offset} consumed again or out of order (already consumed up to {next})")]
    NotIncreasing { offset: i64, next: i64 },
}

impl PartitionOffsets {
    pub fn new(generation: u64) -> Self {
        Self {
            generation,
            ..Self::default()
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Records a consumed offset and its Kafka timestamp (ms since the epoch, None when the record has
    /// none). Kafka delivers a partition in order, so a repeat means a seek or a bug and is refused rather
    /// than double-counted.
    pub fn track(&mut self, offset: i64, timestamp_ms: Option<i64>) -> Result<(), OffsetError> {
        if let Some(next) = self.next {
            if offset < next {
                return Err(OffsetError::NotIncreasing { offset, next });
            }
        }
        self.pending.insert(offset);
        self.next = Some(offset + 1);
        if let Some(t) = usable_timestamp(timestamp_ms) {
            self.timestamps.insert(offset, t);
            self.last_timestamp = Some(t);
        }
        Ok(())
    }

    /// Marks an offset's outputs as acknowledged. Returns false for an offset that was not pending.
    pub fn complete(&mut self, offset: i64) -> bool {
        if self.pending.remove(&offset) {
            self.done.insert(offset);
            true
        } else {
            false
        }
    }

    /// The position that may be committed now: every consumed offset below it is done.
    pub fn position(&self) -> Option<i64> {
        self.pending.first().copied().or(self.next)
    }

    /// The position worth committing now: one that advances past the acknowledged commit.
    pub fn commit_candidate(&self) -> Option<i64> {
        let pos = self.position()?;
        (self.committed.is_none_or(|c| pos > c)).then_some(pos)
    }

    /// The broker acknowledged a commit: offsets below `position` are durable and release their slots.
    pub fn commit_acknowledged(&mut self, position: i64) {
        self.committed = self.committed.max(Some(position));
        self.done = self.done.split_off(&position);
        self.timestamps = self.timestamps.split_off(&position);
    }

    /// The partition's end and committed offset, from librdkafka's statistics.
    pub fn observe_end(&mut self, stats: EndStats) {
        self.stats = Some(stats);
    }

    /// How old, at `now_ms`, the oldest record of this partition not yet processed is.
    ///
    /// - Records consumed and not yet committed (in flight, or done and waiting for the commit): the age of
    ///   the lowest-offset one with a timestamp, the in-flight low watermark. It is the record the group would
    ///   restart from, which is how Burrow and kafka_exporter measure lag in time: by offset order, not by the
    ///   smallest timestamp, so one record a producer stamped long ago does not stand for the partition. A
    ///   record without a timestamp is skipped; the next one, stamped later, gives a lower bound.
    /// - Nothing in flight, but the partition's end lies past what was consumed: the next record to read is
    ///   not fetched yet (backpressure holds the consumer, the partition is paused, the fetch is on its way),
    ///   so its timestamp is unknown without a read of our own. The most recently consumed record's timestamp
    ///   stands in for it: Kafka appends in order, so the next record is stamped no earlier (strictly so with
    ///   LogAppendTime, by and large with CreateTime). That timestamp is a lower bound of the next record's,
    ///   so the age is an upper bound of its age: an alert on it may fire a little early, never late, and
    ///   it costs no extra read of the broker. Nothing consumed yet in this assignment: [`Lag::Unknown`].
    /// - Nothing in flight and nothing past it: 0. With no statistics yet, [`Lag::Unknown`]: the end is not
    ///   known, so neither is whether records wait.
    pub fn lag(&self, now_ms: i64) -> Lag {
        if let Some((_, &t)) = self.timestamps.first_key_value() {
            return Lag::Seconds(age_seconds(t, now_ms));
        }
        let Some(stats) = self.stats else {
            return Lag::Unknown;
        };
        // The statistics may be older than our own last commit: the position is whichever is further on.
        let position = self
            .next
            .map_or(stats.committed, |n| n.max(stats.committed));
        if stats.end <= position {
            return Lag::Seconds(0.0);
        }
        match self.last_timestamp {
            Some(t) => Lag::Seconds(age_seconds(t, now_ms)),
            None => Lag::Unknown,
        }
    }

    pub fn committed(&self) -> Option<i64> {
        self.committed
    }

    /// Consumed offsets not yet covered by an acknowledged commit.
    pub fn in_flight(&self) -> usize {
        self.pending.len() + self.done.len()
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn done_uncommitted(&self) -> usize {
        self.done.len()
    }

    pub fn blocked(&self) -> Option<i64> {
        self.blocked
    }

    /// Pending offsets that a drain must wait for: none once the partition is blocked.
    fn drainable(&self) -> usize {
        if self.blocked.is_some() {
            0
        } else {
            self.pending()
        }
    }
}

/// The offsets of every partition assigned to this instance, shared between the consumer thread (which
/// tracks, commits and rebalances) and the processing tasks (which complete). A condition variable lets the
/// rebalance and shutdown paths wait for in-flight work to drain.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    state: Mutex<TrackerState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct TrackerState {
    partitions: BTreeMap<i32, PartitionOffsets>,
    next_generation: u64,
    /// Bumped on every assignment change, so the consumer loop knows to re-apply a pause.
    assignment_epoch: u64,
}

impl TrackerState {
    fn fresh(&mut self) -> PartitionOffsets {
        self.next_generation += 1;
        PartitionOffsets::new(self.next_generation)
    }
}

impl OffsetTracker {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, TrackerState> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters more than
        // losing the service, and the service must keep committing: recover the guard.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Partitions newly assigned. A partition already present keeps its state (cooperative rebalancing
    /// re-announces nothing, but a redundant assign must not reset progress).
    pub fn assign(&self, partitions: &[i32]) {
        let mut s = self.lock();
        for &p in partitions {
            if !s.partitions.contains_key(&p) {
                let fresh = s.fresh();
                s.partitions.insert(p, fresh);
            }
        }
        s.assignment_epoch += 1;
    }

    /// Partitions taken away: their state is dropped, and late completions of their work are ignored.
    pub fn revoke(&self, partitions: &[i32]) {
        let mut s = self.lock();
        for p in partitions {
            s.partitions.remove(p);
        }
        s.assignment_epoch += 1;
        drop(s);
        self.changed.notify_all();
    }

    pub fn assigned(&self) -> Vec<i32> {
        self.lock().partitions.keys().copied().collect()
    }

    pub fn assignment_epoch(&self) -> u64 {
        self.lock().assignment_epoch
    }

    /// Records a consumed offset and its Kafka timestamp; returns the generation its completion must quote.
    pub fn track(
        &self,
        partition: i32,
        offset: i64,
        timestamp_ms: Option<i64>,
    ) -> Result<u64, OffsetError> {
        let mut s = self.lock();
        if !s.partitions.contains_key(&partition) {
            // A message for a partition we were not told about: librdkafka assigns before delivering, so this
            // only happens if the assign callback was missed. Tracking it keeps the offset from being skipped.
            let fresh = s.fresh();
            s.partitions.insert(partition, fresh);
        }
        let po = s.partitions.get_mut(&partition).expect("inserted above");
        po.track(offset, timestamp_ms)?;
        Ok(po.generation())
    }

    /// Marks an offset done. Returns false when the partition was revoked (or re-assigned) since.
    pub fn complete(&self, partition: i32, generation: u64, offset: i64) -> bool {
        let mut s = self.lock();
        let ok = match s.partitions.get_mut(&partition) {
            Some(po) if po.generation() == generation => po.complete(offset),
            _ => false,
        };
        drop(s);
        self.changed.notify_all();
        ok
    }

    /// Whether work of this generation still belongs to this instance.
    pub fn is_current(&self, partition: i32, generation: u64) -> bool {
        self.lock()
            .partitions
            .get(&partition)
            .is_some_and(|po| po.generation() == generation)
    }

    /// Positions worth committing now; `only` restricts to some partitions.
    pub fn commit_candidates(&self, only: Option<&[i32]>) -> Vec<(i32, i64)> {
        let s = self.lock();
        s.partitions
            .iter()
            .filter(|(p, _)| only.is_none_or(|o| o.contains(p)))
            .filter_map(|(&p, po)| po.commit_candidate().map(|pos| (p, pos)))
            .collect()
    }

    pub fn commit_acknowledged(&self, partition: i32, position: i64) {
        if let Some(po) = self.lock().partitions.get_mut(&partition) {
            po.commit_acknowledged(position);
        }
        self.changed.notify_all();
    }

    /// Stops a partition at `offset`, a record that can be delivered nowhere (see [`PartitionOffsets`]'s
    /// `blocked`). Returns false when the partition was revoked or re-assigned since the record was consumed.
    pub fn block(&self, partition: i32, generation: u64, offset: i64) -> bool {
        let mut s = self.lock();
        let ok = match s.partitions.get_mut(&partition) {
            Some(po) if po.generation() == generation => {
                po.blocked = Some(po.blocked.map_or(offset, |b| b.min(offset)));
                true
            }
            _ => false,
        };
        if ok {
            // The consumer loop re-applies pause states when the epoch moves.
            s.assignment_epoch += 1;
        }
        drop(s);
        self.changed.notify_all();
        ok
    }

    /// Blocked partitions and the offset each is stopped at.
    pub fn blocked(&self) -> Vec<(i32, i64)> {
        self.lock()
            .partitions
            .iter()
            .filter_map(|(&p, po)| po.blocked.map(|o| (p, o)))
            .collect()
    }

    /// Consumed, uncommitted offsets of the partitions that are not blocked: what the in-flight limit bounds.
    pub fn in_flight_flowing(&self) -> usize {
        self.lock()
            .partitions
            .values()
            .filter(|po| po.blocked.is_none())
            .map(PartitionOffsets::in_flight)
            .sum()
    }

    /// Consumed offsets not yet covered by an acknowledged commit, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.lock()
            .partitions
            .values()
            .map(PartitionOffsets::in_flight)
            .sum()
    }

    /// Done offsets waiting for a commit, over all partitions.
    pub fn done_uncommitted(&self) -> usize {
        self.lock()
            .partitions
            .values()
            .map(PartitionOffsets::done_uncommitted)
            .sum()
    }

    /// Offsets whose outputs are not yet acknowledged, over `only` or all partitions, blocked partitions
    /// excepted (they never drain).
    pub fn pending(&self, only: Option<&[i32]>) -> usize {
        let s = self.lock();
        s.partitions
            .iter()
            .filter(|(p, _)| only.is_none_or(|o| o.contains(p)))
            .map(|(_, po)| po.drainable())
            .sum()
    }

    /// Blocks until no work is pending on `only` (or all) partitions, or until `deadline`. Returns whether it
    /// drained. Used by the rebalance and shutdown barriers, on the consumer thread.
    pub fn wait_drained(&self, only: Option<&[i32]>, deadline: Instant) -> bool {
        let mut s = self.lock();
        loop {
            let pending: usize = s
                .partitions
                .iter()
                .filter(|(p, _)| only.is_none_or(|o| o.contains(p)))
                .map(|(_, po)| po.drainable())
                .sum();
            if pending == 0 {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            s = self
                .changed
                .wait_timeout(s, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The ends and committed offsets librdkafka's statistics report, for the assigned partitions among them.
    pub fn observe_ends(&self, ends: &[(i32, EndStats)]) {
        let mut s = self.lock();
        for (p, stats) in ends {
            if let Some(po) = s.partitions.get_mut(p) {
                po.observe_end(*stats);
            }
        }
    }

    /// Every assigned partition's [`Lag`] at `now_ms`.
    pub fn lags(&self, now_ms: i64) -> Vec<(i32, Lag)> {
        self.lock()
            .partitions
            .iter()
            .map(|(&p, po)| (p, po.lag(now_ms)))
            .collect()
    }

    /// Snapshot of one partition's state (for tests and diagnostics).
    pub fn snapshot(&self, partition: i32) -> Option<PartitionOffsets> {
        self.lock().partitions.get(&partition).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_is_the_contiguous_done_prefix_under_out_of_order_completion() {
        let mut po = PartitionOffsets::new(1);
        assert_eq!(po.position(), None);
        for o in 10..15 {
            po.track(o, None).unwrap();
        }
        assert_eq!(po.position(), Some(10));
        po.complete(12);
        po.complete(14);
        assert_eq!(po.position(), Some(10), "10 is still pending");
        po.complete(10);
        assert_eq!(po.position(), Some(11));
        po.complete(11);
        assert_eq!(po.position(), Some(13), "12 done, 13 pending");
        po.complete(13);
        assert_eq!(
            po.position(),
            Some(15),
            "all done: one past the highest consumed"
        );
    }

    #[test]
    fn gaps_in_offsets_do_not_stall_the_position() {
        let mut po = PartitionOffsets::new(1);
        for o in [3, 7, 8, 20] {
            po.track(o, None).unwrap();
        }
        po.complete(7);
        po.complete(3);
        assert_eq!(po.position(), Some(8));
        po.complete(20);
        po.complete(8);
        assert_eq!(po.position(), Some(21));
    }

    #[test]
    fn repeated_or_decreasing_offsets_are_refused() {
        let mut po = PartitionOffsets::new(1);
        po.track(5, None).unwrap();
        assert_eq!(
            po.track(5, None),
            Err(OffsetError::NotIncreasing { offset: 5, next: 6 })
        );
        assert!(po.track(4, None).is_err());
        assert!(
            !po.complete(99),
            "completing an untracked offset changes nothing"
        );
        assert_eq!(po.position(), Some(5));
    }

    #[test]
    fn slots_are_released_only_by_acknowledged_commits() {
        let mut po = PartitionOffsets::new(1);
        for o in 0..4 {
            po.track(o, None).unwrap();
        }
        po.complete(0);
        po.complete(1);
        po.complete(3);
        assert_eq!(po.in_flight(), 4, "done but uncommitted still holds a slot");
        assert_eq!(po.commit_candidate(), Some(2));
        po.commit_acknowledged(2);
        assert_eq!(po.in_flight(), 2, "offsets 2 (pending) and 3 (done) remain");
        assert_eq!(po.committed(), Some(2));
        po.complete(2);
        assert_eq!(po.commit_candidate(), Some(4));
        po.commit_acknowledged(4);
        assert_eq!(po.in_flight(), 0);
        assert_eq!(po.commit_candidate(), None);
    }

    #[test]
    fn randomised_completion_orders_never_commit_past_a_pending_offset() {
        // A small deterministic LCG stands in for a random source: the property must hold for every order.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for _ in 0..200 {
            let n = 1 + next() % 40;
            let mut po = PartitionOffsets::new(1);
            let offsets: Vec<i64> = (0..n as i64).map(|i| i * 2).collect();
            for &o in &offsets {
                po.track(o, None).unwrap();
            }
            let mut order = offsets.clone();
            for i in (1..order.len()).rev() {
                order.swap(i, next() % (i + 1));
            }
            let mut done = BTreeSet::new();
            for o in order {
                po.complete(o);
                done.insert(o);
                let pos = po.position().unwrap();
                assert!(
                    offsets
                        .iter()
                        .filter(|&&x| x < pos)
                        .all(|x| done.contains(x)),
                    "position {pos} passed a pending offset"
                );
                let first_pending = offsets.iter().find(|x| !done.contains(x));
                assert_eq!(pos, first_pending.copied().unwrap_or(offsets[n - 1] + 1));
            }
        }
    }

    #[test]
    fn tracker_ignores_completions_from_an_old_generation() {
        let t = OffsetTracker::new();
        t.assign(&[0]);
        let g1 = t.track(0, 100, None).unwrap();
        t.revoke(&[0]);
        t.assign(&[0]);
        let g2 = t.track(0, 100, None).unwrap();
        assert_ne!(g1, g2);
        assert!(!t.complete(0, g1, 100), "stale completion ignored");
        assert_eq!(t.pending(None), 1);
        assert!(t.complete(0, g2, 100));
        assert_eq!(t.commit_candidates(None), vec![(0, 101)]);
    }

    #[test]
    fn wait_drained_returns_when_work_completes_or_at_the_deadline() {
        let t = std::sync::Arc::new(OffsetTracker::new());
        t.assign(&[0, 1]);
        let g0 = t.track(0, 0, None).unwrap();
        let g1 = t.track(1, 0, None).unwrap();
        assert!(!t.wait_drained(Some(&[1]), Instant::now() + Duration::from_millis(50)));
        let t2 = t.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            t2.complete(1, g1, 0);
        });
        assert!(t.wait_drained(Some(&[1]), Instant::now() + Duration::from_secs(5)));
        assert_eq!(t.pending(Some(&[0])), 1, "partition 0 was not waited for");
        h.join().unwrap();
        t.complete(0, g0, 0);
        assert!(t.wait_drained(None, Instant::now()));
    }

    #[test]
    fn commit_candidates_can_be_restricted_to_revoked_partitions() {
        let t = OffsetTracker::new();
        t.assign(&[0, 1, 2]);
        for p in 0..3 {
            let g = t.track(p, 5, None).unwrap();
            t.complete(p, g, 5);
        }
        assert_eq!(t.commit_candidates(Some(&[1])), vec![(1, 6)]);
        t.commit_acknowledged(1, 6);
        assert_eq!(t.commit_candidates(None), vec![(0, 6), (2, 6)]);
    }

    #[test]
    fn a_blocked_partition_holds_its_position_and_leaves_the_limit_and_the_drain() {
        let t = OffsetTracker::new();
        t.assign(&[0, 1]);
        let g0 = t.track(0, 5, None).unwrap();
        t.track(0, 6, None).unwrap();
        let g1 = t.track(1, 0, None).unwrap();
        assert_eq!(t.in_flight_flowing(), 3);
        let epoch = t.assignment_epoch();
        assert!(t.block(0, g0, 5));
        assert!(
            t.assignment_epoch() > epoch,
            "the loop must re-apply pause states"
        );
        assert!(
            !t.block(0, g0 + 100, 5),
            "a stale generation blocks nothing"
        );
        assert_eq!(t.blocked(), vec![(0, 5)]);
        assert_eq!(t.in_flight(), 3);
        assert_eq!(
            t.in_flight_flowing(),
            1,
            "partition 0's slots no longer hold the others back"
        );
        assert!(t.complete(0, g0, 6));
        assert_eq!(
            t.commit_candidates(Some(&[0])),
            vec![(0, 5)],
            "nothing past the blocked record"
        );
        assert_eq!(
            t.pending(None),
            1,
            "only partition 1's offset is worth draining"
        );
        assert!(t.complete(1, g1, 0));
        assert!(t.wait_drained(None, Instant::now()));
        t.revoke(&[0]);
        assert!(t.blocked().is_empty());
    }

    #[test]
    fn age_is_measured_against_the_clock_and_never_negative() {
        assert_eq!(age_seconds(1_000, 3_601_000), 3600.0);
        assert_eq!(age_seconds(1_000, 1_250), 0.25);
        assert_eq!(
            age_seconds(5_000, 1_000),
            0.0,
            "a timestamp ahead of our clock is fresh, not negative"
        );
        assert_eq!(age_seconds(i64::MIN, i64::MAX), i64::MAX as f64 / 1000.0);
    }

    #[test]
    fn lag_is_the_age_of_the_oldest_uncommitted_record_by_offset() {
        let hour_ago = 1_000_000;
        let now = hour_ago + 3_600_000;
        let mut po = PartitionOffsets::new(1);
        assert_eq!(po.lag(now), Lag::Unknown, "nothing known yet");
        po.track(10, None).unwrap();
        po.track(11, Some(hour_ago)).unwrap();
        po.track(12, Some(hour_ago - 500_000)).unwrap();
        po.track(13, Some(now)).unwrap();
        assert_eq!(
            po.lag(now),
            Lag::Seconds(3600.0),
            "offset 10 has no timestamp and is skipped; offset 11 is the low watermark, although 12 is \
             stamped earlier"
        );
        po.complete(11);
        po.complete(10);
        assert_eq!(
            po.lag(now),
            Lag::Seconds(3600.0),
            "done but not committed still counts: a restart would replay it"
        );
        po.commit_acknowledged(12);
        assert_eq!(
            po.lag(now),
            Lag::Seconds(4100.0),
            "offset 12 is now the oldest"
        );
        po.complete(12);
        po.complete(13);
        po.commit_acknowledged(14);
        assert_eq!(
            po.lag(now),
            Lag::Unknown,
            "caught up as far as we know, but no end seen yet"
        );
        po.observe_end(EndStats {
            end: 14,
            committed: 14,
        });
        assert_eq!(po.lag(now + 60_000), Lag::Seconds(0.0), "caught up: 0");
    }

    #[test]
    fn with_nothing_in_flight_a_lagging_partition_is_measured_by_its_last_consumed_record() {
        let t0 = 1_700_000_000_000;
        let mut po = PartitionOffsets::new(1);
        po.observe_end(EndStats {
            end: 100,
            committed: 0,
        });
        assert_eq!(
            po.lag(t0),
            Lag::Unknown,
            "records wait, but none was read to measure them by"
        );
        po.track(0, Some(t0)).unwrap();
        po.track(1, Some(t0 + 1_000)).unwrap();
        po.complete(0);
        po.complete(1);
        po.commit_acknowledged(2);
        assert_eq!(
            po.lag(t0 + 61_000),
            Lag::Seconds(60.0),
            "the next record (offset 2) is stamped no earlier than offset 1: its age is at most 60 s"
        );
        po.observe_end(EndStats {
            end: 2,
            committed: 1,
        });
        assert_eq!(
            po.lag(t0 + 61_000),
            Lag::Seconds(0.0),
            "statistics older than our commit: our own position counts"
        );
    }

    #[test]
    fn records_without_usable_timestamps_are_skipped() {
        let mut po = PartitionOffsets::new(1);
        po.observe_end(EndStats {
            end: 10,
            committed: 0,
        });
        po.track(0, None).unwrap();
        po.track(1, Some(0)).unwrap();
        po.track(2, Some(-1)).unwrap();
        assert_eq!(
            po.lag(1_700_000_000_000),
            Lag::Unknown,
            "no figure rather than decades of lag"
        );
        po.track(3, Some(1_700_000_000_000)).unwrap();
        assert_eq!(po.lag(1_700_000_002_000), Lag::Seconds(2.0));
    }

    #[test]
    fn the_tracker_reports_lags_of_assigned_partitions_only() {
        let t = OffsetTracker::new();
        t.assign(&[0, 1]);
        t.track(0, 0, Some(1_000)).unwrap();
        t.observe_ends(&[
            (
                1,
                EndStats {
                    end: 0,
                    committed: 0,
                },
            ),
            (
                7,
                EndStats {
                    end: 5,
                    committed: 0,
                },
            ),
        ]);
        assert_eq!(
            t.lags(11_000),
            vec![(0, Lag::Seconds(10.0)), (1, Lag::Seconds(0.0))]
        );
        t.revoke(&[0]);
        assert_eq!(t.lags(11_000), vec![(1, Lag::Seconds(0.0))]);
    }
}
