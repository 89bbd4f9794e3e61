//! Choosing a server for each request.
//!
//! A server (one URL) is shared by every agent routed to it, and so is its
//! `max_concurrency`: the seed runs Billing and Claims on one llama.cpp
//! server, whose slots do not care which agent asks. A request takes a
//! free slot of one of its agent's servers, or waits; when a slot frees,
//! the most urgent request waiting for that server, of any agent, takes it
//! (among equally urgent ones, a request of the run the slot just served,
//! whose prompt prefix the slot's cache holds).
//!
//! Among an agent's servers with a free slot, a run keeps to its own
//! replica (rendezvous hashing of the run's affinity key with each URL, so
//! every process picks the same one), since
//! that server holds the KV cache of the prompt prefix the run's tasks
//! share; it yields to another replica when its own is full, failing, or
//! (without a stated limit, when room is unknown) busier. Otherwise the least busy server
//! goes, passing over servers that failed recently until their cool-down
//! ends.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::config::api_key;
use super::{RouterConfig, RouterError};
use crate::client::Target;

/// After a failure a server rests 1 s, then 2 s, 4 s ... up to this.
const LONGEST_REST: Duration = Duration::from_secs(30);

/// One model server, whichever agents are routed to it.
#[derive(Debug)]
struct Server {
    url: String,
    /// Requests it takes at once: the smallest the router file gives for
    /// its URL.
    limit: Option<usize>,
    health: Mutex<Health>,
}

#[derive(Debug, Default)]
struct Health {
    failures: u32,
    resting_until: Option<Instant>,
}

impl Server {
    fn resting_until(&self, now: Instant) -> Option<Instant> {
        let health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        health.resting_until.filter(|until| *until > now)
    }

    fn record(&self, healthy: bool) {
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        if healthy {
            *health = Health::default();
        } else {
            let rest = Duration::from_secs(1 << health.failures.min(5)).min(LONGEST_REST);
            health.failures += 1;
            health.resting_until = Some(Instant::now() + rest);
        }
    }
}

/// How an agent reaches one of its servers.
#[derive(Debug)]
pub struct Endpoint {
    target: Target,
    /// The model name sent to this server, when it differs from the agent's.
    pub model: Option<String>,
    /// The tokens this server's model takes, when the router file says.
    pub context_window: Option<u32>,
    server: usize,
    /// The server's host and port, read from its URL once rather than on
    /// every request a trace records.
    address: Option<(String, u16)>,
}

impl Endpoint {
    #[must_use]
    pub fn target(&self) -> &Target {
        &self.target
    }

    #[must_use]
    pub fn url(&self) -> &str {
        &self.target.base_url
    }

    /// The host and port of the server (`None` where the URL names none).
    #[must_use]
    pub fn address(&self) -> Option<(&str, u16)> {
        self.address
            .as_ref()
            .map(|(host, port)| (host.as_str(), *port))
    }
}

/// How many requests an agent's servers take at once, as the router file
/// says; `None` where a server states no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// The agent's own servers together.
    pub own: Option<usize>,
    /// The servers the agent shares with other agents (directly, or
    /// through an agent that shares with both), when there are such and
    /// each states its limit.
    pub shared: Option<Pool>,
}

/// Servers shared among agents, and what they take together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// The servers' URLs, sorted and joined with `+`.
    pub name: String,
    pub limit: usize,
}

/// What decides a waiting request's turn and its server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The task's priority, then the work still ahead of it: the greatest
    /// goes first.
    pub urgency: (u32, u64),
    /// Requests with the same key share a prompt prefix (the tasks of one
    /// run), and go to the same replica while it has room.
    pub affinity: Option<u64>,
}

/// A slot of a server, taken for one request; freed when dropped.
#[derive(Debug)]
pub struct Lease<'r> {
    router: &'r Router,
    endpoint: &'r Endpoint,
    /// The run whose prompt the server's slot will have cached.
    affinity: Option<u64>,
}

impl Lease<'_> {
    #[must_use]
    pub fn endpoint(&self) -> &Endpoint {
        self.endpoint
    }

    /// Records how the request ended, so the next choice can avoid a
    /// server that is failing.
    pub fn record(&self, healthy: bool) {
        self.router.servers[self.endpoint.server].record(healthy);
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.router.release(self.endpoint.server, self.affinity);
    }
}

#[derive(Debug, Default)]
pub struct Router {
    agents: HashMap<String, Vec<Endpoint>>,
    servers: Vec<Server>,
    /// The agents routed to each server.
    sharing: Vec<Vec<String>>,
    capacity: HashMap<String, Capacity>,
    /// Whether runs keep to their own replicas.
    affinity: bool,
    gate: Mutex<Gate>,
}

/// Who holds and who waits for the servers' slots.
#[derive(Debug, Default)]
struct Gate {
    in_flight: Vec<usize>,
    /// Each agent's waiting requests.
    waiting: HashMap<String, Queue>,
    arrivals: u64,
}

/// Urgency first, then the earlier arrival: the greatest goes first.
type Turn = ((u32, u64), Reverse<u64>);

#[derive(Debug)]
struct Waiter {
    affinity: Option<u64>,
    /// Receives the index of the agent's endpoint granted.
    grant: oneshot::Sender<usize>,
}

/// One agent's waiting requests, in turn, and by run: a slot freed by a
/// run's request goes to another request of that run among those of the
/// same urgency, since the slot's KV cache holds the run's prompt prefix
/// (llama.cpp gives a request the idle slot whose cache is most alike).
#[derive(Debug, Default)]
struct Queue {
    turns: BTreeMap<Turn, Option<u64>>,
    by_run: HashMap<Option<u64>, BTreeMap<Turn, Waiter>>,
}

impl Queue {
    fn push(&mut self, turn: Turn, waiter: Waiter) {
        self.turns.insert(turn, waiter.affinity);
        self.by_run
            .entry(waiter.affinity)
            .or_default()
            .insert(turn, waiter);
    }

    /// The turn of the request to go next after a request of run `after`:
    /// the most urgent, or the run's own when it is as urgent.
    fn next(&self, after: Option<u64>) -> Option<Turn> {
        let (&first, _) = self.turns.last_key_value()?;
        let own = after
            .and_then(|run| self.by_run.get(&Some(run))?.last_key_value())
            .map(|(turn, _)| *turn)
            .filter(|turn| turn.0 == first.0);
        Some(own.unwrap_or(first))
    }

    fn take(&mut self, turn: Turn) -> Option<Waiter> {
        let run = self.turns.remove(&turn)?;
        let queue = self.by_run.get_mut(&run)?;
        let waiter = queue.remove(&turn);
        if queue.is_empty() {
            self.by_run.remove(&run);
        }
        waiter
    }
}

impl Router {
    /// The endpoints of each of `agents`, with their API keys read from the
    /// environment. Fails on the first agent that cannot be served.
    pub fn new(config: &RouterConfig, agents: &[&str]) -> Result<Self, RouterError> {
        Self::with_env(config, agents, |name| std::env::var(name).ok())
    }

    pub fn with_env(
        config: &RouterConfig,
        agents: &[&str],
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, RouterError> {
        let mut router = Router::default();
        let mut by_url: HashMap<String, usize> = HashMap::new();
        for &agent in agents {
            let route = config
                .agents
                .get(agent)
                .filter(|route| !route.endpoints.is_empty())
                .ok_or_else(|| RouterError::Unrouted {
                    agent: agent.to_string(),
                })?;
            let mut endpoints = Vec::new();
            for endpoint in &route.endpoints {
                let owner = format!("agent `{agent}`");
                let api_key = api_key(endpoint.api_key_env.as_deref(), &owner, &var)?;
                let url = endpoint.url.trim_end_matches('/').to_string();
                let limit = endpoint.max_concurrency.map(|n| n as usize);
                let server = *by_url.entry(url.clone()).or_insert_with(|| {
                    router.servers.push(Server {
                        url: url.clone(),
                        limit,
                        health: Mutex::default(),
                    });
                    router.sharing.push(Vec::new());
                    router.servers.len() - 1
                });
                let stated = &mut router.servers[server].limit;
                *stated = match (*stated, limit) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if !router.sharing[server].iter().any(|a| a == agent) {
                    router.sharing[server].push(agent.to_string());
                }
                let address = url::Url::parse(&url).ok().and_then(|parsed| {
                    Some((
                        parsed.host_str()?.to_string(),
                        parsed.port_or_known_default()?,
                    ))
                });
                endpoints.push(Endpoint {
                    address,
                    target: Target {
                        base_url: url,
                        api_key,
                        timeout: config.timeout_of(endpoint),
                    },
                    model: endpoint.model.clone(),
                    context_window: endpoint.context_window,
                    server,
                });
            }
            router.agents.insert(agent.to_string(), endpoints);
        }
        router.capacity = router.capacities();
        router.affinity = config.affinity();
        router.gate = Mutex::new(Gate {
            in_flight: vec![0; router.servers.len()],
            ..Gate::default()
        });
        Ok(router)
    }

    /// Each agent's capacity: its own servers' limits, and the pool of
    /// servers linked to them through agents that share one.
    fn capacities(&self) -> HashMap<String, Capacity> {
        // Servers joined by an agent routed to both, until nothing changes.
        let mut group: Vec<usize> = (0..self.servers.len()).collect();
        loop {
            let mut changed = false;
            for endpoints in self.agents.values() {
                let lowest = endpoints.iter().map(|e| group[e.server]).min();
                for endpoint in endpoints {
                    if let Some(lowest) = lowest
                        && group[endpoint.server] != lowest
                    {
                        let old = group[endpoint.server];
                        for g in &mut group {
                            if *g == old {
                                *g = lowest;
                            }
                        }
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let limit_of = |servers: &mut dyn Iterator<Item = usize>| -> Option<usize> {
            servers.map(|s| self.servers[s].limit).sum()
        };
        self.agents
            .iter()
            .map(|(agent, endpoints)| {
                // A URL listed twice for one agent is still one server.
                let servers: BTreeSet<usize> = endpoints.iter().map(|e| e.server).collect();
                let own = limit_of(&mut servers.iter().copied());
                let home = endpoints.first().map(|e| group[e.server]);
                let members: Vec<usize> = (0..self.servers.len())
                    .filter(|&s| Some(group[s]) == home)
                    .collect();
                let agents_in_pool = members
                    .iter()
                    .flat_map(|&s| &self.sharing[s])
                    .collect::<BTreeSet<_>>()
                    .len();
                let shared = limit_of(&mut members.iter().copied())
                    .filter(|_| agents_in_pool > 1)
                    .map(|limit| {
                        let mut urls: Vec<&str> = members
                            .iter()
                            .map(|&s| self.servers[s].url.as_str())
                            .collect();
                        urls.sort_unstable();
                        Pool {
                            name: urls.join("+"),
                            limit,
                        }
                    });
                (agent.clone(), Capacity { own, shared })
            })
            .collect()
    }

    /// How many requests the agent's servers take at once.
    #[must_use]
    pub fn capacity(&self, agent: &str) -> Capacity {
        self.capacity.get(agent).cloned().unwrap_or_default()
    }

    /// The context window every endpoint of the agent can serve: the
    /// smallest the router file gives, since any endpoint may be picked.
    #[must_use]
    pub fn context_window(&self, agent: &str) -> Option<u32> {
        self.agents
            .get(agent)?
            .iter()
            .filter_map(|endpoint| endpoint.context_window)
            .min()
    }

    /// The model the agent's endpoints serve under another name than the
    /// agent declares, when they all say the same.
    #[must_use]
    pub fn model(&self, agent: &str) -> Option<String> {
        let endpoints = self.agents.get(agent)?;
        let first = endpoints.first()?.model.clone()?;
        endpoints
            .iter()
            .all(|endpoint| endpoint.model.as_deref() == Some(first.as_str()))
            .then_some(first)
    }

    /// A slot of one of the agent's servers: at once when one is free,
    /// else when the claim's turn comes. `None` when the agent has no
    /// endpoint.
    pub async fn acquire(&self, agent: &str, claim: Claim) -> Option<Lease<'_>> {
        let endpoints = self.agents.get(agent)?;
        let receiver = {
            let mut gate = self.gate();
            if let Some(chosen) = self.choose(&gate, endpoints, claim.affinity) {
                gate.in_flight[endpoints[chosen].server] += 1;
                return Some(Lease {
                    router: self,
                    endpoint: &endpoints[chosen],
                    affinity: claim.affinity,
                });
            }
            let (grant, receiver) = oneshot::channel();
            gate.arrivals += 1;
            let turn = (claim.urgency, Reverse(gate.arrivals));
            gate.waiting.entry(agent.to_string()).or_default().push(
                turn,
                Waiter {
                    affinity: claim.affinity,
                    grant,
                },
            );
            receiver
        };
        let mut waiting = Waiting {
            router: self,
            endpoints,
            receiver: Some(receiver),
        };
        let chosen = waiting.receiver.as_mut()?.await.ok()?;
        waiting.receiver = None;
        Some(Lease {
            router: self,
            endpoint: &endpoints[chosen],
            affinity: claim.affinity,
        })
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The endpoint for a request now, or `None` when it has to wait: a
    /// server with a free slot that is not resting, its own replica
    /// first; when every server rests, the free one that recovers first.
    fn choose(&self, gate: &Gate, endpoints: &[Endpoint], affinity: Option<u64>) -> Option<usize> {
        let now = Instant::now();
        let load = |i: usize| gate.in_flight[endpoints[i].server];
        let server = |i: usize| &self.servers[endpoints[i].server];
        let free = |i: &usize| server(*i).limit.is_none_or(|limit| load(*i) < limit);
        let resting = |i: usize| server(i).resting_until(now);
        let up: Vec<usize> = (0..endpoints.len())
            .filter(|&i| resting(i).is_none())
            .collect();
        if up.is_empty() {
            return (0..endpoints.len())
                .filter(free)
                .min_by_key(|&i| resting(i));
        }
        let least = up.iter().copied().filter(free).min_by_key(|&i| load(i))?;
        let home = affinity.filter(|_| self.affinity).and_then(|key| {
            (0..endpoints.len()).max_by_key(|&i| {
                let digest = Sha256::new()
                    .chain_update(key.to_le_bytes())
                    .chain_update(endpoints[i].url())
                    .finalize();
                u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
            })
        });
        match home {
            Some(home)
                if up.contains(&home)
                    && free(&home)
                    && (server(home).limit.is_some() || load(home) <= load(least)) =>
            {
                Some(home)
            }
            _ => Some(least),
        }
    }

    /// Frees a slot of `server` that served run `after`, and hands it to
    /// the most urgent request waiting for it, of any agent routed there
    /// (of the same run, among the most urgent).
    fn release(&self, server: usize, after: Option<u64>) {
        let mut gate = self.gate();
        gate.in_flight[server] -= 1;
        loop {
            let next = self.sharing[server]
                .iter()
                .filter_map(|agent| {
                    let turn = gate.waiting.get(agent)?.next(after)?;
                    let own = gate.waiting[agent].turns.get(&turn).copied().flatten() == after;
                    Some(((turn.0, own && after.is_some(), turn.1), turn, agent))
                })
                .max()
                .map(|(_, turn, agent)| (turn, agent));
            let Some((turn, agent)) = next else { return };
            let endpoints = &self.agents[agent];
            let Some(waiter) = gate
                .waiting
                .get_mut(agent)
                .and_then(|queue| queue.take(turn))
            else {
                return;
            };
            if waiter.grant.is_closed() {
                continue;
            }
            let Some(chosen) = self.choose(&gate, endpoints, waiter.affinity) else {
                // The freed slot is resting's to keep; the waiter waits on.
                gate.waiting
                    .entry(agent.clone())
                    .or_default()
                    .push(turn, waiter);
                return;
            };
            gate.in_flight[endpoints[chosen].server] += 1;
            if waiter.grant.send(chosen).is_ok() {
                return;
            }
            gate.in_flight[endpoints[chosen].server] -= 1;
        }
    }

    /// Each agent with its endpoints, for readiness checks.
    pub fn agents(&self) -> impl Iterator<Item = (&str, &[Endpoint])> {
        self.agents
            .iter()
            .map(|(agent, endpoints)| (agent.as_str(), endpoints.as_slice()))
    }
}

/// A request waiting for a slot; if it is given up (its run stopped)
/// after a slot was granted to it, the slot goes back.
struct Waiting<'r> {
    router: &'r Router,
    endpoints: &'r [Endpoint],
    receiver: Option<oneshot::Receiver<usize>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(mut receiver) = self.receiver.take() {
            receiver.close();
            if let Ok(chosen) = receiver.try_recv() {
                self.router.release(self.endpoints[chosen].server, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ApiKey;
    use std::path::Path;

    fn router(text: &str, agents: &[&str]) -> Router {
        let config = RouterConfig::parse(Path::new("wfc.toml"), text).unwrap();
        Router::with_env(&config, agents, |_| None).unwrap()
    }

    async fn url(router: &Router, agent: &str, claim: Claim) -> String {
        let lease = router.acquire(agent, claim).await.unwrap();
        lease.endpoint().url().to_string()
    }

    const TWO: &str = "[[agents.Clinical.endpoints]]\nurl = \"http://a/v1\"\nmax_concurrency = 2\n[[agents.Clinical.endpoints]]\nurl = \"http://b/v1\"\nmax_concurrency = 3\n";

    #[tokio::test]
    async fn spreads_load_and_avoids_failing_servers() {
        let router = router(TWO, &["Clinical"]);
        assert_eq!(router.capacity("Clinical").own, Some(5));
        assert_eq!(router.capacity("Clinical").shared, None);
        let first = router.acquire("Clinical", Claim::default()).await.unwrap();
        let second = router.acquire("Clinical", Claim::default()).await.unwrap();
        assert_ne!(first.endpoint().url(), second.endpoint().url());
        drop(second);

        first.record(false);
        let failed = first.endpoint().url().to_string();
        for _ in 0..3 {
            assert_ne!(url(&router, "Clinical", Claim::default()).await, failed);
        }
        first.record(true);
        drop(first);
        let a = router.acquire("Clinical", Claim::default()).await.unwrap();
        let b = router.acquire("Clinical", Claim::default()).await.unwrap();
        assert!([a.endpoint().url(), b.endpoint().url()].contains(&failed.as_str()));
    }

    #[tokio::test]
    async fn all_resting_still_picks_one() {
        let router = router(TWO, &["Clinical"]);
        for _ in 0..2 {
            let lease = router.acquire("Clinical", Claim::default()).await.unwrap();
            lease.record(false);
        }
        assert!(router.acquire("Clinical", Claim::default()).await.is_some());
    }

    const SHARED: &str = "[[agents.Billing.endpoints]]\nurl = \"http://gpu/v1\"\nmax_concurrency = 2\n[[agents.Claims.endpoints]]\nurl = \"http://gpu/v1/\"\nmax_concurrency = 2\n[[agents.Clinical.endpoints]]\nurl = \"http://other/v1\"\nmax_concurrency = 4\n";

    #[tokio::test]
    async fn agents_on_one_server_share_its_slots_most_urgent_first() {
        let router = router(SHARED, &["Billing", "Claims", "Clinical"]);
        let pool = Pool {
            name: "http://gpu/v1".into(),
            limit: 2,
        };
        for agent in ["Billing", "Claims"] {
            let capacity = router.capacity(agent);
            assert_eq!(capacity.own, Some(2), "{agent}");
            assert_eq!(capacity.shared.as_ref(), Some(&pool), "{agent}");
        }
        assert_eq!(
            router.capacity("Clinical").shared,
            None,
            "alone on its server"
        );

        let billing = router.acquire("Billing", Claim::default()).await.unwrap();
        let claims = router.acquire("Claims", Claim::default()).await.unwrap();
        let (order, mut granted) = tokio::sync::mpsc::unbounded_channel();
        let ask = |agent: &'static str, priority: u32| {
            let (router, order) = (&router, order.clone());
            async move {
                let claim = Claim {
                    urgency: (priority, 0),
                    affinity: None,
                };
                let lease = router.acquire(agent, claim).await.unwrap();
                order.send(agent).unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(lease);
            }
        };
        let waiting = async {
            tokio::join!(ask("Claims", 1), ask("Billing", 9), ask("Claims", 5));
        };
        let freeing = async {
            tokio::task::yield_now().await;
            assert!(granted.try_recv().is_err(), "the server is full");
            assert_eq!(
                url(&router, "Clinical", Claim::default()).await,
                "http://other/v1"
            );
            drop(billing);
            drop(claims);
        };
        tokio::join!(waiting, freeing);
        let order: Vec<&str> = std::iter::from_fn(|| granted.try_recv().ok()).collect();
        assert_eq!(order, ["Billing", "Claims", "Claims"]);
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_same_run_among_equally_urgent_requests() {
        let router = router(
            "[[agents.Clinical.endpoints]]\nurl = \"http://a/v1\"\nmax_concurrency = 1\n",
            &["Clinical"],
        );
        let claim = |run, priority| Claim {
            urgency: (priority, 0),
            affinity: Some(run),
        };
        let held = router.acquire("Clinical", claim(1, 0)).await.unwrap();
        let (order, mut granted) = tokio::sync::mpsc::unbounded_channel();
        let ask = |run: u64, priority: u32| {
            let (router, order) = (&router, order.clone());
            async move {
                let lease = router
                    .acquire("Clinical", claim(run, priority))
                    .await
                    .unwrap();
                order.send((run, priority)).unwrap();
                tokio::task::yield_now().await;
                drop(lease);
            }
        };
        let freeing = async {
            tokio::task::yield_now().await;
            drop(held);
        };
        tokio::join!(ask(2, 0), ask(1, 0), ask(3, 0), freeing);
        let order: Vec<(u64, u32)> = std::iter::from_fn(|| granted.try_recv().ok()).collect();
        assert_eq!(
            order,
            [(1, 0), (2, 0), (3, 0)],
            "run 1 held the slot and goes again before run 2, which came first; then by arrival"
        );
    }

    #[tokio::test]
    async fn a_run_keeps_to_its_replica_while_it_has_room() {
        let router = router(
            "[[agents.Clinical.endpoints]]\nurl = \"http://a/v1\"\nmax_concurrency = 2\n[[agents.Clinical.endpoints]]\nurl = \"http://b/v1\"\nmax_concurrency = 2\n",
            &["Clinical"],
        );
        let run = |key| Claim {
            urgency: (0, 0),
            affinity: Some(key),
        };
        let home = url(&router, "Clinical", run(7)).await;
        let first = router.acquire("Clinical", run(7)).await.unwrap();
        let second = router.acquire("Clinical", run(7)).await.unwrap();
        assert_eq!(first.endpoint().url(), home, "idle: the run's own replica");
        assert_eq!(second.endpoint().url(), home, "it still has room");
        let third = router.acquire("Clinical", run(7)).await.unwrap();
        assert_ne!(third.endpoint().url(), home, "full: the other replica");
        drop(second);
        assert_eq!(url(&router, "Clinical", run(7)).await, home, "room again");
    }

    #[test]
    fn keys_come_from_the_environment() {
        let text = "[[agents.Clinical.endpoints]]\nurl = \"http://a/v1\"\napi_key_env = \"CLINICAL_KEY\"\n";
        let config = RouterConfig::parse(Path::new("wfc.toml"), text).unwrap();
        let err = Router::with_env(&config, &["Clinical"], |_| None).unwrap_err();
        assert!(err.to_string().contains("CLINICAL_KEY"));
        let router = Router::with_env(&config, &["Clinical"], |name| {
            (name == "CLINICAL_KEY").then(|| "sk-1".into())
        })
        .unwrap();
        let (_, endpoints) = router.agents().next().unwrap();
        assert_eq!(endpoints[0].target().api_key, Some(ApiKey::new("sk-1")));
        assert!(!format!("{router:?}").contains("sk-1"));
    }

    #[test]
    fn an_agent_without_a_route_is_named() {
        let config = RouterConfig::seed();
        let err = Router::with_env(&config, &["Triage"], |_| None).unwrap_err();
        assert!(err.to_string().contains("`Triage`"), "{err}");
        assert!(err.to_string().contains("WFC_ROUTE_TRIAGE"), "{err}");
    }
}
