//! Inbound mail for the support desk: the Maildir the provider's MTA delivers the support
//! address's mail into ([`Intake`]), parsing one message ([`parse`]) and cutting the quoted
//! history off a reply ([`strip_quoted`]). Which ticket a message belongs to, and whether its
//! sender may post there, is the application's business.

use mail_parser::{Address, HeaderForm, HeaderName, Message, MessageParser, MimeHeaders};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Larger messages are refused without being read: parsing holds a message in memory.
pub const MAX_MESSAGE_BYTES: u64 = 25 * 1024 * 1024;
/// How many messages one [`Intake::pending`] call returns at most.
pub const PENDING_BATCH: usize = 200;

/// A file attached to an inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundAttachment {
    pub file_name: Option<String>,
    /// Lowercase `type/subtype`, `text/plain` when the part declares none (RFC 2045).
    pub content_type: String,
    /// Decoded contents (text parts are converted to UTF-8).
    pub bytes: Vec<u8>,
}

/// One received email, reduced to what the support desk needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The Message-ID without its angle brackets.
    pub message_id: Option<String>,
    /// The bare address of the first From, lowercased.
    pub from: Option<String>,
    /// Every address in To, Cc, Delivered-To and X-Original-To, bare, lowercased, without
    /// duplicates.
    pub to: Vec<String>,
    pub subject: String,
    /// The text/plain body, or the text/html one converted to text; lines end with `\n`.
    pub text: String,
    pub attachments: Vec<InboundAttachment>,
    /// Sent by a program (vacation notice, bounce, mailing list): must never post into a ticket.
    pub auto_submitted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error("not an email")]
    NotAnEmail,
}

/// Parses a raw RFC 5322 message.
pub fn parse(raw: &[u8]) -> Result<InboundMessage, InboundError> {
    // Without a single registered header (From, Subject, Date…), the bytes are not an email.
    let known = |h: &mail_parser::Header| !matches!(h.name, HeaderName::Other(_));
    let msg = MessageParser::default()
        .parse(raw)
        .filter(|m| m.headers().iter().any(known))
        .ok_or(InboundError::NotAnEmail)?;

    let mut to: Vec<String> = Vec::new();
    let mut add = |address: &Address| {
        for address in address.iter().filter_map(|a| a.address()) {
            let address = address.to_lowercase();
            if !to.contains(&address) {
                to.push(address);
            }
        }
    };
    msg.all_to().for_each(&mut add);
    msg.all_cc().for_each(&mut add);
    for envelope in [
        HeaderName::DeliveredTo,
        HeaderName::Other("X-Original-To".into()),
    ] {
        for value in msg.header_as(envelope, HeaderForm::Addresses) {
            value.as_address().into_iter().for_each(&mut add);
        }
    }

    let text = (0..msg.text_body_count())
        .filter_map(|i| msg.body_text(i))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\r\n", "\n");
    let attachments = msg
        .attachments()
        .map(|part| InboundAttachment {
            file_name: part.attachment_name().map(Into::into),
            content_type: part.content_type().map_or("text/plain".into(), |ct| {
                match ct.subtype() {
                    Some(sub) => format!("{}/{sub}", ct.ctype()),
                    None => ct.ctype().to_string(),
                }
                .to_lowercase()
            }),
            bytes: part.contents().to_vec(),
        })
        .collect();

    Ok(InboundMessage {
        message_id: msg.message_id().map(Into::into),
        from: msg
            .from()
            .and_then(Address::first)
            .and_then(|a| a.address())
            .map(str::to_lowercase),
        to,
        subject: msg.subject().unwrap_or_default().trim().to_string(),
        text,
        attachments,
        auto_submitted: is_automatic(&msg),
    })
}

/// Auto-Submitted other than `no` (RFC 3834), Precedence bulk/junk/list, or a null Return-Path
/// (bounces).
fn is_automatic(msg: &Message) -> bool {
    let first_header = |name: &str| {
        msg.headers_raw()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_ascii_lowercase())
    };
    let keyword = |value: &str| {
        let end = value
            .find([';', '(', ' ', '\t', '\r', '\n'])
            .unwrap_or(value.len());
        value[..end].to_string()
    };
    let auto_submitted = first_header("Auto-Submitted").is_some_and(|v| keyword(&v) != "no");
    let bulk = first_header("Precedence")
        .is_some_and(|v| matches!(keyword(&v).as_str(), "bulk" | "junk" | "list"));
    let null_sender = first_header("Return-Path").is_some_and(|v| {
        let v: String = v.split_whitespace().collect();
        v.is_empty() || v == "<>"
    });
    auto_submitted || bulk || null_sender
}

/// Strips the quoted history from a reply: everything from the first line containing `marker`
/// (with the "On … wrote:" line just above it), or without a marker found, from the first
/// quote header ("On … wrote:", "Le … a écrit :", "-----Original Message-----", Outlook's
/// "From:/Sent:" block) or the trailing block of `>` lines. Then drops the signature (from the
/// last "-- " line) and surrounding blank lines.
pub fn strip_quoted(text: &str, marker: Option<&str>) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let marker_at = marker
        .filter(|m| !m.trim().is_empty())
        .and_then(|m| lines.iter().position(|l| l.contains(m)));
    let end = match marker_at {
        Some(at) => {
            let last = lines[..at].iter().rposition(|l| !l.trim().is_empty());
            match last {
                Some(k) if is_quote_header(&lines, k) => k,
                Some(k) if k > 0 && is_quote_header(&lines, k - 1) => k - 1,
                _ => at,
            }
        }
        None => quote_start(&lines).unwrap_or(lines.len()),
    };
    let mut kept = &lines[..end];
    if let Some(sig) = kept.iter().rposition(|l| l.trim_end() == "--") {
        kept = &kept[..sig];
    }
    while let Some((last, rest)) = kept.split_last() {
        let separator = last.trim().chars().all(|c| c == '_' || c == '-');
        if !separator {
            break;
        }
        kept = rest;
    }
    kept.join("\n").trim_start_matches('\n').to_string()
}

/// Where the quoted history starts: the first quote header, or the trailing block of lines
/// starting with `>` (blank lines allowed between them).
fn quote_start(lines: &[&str]) -> Option<usize> {
    let header = (0..lines.len()).find(|&i| is_quote_header(lines, i));
    let quoted = |l: &str| l.trim().is_empty() || l.trim_start().starts_with('>');
    let tail = lines.len() - lines.iter().rev().take_while(|l| quoted(l)).count();
    let block = (tail..lines.len()).find(|&i| lines[i].trim_start().starts_with('>'));
    header.into_iter().chain(block).min()
}

/// Whether a client's attribution of the quoted message starts at line `i`. Gmail wraps long
/// "On … wrote:" lines, so the ending may be on the next line.
fn is_quote_header(lines: &[&str], i: usize) -> bool {
    let norm = |i: usize| {
        lines
            .get(i)
            .map(|l| {
                l.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase()
            })
            .unwrap_or_default()
    };
    let ends = |l: &str, suffix: &str| l.trim_end_matches(':').trim_end().ends_with(suffix);
    let (line, next) = (norm(i), norm(i + 1));
    let attribution =
        |start: &str, end: &str| line.starts_with(start) && (ends(&line, end) || ends(&next, end));
    let outlook = |from: &[&str], sent: &[&str]| {
        from.iter().any(|f| line.starts_with(f))
            && (i + 1..i + 4).any(|j| sent.iter().any(|s| norm(j).starts_with(s)))
    };
    attribution("on ", "wrote")
        || attribution("le ", "a écrit")
        || line.contains("-----original message-----")
        || (line.starts_with("---") && line.contains("message d'origine"))
        || outlook(&["from:"], &["sent:", "date:"])
        || outlook(
            &["de :", "de:"],
            &["envoyé :", "envoyé:", "date :", "date:"],
        )
}

/// A Maildir that receives the support address's mail. Messages wait in `new/`, go to `cur/`
/// once taken into a ticket, and to `rejected/` (with a `.reason` file beside) otherwise.
#[derive(Debug, Clone)]
pub struct Intake {
    root: PathBuf,
}

impl Intake {
    /// Opens the Maildir at `root`, creating `tmp/`, `new/`, `cur/` and `rejected/` if missing.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Intake> {
        let root = root.into();
        for sub in ["tmp", "new", "cur", "rejected"] {
            fs::create_dir_all(root.join(sub))?;
        }
        Ok(Intake { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The messages waiting in `new/`, oldest first by name (Maildir names start with the
    /// delivery time), dotfiles ignored, at most [`PENDING_BATCH`].
    pub fn pending(&self) -> io::Result<Vec<PathBuf>> {
        let new = self.root.join("new");
        let mut names = Vec::new();
        for entry in fs::read_dir(&new)? {
            let entry = entry?;
            let name = entry.file_name();
            if !name.as_encoded_bytes().starts_with(b".") && entry.file_type()?.is_file() {
                names.push(name);
            }
        }
        names.sort_unstable();
        names.truncate(PENDING_BATCH);
        Ok(names.into_iter().map(|name| new.join(name)).collect())
    }

    /// Reads a pending message (only the file name of `path` is used, looked up in `new/`).
    /// Messages over [`MAX_MESSAGE_BYTES`] are refused with [`io::ErrorKind::InvalidData`].
    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let file = File::open(self.root.join("new").join(file_name(path)?))?;
        let too_big = |len: u64| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("message of {len} bytes is over the {MAX_MESSAGE_BYTES} byte limit"),
            )
        };
        let len = file.metadata()?.len();
        if len > MAX_MESSAGE_BYTES {
            return Err(too_big(len));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        // The file may still grow (a misbehaving writer): never read past the limit.
        file.take(MAX_MESSAGE_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_MESSAGE_BYTES {
            return Err(too_big(bytes.len() as u64));
        }
        Ok(bytes)
    }

    /// Marks a pending message as handled: moves `new/X` to `cur/X:2,S` (Maildir "seen").
    pub fn accept(&self, path: &Path) -> io::Result<()> {
        let name = file_name(path)?;
        let name = name.to_str().ok_or_else(|| invalid_name(path))?;
        let base = name.split_once(':').map_or(name, |(base, _)| base);
        let cur = self.root.join("cur");
        fs::rename(
            self.root.join("new").join(name),
            cur.join(format!("{base}:2,S")),
        )?;
        sync_dir(&cur)
    }

    /// Sets a pending message aside: moves `new/X` to `rejected/X` and writes the reason to
    /// `rejected/X.reason`.
    pub fn reject(&self, path: &Path, reason: &str) -> io::Result<()> {
        let name = file_name(path)?;
        let rejected = self.root.join("rejected");
        fs::rename(self.root.join("new").join(name), rejected.join(name))?;
        let mut reason_name = name.to_os_string();
        reason_name.push(".reason");
        let mut file = File::create(rejected.join(reason_name))?;
        writeln!(file, "{}", reason.trim_end())?;
        file.sync_all()?;
        sync_dir(&rejected)
    }
}

/// Delivers a raw message into the Maildir at `root` the way an MTA does: written and synced
/// in `tmp/`, then renamed into `new/` under a unique `<unix_ms>.<random>.maocloud-test` name.
pub fn deliver(root: &Path, raw: &[u8]) -> io::Result<PathBuf> {
    for sub in ["tmp", "new", "cur"] {
        fs::create_dir_all(root.join(sub))?;
    }
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let name = format!("{ms}.{}.maocloud-test", uuid::Uuid::now_v7().simple());
    let tmp = root.join("tmp").join(&name);
    let mut file = File::create_new(&tmp)?;
    file.write_all(raw)?;
    file.sync_all()?;
    let new = root.join("new").join(&name);
    fs::rename(&tmp, &new)?;
    Ok(new)
}

fn file_name(path: &Path) -> io::Result<&OsStr> {
    path.file_name().ok_or_else(|| invalid_name(path))
}

fn invalid_name(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is not a Maildir message name", path.display()),
    )
}

/// Makes a rename into `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crlf(s: &str) -> Vec<u8> {
        s.replace('\n', "\r\n").into_bytes()
    }

    #[test]
    fn plain_reply_in_quoted_printable_utf8() {
        let raw = crlf(concat!(
            "Return-Path: <alice@example.net>\n",
            "Delivered-To: support@maocloud.test\n",
            "X-Original-To: Help@Maocloud.test\n",
            "From: Alice Dupont <Alice@Example.NET>\n",
            "To: \"Maocloud Support\" <support+ticket-42@maocloud.test>\n",
            "Cc: bob@example.net, Alice@example.net\n",
            "Subject: Re: [Ticket #42] Disk full\n",
            "Message-ID: <abc.123@example.net>\n",
            "MIME-Version: 1.0\n",
            "Content-Type: text/plain; charset=utf-8\n",
            "Content-Transfer-Encoding: quoted-printable\n",
            "\n",
            "Merci, =C3=A7a marche =E2=82=AC.\n",
            "A long line that is soft=\n",
            " wrapped.\n",
            "\n",
            "Le lun. 1 janv. 2024 =C3=A0 10:00, Maocloud <support@maocloud.test> a =C3=A9crit=\n",
            "=C2=A0:\n",
            "> Your disk is full.\n",
        ));
        let msg = parse(&raw).unwrap();
        assert_eq!(msg.message_id.as_deref(), Some("abc.123@example.net"));
        assert_eq!(msg.from.as_deref(), Some("alice@example.net"));
        assert_eq!(
            msg.to,
            [
                "support+ticket-42@maocloud.test",
                "bob@example.net",
                "alice@example.net",
                "support@maocloud.test",
                "help@maocloud.test",
            ]
        );
        assert_eq!(msg.subject, "Re: [Ticket #42] Disk full");
        assert!(msg
            .text
            .starts_with("Merci, ça marche €.\nA long line that is soft wrapped.\n"));
        assert!(!msg.text.contains('\r'));
        assert!(msg.attachments.is_empty());
        assert!(!msg.auto_submitted);
        assert_eq!(
            strip_quoted(&msg.text, None),
            "Merci, ça marche €.\nA long line that is soft wrapped."
        );
    }

    #[test]
    fn html_only_message_is_converted_to_text() {
        let raw = crlf(concat!(
            "From: carol@example.org\n",
            "To: support@maocloud.test\n",
            "Subject: VM down\n",
            "Content-Type: text/html; charset=utf-8\n",
            "\n",
            "<html><body><p>Hello <b>support</b>,</p><p>the VM is down.</p></body></html>\n",
        ));
        let msg = parse(&raw).unwrap();
        assert!(msg.text.contains("Hello support,"), "{:?}", msg.text);
        assert!(msg.text.contains("the VM is down."), "{:?}", msg.text);
        assert!(!msg.text.contains('<'), "{:?}", msg.text);
    }

    #[test]
    fn multipart_with_png_attachment() {
        let raw = crlf(concat!(
            "From: dave@example.com\n",
            "To: support@maocloud.test\n",
            "Subject: Screenshot\n",
            "MIME-Version: 1.0\n",
            "Content-Type: multipart/mixed; boundary=\"b1\"\n",
            "\n",
            "--b1\n",
            "Content-Type: text/plain; charset=us-ascii\n",
            "\n",
            "See the attached screenshot.\n",
            "--b1\n",
            "Content-Type: Image/PNG; name=\"screen shot.png\"\n",
            "Content-Disposition: attachment; filename=\"screen shot.png\"\n",
            "Content-Transfer-Encoding: base64\n",
            "\n",
            "iVBORw0KGgoAAAANSUhEUgAAAAE=\n",
            "--b1--\n",
        ));
        let msg = parse(&raw).unwrap();
        assert_eq!(msg.text.trim_end(), "See the attached screenshot.");
        assert_eq!(
            msg.attachments,
            [InboundAttachment {
                file_name: Some("screen shot.png".into()),
                content_type: "image/png".into(),
                bytes: b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01".to_vec(),
            }]
        );
    }

    #[test]
    fn iso_8859_1_subject_and_body() {
        let mut raw = crlf(concat!(
            "From: =?ISO-8859-1?Q?Ren=E9?= <rene@example.fr>\n",
            "To: support@maocloud.test\n",
            "Subject: =?ISO-8859-1?Q?Probl=E8me_de_facturation?=\n",
            "Content-Type: text/plain; charset=ISO-8859-1\n",
            "Content-Transfer-Encoding: 8bit\n",
            "\n",
        ));
        raw.extend_from_slice(b"D\xe9j\xe0 pay\xe9.\r\n");
        let msg = parse(&raw).unwrap();
        assert_eq!(msg.subject, "Problème de facturation");
        assert_eq!(msg.from.as_deref(), Some("rene@example.fr"));
        assert_eq!(msg.text.trim_end(), "Déjà payé.");
    }

    #[test]
    fn automatic_messages_are_flagged() {
        let with = |header: &str| {
            let raw = format!("{header}From: a@example.net\nSubject: Out of office\n\nAway.\n");
            parse(&crlf(&raw)).unwrap().auto_submitted
        };
        assert!(with("Auto-Submitted: auto-replied\n"));
        assert!(with(
            "Auto-Submitted: auto-generated; owner-email=\"x@example.net\"\n"
        ));
        assert!(with("Precedence: bulk\n"));
        assert!(with("Precedence: Junk\n"));
        assert!(with("Return-Path: <>\n"));
        assert!(with("Return-Path: \n"));
        assert!(!with("Auto-Submitted: no\n"));
        assert!(!with(
            "Return-Path: <a@example.net>\nPrecedence: first-class\n"
        ));
        assert!(!with(""));
    }

    #[test]
    fn garbage_does_not_panic() {
        let inputs: [&[u8]; 6] = [
            b"",
            b"\x00\xff\xfe garbage \x80\x81",
            b"\r\n\r\n",
            b"::::\n\n",
            b"X-Unknown: only\n\nbody",
            &[0xc3; 4096],
        ];
        for raw in inputs {
            assert!(
                matches!(parse(raw), Err(InboundError::NotAnEmail)),
                "{raw:?}"
            );
        }
        let broken = parse(b"Content-Type: multipart/mixed; boundary=x\n\n--x\n--x\n--x").unwrap();
        assert!(broken.text.is_empty() && broken.attachments.is_empty());
    }

    #[test]
    fn strip_quoted_at_marker() {
        let text = concat!(
            "Thanks, it works now.\n",
            "\n",
            "On Mon, Jan 1, 2024 at 10:00 AM Maocloud Support <\n",
            "support@maocloud.test> wrote:\n",
            "\n",
            "> ##- Please type your reply above this line -##\n",
            "> Your ticket #42 was answered.\n",
        );
        let marker = Some("##- Please type your reply above this line -##");
        assert_eq!(strip_quoted(text, marker), "Thanks, it works now.");
        // Text above an unquoted marker is kept as is, quote-like lines included.
        let text = "> did you reboot?\nYes.\n\n##- Please type your reply above this line -##\nold";
        assert_eq!(strip_quoted(text, marker), "> did you reboot?\nYes.");
    }

    #[test]
    fn strip_quoted_french_attribution() {
        let text = concat!(
            "Bonjour,\n",
            "c'est réglé, merci.\n",
            "-- \n",
            "Jean\n",
            "\n",
            "Le lun. 1 janv. 2024 à 10:00, Maocloud <support@maocloud.test> a écrit\u{a0}:\n",
            "> Bonjour Jean,\n",
        );
        assert_eq!(strip_quoted(text, None), "Bonjour,\nc'est réglé, merci.");
    }

    #[test]
    fn strip_quoted_english_attribution_and_others() {
        let text = "Done.\r\n\r\nOn Tue, Feb 6, 2024, Support wrote:\r\n> Please confirm.\r\n";
        assert_eq!(strip_quoted(text, None), "Done.");
        let text = "Ok\n\n-----Original Message-----\nFrom: support@maocloud.test\n";
        assert_eq!(strip_quoted(text, None), "Ok");
        let text = "Ok\n________________________________\nFrom: Support\nSent: Monday\nTo: me\n";
        assert_eq!(strip_quoted(text, None), "Ok");
        let text = "Answer below.\n\n> earlier\n>\n> message\n\n";
        assert_eq!(strip_quoted(text, None), "Answer below.");
        // Inline answers between quotes are kept.
        let text = "> Which VM?\nThe web one.\n> Since when?\nYesterday.\n";
        assert_eq!(strip_quoted(text, None), text.trim_end());
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn intake_accepts_and_rejects() {
        let dir = tempfile::tempdir().unwrap();
        let intake = Intake::open(dir.path().join("support")).unwrap();
        for sub in ["tmp", "new", "cur", "rejected"] {
            assert!(intake.root().join(sub).is_dir());
        }
        let first = deliver(intake.root(), b"Subject: one\r\n\r\n1\r\n").unwrap();
        let second = deliver(intake.root(), b"Subject: two\r\n\r\n2\r\n").unwrap();
        fs::write(intake.root().join("new/.hidden"), b"x").unwrap();
        assert_eq!(intake.pending().unwrap(), [first.clone(), second.clone()]);
        assert_eq!(intake.read(&first).unwrap(), b"Subject: one\r\n\r\n1\r\n");

        intake.accept(&first).unwrap();
        let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(
            names(&intake.root().join("cur")),
            [format!("{}:2,S", name(&first))]
        );

        intake
            .reject(&second, "sender is not a subscriber")
            .unwrap();
        let rejected = intake.root().join("rejected");
        assert_eq!(
            names(&rejected),
            [name(&second), format!("{}.reason", name(&second))]
        );
        let reason = fs::read_to_string(rejected.join(format!("{}.reason", name(&second))));
        assert_eq!(reason.unwrap(), "sender is not a subscriber\n");
        assert!(intake.pending().unwrap().is_empty());
        assert_eq!(names(&intake.root().join("tmp")), Vec::<String>::new());
        assert!(intake.accept(&second).is_err());
    }

    #[test]
    fn pending_is_bounded_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let intake = Intake::open(dir.path()).unwrap();
        for i in (0..PENDING_BATCH + 5).rev() {
            fs::write(
                dir.path()
                    .join(format!("new/{:010}.M{i}.host", 1_700_000_000 + i)),
                "",
            )
            .unwrap();
        }
        let pending = intake.pending().unwrap();
        assert_eq!(pending.len(), PENDING_BATCH);
        assert!(pending[0].ends_with("1700000000.M0.host"));
        assert!(pending.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn oversized_message_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let intake = Intake::open(dir.path()).unwrap();
        let path = dir.path().join("new/1700000000.big.host");
        File::create(&path)
            .unwrap()
            .set_len(MAX_MESSAGE_BYTES + 1)
            .unwrap();
        let err = intake.read(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        fs::write(&path, b"Subject: small\r\n\r\n").unwrap();
        assert!(intake.read(&path).is_ok());
    }
}
