//! A moto server (the AWS API emulator) shared by the tests of one test binary.
//!
//! `WAFTUNE_MOTO` names the `moto_server` executable (default: `.venv/bin/moto_server` in the
//! repository, created by `python3 -m venv .venv && .venv/bin/pip install 'moto[server]'`). The
//! server starts once per test binary on a free port and stops when the binary exits: it runs under
//! a shell that waits for the end of its standard input, which closes when this process dies,
//! however it dies. Tests share the server, so [`Moto::start`] also takes a lock and resets moto's
//! state: each test sees an empty account.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_wafv2::config::retry::RetryConfig;
use aws_sdk_wafv2::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};

struct Server {
    port: u16,
    // Held for its stdin: dropping it (at exit) stops the server.
    _child: Mutex<Child>,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn moto_path() -> PathBuf {
    match std::env::var_os("WAFTUNE_MOTO") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server"),
    }
}

fn start_server() -> Server {
    let path = moto_path();
    assert!(
        path.exists(),
        "moto_server not found at `{}`: set WAFTUNE_MOTO, or run \
         `python3 -m venv .venv && .venv/bin/pip install 'moto[server]'`",
        path.display()
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port();
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" -H 127.0.0.1 -p "$1" >/dev/null 2>&1 & pid=$!; cat >/dev/null; kill $pid"#)
        .arg(&path)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("sh starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while post(port, "/moto-api/reset", "").is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not answer on port {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Server {
        port,
        _child: Mutex::new(child),
    }
}

/// A bare HTTP/1.1 POST of a JSON body (the tests need no HTTP client crate for moto's control
/// calls).
fn post(port: u16, path: &str, body: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    if response.starts_with("HTTP/1.1 2") || response.starts_with("HTTP/1.0 2") {
        Ok(response)
    } else {
        Err(std::io::Error::other(response))
    }
}

/// Exclusive use of a freshly reset moto for one test.
pub struct Moto {
    pub endpoint: String,
    port: u16,
    _guard: tokio::sync::MutexGuard<'static, ()>,
}

impl Moto {
    pub async fn start() -> Moto {
        let guard = LOCK.lock().await;
        let server = SERVER.get_or_init(start_server);
        post(server.port, "/moto-api/reset", "").expect("moto resets");
        Moto {
            endpoint: format!("http://127.0.0.1:{}", server.port),
            port: server.port,
            _guard: guard,
        }
    }

    /// A call to moto's control API (`/moto-api/...`).
    pub fn control(&self, path: &str, body: &serde_json::Value) {
        if let Err(e) = post(self.port, path, &body.to_string()) {
            panic!("{path}: {e}");
        }
    }

    /// The standard AWS environment of a `waftune` process that talks to this moto.
    pub fn aws_env(&self, region: &str) -> [(&'static str, String); 7] {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", region.to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// The SDK configuration for moto: static credentials, and retries off so that moto's
    /// unimplemented calls (HTTP 500) fail at once instead of being retried.
    pub fn sdk_config(&self, region: &str) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "moto",
            )))
            .endpoint_url(&self.endpoint)
            .retry_config(RetryConfig::disabled())
            .build()
    }

    /// An SDK client for moto (see [`Moto::sdk_config`]).
    pub fn client(&self, region: &str) -> aws_sdk_wafv2::Client {
        aws_sdk_wafv2::Client::new(&self.sdk_config(region))
    }
}
