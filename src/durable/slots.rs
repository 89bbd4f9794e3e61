//! Slots of model servers across the whole fleet: a Restate virtual object
//! per group of servers (keyed by the pool of servers agents share, else by
//! the agent) that grants leases in order of urgency. A GPU server does not
//! care which worker or which agent sent a request, so its capacity holds
//! for every run on every worker at once, and so does each agent's
//! `max_concurrency`.
//!
//! A run asks for a slot by sending `acquire` with the task's job and the
//! awakeable it awaits the task's result on. The object starts the task
//! service itself when it grants the slot (never awaiting anything, so its
//! key is never locked for long), and the task service gives the slot
//! back with `release` when it is done: a slot passes from one task to
//! the next in two one-way messages, without the runs in between. Among
//! waiting requests the most urgent goes first: higher priority, then
//! more work still ahead of the task, then the earlier request; so an
//! urgent task of a later run overtakes the queued tasks of earlier ones.
//!
//! Cost per task: two one-way calls to the object (acquire, release), one
//! rewrite of the object's queue for each, and, while the task waits, its
//! job in the object's state (prompts, like the journal: see the README on
//! where PHI lives).

use std::collections::BTreeMap;

use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use super::task_service::{TaskCall, WfcTaskClient};
use crate::run::Job;

/// A run's request for a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRequest {
    /// The awakeable the run awaits the task's result on; also the
    /// lease's id.
    pub awakeable: String,
    /// The run that asks, so a cancelled run's leases can be freed.
    pub run: String,
    pub priority: u32,
    pub remaining_cost: u64,
    /// The agent asking, and how many requests it may have in flight.
    pub agent: String,
    pub agent_limit: u32,
    /// How many requests the object's servers take at once, as the asking
    /// run's deployment says; the last one given holds.
    pub capacity: u32,
}

/// The object's state: who holds a slot and who waits.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Slots {
    capacity: u32,
    /// The leases (each the awakeable of its task's result) granted and
    /// not yet given back, each with its agent.
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
    /// the servers'.
    fn queue(&mut self, request: LeaseRequest) {
        self.capacity = request.capacity;
        self.requests += 1;
        let order = self.requests;
        self.waiting.push(Waiting { request, order });
    }

    /// Grants slots while any are free, most urgent request first (of an
    /// agent still under its own limit); returns the awakeables to resolve.
    fn grant(&mut self) -> Vec<String> {
        let mut granted = Vec::new();
        while self.held.len() < self.capacity.max(1) as usize {
            let held_by = |agent: &str| self.held.values().filter(|a| *a == agent).count();
            let best = (0..self.waiting.len())
                .filter(|&i| {
                    let request = &self.waiting[i].request;
                    held_by(&request.agent) < request.agent_limit.max(1) as usize
                })
                .max_by_key(|&i| {
                    let w = &self.waiting[i];
                    (
                        w.request.priority,
                        w.request.remaining_cost,
                        std::cmp::Reverse(w.order),
                    )
                });
            let Some(best) = best else { break };
            let Waiting { request, .. } = self.waiting.swap_remove(best);
            self.held
                .insert(request.awakeable.clone(), request.agent.clone());
            granted.push(request.awakeable);
        }
        granted
    }
}

/// A task waiting for a slot of its servers, and what it will send.
#[derive(Debug, Serialize, Deserialize)]
pub struct Acquire {
    pub request: LeaseRequest,
    pub job: Job,
}

const STATE: &str = "slots";

/// Where a waiting task's job is kept until its slot is granted.
fn job_key(lease: &str) -> String {
    format!("job/{lease}")
}

pub struct ServerSlots;

#[restate_sdk::object]
impl ServerSlots {
    /// Queues a task for a slot, and starts it at once when one is free.
    #[handler]
    async fn acquire(
        &self,
        ctx: ObjectContext<'_>,
        Json(Acquire { request, job }): Json<Acquire>,
    ) -> HandlerResult<()> {
        let mut slots = load(&ctx).await?;
        let lease = request.awakeable.clone();
        slots.queue(request);
        let mut job = Some(job);
        for granted in slots.grant() {
            let job = match job.take_if(|_| granted == lease) {
                Some(job) => job,
                None => waiting_job(&ctx, &granted).await?,
            };
            start(&ctx, granted, job);
        }
        if let Some(job) = job {
            ctx.set(&job_key(&lease), Json(job));
        }
        ctx.set(STATE, Json(slots));
        Ok(())
    }

    /// Frees the lease's slot (the task service, when its task is done);
    /// an unknown lease is already free.
    #[handler]
    async fn release(&self, ctx: ObjectContext<'_>, lease: String) -> HandlerResult<()> {
        let mut slots = load(&ctx).await?;
        slots.held.remove(&lease);
        for granted in slots.grant() {
            let job = waiting_job(&ctx, &granted).await?;
            start(&ctx, granted, job);
        }
        ctx.set(STATE, Json(slots));
        Ok(())
    }

    /// Drops a run's waiting requests, for a run that ends before its
    /// tasks do (stopped). Its tasks already started keep their slots
    /// until their requests end: the model servers are still busy with
    /// them.
    #[handler]
    async fn release_run(&self, ctx: ObjectContext<'_>, run: String) -> HandlerResult<()> {
        let mut slots = load(&ctx).await?;
        slots.waiting.retain(|w| {
            let keep = w.request.run != run;
            if !keep {
                ctx.clear(&job_key(&w.request.awakeable));
            }
            keep
        });
        ctx.set(STATE, Json(slots));
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

/// The job of a task that waited for its slot, taken out of the state.
async fn waiting_job(ctx: &ObjectContext<'_>, lease: &str) -> Result<Job, TerminalError> {
    let key = job_key(lease);
    let job = ctx
        .get::<Json<Job>>(&key)
        .await?
        .ok_or_else(|| TerminalError::new(format!("lease {lease} has no job")))?;
    ctx.clear(&key);
    Ok(job.into_inner())
}

/// Starts a task whose slot was granted; it gives the slot back itself.
fn start(ctx: &ObjectContext<'_>, lease: String, job: Job) {
    ctx.service_client::<WfcTaskClient>()
        .exec(Json(TaskCall {
            job,
            done: lease,
            slot_of: Some(ctx.key().to_string()),
        }))
        .send();
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
            agent: "Billing".into(),
            agent_limit: 2,
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
        slots.held.remove("a2");
        assert_eq!(slots.grant(), ["a3"]);
        assert_eq!(slots.held.len(), 2);
    }

    #[test]
    fn agents_sharing_servers_each_keep_to_their_own_limit() {
        let mut slots = Slots::default();
        let claims = |id: &str, priority| LeaseRequest {
            agent: "Claims".into(),
            agent_limit: 1,
            capacity: 3,
            ..request(id, "a", priority, 0)
        };
        slots.queue(claims("c1", 9));
        slots.queue(claims("c2", 9));
        slots.queue(LeaseRequest {
            capacity: 3,
            ..request("b1", "a", 1, 0)
        });
        assert_eq!(
            slots.grant(),
            ["c1", "b1"],
            "Claims takes one slot; the urgent c2 waits for it"
        );
        slots.queue(LeaseRequest {
            capacity: 3,
            ..request("b2", "b", 0, 0)
        });
        assert_eq!(slots.grant(), ["b2"], "the servers' third slot");
        slots.held.remove("c1");
        assert_eq!(slots.grant(), ["c2"]);
    }
}
