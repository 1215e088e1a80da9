//! `maocloud privacy …`, `processor …`, `statistics` and `marketing …`: personal data from the
//! command line, through the API: a subscriber's marketing consents and their history
//! restriction and objection and the access export; the register of processors
//! (R-9.1, public; admins edit it); the operators' k-anonymous statistics and marketing emails.

use crate::client::Client;
use crate::output::{self, col, Format};
use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Turning a consent, a restriction or an objection on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl Switch {
    fn on(self) -> bool {
        self == Switch::On
    }
}

#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Your marketing consents per purpose, and every change (support operators: `--subscriber`).
    Consents {
        #[arg(long)]
        subscriber: Option<String>,
    },
    /// Give (`on`) or withdraw (`off`) your consent to one marketing purpose.
    Consent {
        /// loyalty, prospecting, surveys or promotions.
        purpose: String,
        #[arg(value_enum)]
        state: Switch,
    },
    /// Your restriction and objection, and every change (support operators: `--subscriber`).
    Choices {
        #[arg(long)]
        subscriber: Option<String>,
    },
    /// Restrict processing of your data (kept, used only as the contract and the law require),
    /// or lift the restriction.
    Restrict {
        #[arg(value_enum)]
        state: Switch,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Object to processing based on legitimate interest (statistics, profiling), or lift it.
    Object {
        #[arg(value_enum)]
        state: Switch,
        #[arg(long)]
        reason: Option<String>,
    },
    /// The export of all your data (a ZIP of JSON files): request, list, download.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Erase your account and personal data (no active contract; irreversible): `request`
    /// emails a code, `confirm --code C --email E` erases.
    #[command(subcommand)]
    Erase(EraseCommand),
    /// Correct your identity or billing details (every field, as at sign-up).
    Profile {
        #[arg(long)]
        full_name: String,
        /// consumer or professional.
        #[arg(long, default_value = "consumer")]
        customer_kind: String,
        #[arg(long)]
        company_name: Option<String>,
        #[arg(long)]
        company_id: Option<String>,
        #[arg(long)]
        vat_number: Option<String>,
        #[arg(long)]
        address_line1: String,
        #[arg(long)]
        address_line2: Option<String>,
        #[arg(long)]
        postal_code: String,
        #[arg(long)]
        city: String,
        #[arg(long, default_value = "FR")]
        country: String,
        #[arg(long)]
        phone: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EraseCommand {
    /// Ask for the erasure: a confirmation code is emailed to you.
    Request,
    /// Confirm with the emailed code and your email address: everything is erased at once.
    Confirm {
        #[arg(long)]
        code: String,
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Ask for an export; you are emailed when it is ready.
    Request,
    /// Your exports, newest first.
    List,
    /// Download a ready export.
    Download {
        id: String,
        /// Where to write it (`-` for standard output) [default: its own name, here].
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProcessorCommand {
    /// The register of processors and recipients of personal data (no sign-in needed).
    List,
    /// Admins: add an entry.
    Add {
        /// processor or recipient.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        name: String,
        /// What it does with the data.
        #[arg(long)]
        purpose: String,
        /// The personal data it receives.
        #[arg(long)]
        data: String,
        /// Where the data goes: an ISO country code, e.g. FR.
        #[arg(long)]
        country: String,
        /// EU, adequacy decision, standard contractual clauses…
        #[arg(long)]
        safeguards: String,
    },
    /// Admins: change an entry; what is not given stays as it is.
    Update {
        id: String,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        purpose: Option<String>,
        #[arg(long)]
        data: Option<String>,
        #[arg(long)]
        country: Option<String>,
        #[arg(long)]
        safeguards: Option<String>,
    },
    /// Admins: remove an entry (kept, marked removed, for the record).
    Remove { id: String },
}

#[derive(Debug, Subcommand)]
pub enum MarketingCommand {
    /// Admins: email every subscriber who consented to a purpose (and did not restrict
    /// processing), each with a one-click opt-out.
    Send {
        /// loyalty, prospecting, surveys or promotions.
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        subject: String,
        #[arg(long)]
        body: String,
    },
}

/// A value for a query string, percent-encoded.
fn query(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

fn with_subscriber(path: &str, subscriber: Option<String>) -> String {
    match subscriber {
        Some(s) => format!("{path}?subscriber_id={}", query(&s)),
        None => path.to_string(),
    }
}

const PROFILE_COLS: [output::Column; 7] = [
    col("NAME", "full_name"),
    col("KIND", "customer_kind"),
    col("COMPANY", "company_name"),
    col("ADDRESS", "address_line1"),
    col("POSTAL CODE", "postal_code"),
    col("CITY", "city"),
    col("COUNTRY", "country"),
];

const EXPORT_COLS: [output::Column; 6] = [
    col("ID", "id"),
    col("STATUS", "status"),
    col("REQUESTED", "requested_at"),
    col("READY", "ready_at"),
    col("EXPIRES", "expires_at"),
    col("SIZE", "size"),
];

fn print_consents(out: Format, v: &Value) {
    if out == Format::Json {
        output::print(out, v, &[]);
        return;
    }
    output::print(
        out,
        &v["purposes"],
        &[col("PURPOSE", "purpose"), col("GRANTED", "granted")],
    );
    if v["history"].as_array().is_some_and(|h| !h.is_empty()) {
        println!("\nHistory:");
        output::print(
            out,
            &v["history"],
            &[
                col("AT", "at"),
                col("PURPOSE", "purpose"),
                col("GRANTED", "granted"),
                col("SOURCE", "source"),
                col("FROM", "ip"),
            ],
        );
    }
}

fn print_choices(out: Format, v: &Value) {
    if out == Format::Json {
        output::print(out, v, &[]);
        return;
    }
    output::print(
        out,
        v,
        &[col("RESTRICTED", "restricted"), col("OBJECTED", "objected")],
    );
    if v["history"].as_array().is_some_and(|h| !h.is_empty()) {
        println!("\nHistory:");
        output::print(
            out,
            &v["history"],
            &[
                col("AT", "at"),
                col("CHOICE", "choice"),
                col("ACTIVE", "active"),
                col("SOURCE", "source"),
                col("REASON", "reason"),
            ],
        );
    }
}

pub async fn privacy(c: &Client, out: Format, cmd: PrivacyCommand) -> anyhow::Result<()> {
    match cmd {
        PrivacyCommand::Consents { subscriber } => {
            let v = c
                .get(&with_subscriber("/api/v1/privacy/consents", subscriber))
                .await?;
            print_consents(out, &v);
        }
        PrivacyCommand::Consent { purpose, state } => {
            let v = c
                .request(
                    reqwest::Method::PUT,
                    &format!("/api/v1/privacy/consents/{}", query(&purpose)),
                    Some(&json!({"granted": state.on(), "source": "cli"})),
                )
                .await?;
            print_consents(out, &v);
        }
        PrivacyCommand::Choices { subscriber } => {
            let v = c
                .get(&with_subscriber("/api/v1/privacy/choices", subscriber))
                .await?;
            print_choices(out, &v);
        }
        PrivacyCommand::Restrict { state, reason } => {
            print_choices(out, &choice(c, "restriction", state, reason).await?);
        }
        PrivacyCommand::Object { state, reason } => {
            print_choices(out, &choice(c, "objection", state, reason).await?);
        }
        PrivacyCommand::Export(ExportCommand::Request) => {
            let v = c.post("/api/v1/privacy/exports", &json!({})).await?;
            if out == Format::Table {
                eprintln!("Export requested; you will be emailed when it is ready.");
            }
            output::print(out, &v, &EXPORT_COLS);
        }
        PrivacyCommand::Export(ExportCommand::List) => {
            output::print(out, &c.get("/api/v1/privacy/exports").await?, &EXPORT_COLS);
        }
        PrivacyCommand::Export(ExportCommand::Download { id, file }) => {
            download(c, &id, file).await?;
        }
        PrivacyCommand::Erase(EraseCommand::Request) => {
            c.post("/api/v1/privacy/erasure", &json!({})).await?;
            eprintln!("A confirmation code was emailed to you; confirm with `maocloud privacy erase confirm --code CODE --email YOUR-EMAIL`.");
        }
        PrivacyCommand::Erase(EraseCommand::Confirm { code, email }) => {
            c.post(
                "/api/v1/privacy/erasure/confirm",
                &json!({"code": code, "email": email}),
            )
            .await?;
            eprintln!("Your account and personal data were erased.");
        }
        PrivacyCommand::Profile {
            full_name,
            customer_kind,
            company_name,
            company_id,
            vat_number,
            address_line1,
            address_line2,
            postal_code,
            city,
            country,
            phone,
        } => {
            let v = c
                .request(
                    reqwest::Method::PUT,
                    "/api/v1/me/profile",
                    Some(&json!({
                        "full_name": full_name, "customer_kind": customer_kind,
                        "company_name": company_name, "company_id": company_id,
                        "vat_number": vat_number, "address_line1": address_line1,
                        "address_line2": address_line2, "postal_code": postal_code,
                        "city": city, "country": country, "phone": phone,
                    })),
                )
                .await?;
            output::print(out, &v["profile"], &PROFILE_COLS);
        }
    }
    Ok(())
}

async fn choice(
    c: &Client,
    which: &str,
    state: Switch,
    reason: Option<String>,
) -> anyhow::Result<Value> {
    c.request(
        reqwest::Method::PUT,
        &format!("/api/v1/privacy/choices/{which}"),
        Some(&json!({"active": state.on(), "reason": reason, "source": "cli"})),
    )
    .await
}

async fn download(c: &Client, id: &str, file: Option<PathBuf>) -> anyhow::Result<()> {
    let bytes = c
        .get_bytes(&format!("/api/v1/privacy/exports/{}/download", query(id)))
        .await?;
    let target = match file {
        Some(p) if p.as_os_str() == "-" => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
            return Ok(());
        }
        Some(p) => p,
        None => {
            // The name the list gives (`maocloud-export-<date>.zip`), never a path.
            let list = c.get("/api/v1/privacy/exports").await?;
            let name = list
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["id"] == json!(id))
                .and_then(|e| e["file_name"].as_str())
                .filter(|n| !n.contains(['/', '\\']) && !n.starts_with('.'))
                .map(str::to_string)
                .unwrap_or_else(|| format!("maocloud-export-{id}.zip"));
            let p = PathBuf::from(name);
            if p.exists() {
                bail!(
                    "{} exists already: name another file with --file",
                    p.display()
                );
            }
            p
        }
    };
    std::fs::write(&target, &bytes).with_context(|| format!("writing {}", target.display()))?;
    eprintln!("Saved {} ({} bytes).", target.display(), bytes.len());
    Ok(())
}

const PROCESSOR_COLS: [output::Column; 7] = [
    col("ID", "id"),
    col("KIND", "kind"),
    col("NAME", "name"),
    col("PURPOSE", "purpose"),
    col("DATA", "data_categories"),
    col("COUNTRY", "country"),
    col("SAFEGUARDS", "safeguards"),
];

pub async fn processor(c: &Client, out: Format, cmd: ProcessorCommand) -> anyhow::Result<()> {
    match cmd {
        ProcessorCommand::List => {
            output::print(out, &c.get("/api/v1/processors").await?, &PROCESSOR_COLS);
        }
        ProcessorCommand::Add {
            kind,
            name,
            purpose,
            data,
            country,
            safeguards,
        } => {
            let body = json!({
                "kind": kind,
                "name": name,
                "purpose": purpose,
                "data_categories": data,
                "country": country,
                "safeguards": safeguards,
            });
            output::print(
                out,
                &c.post("/api/v1/processors", &body).await?,
                &PROCESSOR_COLS,
            );
        }
        ProcessorCommand::Update {
            id,
            kind,
            name,
            purpose,
            data,
            country,
            safeguards,
        } => {
            let list = c.get("/api/v1/processors").await?;
            let Some(current) = list
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["id"] == json!(id))
                .cloned()
            else {
                bail!("no entry {id} in the register (`maocloud processor list`)");
            };
            let mut body = json!({});
            for (field, given) in [
                ("kind", kind),
                ("name", name),
                ("purpose", purpose),
                ("data_categories", data),
                ("country", country),
                ("safeguards", safeguards),
            ] {
                body[field] = match given {
                    Some(v) => json!(v),
                    None => current[field].clone(),
                };
            }
            let v = c
                .request(
                    reqwest::Method::PUT,
                    &format!("/api/v1/processors/{}", query(&id)),
                    Some(&body),
                )
                .await?;
            output::print(out, &v, &PROCESSOR_COLS);
        }
        ProcessorCommand::Remove { id } => {
            c.delete(&format!("/api/v1/processors/{}", query(&id)))
                .await?;
            eprintln!("Entry {id} removed from the register.");
        }
    }
    Ok(())
}

/// The statistics, each as a table; a group of fewer than k subscribers reads `< k`, its
/// total `hidden`.
pub async fn statistics(c: &Client, out: Format, since: Option<String>) -> anyhow::Result<()> {
    let path = match since {
        Some(m) => format!("/api/v1/statistics?since={}", query(&m)),
        None => "/api/v1/statistics".into(),
    };
    let v = c.get(&path).await?;
    if out == Format::Json {
        output::print(out, &v, &[]);
        return Ok(());
    }
    let k = v["k"].as_i64().unwrap_or(0);
    println!(
        "Anonymised statistics (groups under {k} subscribers are hidden); revenue since {}.",
        v["since"].as_str().unwrap_or("?")
    );
    for s in v["statistics"].as_array().into_iter().flatten() {
        let groups: Vec<Value> = s["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| {
                let mut g = g.clone();
                if g["subscribers"].is_null() {
                    g["subscribers"] = json!(format!("< {k}"));
                    g["total"] = json!("hidden");
                }
                g
            })
            .collect();
        println!("\n{}:", s["name"].as_str().unwrap_or("?"));
        output::print(
            out,
            &Value::Array(groups),
            &[
                col("KEY", "key"),
                col("LABEL", "label"),
                col("SUBSCRIBERS", "subscribers"),
                col("TOTAL", "total"),
            ],
        );
    }
    Ok(())
}

pub async fn marketing(c: &Client, out: Format, cmd: MarketingCommand) -> anyhow::Result<()> {
    match cmd {
        MarketingCommand::Send {
            purpose,
            subject,
            body,
        } => {
            let v = c
                .post(
                    "/api/v1/marketing/emails",
                    &json!({"purpose": purpose, "subject": subject, "body": body}),
                )
                .await?;
            if out == Format::Json {
                output::print(out, &v, &[]);
            } else {
                println!("Queued for {} subscriber(s).", v["recipients"]);
            }
        }
    }
    Ok(())
}
