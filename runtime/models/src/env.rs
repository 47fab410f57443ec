//! Where a provider is when the configuration does not say: the environment variable its own
//! tools read, then its usual address.

/// A source of environment variables: the process's, or a test's.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Where a provider is when the configuration does not say.
#[derive(Debug)]
pub(crate) struct ProviderDefaults {
    /// The public (or local) address.
    pub(crate) base_url: &'static str,
    /// The variable overriding it, such as `OPENAI_BASE_URL`.
    pub(crate) base_url_env: &'static str,
}

impl ProviderDefaults {
    /// The configured base URL, else the variable's (with `http://` added to a bare
    /// `host:port`, as `OLLAMA_HOST` often is), else the default address.
    pub(crate) fn base_url(&self, configured: Option<&str>, env: Env) -> String {
        let from_env =
            || env(self.base_url_env).filter(|url| !url.trim().is_empty()).map(|url| with_scheme(url.trim()));
        configured.map(str::to_owned).or_else(from_env).unwrap_or_else(|| self.base_url.to_owned())
    }
}

fn with_scheme(url: &str) -> String {
    if url.contains("://") { url.to_owned() } else { format!("http://{url}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: ProviderDefaults = ProviderDefaults { base_url: "http://127.0.0.1:11434", base_url_env: "HOST" };

    #[test]
    fn base_url_prefers_configuration_then_environment_then_default() {
        let env = |name: &str| (name == "HOST").then(|| "0.0.0.0:9999".to_owned());
        assert_eq!(DEFAULTS.base_url(Some("https://configured"), &env), "https://configured");
        assert_eq!(DEFAULTS.base_url(None, &env), "http://0.0.0.0:9999");
        assert_eq!(DEFAULTS.base_url(None, &|_| None), "http://127.0.0.1:11434");
    }
}
