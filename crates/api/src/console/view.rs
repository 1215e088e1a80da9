//! Rendering: the minijinja environment with every template embedded at build time, the `t`
//! function bound to the request's language, and the few HTML builders (terms text, message
//! bodies) that escape everything before adding their own markup.
//!
//! Templates hold no user-visible text of their own: every string comes from the locale
//! catalogs through `t(key, name=value…)`. Autoescape is on for every `.html` template.

use maocloud_app::i18n::{self, Lang};
use maocloud_types::Timestamp;
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, State};
use serde::Serialize;
use std::fmt::Write;
use std::sync::OnceLock;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/", $name)))),*]
    };
}

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = templates!(
    "base.html",
    "_macros.html",
    "_subnav.html",
    "status.html",
    "landing.html",
    "terms.html",
    "signup.html",
    "signin.html",
    "signin_totp.html",
    "forgot_password.html",
    "reset_password.html",
    "verify_email.html",
    "account/home.html",
    "account/profile.html",
    "account/messages.html",
    "account/message.html",
    "account/tokens.html",
    "account/security.html",
    "admin/home.html",
    "admin/subscribers.html",
    "admin/subscriber.html",
    "admin/audit.html",
    "admin/outbox.html",
    "pricelist.html",
    "account/subscription.html",
    "account/invoices.html",
    "account/document.html",
    "admin/offers.html",
    "admin/billing.html",
    "account/suspensions.html",
    "account/documents.html",
    "account/terms.html",
    "admin/suspensions.html",
    "admin/proofs.html",
    "admin/terminations.html",
    "admin/terms.html",
    "admin/incidents.html",
    "admin/incident.html",
    "account/vms.html",
    "account/vm_new.html",
    "account/vm.html",
    "account/ssh_keys.html",
    "admin/hosts.html",
    "admin/vms.html",
    "account/storage.html",
    "account/storage_bucket.html",
    "account/storage_keys.html",
    "admin/storage.html",
    "account/support_macros.html",
    "account/support.html",
    "account/support_new.html",
    "account/support_ticket.html",
    "admin/support.html",
    "admin/support_ticket.html",
    "admin/support_targets.html",
    "admin/support_canned.html",
    "admin/support_report.html",
    "admin/support_letter.html",
    "abuse.html",
    "lost_credentials.html",
    "account/privacy_macros.html",
    "account/privacy.html",
    "admin/privacy.html",
    "processors.html",
    "unsubscribe.html",
);

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            env.add_template(name, src)
                .unwrap_or_else(|e| panic!("template {name} does not parse: {e:#}"));
        }
        env.add_function("t", t_function);
        env.add_function("tv", tv_function);
        env.add_function("money", money_function);
        env.add_function("rate", rate_function);
        env.add_function("qty", qty_function);
        env
    })
}

/// The language of the page being rendered (the `lang` variable every page has).
fn lang_of(state: &State) -> Lang {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().map(Lang::parse))
        .unwrap_or(Lang::Fr)
}

/// `t("console.x.y", name=value…)`: the catalog text in the page's language, placeholders filled.
fn t_function(state: &State, key: &str, kwargs: Kwargs) -> Result<String, minijinja::Error> {
    let mut text = i18n::t(lang_of(state), key);
    for name in kwargs.args() {
        let v: Value = kwargs.get(name)?;
        text = text.replace(&format!("{{{name}}}"), &v.to_string());
    }
    Ok(text)
}

/// `tv("console.kind", value)`: the label of a stored value, or the value itself when the
/// catalog has no label for it (a status added later still shows).
fn tv_function(state: &State, prefix: &str, value: &str) -> String {
    let key = format!("{prefix}.{value}");
    let text = i18n::t(lang_of(state), &key);
    if text == key {
        value.to_string()
    } else {
        text
    }
}

/// `money(cents)`: an amount of euros as the page's language writes it: `1 234,56 €` in French,
/// `€1,234.56` in English (no-break spaces, so an amount never wraps).
fn money_function(state: &State, cents: i64) -> String {
    money(lang_of(state), cents)
}

pub fn money(lang: Lang, cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let a = cents.unsigned_abs();
    let (units, frac) = (a / 100, a % 100);
    let digits = units.to_string();
    let sep = match lang {
        Lang::En => ',',
        _ => '\u{a0}',
    };
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(sep);
        }
        grouped.push(c);
    }
    match lang {
        Lang::En => format!("{sign}€{grouped}.{frac:02}"),
        _ => format!("{sign}{grouped},{frac:02}\u{a0}€"),
    }
}

/// A decimal with up to `scale` digits after the point (trailing zeros dropped), in the
/// page's language: `5,5` / `5.5`.
fn decimal(lang: Lang, value: i64, scale: u32) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let a = value.unsigned_abs();
    let div = 10u64.pow(scale);
    let (int, frac) = (a / div, a % div);
    if frac == 0 {
        return format!("{sign}{int}");
    }
    let frac = format!("{frac:0width$}", width = scale as usize);
    let point = if lang == Lang::En { '.' } else { ',' };
    format!("{sign}{int}{point}{}", frac.trim_end_matches('0'))
}

/// `rate(bp)`: a VAT rate in basis points as a percentage: `5,5 %` / `5.5%`.
fn rate_function(state: &State, bp: i64) -> String {
    let lang = lang_of(state);
    match lang {
        Lang::En => format!("{}%", decimal(lang, bp, 2)),
        _ => format!("{}\u{a0}%", decimal(lang, bp, 2)),
    }
}

/// `qty(milli)`: a quantity in thousandths: `0,167` / `0.167`, `1`.
fn qty_function(state: &State, milli: i64) -> String {
    decimal(lang_of(state), milli, 3)
}

/// Renders a template with its context.
pub fn render(name: &str, ctx: Value) -> Result<String, minijinja::Error> {
    env().get_template(name)?.render(ctx)
}

/// A timestamp as templates show it: machine-readable and human-readable.
#[derive(Debug, Clone, Serialize)]
pub struct When {
    pub iso: String,
    pub text: String,
}

pub fn when(ts: Timestamp) -> When {
    When {
        iso: ts.to_string(),
        text: ts.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

pub fn when_opt(ts: Option<Timestamp>) -> Option<When> {
    ts.map(when)
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// The terms text (a small Markdown subset: `#` headings, `-` lists, paragraphs, `**bold**`,
/// `[text](https://…)`) as HTML. Text is escaped first; only http(s) links become anchors.
pub fn terms_html(md: &str) -> Value {
    let mut out = String::new();
    let mut para: Vec<&str> = Vec::new();
    let mut in_list = false;
    let flush = |para: &mut Vec<&str>, out: &mut String| {
        if !para.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", inline(&para.join(" ")));
            para.clear();
        }
    };
    for line in md.lines() {
        let l = line.trim();
        let item = l.strip_prefix("- ").or_else(|| l.strip_prefix("* "));
        if item.is_none() && in_list && !l.is_empty() && !line.starts_with("  ") {
            out.push_str("</ul>\n");
            in_list = false;
        }
        if l.is_empty() {
            flush(&mut para, &mut out);
        } else if let Some(h) = l.strip_prefix("### ") {
            flush(&mut para, &mut out);
            let _ = writeln!(out, "<h3>{}</h3>", inline(h));
        } else if let Some(h) = l.strip_prefix("## ").or_else(|| l.strip_prefix("# ")) {
            flush(&mut para, &mut out);
            let _ = writeln!(out, "<h2>{}</h2>", inline(h));
        } else if let Some(item) = item {
            flush(&mut para, &mut out);
            if !in_list {
                out.push_str("<ul>\n");
                in_list = true;
            }
            let _ = writeln!(out, "<li>{}</li>", inline(item));
        } else {
            para.push(l);
        }
    }
    flush(&mut para, &mut out);
    if in_list {
        out.push_str("</ul>\n");
    }
    Value::from_safe_string(out)
}

/// Inline Markdown: `**bold**` and `[text](url)`, everything else escaped.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut bold = false;
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with("**") {
            out.push_str(&escape(&s[start..i]));
            out.push_str(if bold { "</strong>" } else { "<strong>" });
            bold = !bold;
            i += 2;
            start = i;
            continue;
        }
        if rest.starts_with('[') {
            if let Some((text, url, len)) = link_at(rest) {
                out.push_str(&escape(&s[start..i]));
                if url.starts_with("https://") || url.starts_with("http://") {
                    let _ = write!(
                        out,
                        "<a href=\"{}\" rel=\"noopener noreferrer\">{}</a>",
                        escape(url),
                        escape(text)
                    );
                } else {
                    out.push_str(&escape(text));
                }
                i += len;
                start = i;
                continue;
            }
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    out.push_str(&escape(&s[start..]));
    if bold {
        out.push_str("</strong>");
    }
    out
}

/// `[text](url)` at the start of `s`: the text, the url and the length consumed.
fn link_at(s: &str) -> Option<(&str, &str, usize)> {
    let close = s.find("](")?;
    let text = &s[1..close];
    if text.contains('[') || text.contains(']') {
        return None;
    }
    let after = &s[close + 2..];
    let end = after.find(')')?;
    let url = &after[..end];
    if url.contains(char::is_whitespace) {
        return None;
    }
    Some((text, url, close + 2 + end + 1))
}

/// Plain text (a message body) as HTML: escaped, with http(s) addresses made into links.
/// Line breaks are kept by the stylesheet (`white-space: pre-wrap`).
pub fn linkify(text: &str) -> Value {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = [rest.find("https://"), rest.find("http://")]
            .into_iter()
            .flatten()
            .min();
        let Some(at) = next else { break };
        out.push_str(&escape(&rest[..at]));
        let tail = &rest[at..];
        let mut end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(tail.len());
        while end > 0 && tail[..end].ends_with(['.', ',', ';', ':', ')', '!', '?', '\'']) {
            end -= 1;
        }
        let url = &tail[..end];
        if url.len() <= "https://".len() {
            out.push_str(&escape(url));
        } else {
            let _ = write!(
                out,
                "<a href=\"{0}\" rel=\"noopener noreferrer\">{0}</a>",
                escape(url)
            );
        }
        rest = &tail[end..];
        if end == 0 {
            // An "http://" we could not use: emit one character and move on.
            let c = rest.chars().next().map_or(1, char::len_utf8);
            out.push_str(&escape(&rest[..c]));
            rest = &rest[c..];
        }
    }
    out.push_str(&escape(rest));
    Value::from_safe_string(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_markdown_is_escaped_then_formatted() {
        let html = terms_html("## Art. 1\n\nSee **this** <b>and</b> [site](https://ex.fr) [bad](javascript:x)\n- one\n- two\n\nend").to_string();
        assert!(html.contains("<h2>Art. 1</h2>"));
        assert!(html.contains("<strong>this</strong> &lt;b&gt;and&lt;/b&gt;"));
        assert!(html.contains("<a href=\"https://ex.fr\" rel=\"noopener noreferrer\">site</a>"));
        assert!(!html.contains("javascript"), "{html}");
        assert!(html.contains("<ul>\n<li>one</li>\n<li>two</li>\n</ul>"));
        assert!(html.ends_with("<p>end</p>\n"));
    }

    #[test]
    fn money_and_rates_in_both_languages() {
        assert_eq!(money(Lang::Fr, 123_456), "1\u{a0}234,56\u{a0}€");
        assert_eq!(money(Lang::Fr, 500), "5,00\u{a0}€");
        assert_eq!(money(Lang::Fr, -5), "-0,05\u{a0}€");
        assert_eq!(
            money(Lang::Fr, 123_456_789),
            "1\u{a0}234\u{a0}567,89\u{a0}€"
        );
        assert_eq!(money(Lang::En, 123_456), "€1,234.56");
        assert_eq!(money(Lang::En, -100_000), "-€1,000.00");
        assert_eq!(decimal(Lang::Fr, 550, 2), "5,5");
        assert_eq!(decimal(Lang::En, 2000, 2), "20");
        assert_eq!(decimal(Lang::Fr, 167, 3), "0,167");
        assert_eq!(decimal(Lang::Fr, -1000, 3), "-1");
    }

    #[test]
    fn message_links_are_escaped() {
        let html = linkify("Open https://x.fr/v?token=a&b=1.\n<script>").to_string();
        assert_eq!(
            html,
            "Open <a href=\"https://x.fr/v?token=a&amp;b=1\" rel=\"noopener noreferrer\">https://x.fr/v?token=a&amp;b=1</a>.\n&lt;script&gt;"
        );
        assert_eq!(linkify("http:// x").to_string(), "http:// x");
    }
}
