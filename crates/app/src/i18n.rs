//! Translations: one catalog per language (`locales/<lang>.toml`, flat keys), French first.
//! Emails and the console read every user-visible string from here. A key missing from a
//! language falls back to French, then to the key itself, and a test keeps the catalogs aligned.

use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Fr, Lang::En];
    pub fn code(&self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }
    /// `fr`, `en`, or a header such as `en-GB,en;q=0.9`; anything else is French.
    pub fn parse(s: &str) -> Lang {
        let s = s.trim().to_ascii_lowercase();
        if s.starts_with("en") {
            Lang::En
        } else {
            Lang::Fr
        }
    }
}

type Catalog = HashMap<String, String>;

fn load(src: &str) -> Catalog {
    let table: toml::Table = toml::from_str(src).expect("locale catalogs are valid TOML");
    let mut out = Catalog::new();
    fn walk(prefix: &str, t: &toml::Table, out: &mut Catalog) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::String(s) => {
                    out.insert(key, s.clone());
                }
                toml::Value::Table(sub) => walk(&key, sub, out),
                _ => {}
            }
        }
    }
    walk("", &table, &mut out);
    out
}

fn catalogs() -> &'static HashMap<Lang, Catalog> {
    static C: OnceLock<HashMap<Lang, Catalog>> = OnceLock::new();
    C.get_or_init(|| {
        HashMap::from([
            (Lang::Fr, load(include_str!("../locales/fr.toml"))),
            (Lang::En, load(include_str!("../locales/en.toml"))),
        ])
    })
}

/// The text for `key` in `lang`.
pub fn t(lang: Lang, key: &str) -> String {
    let c = catalogs();
    c[&lang]
        .get(key)
        .or_else(|| c[&Lang::Fr].get(key))
        .cloned()
        .unwrap_or_else(|| key.to_string())
}

/// The text for `key` with `{name}` placeholders filled.
pub fn tf(lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
    let mut s = t(lang, key);
    for (k, v) in args {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

/// A validation reason (written in English in the code) in `lang`: the English text is the key
/// of the `reason` table, gettext-style.
pub fn reason(lang: Lang, english: &str) -> String {
    match lang {
        Lang::En => english.to_string(),
        _ => catalogs()[&lang]
            .get(&format!("reason.{english}"))
            .cloned()
            .unwrap_or_else(|| english.to_string()),
    }
}

/// Every key of a language's catalog (for the alignment test and tooling).
pub fn keys(lang: Lang) -> Vec<String> {
    let mut k: Vec<String> = catalogs()[&lang].keys().cloned().collect();
    k.sort();
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogs_have_the_same_keys() {
        let fr = keys(Lang::Fr)
            .into_iter()
            .filter(|k| !k.starts_with("reason."))
            .collect::<Vec<_>>();
        let en = keys(Lang::En)
            .into_iter()
            .filter(|k| !k.starts_with("reason."))
            .collect::<Vec<_>>();
        let missing_en: Vec<_> = fr.iter().filter(|k| !en.contains(k)).collect();
        let missing_fr: Vec<_> = en.iter().filter(|k| !fr.contains(k)).collect();
        assert!(missing_en.is_empty(), "missing in en.toml: {missing_en:?}");
        assert!(missing_fr.is_empty(), "missing in fr.toml: {missing_fr:?}");
    }

    #[test]
    fn french_is_the_default() {
        assert_eq!(Lang::parse("de-DE"), Lang::Fr);
        assert_eq!(Lang::parse("en-GB,en;q=0.9"), Lang::En);
    }
}
