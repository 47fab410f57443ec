//! How a request reaches one provider URL: HTTP/1.1 on keep-alive connections, each driven by
//! the task whose request it carries.
//!
//! A model call is one request and one reply, a few hundred at once per provider. A general
//! client (reqwest over hyper-util's pool) runs each connection as a task of its own and sends
//! every request through redirect, retry and timeout layers, a cost paid on every model call.
//! Here the calling task polls the connection itself, so a
//! request costs no hand-off between tasks and no per-request layers. Through a proxy (the
//! `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` variables, read as reqwest reads
//! them) requests go through reqwest instead, which speaks to proxies.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use reqwest::Url;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_util::either::Either;

/// A provider's reply, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A request that got no reply: the connection failed, or the reply did not come in time.
#[derive(Debug)]
pub(crate) struct TransportError {
    /// What went wrong, with its causes.
    pub message: String,
    /// Whether the reply did not come within the request timeout.
    pub timed_out: bool,
}

/// Posts JSON bodies to one URL.
#[derive(Debug)]
pub(crate) enum Transport {
    Direct(Direct),
    Proxied { client: reqwest::Client, url: Url, headers: HeaderMap },
}

impl Transport {
    /// A transport to `url` sending `headers` with every request; connections time out after
    /// `connect_timeout`, requests (connection included) after `timeout`.
    pub(crate) fn new(
        url: Url,
        headers: HeaderMap,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, String> {
        Self::with_proxies(url, headers, connect_timeout, timeout, &Matcher::from_env())
    }

    /// Like [`new`](Self::new), through the proxy `proxies` names for `url`, if any.
    fn with_proxies(
        url: Url,
        mut headers: HeaderMap,
        connect_timeout: Duration,
        timeout: Duration,
        proxies: &Matcher,
    ) -> Result<Self, String> {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let uri: Uri = url.as_str().parse().map_err(|error| format!("URL `{url}`: {error}"))?;
        let Some(proxy) = proxies.intercept(&uri) else {
            return Ok(Transport::Direct(Direct::new(&url, headers, connect_timeout, timeout, None)?));
        };
        let mut through = reqwest::Proxy::all(proxy.uri().to_string())
            .map_err(|error| format!("proxy `{}`: {error}", proxy.uri()))?;
        if let Some(auth) = proxy.basic_auth() {
            through = through.custom_http_auth(auth.clone());
        }
        let client = reqwest::Client::builder()
            .proxy(through)
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .build()
            .map_err(|error| format!("cannot build an HTTP client: {error}"))?;
        Ok(Transport::Proxied { client, url, headers })
    }

    /// Posts `body` and reads the whole reply.
    pub(crate) async fn post(&self, body: Bytes) -> Result<Reply, TransportError> {
        match self {
            Transport::Direct(direct) => direct.post(body).await,
            Transport::Proxied { client, url, headers } => {
                let request = client.post(url.clone()).headers(headers.clone()).body(body);
                let failed = |error: reqwest::Error| TransportError {
                    timed_out: error.is_timeout(),
                    message: with_causes(&error),
                };
                let response = request.send().await.map_err(failed)?;
                let (status, headers) = (response.status(), response.headers().clone());
                let body = response.bytes().await.map_err(failed)?;
                Ok(Reply { status, headers, body })
            }
        }
    }
}

/// Plain TCP, or TLS over it.
type Stream = Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>;

/// Connections to one origin, idle ones kept for the next request.
pub(crate) struct Direct {
    host: String,
    port: u16,
    /// The TLS set-up and the name to verify, for `https`.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// The request target: path and query.
    target: Uri,
    headers: HeaderMap,
    connect_timeout: Duration,
    timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Direct {
    /// Connections to `url`'s origin; `tls` replaces the platform's certificate verification
    /// (tests trust their own certificate this way).
    fn new(
        url: &Url,
        mut headers: HeaderMap,
        connect_timeout: Duration,
        timeout: Duration,
        tls: Option<ClientConfig>,
    ) -> Result<Self, String> {
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.to_owned(),
            Some(url::Host::Ipv4(address)) => address.to_string(),
            Some(url::Host::Ipv6(address)) => address.to_string(),
            None => return Err(format!("URL `{url}` has no host")),
        };
        let port = url.port_or_known_default().ok_or_else(|| format!("URL `{url}` has no port"))?;
        let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
        headers.insert(HOST, HeaderValue::from_str(authority).map_err(|error| format!("host `{authority}`: {error}"))?);
        let target = url[url::Position::BeforePath..url::Position::AfterQuery]
            .parse()
            .map_err(|error| format!("URL `{url}`: {error}"))?;
        let tls = match url.scheme() {
            "https" => {
                let mut config = match tls {
                    Some(config) => config,
                    None => platform_tls()?,
                };
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                let name = ServerName::try_from(host.clone()).map_err(|error| format!("host `{host}`: {error}"))?;
                Some((TlsConnector::from(Arc::new(config)), name))
            }
            _ => None,
        };
        Ok(Direct { host, port, tls, target, headers, connect_timeout, timeout, idle: Mutex::new(Vec::new()) })
    }

    async fn post(&self, body: Bytes) -> Result<Reply, TransportError> {
        let exchange = async {
            let mut connection = match self.idle_connection() {
                Some(connection) => connection,
                None => self.connect().await?,
            };
            let mut request = Request::new(Full::new(body));
            *request.method_mut() = Method::POST;
            *request.uri_mut() = self.target.clone();
            *request.headers_mut() = self.headers.clone();
            let reply = connection
                .exchange(request)
                .await
                .map_err(|error| TransportError { message: with_causes(&error), timed_out: false })?;
            if connection.open() {
                self.idle.lock().expect("no thread panics holding the pool").push(connection);
            }
            Ok(reply)
        };
        tokio::time::timeout(self.timeout, exchange).await.unwrap_or_else(|_| {
            Err(TransportError { message: format!("timed out after {} ms", self.timeout.as_millis()), timed_out: true })
        })
    }

    /// An idle connection the server has not closed meanwhile, if there is one.
    fn idle_connection(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().expect("no thread panics holding the pool");
        while let Some(mut connection) = idle.pop() {
            if connection.still_open() {
                return Some(connection);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Connection, TransportError> {
        let connect = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
            tcp.set_nodelay(true)?;
            let stream: Stream = match &self.tls {
                Some((connector, name)) => Either::Right(connector.connect(name.clone(), tcp).await?),
                None => Either::Left(tcp),
            };
            Ok::<_, std::io::Error>(stream)
        };
        let failed = |message: String| TransportError {
            message: format!("cannot connect to {}:{}: {message}", self.host, self.port),
            timed_out: false,
        };
        let stream = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| failed(format!("timed out after {} ms", self.connect_timeout.as_millis())))?
            .map_err(|error| failed(with_causes(&error)))?;
        let (sender, driver) =
            http1::handshake(TokioIo::new(stream)).await.map_err(|error| failed(with_causes(&error)))?;
        Ok(Connection { sender, driver, closed: false })
    }
}

/// One HTTP/1.1 connection: the half that sends requests, and the half that does the I/O,
/// which whoever awaits a reply polls.
struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: http1::Connection<TokioIo<Stream>, Full<Bytes>>,
    /// The I/O half finished: the server closed the connection, or asked to.
    closed: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("closed", &self.closed).finish_non_exhaustive()
    }
}

impl Connection {
    /// Sends `request` and reads the whole reply.
    async fn exchange(&mut self, request: Request<Full<Bytes>>) -> Result<Reply, hyper::Error> {
        let Connection { sender, driver, closed } = self;
        drive(driver, closed, sender.ready()).await??;
        let response = drive(driver, closed, sender.send_request(request)).await??;
        let (parts, body) = response.into_parts();
        let body = drive(driver, closed, body.collect()).await??.to_bytes();
        Ok(Reply { status: parts.status, headers: parts.headers, body })
    }

    /// Whether another request may be sent on this connection.
    fn open(&self) -> bool {
        !self.closed && !self.sender.is_closed()
    }

    /// Like [`open`](Self::open), after reading what the server sent while the connection was
    /// idle: a close shows only when the I/O half is polled.
    fn still_open(&mut self) -> bool {
        if !self.closed {
            let mut context = Context::from_waker(Waker::noop());
            if self.driver.poll_without_shutdown(&mut context).is_ready() {
                self.closed = true;
            }
        }
        self.open()
    }
}

/// Runs `future` while doing the connection's I/O, which the future waits on.
async fn drive<F: Future>(
    driver: &mut http1::Connection<TokioIo<Stream>, Full<Bytes>>,
    closed: &mut bool,
    future: F,
) -> Result<F::Output, hyper::Error> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|context| {
        if !*closed {
            match driver.poll_without_shutdown(context) {
                Poll::Ready(Ok(())) => *closed = true,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => {}
            }
        }
        // Once the I/O half is done, hyper ends whatever waits on it with an error.
        future.as_mut().poll(context).map(Ok)
    })
    .await
}

/// The TLS set-up reqwest uses: the operating system's certificate verification, with
/// aws-lc-rs for the cryptography.
fn platform_tls() -> Result<ClientConfig, String> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|error| format!("cannot load the system's certificates: {error}"))?;
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS set-up: {error}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// An error's message followed by its causes.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio_rustls::rustls::{RootCertStore, ServerConfig};

    use super::*;

    const CERT: &[u8] = include_bytes!("../tests/fixtures/tls/localhost.cert.der");
    const KEY: &[u8] = include_bytes!("../tests/fixtures/tls/localhost.key.der");

    /// The head of one request (its body read and dropped); `None` once the client closed.
    async fn read_request(stream: &mut (impl AsyncRead + Unpin)) -> Option<String> {
        let mut bytes = Vec::new();
        let head_end = loop {
            if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(read) => bytes.extend_from_slice(&chunk[..read]),
            }
        };
        let head = String::from_utf8(bytes[..head_end].to_vec()).unwrap();
        let length: usize = head
            .lines()
            .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
            .map_or(0, |v| v.parse().unwrap());
        let mut body = bytes.len() - head_end - 4;
        while body < length {
            let mut chunk = [0u8; 4096];
            body += stream.read(&mut chunk).await.unwrap();
        }
        Some(head)
    }

    /// Serves `stream`: each request's head goes to `heads`, and gets `{"n":N}` back; after
    /// `per_connection` requests the server closes the connection without saying so first.
    async fn answer(
        mut stream: impl AsyncRead + AsyncWrite + Unpin,
        heads: Arc<Mutex<Vec<String>>>,
        per_connection: usize,
    ) {
        for _ in 0..per_connection {
            let Some(head) = read_request(&mut stream).await else { return };
            let n = {
                let mut heads = heads.lock().unwrap();
                heads.push(head);
                heads.len()
            };
            let body = format!(r#"{{"n":{n}}}"#);
            let reply = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            stream.write_all(reply.as_bytes()).await.unwrap();
        }
        stream.shutdown().await.unwrap();
    }

    struct TestServer {
        port: u16,
        connections: Arc<AtomicUsize>,
        heads: Arc<Mutex<Vec<String>>>,
    }

    async fn start(tls: Option<ServerConfig>, per_connection: usize) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (connections, heads) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
        let acceptor = tls.map(|config| tokio_rustls::TlsAcceptor::from(Arc::new(config)));
        let (counted, served) = (connections.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let (acceptor, heads) = (acceptor.clone(), served.clone());
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => answer(acceptor.accept(tcp).await.unwrap(), heads, per_connection).await,
                        None => answer(tcp, heads, per_connection).await,
                    }
                });
            }
        });
        TestServer { port, connections, heads }
    }

    fn direct(url: &str, tls: Option<ClientConfig>) -> Direct {
        let (second, minute) = (Duration::from_secs(1), Duration::from_secs(60));
        Direct::new(&Url::parse(url).unwrap(), HeaderMap::new(), second, minute, tls).unwrap()
    }

    fn provider() -> Arc<tokio_rustls::rustls::crypto::CryptoProvider> {
        Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider())
    }

    /// The server side of TLS, with the test certificate.
    fn server_tls() -> ServerConfig {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(KEY.to_vec()));
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(CERT.to_vec())], key)
            .unwrap()
    }

    #[tokio::test]
    async fn https_requests_share_one_verified_keep_alive_connection() {
        let server = start(Some(server_tls()), usize::MAX).await;
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(CERT.to_vec())).unwrap();
        let client_tls = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let transport = direct(&format!("https://localhost:{}/v1/chat?v=2", server.port), Some(client_tls));

        for n in 1..=2 {
            let reply = transport.post(Bytes::from_static(b"{}")).await.unwrap();
            assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, format!(r#"{{"n":{n}}}"#).as_bytes()));
        }
        assert_eq!(server.connections.load(Ordering::SeqCst), 1, "the second request reused the connection");
        let head = server.heads.lock().unwrap()[0].to_ascii_lowercase();
        assert!(head.starts_with("post /v1/chat?v=2 http/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("host: localhost:{}", server.port)), "{head}");
        assert!(head.contains("content-length: 2"), "{head}");
    }

    #[tokio::test]
    async fn an_untrusted_certificate_is_refused() {
        let server = start(Some(server_tls()), usize::MAX).await;
        // The platform's roots do not hold the test certificate.
        let transport = direct(&format!("https://localhost:{}/v1", server.port), None);
        let error = transport.post(Bytes::from_static(b"{}")).await.unwrap_err();
        assert!(error.message.contains("cannot connect") && error.message.contains("certificate"), "{}", error.message);
        assert!(!error.timed_out);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_not_reused() {
        let server = start(None, 1).await;
        let transport = direct(&format!("http://127.0.0.1:{}/v1", server.port), None);
        for n in 1..=3 {
            let reply = transport.post(Bytes::from_static(b"{}")).await.unwrap();
            assert_eq!(&reply.body[..], format!(r#"{{"n":{n}}}"#).as_bytes());
            // Let the server's close arrive before the next request.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(server.connections.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn requests_go_through_the_proxy_named_for_their_url() {
        let proxy = start(None, usize::MAX).await;
        let proxies = Matcher::builder().http(format!("http://user:secret@127.0.0.1:{}", proxy.port)).build();
        let (url, second) = (Url::parse("http://models.invalid/v1/chat").unwrap(), Duration::from_secs(1));
        let transport = Transport::with_proxies(url, HeaderMap::new(), second, second * 60, &proxies).unwrap();
        assert!(matches!(transport, Transport::Proxied { .. }));

        let reply = transport.post(Bytes::from_static(b"{}")).await.unwrap();
        assert_eq!(&reply.body[..], br#"{"n":1}"#);
        let head = proxy.heads.lock().unwrap()[0].to_ascii_lowercase();
        assert!(head.starts_with("post http://models.invalid/v1/chat http/1.1\r\n"), "{head}");
        assert!(head.contains("proxy-authorization: basic dxnlcjpzzwnyzxq="), "{head}");

        let elsewhere = Url::parse("https://api.example.com/v1").unwrap();
        let direct = Transport::with_proxies(elsewhere, HeaderMap::new(), second, second, &proxies).unwrap();
        assert!(matches!(direct, Transport::Direct(_)), "no proxy is named for https");
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_address() {
        let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let transport = direct(&format!("http://127.0.0.1:{port}/v1"), None);
        let error = transport.post(Bytes::from_static(b"{}")).await.unwrap_err();
        assert!(error.message.starts_with(&format!("cannot connect to 127.0.0.1:{port}: ")), "{}", error.message);
    }
}
