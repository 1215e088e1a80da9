//! A browser-less console session for the console tests: signs in through the console's own
//! form as a browser would (double-submit CSRF cookie, then the TOTP step for operators), keeps
//! the session cookie and the CSRF token its forms carry, and sends forms and files.

use crate::harness::*;
use reqwest::StatusCode;

/// A console session over plain HTTP: its cookie and the CSRF token its forms carry.
pub struct Session {
    http: reqwest::Client,
    base: String,
    cookie: String,
    pub csrf: String,
}

/// A client that does not follow redirects (the tests read them).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of cookie `name` a response sets, if any.
pub fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or("").to_string())
}

/// Where a response redirects to ("" when it does not).
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Pages as read here: the templates escape `/` (`&#x2f;`) in every value they print.
pub fn unescape_slashes(html: String) -> String {
    html.replace("&#x2f;", "/")
}

/// A `multipart/form-data` body: the fields in order, then the files (field, name, type,
/// bytes). Returns the content type and the body.
pub fn multipart(
    fields: &[(&str, &str)],
    files: &[(&str, &str, &str, &[u8])],
) -> (String, Vec<u8>) {
    let boundary = "----maocloudtestboundary";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for (field, name, content_type, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The console's sign-in form, posted with a double-submit token, as a browser would.
pub async fn post_signin(s: &TestServer, email: &str) -> reqwest::Response {
    let anon = "t".repeat(43);
    client()
        .post(format!("{}/signin", s.url))
        .header("cookie", format!("maocloud_csrf={anon}"))
        .form(&[
            ("csrf", anon.as_str()),
            ("email", email),
            ("password", PASSWORD),
            ("next", ""),
        ])
        .send()
        .await
        .unwrap()
}

impl Session {
    /// Signs a subscriber in.
    pub async fn open(s: &TestServer, email: &str) -> Session {
        Self::sign_in(s, email, None).await
    }

    /// Signs an operator in: password, then the TOTP step.
    pub async fn open_operator(s: &TestServer, op: &Operator) -> Session {
        Self::sign_in(s, &op.email, Some(&op.totp_secret)).await
    }

    async fn sign_in(s: &TestServer, email: &str, totp_secret: Option<&str>) -> Session {
        let resp = post_signin(s, email).await;
        assert_eq!(
            resp.status(),
            StatusCode::SEE_OTHER,
            "the console signs {email} in"
        );
        let mut me = Session {
            http: client(),
            base: s.url.clone(),
            cookie: set_cookie(&resp, "maocloud_session").expect("a session cookie"),
            csrf: String::new(),
        };
        if let Some(secret) = totp_secret {
            me.read_csrf("/signin/totp").await;
            let code = s.totp_code(secret);
            let (status, page) = me
                .post("/signin/totp", &[("totp", &code), ("next", "")])
                .await;
            assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
            // Each code works once: later sign-ins need the next 30-second step.
            s.clock.advance(jiff::SignedDuration::from_secs(30));
        }
        me.read_csrf("/account/tokens").await;
        me
    }

    /// Takes the CSRF token of the forms on `path`.
    pub async fn read_csrf(&mut self, path: &str) {
        let (status, page) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        let at = page
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token")
            + 19;
        self.csrf = page[at..].split('"').next().unwrap().to_string();
    }

    /// A request carrying the session cookie.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", format!("maocloud_session={}", self.cookie))
    }

    /// A page: its status and its text.
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        (r.status(), unescape_slashes(r.text().await.unwrap()))
    }

    /// A form with the session's token first; the response itself (status, cookies, redirect).
    pub async fn post_response(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("csrf", &self.csrf);
        for (k, v) in fields {
            q.append_pair(k, v);
        }
        self.request(reqwest::Method::POST, path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(q.finish())
            .send()
            .await
            .unwrap()
    }

    /// A form with the session's token first: the status and the page.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let r = self.post_response(path, fields).await;
        (r.status(), unescape_slashes(r.text().await.unwrap()))
    }

    /// A form with files, its token first (`csrf: None` leaves it out): the status, the
    /// redirect's target and the page.
    pub async fn upload(
        &self,
        path: &str,
        csrf: Option<&str>,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &str, &[u8])],
    ) -> (StatusCode, String, String) {
        let mut all: Vec<(&str, &str)> = csrf.map(|c| ("csrf", c)).into_iter().collect();
        all.extend_from_slice(fields);
        let (content_type, body) = multipart(&all, files);
        let r = self
            .request(reqwest::Method::POST, path)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let location = location(&r);
        (
            r.status(),
            location,
            unescape_slashes(r.text().await.unwrap()),
        )
    }
}
