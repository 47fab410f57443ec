//! The weir functions on the local Lambda emulator, configured as `docs/configuration.md`
//! says and triggered as on AWS: new log segments and a schedule invoke process, the
//! schedule invokes dispatch.

use std::time::Duration;

use weir_emulator::{EmulatorBuilder, FunctionSpec, Trigger};
use weir_functions::config;

use crate::binaries::FunctionBinaries;
use crate::store::Store;

/// The ingest function's name in the emulator.
pub const INGEST: &str = "ingest";
/// The process function's name in the emulator.
pub const PROCESS: &str = "process";
/// The dispatch function's name in the emulator.
pub const DISPATCH: &str = "dispatch";

/// How long one invocation of process or dispatch may run.
const WORK_TIMEOUT: Duration = Duration::from_secs(300);
/// The AWS access key variable.
const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// The AWS secret key variable.
const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// What both are set to when functions need credentials only to call the emulator.
const LOCAL_CREDENTIAL: &str = "weir-local-emulator";
/// How long one invocation of ingest may run.
const INGEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What the functions need to know.
#[derive(Debug, Clone)]
pub struct FunctionsSetup {
    /// Their executables.
    pub binaries: FunctionBinaries,
    /// Their store.
    pub store: Store,
    /// The agent's name (`WEIR_AGENT`).
    pub agent: String,
    /// Further variables of the process function (`WEIR_AGENT_FILE`).
    pub process_env: Vec<(String, String)>,
    /// The JSON pointer to each ingested record's key (`WEIR_KEY_FIELD`).
    pub key_field: String,
    /// Partitions of the log, if ingest creates it.
    pub partitions: u32,
    /// Where dispatch delivers (`WEIR_SINK`); without one, dispatch does not run.
    pub sink: Option<String>,
    /// How often the schedule invokes process and dispatch.
    pub schedule: Duration,
    /// Ingest's function URL, and the approval links through it; `None`: ingest has no URL.
    pub ingest_url: Option<IngestUrl>,
}

/// Ingest's function URL on 127.0.0.1, through which records are posted and approval links
/// followed (docs/waits.md, "Approvals").
#[derive(Debug, Clone)]
pub struct IngestUrl {
    /// Its port; it must be known before the functions start, as dispatch makes links to it.
    pub port: u16,
    /// What ingest checks and dispatch signs approval links with (`WEIR_APPROVAL_SECRET`).
    pub approval_secret: String,
}

impl IngestUrl {
    /// The URL: `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl FunctionsSetup {
    /// An emulator builder with the functions and their triggers registered.
    pub fn emulator(&self) -> EmulatorBuilder {
        let store = self.store.url.as_str();
        let partitions = self.partitions.to_string();
        let ingest = FunctionSpec::new(INGEST, &self.binaries.ingest)
            .with_env(config::STORE, store)
            .with_env(config::PARTITIONS, &partitions)
            .with_env(config::KEY_FIELD, &self.key_field)
            .with_env(config::AGENT, &self.agent)
            .with_timeout(INGEST_TIMEOUT);
        let ingest = match &self.ingest_url {
            Some(url) => ingest.with_url(url.port).with_env(config::APPROVAL_SECRET, &url.approval_secret),
            None => ingest,
        };
        let process = FunctionSpec::new(PROCESS, &self.binaries.process)
            .with_env(config::STORE, store)
            .with_env(config::AGENT, &self.agent)
            .with_timeout(WORK_TIMEOUT)
            .with_concurrency(2);
        let process = self.process_env.iter().fold(process, |spec, (name, value)| spec.with_env(name, value));
        let mut builder = weir_emulator::Emulator::builder()
            .function(self.local_credentials(ingest))
            .function(self.local_credentials(process))
            .trigger(Trigger::log_segments(PROCESS, self.store.storage.clone()))
            .trigger(Trigger::schedule(PROCESS, self.schedule));
        if let Some(sink) = &self.sink {
            let dispatch = FunctionSpec::new(DISPATCH, &self.binaries.dispatch)
                .with_env(config::STORE, store)
                .with_env(config::AGENT, &self.agent)
                .with_env(config::PARTITIONS, &partitions)
                .with_env(config::SINK, sink)
                .with_timeout(WORK_TIMEOUT)
                .with_concurrency(1);
            let dispatch = match &self.ingest_url {
                Some(url) => dispatch
                    .with_env(config::APPROVAL_URL, url.url())
                    .with_env(config::APPROVAL_SECRET, &url.approval_secret),
                None => dispatch,
            };
            builder =
                builder.function(self.local_credentials(dispatch)).trigger(Trigger::schedule(DISPATCH, self.schedule));
        }
        builder
    }

    /// On AWS every function has its role's credentials, and process signs its continuation
    /// invocations with them. The emulator checks no signature, so with a local store and no
    /// credentials in the environment, functions get placeholders; with an S3 store they
    /// inherit the real ones.
    fn local_credentials(&self, spec: FunctionSpec) -> FunctionSpec {
        let local = !self.store.url.starts_with("s3://");
        if local && std::env::var_os(AWS_ACCESS_KEY_ID).is_none() {
            spec.with_env(AWS_ACCESS_KEY_ID, LOCAL_CREDENTIAL).with_env(AWS_SECRET_ACCESS_KEY, LOCAL_CREDENTIAL)
        } else {
            spec
        }
    }
}
