//! Choosing an endpoint for each request: the one with the fewest requests
//! outstanding, passing over endpoints that failed recently until their
//! cool-down ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{RouterConfig, RouterError};
use crate::client::{ApiKey, Target};

/// After a failure an endpoint rests 1 s, then 2 s, 4 s ... up to this.
const LONGEST_REST: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Endpoint {
    target: Target,
    /// The model name sent to this server, when it differs from the agent's.
    pub model: Option<String>,
    pub max_concurrency: Option<u32>,
    /// The tokens this server's model takes, when the router file says.
    pub context_window: Option<u32>,
    outstanding: AtomicUsize,
    health: Mutex<Health>,
}

#[derive(Debug, Default)]
struct Health {
    failures: u32,
    resting_until: Option<Instant>,
}

impl Endpoint {
    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn url(&self) -> &str {
        &self.target.base_url
    }

    /// Records how a request ended, so the next choice can avoid an
    /// endpoint that is failing.
    pub fn record(&self, healthy: bool) {
        let mut health = self.health.lock().expect("health lock");
        if healthy {
            *health = Health::default();
        } else {
            let rest = Duration::from_secs(1 << health.failures.min(5)).min(LONGEST_REST);
            health.failures += 1;
            health.resting_until = Some(Instant::now() + rest);
        }
    }

    fn resting_until(&self, now: Instant) -> Option<Instant> {
        let health = self.health.lock().expect("health lock");
        health.resting_until.filter(|until| *until > now)
    }
}

/// An endpoint chosen for one request; it counts as outstanding until dropped.
#[derive(Debug)]
pub struct Lease {
    endpoint: Arc<Endpoint>,
}

impl Lease {
    #[must_use]
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.endpoint.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
pub struct Router {
    agents: HashMap<String, Vec<Arc<Endpoint>>>,
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
                let api_key = match &endpoint.api_key_env {
                    Some(variable) => Some(ApiKey::new(var(variable).ok_or_else(|| {
                        RouterError::MissingKey {
                            agent: agent.to_string(),
                            variable: variable.clone(),
                        }
                    })?)),
                    None => None,
                };
                endpoints.push(Arc::new(Endpoint {
                    target: Target {
                        base_url: endpoint.url.trim_end_matches('/').to_string(),
                        api_key,
                        timeout: config.timeout_of(endpoint),
                    },
                    model: endpoint.model.clone(),
                    max_concurrency: endpoint.max_concurrency,
                    context_window: endpoint.context_window,
                    outstanding: AtomicUsize::new(0),
                    health: Mutex::new(Health::default()),
                }));
            }
            router.agents.insert(agent.to_string(), endpoints);
        }
        Ok(router)
    }

    /// How many requests the agent's servers take at once, when every
    /// endpoint states a limit.
    #[must_use]
    pub fn capacity(&self, agent: &str) -> Option<usize> {
        self.agents
            .get(agent)?
            .iter()
            .map(|endpoint| endpoint.max_concurrency.map(|n| n as usize))
            .sum()
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

    /// The endpoint for the agent's next request: the least busy of those
    /// not resting; when all rest, the one that recovers first.
    #[must_use]
    pub fn pick(&self, agent: &str) -> Option<Lease> {
        let endpoints = self.agents.get(agent)?;
        let now = Instant::now();
        let load = |endpoint: &Arc<Endpoint>| endpoint.outstanding.load(Ordering::Relaxed);
        let chosen = endpoints
            .iter()
            .filter(|endpoint| endpoint.resting_until(now).is_none())
            .min_by_key(|endpoint| load(endpoint))
            .or_else(|| {
                endpoints
                    .iter()
                    .min_by_key(|endpoint| endpoint.resting_until(now))
            })?;
        chosen.outstanding.fetch_add(1, Ordering::Relaxed);
        Some(Lease {
            endpoint: chosen.clone(),
        })
    }

    /// Each agent with its endpoints, for readiness checks.
    pub fn agents(&self) -> impl Iterator<Item = (&str, &[Arc<Endpoint>])> {
        self.agents
            .iter()
            .map(|(agent, endpoints)| (agent.as_str(), endpoints.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn router(text: &str, var: impl Fn(&str) -> Option<String>) -> Result<Router, RouterError> {
        let config = RouterConfig::parse(Path::new("wfc.toml"), text).unwrap();
        Router::with_env(&config, &["Clinical"], var)
    }

    const TWO: &str = "[[agents.Clinical.endpoints]]\nurl = \"http://a/v1\"\nmax_concurrency = 2\n[[agents.Clinical.endpoints]]\nurl = \"http://b/v1\"\nmax_concurrency = 3\n";

    #[test]
    fn spreads_load_and_avoids_failing_endpoints() {
        let router = router(TWO, |_| None).unwrap();
        assert_eq!(router.capacity("Clinical"), Some(5));
        let first = router.pick("Clinical").unwrap();
        let second = router.pick("Clinical").unwrap();
        assert_ne!(first.endpoint().url(), second.endpoint().url());
        drop(second);

        first.endpoint().record(false);
        let failed = first.endpoint().url().to_string();
        for _ in 0..3 {
            assert_ne!(router.pick("Clinical").unwrap().endpoint().url(), failed);
        }
        first.endpoint().record(true);
        drop(first);
        let picks: Vec<String> = (0..2)
            .map(|_| {
                router
                    .pick("Clinical")
                    .unwrap()
                    .endpoint()
                    .url()
                    .to_string()
            })
            .collect();
        assert!(picks.contains(&failed));
    }

    #[test]
    fn all_resting_still_picks_one() {
        let router = router(TWO, |_| None).unwrap();
        for _ in 0..2 {
            router.pick("Clinical").unwrap().endpoint().record(false);
        }
        assert!(router.pick("Clinical").is_some());
    }

    #[test]
    fn keys_come_from_the_environment() {
        let text = "[[agents.Clinical.endpoints]]\nurl = \"http://a/v1\"\napi_key_env = \"CLINICAL_KEY\"\n";
        let err = router(text, |_| None).unwrap_err();
        assert!(err.to_string().contains("CLINICAL_KEY"));
        let router = router(text, |name| (name == "CLINICAL_KEY").then(|| "sk-1".into())).unwrap();
        let lease = router.pick("Clinical").unwrap();
        assert_eq!(lease.endpoint().target().api_key, Some(ApiKey::new("sk-1")));
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
