//! Configuration of the functions, read once at cold start from the variables that
//! `docs/configuration.md` lists. A missing or invalid variable is an error naming it.
//!
//! Each function has its own struct, built by `from_env()` or, in tests, by
//! `from_lookup(|name| ...)` over any source of variables.
//!
//! ```
//! use weir_functions::config::{FromVariables, IngestConfig};
//! let config = IngestConfig::from_lookup(|name| (name == "WEIR_STORE").then(|| "memory://".to_string())).unwrap();
//! assert_eq!((config.partitions, config.key_field.as_str()), (16, "/key"));
//!
//! let error = IngestConfig::from_lookup(|_| None).unwrap_err();
//! assert!(error.to_string().contains("WEIR_STORE"));
//! ```

use std::str::FromStr;
use std::time::Duration;

use weir_engine::{EngineSettings, Storage, validate_agent_name};

use crate::dispatch::ApprovalLinks;
use crate::error::{Error, Result};
use crate::metrics::MetricsSwitch;
use crate::sink::SinkTarget;

/// The store URL (`s3://bucket/prefix`, `file:///dir`, `memory://`).
pub const STORE: &str = "WEIR_STORE";
/// The agent's name.
pub const AGENT: &str = "WEIR_AGENT";
/// Partitions of the log, when a function creates it.
pub const PARTITIONS: &str = "WEIR_PARTITIONS";
/// The JSON pointer of a record's key.
pub const KEY_FIELD: &str = "WEIR_KEY_FIELD";
/// The HTTP ingest's URL that approve and deny links point to (dispatch).
pub const APPROVAL_URL: &str = "WEIR_APPROVAL_URL";
/// The secret approval links are signed with (at least 32 bytes); unset: no approval links.
pub const APPROVAL_SECRET: &str = "WEIR_APPROVAL_SECRET";
/// A Secrets Manager secret or SSM parameter (ARN) holding the approval links' secret.
pub const APPROVAL_SECRET_ARN: &str = "WEIR_APPROVAL_SECRET_ARN";
/// The function whose function URL approval links point to (dispatch, on AWS).
pub const APPROVAL_FUNCTION: &str = "WEIR_APPROVAL_FUNCTION";
/// What ingest takes: `records` (the default: every source, and approval links) or
/// `approvals` (approval links only: a public URL that must not take records).
pub const INGEST_ACCEPT: &str = "WEIR_INGEST_ACCEPT";
/// Engine settings overrides, a JSON object.
pub const ENGINE_SETTINGS: &str = "WEIR_ENGINE_SETTINGS";
/// How long before the deadline to stop starting work, in milliseconds.
pub const DEADLINE_MARGIN_MS: &str = "WEIR_DEADLINE_MARGIN_MS";
/// The function invoked when backlog remains.
pub const CONTINUATION_FUNCTION: &str = "WEIR_CONTINUATION_FUNCTION";
/// Where dispatch delivers outputs.
pub const SINK: &str = "WEIR_SINK";
/// The process function, which ingest invokes for the partitions it appended to.
pub const PROCESS_FUNCTION: &str = "WEIR_PROCESS_FUNCTION";
/// The dispatch function, which process invokes for the partitions it committed outputs to.
pub const DISPATCH_FUNCTION: &str = "WEIR_DISPATCH_FUNCTION";
/// Whether the functions print their metrics: `emf` or `off` (`docs/metrics.md`).
pub const METRICS: &str = crate::metrics::METRICS_VARIABLE;
/// Lambda's name for the running function: the default continuation.
const FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";

const DEFAULT_PARTITIONS: u32 = 16;
const DEFAULT_KEY_FIELD: &str = "/key";
const DEFAULT_DEADLINE_MARGIN_MS: u64 = 10_000;

/// What `weir-ingest` needs.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// The store of the log (`WEIR_STORE`).
    pub storage: Storage,
    /// Partitions, if ingest creates the log (`WEIR_PARTITIONS`, default 16).
    pub partitions: u32,
    /// JSON pointer to a record's key (`WEIR_KEY_FIELD`, default `/key`).
    pub key_field: String,
    /// The function to invoke for the partitions appended to (`WEIR_PROCESS_FUNCTION`);
    /// `None`: process runs on its schedule only.
    pub process_function: Option<String>,
    /// The agent the log feeds (`WEIR_AGENT`, optional): the `Agent` dimension of the metrics.
    pub agent: Option<String>,
    /// Whether to print metrics (`WEIR_METRICS`).
    pub metrics: MetricsSwitch,
    /// The secret that approval links are signed with (`WEIR_APPROVAL_SECRET`); `None`:
    /// approval links are refused (docs/waits.md, "Approvals").
    pub approval_secret: Option<Vec<u8>>,
    /// Whether it takes approval links only (`WEIR_INGEST_ACCEPT=approvals`).
    pub approvals_only: bool,
}

/// What the process function needs.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// The store of the log and the commits (`WEIR_STORE`).
    pub storage: Storage,
    /// The agent's name (`WEIR_AGENT`).
    pub agent: String,
    /// Engine settings (`WEIR_ENGINE_SETTINGS` over the defaults).
    pub settings: EngineSettings,
    /// Stop starting batches this long before the deadline (`WEIR_DEADLINE_MARGIN_MS`).
    pub deadline_margin: Duration,
    /// The function to invoke when backlog remains (`WEIR_CONTINUATION_FUNCTION`, default
    /// `AWS_LAMBDA_FUNCTION_NAME`: itself).
    pub continuation_function: String,
    /// The function to invoke for the partitions outputs were committed to
    /// (`WEIR_DISPATCH_FUNCTION`); `None`: dispatch runs on its schedule only.
    pub dispatch_function: Option<String>,
    /// Whether to print metrics (`WEIR_METRICS`).
    pub metrics: MetricsSwitch,
}

/// What `weir-dispatch` needs.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// The store of the commits (`WEIR_STORE`).
    pub storage: Storage,
    /// The agent whose outputs are delivered (`WEIR_AGENT`).
    pub agent: String,
    /// Where they go (`WEIR_SINK`).
    pub sink: SinkTarget,
    /// Partitions, if a `weir:` sink creates the target log (`WEIR_PARTITIONS`).
    pub partitions: u32,
    /// Stop starting deliveries this long before the deadline (`WEIR_DEADLINE_MARGIN_MS`).
    pub deadline_margin: Duration,
    /// Whether to print metrics (`WEIR_METRICS`).
    pub metrics: MetricsSwitch,
    /// Approve and deny links added to approval requests (`WEIR_APPROVAL_URL` and
    /// `WEIR_APPROVAL_SECRET`, both or neither); `None`: requests go out as committed.
    pub approval_links: Option<ApprovalLinks>,
}

/// What `weir-collect` needs.
#[derive(Debug, Clone)]
pub struct CollectConfig {
    /// The store of the log and the commits (`WEIR_STORE`).
    pub storage: Storage,
    /// The agent whose objects are collected (`WEIR_AGENT`).
    pub agent: String,
    /// The engine settings process runs with (`WEIR_ENGINE_SETTINGS`): the grace period and
    /// the retention of outputs and log segments.
    pub settings: EngineSettings,
    /// Stop starting partitions this long before the deadline (`WEIR_DEADLINE_MARGIN_MS`).
    pub deadline_margin: Duration,
}

impl FromVariables for IngestConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let vars = Vars(&lookup);
        let key_field = vars.optional(KEY_FIELD).unwrap_or_else(|| DEFAULT_KEY_FIELD.into());
        if !key_field.starts_with('/') {
            return Err(Error::config(KEY_FIELD, format!("is `{key_field}`, not a JSON pointer such as `/key`")));
        }
        Ok(IngestConfig {
            storage: vars.storage()?,
            partitions: vars.partitions()?,
            key_field,
            process_function: vars.optional(PROCESS_FUNCTION),
            agent: vars
                .optional(AGENT)
                .map(|agent| validate_agent_name(&agent).map(|()| agent))
                .transpose()
                .map_err(|e| Error::config(AGENT, e))?,
            metrics: MetricsSwitch::from_lookup(&lookup)?,
            approval_secret: vars.approval_secret()?,
            approvals_only: match vars.optional(INGEST_ACCEPT).as_deref().map(str::trim) {
                None | Some("records") => false,
                Some("approvals") => {
                    if vars.approval_secret()?.is_none() {
                        return Err(Error::config(APPROVAL_SECRET, "is not set, but ingest takes approvals only"));
                    }
                    true
                }
                Some(other) => {
                    return Err(Error::config(INGEST_ACCEPT, format!("is `{other}`, not `records` or `approvals`")));
                }
            },
        })
    }
}

impl FromVariables for ProcessConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let vars = Vars(&lookup);
        let storage = vars.storage()?;
        let settings = vars.engine_settings()?;
        let continuation_function = vars.optional(CONTINUATION_FUNCTION).or_else(|| vars.optional(FUNCTION_NAME));
        Ok(ProcessConfig {
            agent: vars.agent()?,
            storage,
            settings,
            deadline_margin: vars.deadline_margin()?,
            continuation_function: continuation_function
                .ok_or_else(|| Error::config(CONTINUATION_FUNCTION, format!("is not set, nor is {FUNCTION_NAME}")))?,
            dispatch_function: vars.optional(DISPATCH_FUNCTION),
            metrics: MetricsSwitch::from_lookup(&lookup)?,
        })
    }
}

impl FromVariables for CollectConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let vars = Vars(&lookup);
        let storage = vars.storage()?;
        Ok(CollectConfig {
            agent: vars.agent()?,
            storage,
            settings: vars.engine_settings()?,
            deadline_margin: vars.deadline_margin()?,
        })
    }
}

impl FromVariables for DispatchConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let vars = Vars(&lookup);
        let storage = vars.storage()?;
        Ok(DispatchConfig {
            agent: vars.agent()?,
            storage,
            sink: SinkTarget::parse(&vars.required(SINK)?).map_err(|e| Error::config(SINK, e))?,
            partitions: vars.partitions()?,
            deadline_margin: vars.deadline_margin()?,
            metrics: MetricsSwitch::from_lookup(&lookup)?,
            approval_links: match (vars.optional(APPROVAL_URL), vars.approval_secret()?) {
                (Some(url), Some(secret)) => Some(ApprovalLinks::new(&url, secret)?),
                (None, None) => None,
                (Some(_), None) => return Err(Error::config(APPROVAL_SECRET, "is not set, but WEIR_APPROVAL_URL is")),
                (None, Some(_)) => return Err(Error::config(APPROVAL_URL, "is not set, but WEIR_APPROVAL_SECRET is")),
            },
        })
    }
}

/// A configuration read from variables: the environment, or any lookup in tests.
pub trait FromVariables: Sized {
    /// Reads variables from `lookup`; an error names the variable that is missing or wrong.
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self>;

    /// Reads the process environment.
    fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// Typed access to variables, each error naming its variable.
struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    /// The value; unset and empty are the same (Terraform writes empty strings for nulls).
    fn optional(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String> {
        self.optional(name).ok_or_else(|| Error::config(name, "is not set"))
    }

    fn parsed<T: FromStr>(&self, name: &'static str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            Some(value) => value.trim().parse().map_err(|e| Error::config(name, format!("is `{value}`: {e}"))),
            None => Ok(default),
        }
    }

    /// The approval links' secret, refused when shorter than HMAC-SHA-256 needs.
    fn approval_secret(&self) -> Result<Option<Vec<u8>>> {
        let Some(secret) = self.optional(APPROVAL_SECRET) else { return Ok(None) };
        if secret.len() < 32 {
            let problem = format!("has {} bytes; use at least 32 random bytes", secret.len());
            return Err(Error::config(APPROVAL_SECRET, problem));
        }
        Ok(Some(secret.into_bytes()))
    }

    fn storage(&self) -> Result<Storage> {
        Storage::from_url(&self.required(STORE)?).map_err(|e| Error::config(STORE, e))
    }

    fn agent(&self) -> Result<String> {
        let agent = self.required(AGENT)?;
        validate_agent_name(&agent).map_err(|e| Error::config(AGENT, e))?;
        Ok(agent)
    }

    fn engine_settings(&self) -> Result<EngineSettings> {
        match self.optional(ENGINE_SETTINGS) {
            Some(json) => serde_json::from_str(&json).map_err(|e| Error::config(ENGINE_SETTINGS, e)),
            None => Ok(EngineSettings::default()),
        }
    }

    fn partitions(&self) -> Result<u32> {
        match self.parsed(PARTITIONS, DEFAULT_PARTITIONS)? {
            0 => Err(Error::config(PARTITIONS, "is 0; a log needs at least one partition")),
            n => Ok(n),
        }
    }

    fn deadline_margin(&self) -> Result<Duration> {
        Ok(Duration::from_millis(self.parsed(DEADLINE_MARGIN_MS, DEFAULT_DEADLINE_MARGIN_MS)?))
    }
}
