//! Connections that point reads share.
//!
//! A get by id is one short statement. Checked out of the pool, it holds a
//! connection for a whole round trip, and each round trip wakes a
//! PostgreSQL backend that then sleeps again: on a busy machine those
//! wake-ups cost more than the query. A connection used by several requests
//! at once carries their statements together (tokio-postgres pipelines
//! the queries of concurrent callers of one client), so one wake-up of the
//! backend serves several gets.
//!
//! Only single statements outside a transaction go through here: they need
//! no connection of their own. A few slots each hold one connection taken
//! from a pool of their own; requests take the slots in turn. A slot whose
//! connection has closed gets a new one from that pool.

use deadpool_postgres::{Client, Pool, PoolError};
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub(super) struct SharedReads {
    pool: Pool,
    slots: Vec<Slot>,
    next: AtomicUsize,
}

#[derive(Default)]
struct Slot {
    open: Mutex<Option<Arc<Client>>>,
    /// Held while the slot waits for a connection, so that one request
    /// opens it and the others then share it.
    filling: tokio::sync::Mutex<()>,
}

impl SharedReads {
    /// `pool` holds at most as many connections as there are slots.
    pub(super) fn new(pool: Pool) -> Self {
        let slots = (0..pool.status().max_size)
            .map(|_| Slot::default())
            .collect();
        SharedReads {
            pool,
            slots,
            next: AtomicUsize::new(0),
        }
    }

    /// The connection of the next slot, opened if the slot has none or its
    /// connection closed.
    pub(super) async fn client(&self) -> Result<Arc<Client>, PoolError> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        if let Some(open) = slot.live() {
            return Ok(open);
        }
        let _filling = slot.filling.lock().await;
        if let Some(open) = slot.live() {
            return Ok(open);
        }
        // A closed connection goes back to the pool when its last user lets
        // it go; the pool then discards it and opens another.
        let fresh = Arc::new(self.pool.get().await?);
        *slot.open.lock().expect("slot poisoned") = Some(fresh.clone());
        Ok(fresh)
    }

    /// Lets the slots' connections go and closes their pool.
    pub(super) fn close(&self) {
        for slot in &self.slots {
            slot.open.lock().expect("slot poisoned").take();
        }
        self.pool.close();
    }
}

impl Slot {
    /// The slot's connection if it is open; a closed one is let go.
    fn live(&self) -> Option<Arc<Client>> {
        let mut open = self.open.lock().expect("slot poisoned");
        match &*open {
            Some(c) if !c.is_closed() => Some(c.clone()),
            _ => {
                open.take();
                None
            }
        }
    }
}

/// A connection for one point read: shared with other requests, or taken
/// from the main pool when the pool is too small to set some apart.
pub(super) enum PointClient {
    Shared(Arc<Client>),
    Own(Box<Client>),
}

impl Deref for PointClient {
    type Target = Client;

    fn deref(&self) -> &Client {
        match self {
            PointClient::Shared(c) => c,
            PointClient::Own(c) => c,
        }
    }
}
