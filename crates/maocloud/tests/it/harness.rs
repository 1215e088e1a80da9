//! The whole-system test harness: a real `maocloud` platform (the same wiring as `serve`) on
//! 127.0.0.1 port 0 with a fresh database per test — SQLite in a temporary directory, or a
//! fresh PostgreSQL database on the server named by `MAOCLOUD_TEST_PG_URL` — a fixed clock the
//! test moves, and helpers to act as subscribers and operators through the HTTP API.

use maocloud::config::{ServeArgs, ServeConfig};
use maocloud::serve::Platform;
use maocloud_app::{accounts, auth, jobs, App, Ctx};
use maocloud_types::{FixedClock, OperatorRole, Principal, Timestamp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Declares a test that runs once on SQLite and once on PostgreSQL:
/// `both_dbs!(name, |s: TestServer| async move { … });`
#[macro_export]
macro_rules! both_dbs {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let s = $crate::harness::TestServer::start_on($crate::harness::Db::Sqlite).await;
                ($body)(s).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let s = $crate::harness::TestServer::start_on($crate::harness::Db::Postgres).await;
                ($body)(s).await;
            }
        }
    };
}

pub const PASSWORD: &str = "Correct-Horse-Battery-9";

/// The instant every test starts at: a Thursday in Paris winter time.
pub fn t0() -> Timestamp {
    "2026-11-26T09:00:00Z".parse().expect("valid instant")
}

pub struct TestServer {
    pub url: String,
    pub app: App,
    pub clock: FixedClock,
    pub http: reqwest::Client,
    pub db: Db,
    pub database_url: String,
    pub data: tempfile::TempDir,
    /// The S3 endpoint, e.g. `http://127.0.0.1:41234`.
    pub s3_url: Option<String>,
    shutdown: watch::Sender<bool>,
}

/// A signed-up subscriber with a live API token.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub id: String,
    pub email: String,
    pub token: String,
}

/// An operator with a live API token and their TOTP secret.
#[derive(Debug, Clone)]
pub struct Operator {
    pub id: String,
    pub email: String,
    pub token: String,
    pub totp_secret: String,
}

/// A fresh database URL for `db`.
pub async fn fresh_database(db: Db, data: &std::path::Path) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}", data.join("maocloud.db").display()),
        Db::Postgres => {
            let admin = std::env::var("MAOCLOUD_TEST_PG_URL").expect(
                "MAOCLOUD_TEST_PG_URL must name a PostgreSQL server the tests may create databases on: run the tests with ./scripts/test",
            );
            let name = format!("mc_test_{}", uuid_simple());
            maocloud_datastore::testing::postgres_create_database(&admin, &name)
                .await
                .expect("create a test database")
        }
    }
}

fn uuid_simple() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ) + &format!("{:x}", rand_u32())
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(42);
    h.finish() as u32
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_on(Db::Sqlite).await
    }

    pub async fn start_on(db: Db) -> TestServer {
        Self::start_with(db, |_| {}).await
    }

    /// Starts a server after letting the test adjust its configuration.
    pub async fn start_with(db: Db, tweak: impl FnOnce(&mut ServeConfig)) -> TestServer {
        let data = tempfile::tempdir().expect("temp dir");
        let database_url = fresh_database(db, data.path()).await;
        Self::start_at(db, data, database_url, tweak).await
    }

    /// Starts a server on an existing database (a second replica, or after a restart).
    pub async fn start_at(
        db: Db,
        data: tempfile::TempDir,
        database_url: String,
        tweak: impl FnOnce(&mut ServeConfig),
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let mut config = ServeArgs {
            data_dir: Some(data.path().to_path_buf()),
            database_url: Some(database_url.clone()),
            listen: Some(addr),
            // Jobs run when the test says so (run_jobs), not on their own.
            jobs_interval_ms: Some(0),
            // The daily sweep too: tests sweep through test clocks or `daily::sweep_live`.
            sweep_interval_secs: Some(0),
            // No hypervisor unless a test asks for one (compute tests use `sim` or `qemu`).
            compute: Some("off".into()),
            metadata_listen: Some("0.0.0.0:0".parse().unwrap()),
            s3_listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        }
        .resolve()
        .expect("valid test configuration");
        tweak(&mut config);
        let clock = FixedClock::new(t0());
        let platform = Platform::build(config, Arc::new(clock.clone()))
            .await
            .expect("platform starts");
        let app = platform.app.clone();
        let s3_url = platform
            .s3
            .as_ref()
            .map(|l| format!("http://{}", l.local_addr().unwrap()));
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move { platform.run(listener, rx).await.expect("server runs") });
        TestServer {
            url: format!("http://{addr}"),
            app,
            clock,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            db,
            database_url,
            data,
            s3_url,
            shutdown: tx,
        }
    }

    /// Stops serving (the database and data dir stay for a restart).
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Runs every due background job (email delivery…) now; returns how many ran.
    pub async fn run_jobs(&self) -> usize {
        jobs::run_due(&self.app, &jobs::Registry::standard(), "test-runner")
            .await
            .expect("jobs run")
    }

    /// Every email in the outbox to `addr`, newest first: (subject, body, state).
    pub async fn emails_to(&self, addr: &str) -> Vec<(String, String, String)> {
        let page = maocloud_app::notify::outbox(
            &self.app,
            &Ctx::system(),
            &maocloud_types::PageRequest::first(200),
        )
        .await
        .unwrap();
        page.items
            .into_iter()
            .filter(|e| e.to_addr == addr)
            .map(|e| (e.subject, e.body_text, e.state))
            .collect()
    }

    /// The text of the newest email delivered to `addr`.
    pub async fn last_email_to(&self, addr: &str) -> Option<String> {
        self.emails_to(addr)
            .await
            .into_iter()
            .find(|e| e.2 == "sent")
            .map(|e| e.1)
    }

    /// A request to the API; returns the status and the JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.unwrap_or_default();
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(
                ct, "application/problem+json",
                "{status} must be problem+json: {text}"
            );
        }
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// The terms version sign-up must accept.
    pub async fn terms_version(&self) -> String {
        let (s, v) = self.get("/api/v1/terms/current", None).await;
        assert_eq!(s, StatusCode::OK);
        v["version"].as_str().unwrap().to_string()
    }

    /// A valid consumer sign-up form for `email`.
    pub async fn signup_form(&self, email: &str) -> Value {
        json!({
            "email": email,
            "password": PASSWORD,
            "full_name": "Alex Durand",
            "customer_kind": "consumer",
            "address_line1": "12 rue de la Paix",
            "postal_code": "75002",
            "city": "Paris",
            "country": "FR",
            "accept_terms_version": self.terms_version().await,
        })
    }

    /// Signs a subscriber up through the API and signs them in.
    pub async fn subscriber(&self, email: &str) -> Subscriber {
        let (s, v) = self
            .post("/api/v1/signup", None, self.signup_form(email).await)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let id = v["subscriber_id"].as_str().unwrap().to_string();
        let token = self.sign_in(email, PASSWORD, None).await;
        Subscriber {
            id,
            email: email.into(),
            token,
        }
    }

    /// Confirms a subscriber's email address the way they would: the emailed link's token.
    pub async fn verify_email(&self, email: &str) {
        self.run_jobs().await;
        let body = self
            .emails_to(email)
            .await
            .into_iter()
            .map(|(_, body, _)| body)
            .find(|b| b.contains("/verify-email?token="))
            .expect("a verification email");
        let token = body
            .split("/verify-email?token=")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .expect("a token")
            .to_string();
        let (st, v) = self
            .post(
                "/api/v1/email-verification/confirm",
                None,
                json!({"token": token}),
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    }

    /// Email + password (+ TOTP) → token, asserting success.
    pub async fn sign_in(&self, email: &str, password: &str, totp: Option<&str>) -> String {
        let mut body = json!({"email": email, "password": password});
        if let Some(t) = totp {
            body["totp"] = json!(t);
        }
        let (s, v) = self.post("/api/v1/tokens", None, body).await;
        assert_eq!(s, StatusCode::CREATED, "sign-in failed: {v}");
        v["token"].as_str().unwrap().to_string()
    }

    /// Creates an operator (as `maocloud operator create` does) and signs them in with TOTP.
    pub async fn operator(&self, email: &str, role: OperatorRole) -> Operator {
        let ctx = Ctx {
            principal: Principal::System,
            ip: "test".into(),
        };
        let op = accounts::operator_create(
            &self.app,
            &ctx,
            email,
            role,
            PASSWORD,
            "Test operator",
            true,
        )
        .await
        .expect("operator created");
        let secret = op.totp_secret.expect("operators get a TOTP secret");
        let code = self.totp_code(&secret);
        let token = self.sign_in(email, PASSWORD, Some(&code)).await;
        // Each code works once: move on to the next 30-second step for later sign-ins.
        self.clock.advance(jiff::SignedDuration::from_secs(30));
        Operator {
            id: op.id.to_string(),
            email: email.into(),
            token,
            totp_secret: secret,
        }
    }

    pub fn totp_code(&self, secret: &str) -> String {
        auth::totp_code(secret, self.clock.now_ts()).unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Reading the fixed clock without importing the trait everywhere.
pub trait NowTs {
    fn now_ts(&self) -> Timestamp;
}

impl NowTs for FixedClock {
    fn now_ts(&self) -> Timestamp {
        maocloud_types::Clock::now(self)
    }
}
