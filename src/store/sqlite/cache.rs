//! Documents read by id, kept in memory for the next read of the same id.
//!
//! Valid for SQLite only: this process's writer thread is the database's only
//! writer, so every change passes through [`record`] and is dropped from the
//! cache after its COMMIT and before the writer answers the request.
//!
//! A read that misses takes a [`Ticket`] before it reads the database and
//! stores what it read only when no write has been committed since
//! ([`DocCache::insert`]): a document read from a snapshot older than a
//! commit never lands after that commit's invalidation.
//!
//! Memory is bounded by the bytes the entries hold; the oldest entry not read
//! since it was last passed over is evicted first (second-chance FIFO).

use super::Entity;
use crate::store::Stored;
// Looked up on every get: foldhash (randomly seeded, as hashbrown's default)
// hashes an id in a fraction of SipHash's instructions.
use foldhash::HashMap;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Bytes counted per entry beyond its id and document (maps, queue record).
const ENTRY_OVERHEAD: usize = 128;

/// What a batch of writes changed, handed from the writer to the cache.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) enum Changed {
    #[default]
    Nothing,
    Entities(Vec<(Entity, String, String)>),
    /// Bulk changes (a tenant replaced): forget everything.
    Everything,
}

thread_local! {
    /// Changes recorded by the writer thread during the current batch.
    static CHANGED: RefCell<Changed> = const { RefCell::new(Changed::Nothing) };
}

/// Records that a stored document of `table` changed (inserted, updated or
/// deleted); called inside write jobs, on the writer thread.
pub(super) fn record(table: Entity, tenant: &str, id: &str) {
    CHANGED.with_borrow_mut(|c| match c {
        Changed::Everything => {}
        Changed::Entities(keys) => keys.push((table, tenant.to_owned(), id.to_owned())),
        Changed::Nothing => *c = Changed::Entities(vec![(table, tenant.to_owned(), id.to_owned())]),
    });
}

/// Records a change the cache cannot follow entity by entity.
pub(super) fn record_everything() {
    CHANGED.with_borrow_mut(|c| *c = Changed::Everything);
}

/// Takes what this thread recorded since the last call.
pub(super) fn take_recorded() -> Changed {
    CHANGED.with_borrow_mut(std::mem::take)
}

/// Proof of the commit count when a read began; see [`DocCache::insert`].
#[derive(Clone, Copy, Debug)]
pub(super) struct Ticket(u64);

pub(super) struct DocCache {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Bumped by every invalidation.
    generation: u64,
    bytes: usize,
    next_stamp: u64,
    /// Per table, per tenant, per id: lookups borrow the request's strings.
    tables: [HashMap<String, HashMap<String, Slot>>; Entity::ALL.len()],
    /// Insertion order for eviction; records of removed entries are skipped.
    queue: VecDeque<Record>,
    live: usize,
}

struct Slot {
    doc: String,
    version: i64,
    stamp: u64,
    referenced: bool,
}

struct Record {
    table: Entity,
    tenant: String,
    id: String,
    stamp: u64,
}

fn weight(id: &str, doc: &str) -> usize {
    2 * id.len() + doc.len() + ENTRY_OVERHEAD
}

impl DocCache {
    /// A cache holding at most `capacity` bytes of documents; 0 holds none.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent at every step, so a panic elsewhere
        // while the lock was held leaves nothing to repair.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn enabled(&self) -> bool {
        self.capacity > 0
    }

    pub(super) fn get(&self, table: Entity, tenant: &str, id: &str) -> Option<Stored> {
        let mut state = self.state();
        let slot = state.tables[table.index()].get_mut(tenant)?.get_mut(id)?;
        slot.referenced = true;
        Some(Stored {
            id: id.to_owned(),
            doc: slot.doc.clone(),
            version: slot.version,
        })
    }

    /// Taken before reading the database for a later [`DocCache::insert`].
    pub(super) fn ticket(&self) -> Ticket {
        Ticket(self.state().generation)
    }

    /// Keeps a document read from the database, unless a write was
    /// committed since `ticket` was taken (the read may predate it).
    pub(super) fn insert(&self, ticket: Ticket, table: Entity, tenant: &str, stored: &Stored) {
        let w = weight(&stored.id, &stored.doc);
        if w > self.capacity / 8 {
            return;
        }
        let mut guard = self.state();
        let state = &mut *guard;
        if state.generation != ticket.0 {
            return;
        }
        let stamp = state.next_stamp;
        state.next_stamp += 1;
        let ids = state.tables[table.index()]
            .entry(tenant.to_owned())
            .or_default();
        let slot = Slot {
            doc: stored.doc.clone(),
            version: stored.version,
            stamp,
            referenced: false,
        };
        match ids.insert(stored.id.clone(), slot) {
            Some(old) => state.bytes -= weight(&stored.id, &old.doc),
            None => state.live += 1,
        }
        state.bytes += w;
        state.queue.push_back(Record {
            table,
            tenant: tenant.to_owned(),
            id: stored.id.clone(),
            stamp,
        });
        state.evict(self.capacity);
    }

    /// Drops what a committed batch changed; called by the writer after
    /// COMMIT and before it answers the batch's requests.
    pub(super) fn invalidate(&self, changed: Changed) {
        if changed == Changed::Nothing {
            return;
        }
        let mut state = self.state();
        state.generation += 1;
        match changed {
            Changed::Nothing => {}
            Changed::Everything => {
                let generation = state.generation;
                *state = State {
                    generation,
                    ..State::default()
                };
            }
            Changed::Entities(keys) => {
                for (table, tenant, id) in keys {
                    state.remove(table, &tenant, &id);
                }
                state.compact();
            }
        }
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.state().bytes
    }
}

impl State {
    fn remove(&mut self, table: Entity, tenant: &str, id: &str) -> bool {
        let Some(ids) = self.tables[table.index()].get_mut(tenant) else {
            return false;
        };
        let Some(slot) = ids.remove(id) else {
            return false;
        };
        self.bytes -= weight(id, &slot.doc);
        self.live -= 1;
        true
    }

    /// Evicts until the entries fit in `capacity`: an entry read since it
    /// was queued goes round once more.
    fn evict(&mut self, capacity: usize) {
        while self.bytes > capacity {
            let Some(record) = self.queue.pop_front() else {
                return;
            };
            let ids = self.tables[record.table.index()].get_mut(&record.tenant);
            let Some(slot) = ids.and_then(|ids| ids.get_mut(&record.id)) else {
                continue;
            };
            if slot.stamp != record.stamp {
                continue;
            }
            if std::mem::take(&mut slot.referenced) {
                self.queue.push_back(record);
            } else {
                self.remove(record.table, &record.tenant, &record.id);
            }
        }
    }

    /// Drops queue records of removed entries once they outnumber the live
    /// ones, so invalidations cannot grow the queue without bound.
    fn compact(&mut self) {
        if self.queue.len() <= 2 * self.live + 1024 {
            return;
        }
        let tables = &self.tables;
        self.queue.retain(|r| {
            tables[r.table.index()]
                .get(&r.tenant)
                .and_then(|ids| ids.get(&r.id))
                .is_some_and(|slot| slot.stamp == r.stamp)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: &str, version: i64) -> Stored {
        Stored {
            id: id.into(),
            doc: format!(r#"{{"id":"{id}","displayName":"v{version}"}}"#),
            version,
        }
    }

    fn keep(cache: &DocCache, id: &str, version: i64) {
        cache.insert(cache.ticket(), Entity::Instance, "t", &stored(id, version));
    }

    #[test]
    fn a_kept_document_is_served_until_its_change_is_committed() {
        let cache = DocCache::new(1 << 20);
        keep(&cache, "a", 1);
        assert_eq!(cache.get(Entity::Instance, "t", "a").unwrap().version, 1);
        assert!(cache.get(Entity::Manifest, "t", "a").is_none());
        assert!(cache.get(Entity::Instance, "other", "a").is_none());
        cache.invalidate(Changed::Entities(vec![(
            Entity::Instance,
            "t".into(),
            "a".into(),
        )]));
        assert!(cache.get(Entity::Instance, "t", "a").is_none());
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn a_read_that_began_before_a_commit_is_not_kept() {
        let cache = DocCache::new(1 << 20);
        let before = cache.ticket();
        cache.invalidate(Changed::Entities(vec![(
            Entity::Instance,
            "t".into(),
            "a".into(),
        )]));
        cache.insert(before, Entity::Instance, "t", &stored("a", 1));
        assert!(cache.get(Entity::Instance, "t", "a").is_none());
        keep(&cache, "a", 2);
        assert_eq!(cache.get(Entity::Instance, "t", "a").unwrap().version, 2);
    }

    #[test]
    fn a_bulk_change_forgets_every_document() {
        let cache = DocCache::new(1 << 20);
        keep(&cache, "a", 1);
        keep(&cache, "b", 1);
        cache.invalidate(Changed::Everything);
        assert!(cache.get(Entity::Instance, "t", "a").is_none());
        assert!(cache.get(Entity::Instance, "t", "b").is_none());
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn eviction_keeps_the_bytes_bounded_and_spares_documents_read_since() {
        let one = weight("id-000", &stored("id-000", 1).doc);
        let cache = DocCache::new(one * 10);
        for i in 0..10 {
            keep(&cache, &format!("id-{i:03}"), 1);
        }
        assert!(cache.get(Entity::Instance, "t", "id-000").is_some());
        for i in 10..15 {
            keep(&cache, &format!("id-{i:03}"), 1);
        }
        assert!(cache.bytes() <= one * 10);
        assert!(
            cache.get(Entity::Instance, "t", "id-000").is_some(),
            "read, so spared"
        );
        assert!(
            cache.get(Entity::Instance, "t", "id-001").is_none(),
            "oldest unread"
        );
        assert!(cache.get(Entity::Instance, "t", "id-014").is_some());
    }

    #[test]
    fn a_zero_capacity_keeps_nothing() {
        let cache = DocCache::new(0);
        assert!(!cache.enabled());
        keep(&cache, "a", 1);
        assert!(cache.get(Entity::Instance, "t", "a").is_none());
    }

    #[test]
    fn repeated_changes_of_one_document_do_not_grow_the_queue() {
        let cache = DocCache::new(1 << 20);
        for v in 0..5_000 {
            keep(&cache, "a", v);
            cache.invalidate(Changed::Entities(vec![(
                Entity::Instance,
                "t".into(),
                "a".into(),
            )]));
        }
        assert!(cache.state().queue.len() <= 1025);
    }

    #[test]
    fn changes_are_recorded_per_thread_until_taken() {
        record(Entity::Instance, "t", "a");
        record(Entity::Collection, "t", "c");
        std::thread::spawn(|| assert_eq!(take_recorded(), Changed::Nothing))
            .join()
            .unwrap();
        assert_eq!(
            take_recorded(),
            Changed::Entities(vec![
                (Entity::Instance, "t".into(), "a".into()),
                (Entity::Collection, "t".into(), "c".into()),
            ])
        );
        record(Entity::Instance, "t", "a");
        record_everything();
        record(Entity::Instance, "t", "b");
        assert_eq!(take_recorded(), Changed::Everything);
        assert_eq!(take_recorded(), Changed::Nothing);
    }
}
