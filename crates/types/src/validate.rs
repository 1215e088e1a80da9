//! Form validators for what people type: email, password strength, French company ids
//! (SIREN/SIRET, Luhn), EU VAT numbers (the French key checked exactly, others by form), and
//! country codes. Each returns a reason a person can act on.

/// Lower-cases and trims an email, and checks its form (one `@`, a dotted domain, no spaces).
pub fn email(raw: &str) -> Result<String, &'static str> {
    let e = raw.trim().to_lowercase();
    if e.is_empty() {
        return Err("is required");
    }
    if e.len() > 254 {
        return Err("is too long (254 characters at most)");
    }
    let Some((local, domain)) = e.split_once('@') else {
        return Err("is not an email address");
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c == '@' || c.is_control() || c == '<' || c == '>');
    if !domain_ok || !local_ok {
        return Err("is not an email address");
    }
    Ok(e)
}

pub const PASSWORD_MIN: usize = 10;
pub const PASSWORD_MAX: usize = 256;

/// A password must be long enough, not too long to hash, not all one character, not a common one,
/// and must not contain the account's email local part.
pub fn password(pw: &str, email: &str) -> Result<(), &'static str> {
    let n = pw.chars().count();
    if n < PASSWORD_MIN {
        return Err("is too short (10 characters at least)");
    }
    if n > PASSWORD_MAX {
        return Err("is too long (256 characters at most)");
    }
    let lower = pw.to_lowercase();
    let distinct = {
        let mut c: Vec<char> = lower.chars().collect();
        c.sort_unstable();
        c.dedup();
        c.len()
    };
    if distinct < 4 {
        return Err("is too simple (use more different characters)");
    }
    const COMMON: &[&str] = &[
        "password",
        "motdepasse",
        "azerty",
        "qwerty",
        "123456",
        "letmein",
        "welcome",
        "maocloud",
        "admin",
        "iloveyou",
        "soleil",
        "bonjour",
    ];
    if COMMON
        .iter()
        .any(|c| lower.contains(c) && lower.len() < c.len() + 6)
    {
        return Err("is too common");
    }
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if local.len() >= 4 && lower.contains(&local) {
        return Err("must not contain your email address");
    }
    Ok(())
}

fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.chars().rev().enumerate() {
        let mut d = c.to_digit(10).unwrap_or(0);
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

fn compact(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace() && *c != '.' && *c != '-')
        .collect()
}

/// A SIREN (9 digits) or SIRET (14 digits), spaces allowed; Luhn-checked (La Poste's SIRETs,
/// SIREN 356000000, use the digit-sum rule instead). Returns the compact form.
pub fn siren_or_siret(raw: &str) -> Result<String, &'static str> {
    let c = compact(raw);
    if !c.chars().all(|ch| ch.is_ascii_digit()) || !(c.len() == 9 || c.len() == 14) {
        return Err("must be a SIREN (9 digits) or a SIRET (14 digits)");
    }
    let ok = if c.len() == 14 && c.starts_with("356000000") {
        c.chars()
            .map(|ch| ch.to_digit(10).unwrap_or(0))
            .sum::<u32>()
            % 5
            == 0
    } else {
        luhn(&c)
    };
    if !ok {
        return Err("has an invalid check digit");
    }
    Ok(c)
}

/// An EU VAT number: two-letter country prefix then 2 to 13 letters or digits. French numbers
/// (`FRkk` + SIREN) are checked exactly: the key is `(12 + 3 × (SIREN mod 97)) mod 97`.
pub fn vat_number(raw: &str) -> Result<String, &'static str> {
    let c = compact(raw).to_uppercase();
    if c.len() < 4 || c.len() > 15 {
        return Err("is not a VAT number (country code then 2 to 13 characters)");
    }
    let (cc, rest) = c.split_at(2);
    const EU: &[&str] = &[
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU", "IE",
        "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "XI",
    ];
    if !EU.contains(&cc) {
        return Err("must start with an EU country code (FR, DE, BE, …)");
    }
    if !rest.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Err("may contain only letters and digits after the country code");
    }
    if cc == "FR" {
        if rest.len() != 11 || !rest[2..].chars().all(|ch| ch.is_ascii_digit()) {
            return Err("a French VAT number is FR, a 2-character key and the 9-digit SIREN");
        }
        let siren = &rest[2..];
        if !luhn(siren) {
            return Err("contains a SIREN with an invalid check digit");
        }
        if let Ok(key) = rest[..2].parse::<u64>() {
            let s: u64 = siren.parse().unwrap_or(0);
            if key != (12 + 3 * (s % 97)) % 97 {
                return Err("has a key that does not match its SIREN");
            }
        }
    }
    Ok(c)
}

/// An ISO 3166-1 alpha-2 country code, upper-cased.
pub fn country(raw: &str) -> Result<String, &'static str> {
    let c = raw.trim().to_uppercase();
    if c.len() == 2 && c.chars().all(|ch| ch.is_ascii_uppercase()) {
        Ok(c)
    } else {
        Err("must be a two-letter country code (FR, BE, …)")
    }
}

/// A required free-text field: trimmed, non-empty, bounded, without control characters.
pub fn text(raw: &str, max: usize) -> Result<String, &'static str> {
    let t = raw.trim();
    if t.is_empty() {
        return Err("is required");
    }
    if t.chars().count() > max {
        return Err("is too long");
    }
    if t.chars().any(|c| c.is_control()) {
        return Err("contains control characters");
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email(" Alice@Example.FR ").unwrap(), "alice@example.fr");
        for bad in ["", "alice", "a@b", "a@.fr", "a b@c.fr", "@c.fr", "a@c..fr"] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(password("correct horse battery", "a@b.fr").is_ok());
        assert_eq!(
            password("short", "a@b.fr"),
            Err("is too short (10 characters at least)")
        );
        assert!(password("aaaaaaaaaaaa", "a@b.fr").is_err());
        assert!(password("password123", "a@b.fr").is_err());
        assert!(password("alice-is-great-1", "alice@b.fr").is_err());
    }

    #[test]
    fn company_ids() {
        // Real SIREN of a French company (Luhn-valid) and a SIRET of it.
        assert_eq!(siren_or_siret("732 829 320").unwrap(), "732829320");
        assert!(siren_or_siret("73282932000074").is_ok());
        assert!(siren_or_siret("732829321").is_err());
        assert!(siren_or_siret("12345").is_err());
        assert!(siren_or_siret("35600000049837").is_ok()); // La Poste
    }

    #[test]
    fn vat_numbers() {
        // key for 732829320: (12 + 3 * (732829320 % 97)) % 97 = 44
        assert_eq!(vat_number("FR 44 732829320").unwrap(), "FR44732829320");
        assert!(vat_number("FR45732829320").is_err());
        assert!(vat_number("DE123456789").is_ok());
        assert!(vat_number("US123456789").is_err());
        assert!(vat_number("FR").is_err());
    }
}
