//! SEPA Core direct debit formats, free of I/O: IBAN checking (ISO 13616 mod 97), the
//! pain.008.001.02 initiation message a bank accepts, and the reading of its pain.002 status
//! report (rejects).

use maocloud_types::Cents;

/// Checks an IBAN (spaces allowed) and returns it compact and upper-case.
pub fn iban(raw: &str) -> Result<String, &'static str> {
    let s: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    if s.len() < 15 || s.len() > 34 || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("is not an IBAN");
    }
    let (cc, rest) = s.split_at(2);
    if !cc.chars().all(|c| c.is_ascii_uppercase()) || !rest[..2].chars().all(|c| c.is_ascii_digit())
    {
        return Err("is not an IBAN");
    }
    let expected_len = match cc {
        "FR" | "MC" | "IT" | "SM" => Some(27),
        "DE" => Some(22),
        "BE" => Some(16),
        "ES" => Some(24),
        "NL" => Some(18),
        "LU" => Some(20),
        "CH" => Some(21),
        "PT" => Some(25),
        "AT" => Some(20),
        "IE" => Some(22),
        _ => None,
    };
    if let Some(n) = expected_len {
        if s.len() != n {
            return Err("has the wrong length for its country");
        }
    }
    let rearranged = format!("{}{}", &s[4..], &s[..4]);
    let mut rem: u32 = 0;
    for c in rearranged.chars() {
        let v = c.to_digit(36).expect("alphanumeric");
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    if rem != 1 {
        return Err("has an invalid check digit");
    }
    Ok(s)
}

/// `FR76 **** **** **** **** ***0 189`-style display that hides all but the last four characters.
pub fn iban_masked(iban: &str) -> String {
    let n = iban.len();
    format!(
        "{}{}{}",
        &iban[..4.min(n)],
        "*".repeat(n.saturating_sub(8)),
        &iban[n.saturating_sub(4)..]
    )
}

/// The creditor (the provider).
#[derive(Debug, Clone)]
pub struct Creditor {
    pub name: String,
    pub iban: String,
    pub bic: String,
    /// SEPA creditor identifier (ICS in France).
    pub creditor_id: String,
}

/// One debit to collect.
#[derive(Debug, Clone)]
pub struct Debit {
    pub end_to_end_id: String,
    pub amount: Cents,
    pub mandate_reference: String,
    pub mandate_signed_on: String,
    pub debtor_name: String,
    pub debtor_iban: String,
    pub debtor_bic: Option<String>,
    /// `FRST` or `RCUR`.
    pub sequence: String,
    /// `YYYY-MM-DD`.
    pub collection_date: String,
    pub remittance: String,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Latin characters only, at most `max` long (SEPA's restricted character set).
fn text(s: &str, max: usize) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| match c {
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'É' | 'È' | 'Ê' => 'E',
            'à' | 'â' | 'ä' => 'a',
            'À' | 'Â' => 'A',
            'ô' | 'ö' => 'o',
            'î' | 'ï' => 'i',
            'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'Ç' => 'C',
            c if c.is_ascii_alphanumeric() || " /-?:().,'+".contains(c) => c,
            _ => ' ',
        })
        .collect();
    esc(cleaned
        .trim()
        .chars()
        .take(max)
        .collect::<String>()
        .as_str())
}

fn amount(c: Cents) -> String {
    format!("{}.{:02}", c.0 / 100, c.0 % 100)
}

/// The pain.008.001.02 message for `debits`, one payment information block per (collection
/// date, sequence type). `created` is `YYYY-MM-DDTHH:MM:SS`.
pub fn pain008(message_id: &str, created: &str, creditor: &Creditor, debits: &[Debit]) -> String {
    let total = Cents(debits.iter().map(|d| d.amount.0).sum());
    let mut groups: std::collections::BTreeMap<(String, String), Vec<&Debit>> = Default::default();
    for d in debits {
        groups
            .entry((d.collection_date.clone(), d.sequence.clone()))
            .or_default()
            .push(d);
    }
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.008.001.02\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><CstmrDrctDbtInitn>");
    x.push_str(&format!(
        "<GrpHdr><MsgId>{}</MsgId><CreDtTm>{created}</CreDtTm><NbOfTxs>{}</NbOfTxs><CtrlSum>{}</CtrlSum><InitgPty><Nm>{}</Nm></InitgPty></GrpHdr>",
        text(message_id, 35),
        debits.len(),
        amount(total),
        text(&creditor.name, 70)
    ));
    for (i, ((date, seq), ds)) in groups.iter().enumerate() {
        let sum = Cents(ds.iter().map(|d| d.amount.0).sum());
        x.push_str(&format!(
            "<PmtInf><PmtInfId>{}</PmtInfId><PmtMtd>DD</PmtMtd><NbOfTxs>{}</NbOfTxs><CtrlSum>{}</CtrlSum>\
             <PmtTpInf><SvcLvl><Cd>SEPA</Cd></SvcLvl><LclInstrm><Cd>CORE</Cd></LclInstrm><SeqTp>{seq}</SeqTp></PmtTpInf>\
             <ReqdColltnDt>{date}</ReqdColltnDt><Cdtr><Nm>{}</Nm></Cdtr><CdtrAcct><Id><IBAN>{}</IBAN></Id></CdtrAcct>\
             <CdtrAgt><FinInstnId><BIC>{}</BIC></FinInstnId></CdtrAgt><ChrgBr>SLEV</ChrgBr>\
             <CdtrSchmeId><Id><PrvtId><Othr><Id>{}</Id><SchmeNm><Prtry>SEPA</Prtry></SchmeNm></Othr></PrvtId></Id></CdtrSchmeId>",
            text(&format!("{message_id}-{}", i + 1), 35),
            ds.len(),
            amount(sum),
            text(&creditor.name, 70),
            esc(&creditor.iban),
            esc(&creditor.bic),
            esc(&creditor.creditor_id),
        ));
        for d in ds {
            let agent = match &d.debtor_bic {
                Some(b) => format!("<BIC>{}</BIC>", esc(b)),
                None => "<Othr><Id>NOTPROVIDED</Id></Othr>".into(),
            };
            x.push_str(&format!(
                "<DrctDbtTxInf><PmtId><EndToEndId>{}</EndToEndId></PmtId><InstdAmt Ccy=\"EUR\">{}</InstdAmt>\
                 <DrctDbtTx><MndtRltdInf><MndtId>{}</MndtId><DtOfSgntr>{}</DtOfSgntr></MndtRltdInf></DrctDbtTx>\
                 <DbtrAgt><FinInstnId>{agent}</FinInstnId></DbtrAgt><Dbtr><Nm>{}</Nm></Dbtr><DbtrAcct><Id><IBAN>{}</IBAN></Id></DbtrAcct>\
                 <RmtInf><Ustrd>{}</Ustrd></RmtInf></DrctDbtTxInf>",
                text(&d.end_to_end_id, 35),
                amount(d.amount),
                text(&d.mandate_reference, 35),
                esc(&d.mandate_signed_on),
                text(&d.debtor_name, 70),
                esc(&d.debtor_iban),
                text(&d.remittance, 140),
            ));
        }
        x.push_str("</PmtInf>");
    }
    x.push_str("</CstmrDrctDbtInitn></Document>\n");
    x
}

/// A transaction a bank rejected, from a pain.002 status report: (end-to-end id, reason code).
pub fn rejects(pain002: &str) -> Vec<(String, String)> {
    let inner = |block: &str, tag: &str| -> Option<String> {
        let open = format!("<{tag}>");
        let start = block.find(&open)? + open.len();
        let end = block[start..].find(&format!("</{tag}>"))? + start;
        Some(block[start..end].trim().to_string())
    };
    pain002
        .split("<TxInfAndSts>")
        .skip(1)
        .filter_map(|b| {
            let b = b.split("</TxInfAndSts>").next().unwrap_or(b);
            let status = inner(b, "TxSts")?;
            if status != "RJCT" {
                return None;
            }
            Some((
                inner(b, "OrgnlEndToEndId")?,
                inner(b, "Cd").unwrap_or_else(|| "NARR".into()),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans_are_checked_mod_97() {
        assert_eq!(
            iban("FR76 3000 6000 0112 3456 7890 189").unwrap(),
            "FR7630006000011234567890189"
        );
        assert_eq!(
            iban("de89370400440532013000").unwrap(),
            "DE89370400440532013000"
        );
        assert_eq!(
            iban("FR7630006000011234567890188"),
            Err("has an invalid check digit")
        );
        assert_eq!(
            iban("FR76300060000112345678901"),
            Err("has the wrong length for its country")
        );
        assert!(iban("not an iban").is_err());
        assert_eq!(
            iban_masked("FR7630006000011234567890189"),
            "FR76*******************0189"
        );
    }

    #[test]
    fn reads_rejects_from_a_status_report() {
        let report = "<Document><CstmrPmtStsRpt><OrgnlPmtInfAndSts>\
            <TxInfAndSts><OrgnlEndToEndId>E2E-1</OrgnlEndToEndId><TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf></TxInfAndSts>\
            <TxInfAndSts><OrgnlEndToEndId>E2E-2</OrgnlEndToEndId><TxSts>ACCP</TxSts></TxInfAndSts>\
            </OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>";
        assert_eq!(
            rejects(report),
            vec![("E2E-1".to_string(), "AM04".to_string())]
        );
    }
}
