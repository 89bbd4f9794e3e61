//! The router file and its environment overrides.
//!
//! ```toml
//! [defaults]
//! timeout = "120s"
//!
//! [[agents.Clinical.endpoints]]
//! url = "http://gpu-1:8085/v1"
//! api_key_env = "CLINICAL_API_KEY"
//! max_concurrency = 4
//! ```
//!
//! `WFC_ROUTE_<AGENT>` (the agent's name in capitals) replaces an agent's
//! URLs with a comma-separated list, keeping the file's other settings, so a
//! CI job or a container can point a workflow elsewhere without a new file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::check::phi::Receiver;
use crate::client::{ApiKey, Target};
use crate::retrieve::{Corpora, Location};

/// The name wfc looks for next to a workflow file.
pub const FILE_NAME: &str = "wfc.toml";

/// The seed's deployment: one llama.cpp server per model on this machine.
const SEED_ROUTES: [(&str, &str); 4] = [
    ("Clinical", "http://127.0.0.1:8085/v1"),
    ("MedicalQA", "http://127.0.0.1:8081/v1"),
    ("Billing", "http://127.0.0.1:8084/v1"),
    ("Claims", "http://127.0.0.1:8084/v1"),
];

const DEFAULT_TIMEOUT: Duration = Duration::from_mins(2);

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("cannot read the router file `{}`: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("the router file `{}` is not valid: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "agent `{agent}` has no endpoint; add an `[[agents.{agent}.endpoints]]` table with a `url` to {FILE_NAME}, or set WFC_ROUTE_{}",
        agent.to_uppercase()
    )]
    Unrouted { agent: String },
    #[error(
        "the environment variable `{variable}` holds the API key for {owner} (api_key_env in the router file) but is not set"
    )]
    MissingKey {
        /// Who needs the key: "agent `Clinical`", "the embeddings endpoint".
        owner: String,
        variable: String,
    },
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    pub agents: BTreeMap<String, AgentRoute>,
    /// Where each corpus's documents and index are; a corpus not named
    /// here is at its default place beside this file.
    #[serde(default)]
    corpora: BTreeMap<String, CorpusRoute>,
    /// The server that embeds passages and queries for dense search.
    embeddings: Option<EmbeddingsRoute>,
    /// The folder of the router file, which its relative paths start
    /// from; `None` for a deployment without a file.
    #[serde(skip)]
    folder: Option<PathBuf>,
}

/// `[embeddings]`: an OpenAI-compatible `/embeddings` endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbeddingsRoute {
    /// The base URL `/embeddings` is appended to.
    url: String,
    /// The embedding model's name, which also keys the stored vectors.
    model: String,
    api_key_env: Option<String>,
    timeout: Option<String>,
}

/// Where passages and queries are embedded, with which model.
#[derive(Debug, Clone)]
pub struct Embedder {
    pub target: Target,
    pub model: String,
}

/// `[corpora.PayerPolicies]`: a corpus indexed on local disk (inside the
/// PHI boundary), or held by an external engine (outside it unless marked).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CorpusRoute {
    /// The folder of its documents.
    path: Option<PathBuf>,
    /// The folder its index is kept in.
    index: Option<PathBuf>,
    /// The base URL of the Chroma server that holds it instead.
    chroma: Option<String>,
    /// Its collection there; the corpus's name in snake case by default.
    collection: Option<String>,
    api_key_env: Option<String>,
    timeout: Option<String>,
    /// The external engine runs inside the PHI boundary.
    #[serde(default)]
    phi_allowed: bool,
}

/// A corpus held by a Chroma server.
#[derive(Debug, Clone)]
pub struct ChromaCorpus {
    pub server: Target,
    pub collection: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Defaults {
    timeout: Option<String>,
    /// Whether a run's tasks keep to one replica of an agent while it has
    /// room (default true): off for servers that keep no prompt cache.
    affinity: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRoute {
    pub endpoints: Vec<EndpointConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// The base URL `/chat/completions` is appended to.
    pub url: String,
    /// The model name the server expects; the agent's `model` when absent.
    pub model: Option<String>,
    /// The environment variable that holds the API key: keys never sit in
    /// the file itself.
    pub api_key_env: Option<String>,
    /// Longest time one request may take, e.g. `"90s"`.
    pub timeout: Option<String>,
    /// Requests this server takes at once.
    pub max_concurrency: Option<u32>,
    /// The server runs inside the boundary where protected health
    /// information may go; `wfc check --router` holds workflows to it.
    #[serde(default)]
    pub phi_allowed: bool,
    /// The tokens this server's model takes, prompt and answer together
    /// (llama.cpp's `-c`); the agent's `context_window` when absent.
    pub context_window: Option<u32>,
}

impl EndpointConfig {
    fn at(url: &str) -> Self {
        EndpointConfig {
            url: url.to_string(),
            model: None,
            api_key_env: None,
            timeout: None,
            max_concurrency: None,
            phi_allowed: false,
            context_window: None,
        }
    }
}

impl RouterConfig {
    /// The seed's deployment, for when there is no router file.
    #[must_use]
    pub fn seed() -> Self {
        Self::from_urls(SEED_ROUTES.map(|(agent, url)| (agent.to_string(), url)))
    }

    /// Every agent served by the one server at `base_url` (the mock backend).
    pub fn everything_at(base_url: &str, agents: impl IntoIterator<Item = String>) -> Self {
        Self::from_urls(agents.into_iter().map(|agent| (agent, base_url)))
    }

    fn from_urls<'a>(routes: impl IntoIterator<Item = (String, &'a str)>) -> Self {
        let agents = routes
            .into_iter()
            .map(|(agent, url)| {
                let endpoints = vec![EndpointConfig::at(url)];
                (agent, AgentRoute { endpoints })
            })
            .collect();
        RouterConfig {
            defaults: Defaults::default(),
            agents,
            corpora: BTreeMap::new(),
            embeddings: None,
            folder: None,
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, RouterError> {
        let mut config: RouterConfig =
            toml::from_str(text).map_err(|err| RouterError::Invalid {
                path: path.to_path_buf(),
                reason: err.to_string(),
            })?;
        config.validate(path)?;
        config.folder = Some(crate::files::folder_of(path));
        Ok(config)
    }

    pub fn read(path: &Path) -> Result<Self, RouterError> {
        let text = std::fs::read_to_string(path).map_err(|err| RouterError::Unreadable {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// The router file given, else `wfc.toml` beside the workflow; `None`
    /// means the seed's deployment.
    #[must_use]
    pub fn locate(given: Option<&Path>, workflow: &Path) -> Option<PathBuf> {
        given.map(Path::to_path_buf).or_else(|| {
            workflow
                .parent()
                .map(|dir| dir.join(FILE_NAME))
                .filter(|path| path.is_file())
        })
    }

    /// The router file at `path`, or the seed's deployment without one.
    /// The environment's `WFC_ROUTE_*` overrides apply when the run
    /// connects to it.
    pub fn read_or_seed(path: Option<&Path>) -> Result<Self, RouterError> {
        path.map_or_else(|| Ok(Self::seed()), Self::read)
    }

    pub fn apply_overrides(&mut self, agents: &[&str], var: impl Fn(&str) -> Option<String>) {
        for agent in agents {
            let Some(value) = var(&format!("WFC_ROUTE_{}", agent.to_uppercase())) else {
                continue;
            };
            let template = self
                .agents
                .get(*agent)
                .and_then(|route| route.endpoints.first().cloned())
                .unwrap_or_else(|| EndpointConfig::at(""));
            let endpoints = value
                .split(',')
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .map(|url| EndpointConfig {
                    url: url.to_string(),
                    ..template.clone()
                })
                .collect();
            self.agents
                .insert(agent.to_string(), AgentRoute { endpoints });
        }
    }

    fn validate(&self, path: &Path) -> Result<(), RouterError> {
        let invalid = |reason: String| RouterError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(timeout) = &self.defaults.timeout {
            parse_duration(timeout).map_err(invalid)?;
        }
        for (name, route) in &self.corpora {
            let Some(url) = &route.chroma else { continue };
            if route.path.is_some() || route.index.is_some() {
                return Err(invalid(format!(
                    "corpus `{name}` gives both `chroma` and a local `path` or `index`; a corpus is held in one place"
                )));
            }
            server_problem(url, route.timeout.as_deref())
                .map_err(|reason| invalid(format!("corpus `{name}`: {reason}")))?;
        }
        if let Some(route) = &self.embeddings {
            server_problem(&route.url, route.timeout.as_deref())
                .map_err(|reason| invalid(format!("[embeddings]: {reason}")))?;
        }
        for (agent, route) in &self.agents {
            if route.endpoints.is_empty() {
                return Err(invalid(format!("agent `{agent}` lists no endpoints")));
            }
            for endpoint in &route.endpoints {
                server_problem(&endpoint.url, endpoint.timeout.as_deref())
                    .map_err(|reason| invalid(format!("agent `{agent}`: {reason}")))?;
                if endpoint.max_concurrency == Some(0) {
                    return Err(invalid(format!(
                        "agent `{agent}`: max_concurrency must be at least 1"
                    )));
                }
                if endpoint.context_window == Some(0) {
                    return Err(invalid(format!(
                        "agent `{agent}`: context_window must be at least 1"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether `agent` may receive PHI: it has endpoints, and every one of
    /// them says `phi_allowed = true`.
    #[must_use]
    pub fn phi_allowed(&self, agent: &str) -> bool {
        self.agents.get(agent).is_some_and(|route| {
            !route.endpoints.is_empty() && route.endpoints.iter().all(|e| e.phi_allowed)
        })
    }

    /// Where corpora are: the router file's folder, else `fallback` (the
    /// workflow's), with the places the file gives.
    #[must_use]
    pub fn corpora(&self, fallback: &Path) -> Corpora {
        let home = self.folder.as_deref().unwrap_or(fallback);
        let routes = self
            .corpora
            .iter()
            .map(|(name, route)| {
                let default = Location::default_in(home, name);
                let place = |given: &Option<PathBuf>, default: PathBuf| {
                    given.as_ref().map_or(default, |path| home.join(path))
                };
                let location = Location {
                    folder: place(&route.path, default.folder),
                    index: place(&route.index, default.index),
                };
                (name.clone(), location)
            })
            .collect();
        Corpora::new(home, routes)
    }

    /// The embeddings endpoint, when the deployment has one, with its key
    /// read from the environment by `var`.
    pub fn embedder(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Embedder>, RouterError> {
        let Some(route) = &self.embeddings else {
            return Ok(None);
        };
        let api_key = api_key(
            route.api_key_env.as_deref(),
            "the embeddings endpoint",
            &var,
        )?;
        Ok(Some(Embedder {
            target: Target {
                base_url: route.url.trim_end_matches('/').to_string(),
                api_key,
                timeout: self.timeout_of_text(route.timeout.as_deref()),
            },
            model: route.model.clone(),
        }))
    }

    /// Whether this deployment keeps PHI sent to `receiver` inside the
    /// boundary: an agent when every endpoint says so; a corpus indexed on
    /// local disk always, one held by an external engine when it says so.
    #[must_use]
    pub fn receives_phi(&self, receiver: Receiver<'_>) -> bool {
        match receiver {
            Receiver::Agent(agent) => self.phi_allowed(agent),
            Receiver::Corpus(corpus) => self
                .corpora
                .get(corpus)
                .is_none_or(|route| route.chroma.is_none() || route.phi_allowed),
        }
    }

    /// The corpora held by Chroma servers, by name, with their keys read
    /// from the environment by `var`.
    pub fn chroma_corpora(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<BTreeMap<String, ChromaCorpus>, RouterError> {
        let mut found = BTreeMap::new();
        for (name, route) in &self.corpora {
            let Some(url) = &route.chroma else { continue };
            let owner = format!("corpus `{name}`");
            let api_key = api_key(route.api_key_env.as_deref(), &owner, &var)?;
            let server = Target {
                base_url: url.trim_end_matches('/').to_string(),
                api_key,
                timeout: self.timeout_of_text(route.timeout.as_deref()),
            };
            let collection = route
                .collection
                .clone()
                .unwrap_or_else(|| crate::retrieve::snake_case(name));
            found.insert(name.clone(), ChromaCorpus { server, collection });
        }
        Ok(found)
    }

    /// Whether a run's tasks keep to one replica while it has room.
    #[must_use]
    pub fn affinity(&self) -> bool {
        self.defaults.affinity.unwrap_or(true)
    }

    pub(super) fn timeout_of(&self, endpoint: &EndpointConfig) -> Duration {
        self.timeout_of_text(endpoint.timeout.as_deref())
    }

    /// A stated timeout (validated already), else the file's default.
    fn timeout_of_text(&self, stated: Option<&str>) -> Duration {
        stated
            .or(self.defaults.timeout.as_deref())
            .and_then(|text| parse_duration(text).ok())
            .unwrap_or(DEFAULT_TIMEOUT)
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|err| format!("`{text}` is not a duration such as \"30s\" or \"2m\": {err}"))
}

/// Why a server's `url` or `timeout` cannot be used, if it cannot.
fn server_problem(url: &str, timeout: Option<&str>) -> Result<(), String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    }
    timeout.map_or(Ok(()), |timeout| parse_duration(timeout).map(drop))
}

/// The API key in the environment variable `variable` (when the router file
/// names one) of `owner`, read by `var`.
pub(super) fn api_key(
    variable: Option<&str>,
    owner: &str,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Option<ApiKey>, RouterError> {
    variable
        .map(|variable| {
            var(variable)
                .map(ApiKey::new)
                .ok_or_else(|| RouterError::MissingKey {
                    owner: owner.to_string(),
                    variable: variable.to_string(),
                })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_endpoints_and_rejects_typos() {
        let text = r#"
            [defaults]
            timeout = "30s"
            [[agents.Clinical.endpoints]]
            url = "http://a:1/v1"
            max_concurrency = 2
            [[agents.Clinical.endpoints]]
            url = "http://b:1/v1"
            timeout = "5s"
        "#;
        let config = RouterConfig::parse(Path::new("wfc.toml"), text).unwrap();
        let endpoints = &config.agents["Clinical"].endpoints;
        assert_eq!(endpoints.len(), 2);
        assert_eq!(config.timeout_of(&endpoints[0]), Duration::from_secs(30));
        assert_eq!(config.timeout_of(&endpoints[1]), Duration::from_secs(5));

        let typo = "[[agents.Clinical.endpoints]]\nurl = \"http://a/v1\"\napi_key = \"x\"\n";
        let err = RouterConfig::parse(Path::new("wfc.toml"), typo).unwrap_err();
        assert!(err.to_string().contains("api_key"), "{err}");

        let bad_url = "[[agents.Clinical.endpoints]]\nurl = \"gpu-1:8085\"\n";
        assert!(RouterConfig::parse(Path::new("wfc.toml"), bad_url).is_err());
    }

    #[test]
    fn environment_overrides_replace_urls_and_keep_settings() {
        let mut config = RouterConfig::parse(
            Path::new("wfc.toml"),
            "[[agents.Clinical.endpoints]]\nurl = \"http://a/v1\"\nmax_concurrency = 3\n",
        )
        .unwrap();
        config.apply_overrides(&["Clinical", "Triage", "Billing"], |name| match name {
            "WFC_ROUTE_CLINICAL" => Some("http://x/v1, http://y/v1".into()),
            "WFC_ROUTE_TRIAGE" => Some("http://z/v1".into()),
            _ => None,
        });
        let clinical = &config.agents["Clinical"].endpoints;
        assert_eq!(clinical.len(), 2);
        assert_eq!(clinical[1].url, "http://y/v1");
        assert_eq!(clinical[1].max_concurrency, Some(3));
        assert_eq!(config.agents["Triage"].endpoints[0].url, "http://z/v1");
        assert!(!config.agents.contains_key("Billing"));
    }
}
