//! The CLI's client of a Maocloud API: where the token is stored (`maocloud login`), requests
//! with the bearer token, and problem+json errors turned into readable messages. Later
//! `maocloud <resource> <verb>` commands are a few lines on top of [`Client`].

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

/// What `maocloud login` stores: `$MAOCLOUD_CONFIG_DIR` or `~/.config/maocloud/credentials.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub url: String,
    pub token: String,
    pub email: Option<String>,
}

pub fn config_dir() -> PathBuf {
    if let Ok(d) = std::env::var("MAOCLOUD_CONFIG_DIR") {
        return PathBuf::from(d);
    }
    let base = std::env::var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into())).join(".config")
        });
    base.join("maocloud")
}

fn credentials_path() -> PathBuf {
    config_dir().join("credentials.toml")
}

impl Credentials {
    pub fn load() -> anyhow::Result<Option<Credentials>> {
        let p = credentials_path();
        match std::fs::read_to_string(&p) {
            Ok(s) => Ok(Some(
                toml::from_str(&s).with_context(|| format!("reading {}", p.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    /// Writes the file readable by its owner only.
    pub fn save(&self) -> anyhow::Result<PathBuf> {
        let p = credentials_path();
        std::fs::create_dir_all(p.parent().expect("has a parent"))?;
        let text = toml::to_string(self)?;
        let tmp = p.with_extension("tmp");
        {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(&tmp)
                .with_context(|| format!("writing {}", tmp.display()))?;
            f.write_all(text.as_bytes())?;
        }
        std::fs::rename(&tmp, &p)?;
        Ok(p)
    }

    pub fn remove() -> anyhow::Result<bool> {
        match std::fs::remove_file(credentials_path()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// An HTTP client of the API at `url`, with an optional bearer token.
pub struct Client {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl Client {
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<Client> {
        let url = url.trim_end_matches('/').to_string();
        url::Url::parse(&url).with_context(|| format!("not a URL: {url}"))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("maocloud-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        Ok(Client { http, url, token })
    }

    /// A client from `--url`/`--token` (or their environment variables), else the stored login.
    pub fn from_env(url: Option<&str>, token: Option<&str>) -> anyhow::Result<Client> {
        let stored = Credentials::load()?;
        let url = url
            .map(str::to_owned)
            .or_else(|| stored.as_ref().map(|c| c.url.clone()));
        let token = token
            .map(str::to_owned)
            .or_else(|| stored.as_ref().map(|c| c.token.clone()));
        let Some(url) = url else {
            bail!("not signed in: run `maocloud login --url <platform URL>` first (or set MAOCLOUD_URL and MAOCLOUD_TOKEN)");
        };
        if token.is_none() {
            bail!("no token: run `maocloud login` first (or set MAOCLOUD_TOKEN)");
        }
        Client::new(&url, token)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.answer(req).await
    }

    /// Sends a request and reads its answer: JSON (or nothing) on success, else the problem.
    async fn answer(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.url))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            if text.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text)
                .with_context(|| format!("the server's answer is not JSON: {text}"));
        }
        Err(problem_error(status.as_u16(), &text))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.request(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.request(reqwest::Method::DELETE, path, None).await
    }

    /// A GET of raw bytes (a file download).
    pub async fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.url))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(problem_error(status.as_u16(), &text));
        }
        Ok(resp.bytes().await?.to_vec())
    }

    /// A PUT of raw bytes (a file), with its content type and extra headers.
    pub async fn put_bytes(
        &self,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        bytes: Vec<u8>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .put(format!("{}{path}", self.url))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.answer(req).await
    }
}

/// A readable message from a problem+json body: the detail and each field's reason.
pub fn problem_error(status: u16, body: &str) -> anyhow::Error {
    let Ok(p) = serde_json::from_str::<Value>(body) else {
        return anyhow!("the server answered {status}: {body}");
    };
    let detail = p
        .get("detail")
        .and_then(Value::as_str)
        .unwrap_or("request refused");
    let mut msg = format!("{detail} (HTTP {status})");
    if let Some(errors) = p.get("errors").and_then(Value::as_array) {
        for e in errors {
            let field = e.get("field").and_then(Value::as_str).unwrap_or("?");
            let reason = e.get("reason").and_then(Value::as_str).unwrap_or("");
            msg.push_str(&format!("\n  {field}: {reason}"));
        }
    }
    anyhow!(msg)
}
