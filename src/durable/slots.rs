//! Slots of an agent across the whole fleet: a Restate virtual object per
//! agent (keyed by its name) that grants leases in order of urgency. A
//! GPU server does not care which worker sent a request, so an agent's
//! `max_concurrency` and its servers' capacity hold for every run on every
//! worker at once.
//!
//! A run asks for a slot by sending `acquire` with an awakeable it then
//! awaits; the object resolves that awakeable when the slot is granted
//! (never awaiting anything itself, so its key is never locked for long)
//! and forgets the lease on `release`. Among waiting requests the most
//! urgent goes first: higher priority, then more work still ahead of the
//! task, then the earlier request; so an urgent task of a later run
//! overtakes the queued tasks of earlier ones.
//!
//! Cost per task: two one-way calls to the object (acquire, release), one
//! awakeable, and one rewrite of the object's state for each.

use std::collections::BTreeMap;

use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};

/// A run's request for a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRequest {
    /// Resolved when the slot is granted; also the lease's id.
    pub awakeable: String,
    /// The run that asks, so a cancelled run's leases can be freed.
    pub run: String,
    pub priority: u32,
    pub remaining_cost: u64,
    /// How many requests the agent takes at once, as the asking run's
    /// deployment says; the last one given holds.
    pub capacity: u32,
}

/// The object's state: who holds a slot and who waits.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Slots {
    capacity: u32,
    /// Lease id (the awakeable) to run.
    held: BTreeMap<String, String>,
    waiting: Vec<Waiting>,
    requests: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Waiting {
    request: LeaseRequest,
    order: u64,
}

impl Slots {
    /// Adds a request behind those already waiting; its capacity becomes
    /// the agent's.
    fn queue(&mut self, request: LeaseRequest) {
        self.capacity = request.capacity;
        self.requests += 1;
        let order = self.requests;
        self.waiting.push(Waiting { request, order });
    }

    /// Grants slots while any are free, most urgent request first; returns
    /// the awakeables to resolve.
    fn grant(&mut self) -> Vec<String> {
        let mut granted = Vec::new();
        while self.held.len() < self.capacity.max(1) as usize && !self.waiting.is_empty() {
            let best = (0..self.waiting.len())
                .max_by_key(|&i| {
                    let w = &self.waiting[i];
                    (
                        w.request.priority,
                        w.request.remaining_cost,
                        std::cmp::Reverse(w.order),
                    )
                })
                .expect("waiting is not empty");
            let Waiting { request, .. } = self.waiting.swap_remove(best);
            self.held.insert(request.awakeable.clone(), request.run);
            granted.push(request.awakeable);
        }
        granted
    }
}

const STATE: &str = "slots";

pub struct AgentSlots;

#[restate_sdk::object]
impl AgentSlots {
    /// Queues a request for a slot; the slot is granted by resolving the
    /// request's awakeable, at once when one is free.
    #[handler]
    async fn acquire(
        &self,
        ctx: ObjectContext<'_>,
        Json(request): Json<LeaseRequest>,
    ) -> HandlerResult<()> {
        let mut slots = load(&ctx).await?;
        slots.queue(request);
        grant_and_store(&ctx, slots);
        Ok(())
    }

    /// Frees the lease's slot; an unknown lease is already free.
    #[handler]
    async fn release(&self, ctx: ObjectContext<'_>, lease: String) -> HandlerResult<()> {
        let mut slots = load(&ctx).await?;
        slots.held.remove(&lease);
        grant_and_store(&ctx, slots);
        Ok(())
    }

    /// Frees every lease of a run, and drops its waiting requests: for a
    /// run that ends before its tasks do (cancelled).
    #[handler]
    async fn release_run(&self, ctx: ObjectContext<'_>, run: String) -> HandlerResult<()> {
        let mut slots = load(&ctx).await?;
        slots.held.retain(|_, holder| *holder != run);
        slots.waiting.retain(|w| w.request.run != run);
        grant_and_store(&ctx, slots);
        Ok(())
    }
}

async fn load(ctx: &ObjectContext<'_>) -> Result<Slots, TerminalError> {
    Ok(ctx
        .get::<Json<Slots>>(STATE)
        .await?
        .map(Json::into_inner)
        .unwrap_or_default())
}

fn grant_and_store(ctx: &ObjectContext<'_>, mut slots: Slots) {
    for awakeable in slots.grant() {
        ctx.resolve_awakeable(&awakeable, ());
    }
    ctx.set(STATE, Json(slots));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str, run: &str, priority: u32, remaining_cost: u64) -> LeaseRequest {
        LeaseRequest {
            awakeable: id.into(),
            run: run.into(),
            priority,
            remaining_cost,
            capacity: 2,
        }
    }

    #[test]
    fn the_most_urgent_request_is_granted_first_whichever_run_asks() {
        let mut slots = Slots {
            capacity: 2,
            ..Slots::default()
        };
        slots.queue(request("a1", "a", 1, 100));
        slots.queue(request("a2", "a", 1, 100));
        slots.queue(request("a3", "a", 1, 50));
        assert_eq!(slots.grant(), ["a1", "a2"]);
        slots.queue(request("b1", "b", 5, 10));
        assert!(slots.grant().is_empty(), "no slot is free");
        slots.held.remove("a1");
        assert_eq!(
            slots.grant(),
            ["b1"],
            "the later run's urgent task overtakes"
        );
        slots.held.retain(|_, run| run != "a");
        assert_eq!(slots.grant(), ["a3"]);
        assert_eq!(slots.held.len(), 2);
    }
}
