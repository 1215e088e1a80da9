//! WebDriver for the console tests: chromedriver started on a free port with a throwaway
//! profile (killed with its Chromium however a test ends), and a `Browser` speaking WebDriver
//! as plain JSON over HTTP (fantoccini 0.21's rustls connector panics in this dependency graph,
//! where rustls has both the ring and aws-lc-rs providers enabled).

use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a page may take to show what a test waits for.
pub const WAIT: Duration = Duration::from_secs(20);

/// chromedriver, killed with the Chromium it started when the test ends however it ends (it
/// runs in its own process group, so a panic before the session is closed leaves nothing behind).
pub struct Chromedriver {
    child: Child,
    url: String,
    /// Chromium's profile for this test only.
    profile: tempfile::TempDir,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn tool(var: &str, default: &str, what: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_string());
    assert!(
        Path::new(&path).is_file(),
        "{what} not found at {path}: install it (./scripts/test installs chromium and chromium-driver) or set {var}"
    );
    path
}

pub async fn start_chromedriver() -> Chromedriver {
    let driver = tool(
        "MAOCLOUD_TEST_CHROMEDRIVER",
        "/usr/bin/chromedriver",
        "chromedriver",
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start chromedriver ({driver}): {e}"));
    let cd = Chromedriver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        profile: tempfile::tempdir().expect("temp dir"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on port {port} within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cd
}

/// A WebDriver session: the few W3C commands this test needs.
pub struct Browser {
    http: reqwest::Client,
    session: String,
}

/// An element of the current page (its WebDriver reference).
pub struct Element(pub String);

pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    pub async fn open(cd: &Chromedriver) -> Browser {
        let chromium = tool("MAOCLOUD_TEST_CHROMIUM", "/usr/bin/chromium", "Chromium");
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--window-size=1280,1400",
                    format!("--user-data-dir={}", cd.profile.path().display()),
                ],
                // A French-speaking visitor: the console must greet them in French.
                "prefs": { "intl.accept_languages": "fr-FR,fr" },
            }
        }}});
        let http = reqwest::Client::new();
        let resp: Value = http
            .post(format!("{}/session", cd.url))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap();
        let id = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver could not start Chromium: {resp}"));
        Browser {
            http,
            session: format!("{}/session/{id}", cd.url),
        }
    }

    /// One command; `Err` carries WebDriver's error (`no such element`…).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let ok = resp.status().is_success();
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(format!(
                "{}: {}",
                v["value"]["error"], v["value"]["message"]
            ))
        }
    }

    pub async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body))
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn path(&self) -> String {
        let url = self.get("/url").await;
        url::Url::parse(url.as_str().unwrap())
            .unwrap()
            .path()
            .to_string()
    }

    pub async fn try_find(&self, css: &str) -> Option<Element> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await
            .ok()?;
        v[ELEMENT_KEY].as_str().map(|id| Element(id.to_string()))
    }

    /// Waits for an element (pages load after clicks asynchronously).
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.try_find(css).await {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no {css} at {}",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of `css` now ("" when absent or gone with a reload).
    pub async fn text_of(&self, css: &str) -> String {
        let Some(e) = self.try_find(css).await else {
            return String::new();
        };
        self.call(
            reqwest::Method::GET,
            &format!("/element/{}/text", e.0),
            None,
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
    }

    /// Waits until `css` shows text that `ok` accepts (pages reload themselves meanwhile).
    pub async fn wait_for(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let seen = self.text_of(css).await;
            if ok(seen.trim()) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "{css} shows {seen:?}, not {what} (at {})",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `css` shows exactly `text`.
    pub async fn wait_text(&self, css: &str, text: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let seen = match self.try_find(css).await {
                Some(e) => self
                    .call(
                        reqwest::Method::GET,
                        &format!("/element/{}/text", e.0),
                        None,
                    )
                    .await
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                None => String::new(),
            };
            if seen.trim() == text {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css} shows {seen:?}, not {text:?} (at {})",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn text(&self, e: &Element) -> String {
        self.get(&format!("/element/{}/text", e.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn attr(&self, e: &Element, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/attribute/{name}", e.0))
            .await
            .as_str()
            .map(str::to_owned)
    }

    pub async fn prop(&self, e: &Element, name: &str) -> Value {
        self.get(&format!("/element/{}/property/{name}", e.0)).await
    }

    pub async fn click(&self, e: &Element) {
        self.post(&format!("/element/{}/click", e.0), json!({}))
            .await;
    }

    /// Types into an element, as keystrokes.
    pub async fn type_keys(&self, e: &Element, text: &str) {
        self.post(&format!("/element/{}/value", e.0), json!({ "text": text }))
            .await;
    }

    pub async fn focused(&self) -> Element {
        let v = self.get("/element/active").await;
        Element(
            v[ELEMENT_KEY]
                .as_str()
                .expect("an element has the focus")
                .to_string(),
        )
    }

    /// Types into a field the way a person reaches it: by clicking its label (which proves the
    /// label is tied to the field), then typing into whatever has the focus.
    pub async fn fill(&self, field: &str, text: &str) {
        let label = self.find(&format!("label[for='field-{field}']")).await;
        self.click(&label).await;
        let focused = self.focused().await;
        assert_eq!(
            self.attr(&focused, "id").await.as_deref(),
            Some(format!("field-{field}").as_str()),
            "the label of {field} focuses it"
        );
        self.type_keys(&focused, text).await;
    }

    /// The value of one of the browser's cookies (HttpOnly ones too).
    pub async fn cookie(&self, name: &str) -> String {
        self.get(&format!("/cookie/{name}")).await["value"]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} cookie"))
            .to_string()
    }

    pub async fn screenshot(&self) -> Vec<u8> {
        let b64 = self.get("/screenshot").await;
        base64_decode(b64.as_str().expect("a base64 PNG"))
    }

    pub async fn close(&self) {
        let _ = self.call(reqwest::Method::DELETE, "", None).await;
    }
}

/// Standard base64 (the screenshot), without pulling a crate in for it.
pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c) << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}
