//! `maocloud ticket …` and `maocloud support …`: the support desk from the command line, through
//! the API (R-1d): subscribers open, follow, answer, close and rate their tickets with files
//! attached; operators work the queue (filters, assignment, notes, merge, the subscriber's
//! context, credential-loss decisions), and manage canned replies, targets, the monthly report
//! and registered letters (R-7.2a).

use crate::client::Client;
use crate::output::{self, col, Format};
use anyhow::{bail, Context};
use base64::Engine as _;
use clap::Subcommand;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// Your tickets not yet resolved (operators: the queue); `--all` shows every status.
    List {
        /// new, open, waiting, resolved or closed.
        #[arg(long)]
        status: Option<String>,
        /// low, normal, high or urgent.
        #[arg(long)]
        priority: Option<String>,
        /// technical, billing, account or abuse.
        #[arg(long)]
        category: Option<String>,
        /// Operators: `me`, `none` (unassigned) or an operator id.
        #[arg(long)]
        assignee: Option<String>,
        /// Operators: tickets escalated already or due within the hour.
        #[arg(long)]
        at_risk: bool,
        /// Resolved and closed tickets too.
        #[arg(long)]
        all: bool,
    },
    /// Open a ticket (subscribers). Files: PDF, PNG, JPEG or text, 5 MiB each, 3 at most.
    Open {
        #[arg(long)]
        subject: String,
        /// technical, billing, account or abuse.
        #[arg(long, default_value = "technical")]
        category: String,
        /// low, normal, high or urgent (`maocloud support targets` shows the response times).
        #[arg(long, default_value = "normal")]
        priority: String,
        #[arg(long)]
        message: String,
        /// A file to attach; repeat for several.
        #[arg(long = "attach", value_name = "FILE")]
        attach: Vec<PathBuf>,
        /// A VM of yours the ticket is about (id); repeat for several.
        #[arg(long = "vm", value_name = "ID")]
        vms: Vec<String>,
        /// A bucket of yours the ticket is about (name); repeat for several.
        #[arg(long = "bucket", value_name = "NAME")]
        buckets: Vec<String>,
        /// An invoice of yours the ticket is about (id); repeat for several.
        #[arg(long = "invoice", value_name = "ID")]
        invoices: Vec<String>,
    },
    /// A ticket with its thread.
    Show { id: String },
    /// Answer a ticket (operators: `--internal` for a note the subscriber never sees, and the
    /// status after a public reply).
    Reply {
        id: String,
        #[arg(long)]
        message: String,
        #[arg(long)]
        internal: bool,
        /// Operators: open, waiting (default) or resolved.
        #[arg(long)]
        status: Option<String>,
        #[arg(long = "attach", value_name = "FILE")]
        attach: Vec<PathBuf>,
    },
    /// Close your ticket, rating the help you got (1 to 5) if you wish.
    Close {
        id: String,
        #[arg(long)]
        rating: Option<i64>,
        #[arg(long, requires = "rating")]
        comment: Option<String>,
    },
    /// Reopen your resolved or closed ticket.
    Reopen { id: String },
    /// Operators: change a ticket's status, priority, category or assignee.
    Set {
        id: String,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        priority: Option<String>,
        #[arg(long)]
        category: Option<String>,
        /// An operator id, `me` or `none` (unassign).
        #[arg(long)]
        assignee: Option<String>,
    },
    /// Operators: merge a ticket into another of the same requester.
    Merge {
        id: String,
        #[arg(long)]
        into: String,
    },
    /// Operators: the subscriber's offers, resources, unpaid invoices and other tickets.
    Context { id: String },
    /// Download an attachment (`maocloud ticket show` lists their ids).
    Attachment {
        id: String,
        attachment_id: String,
        /// Where to write it (`-` for standard output) [default: its own name, here].
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Support operators: decide a credential-loss report (R-5a). Confirming revokes every
    /// credential of the subscriber at once and emails new access.
    #[command(name = "credential-loss")]
    CredentialLoss {
        id: String,
        /// confirm or reject.
        #[arg(long)]
        decision: String,
        /// Posted to the thread; required to reject.
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SupportCommand {
    /// The response targets per priority (what subscribers are promised).
    Targets,
    /// Admins: set a priority's targets, in minutes.
    #[command(name = "targets-set")]
    TargetsSet {
        /// low, normal, high or urgent.
        priority: String,
        #[arg(long, value_name = "MINUTES")]
        first_response: i64,
        #[arg(long, value_name = "MINUTES")]
        resolution: i64,
    },
    /// Support operators: the month's tickets per priority, targets met and missed, ratings.
    Report {
        /// `YYYY-MM` [default: this month].
        #[arg(long)]
        month: Option<String>,
    },
    /// Operators: canned replies.
    #[command(subcommand)]
    Canned(CannedCommand),
    /// Operators: record a registered letter with its date of receipt (R-7.2a).
    Letter {
        /// The subscriber who wrote.
        #[arg(long)]
        subscriber: String,
        /// `YYYY-MM-DD`.
        #[arg(long)]
        received_on: String,
        /// termination, credential_loss or other.
        #[arg(long)]
        subject: String,
        /// What the letter says.
        #[arg(long)]
        summary: String,
        /// The letter's scan (PDF, PNG or JPEG).
        #[arg(long, value_name = "FILE")]
        scan: Option<PathBuf>,
        /// Termination: the subscription the letter names.
        #[arg(long)]
        subscription: Option<String>,
        /// Termination: month_end (default) or date.
        #[arg(long)]
        end: Option<String>,
        /// Termination with `--end date`: `YYYY-MM-DD`.
        #[arg(long)]
        end_date: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CannedCommand {
    List,
    /// Support operators: add a reply to reuse.
    Add {
        #[arg(long)]
        title: String,
        #[arg(long)]
        body: String,
    },
    /// Support operators: delete one.
    Delete {
        id: String,
    },
}

/// The content type of a file to attach, from its extension (the server checks the bytes).
fn content_type_of(path: &Path) -> anyhow::Result<&'static str> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    Ok(match ext.as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "txt" | "log" => "text/plain",
        _ => bail!(
            "{}: only .pdf, .png, .jpg, .jpeg, .txt and .log files can be attached",
            path.display()
        ),
    })
}

/// A file as the API takes it: name, type and base64 bytes.
fn attachment(path: &Path) -> anyhow::Result<Value> {
    let content_type = content_type_of(path)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: the file has no usable name", path.display()))?;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(json!({
        "file_name": name,
        "content_type": content_type,
        "data_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
    }))
}

fn attachments(paths: &[PathBuf]) -> anyhow::Result<Vec<Value>> {
    paths.iter().map(|p| attachment(p)).collect()
}

/// A value for a query string, percent-encoded.
fn query(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

const TICKET_COLS: [output::Column; 8] = [
    col("ID", "id"),
    col("#", "number"),
    col("STATUS", "status"),
    col("PRIORITY", "priority"),
    col("CATEGORY", "category"),
    col("SUBJECT", "subject"),
    col("ASSIGNEE", "assignee_id"),
    col("UPDATED", "updated_at"),
];

const DETAIL_COLS: [output::Column; 14] = [
    col("ID", "id"),
    col("NUMBER", "number"),
    col("KIND", "kind"),
    col("SUBJECT", "subject"),
    col("CATEGORY", "category"),
    col("PRIORITY", "priority"),
    col("STATUS", "status"),
    col("SUBSCRIBER", "subscriber.email"),
    col("ASSIGNEE", "assignee_name"),
    col("OPENED", "created_at"),
    col("FIRST RESPONSE DUE", "first_response_due_at"),
    col("FIRST RESPONSE", "first_response_at"),
    col("RESOLUTION DUE", "resolution_due_at"),
    col("RATING", "rating"),
];

/// Prints a ticket: its fields, linked resources, then its thread with each file's id.
fn print_ticket(out: Format, v: &Value) {
    if out == Format::Json {
        output::print(out, v, &[]);
        return;
    }
    output::print(out, v, &DETAIL_COLS);
    if let Some(rs) = v["resources"].as_array().filter(|r| !r.is_empty()) {
        let list: Vec<String> = rs
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r["kind"].as_str().unwrap_or(""),
                    r["label"].as_str().unwrap_or("")
                )
            })
            .collect();
        println!("RESOURCES: {}", list.join(", "));
    }
    for m in v["messages"].as_array().into_iter().flatten() {
        println!();
        println!(
            "--- {} ({}){} {}",
            m["author_label"].as_str().unwrap_or(""),
            m["author_kind"].as_str().unwrap_or(""),
            if m["internal"] == json!(true) {
                " [internal note]"
            } else {
                ""
            },
            m["created_at"].as_str().unwrap_or("")
        );
        println!("{}", m["body"].as_str().unwrap_or(""));
        for a in m["attachments"].as_array().into_iter().flatten() {
            println!(
                "  [file {}] {} ({}, {} bytes)",
                a["id"].as_str().unwrap_or(""),
                a["file_name"].as_str().unwrap_or(""),
                a["content_type"].as_str().unwrap_or(""),
                a["size"]
            );
        }
    }
}

/// Every page of a list.
async fn all_pages(c: &Client, path: &str) -> anyhow::Result<Value> {
    let mut items = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let page = match &cursor {
            Some(cur) => c.get(&format!("{path}&cursor={}", query(cur))).await?,
            None => c.get(path).await?,
        };
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    Ok(json!({ "items": items }))
}

pub async fn ticket(c: &Client, out: Format, cmd: TicketCommand) -> anyhow::Result<()> {
    let v = match cmd {
        TicketCommand::List {
            status,
            priority,
            category,
            assignee,
            at_risk,
            all,
        } => {
            let mut path = "/api/v1/tickets?limit=200".to_string();
            for (k, v) in [
                ("status", &status),
                ("priority", &priority),
                ("category", &category),
                ("assignee", &assignee),
            ] {
                if let Some(v) = v {
                    path.push_str(&format!("&{k}={}", query(v)));
                }
            }
            if at_risk {
                path.push_str("&at_risk=true");
            }
            if !all && status.is_none() {
                path.push_str("&active=true");
            }
            output::print(out, &all_pages(c, &path).await?, &TICKET_COLS);
            return Ok(());
        }
        TicketCommand::Open {
            subject,
            category,
            priority,
            message,
            attach,
            vms,
            buckets,
            invoices,
        } => {
            let resources: Vec<Value> = vms
                .iter()
                .map(|id| json!({"kind": "vm", "id": id}))
                .chain(buckets.iter().map(|n| json!({"kind": "bucket", "id": n})))
                .chain(
                    invoices
                        .iter()
                        .map(|id| json!({"kind": "invoice", "id": id})),
                )
                .collect();
            let body = json!({
                "subject": subject,
                "category": category,
                "priority": priority,
                "message": message,
                "resources": resources,
                "attachments": attachments(&attach)?,
            });
            let v = c.post("/api/v1/tickets", &body).await?;
            if out == Format::Table {
                eprintln!(
                    "Ticket #{} opened; the desk answers by email and here.",
                    v["number"]
                );
            }
            v
        }
        TicketCommand::Show { id } => c.get(&format!("/api/v1/tickets/{id}")).await?,
        TicketCommand::Reply {
            id,
            message,
            internal,
            status,
            attach,
        } => {
            let mut body = json!({
                "message": message,
                "attachments": attachments(&attach)?,
            });
            if internal {
                body["internal"] = json!(true);
            }
            if let Some(s) = status {
                body["status"] = json!(s);
            }
            c.post(&format!("/api/v1/tickets/{id}/messages"), &body)
                .await?
        }
        TicketCommand::Close {
            id,
            rating,
            comment,
        } => {
            c.post(
                &format!("/api/v1/tickets/{id}/close"),
                &json!({"rating": rating, "comment": comment}),
            )
            .await?
        }
        TicketCommand::Reopen { id } => {
            c.post(&format!("/api/v1/tickets/{id}/reopen"), &json!({}))
                .await?
        }
        TicketCommand::Set {
            id,
            status,
            priority,
            category,
            assignee,
        } => {
            let mut body = json!({});
            for (k, v) in [
                ("status", status),
                ("priority", priority),
                ("category", category),
            ] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            match assignee.as_deref() {
                None => {}
                Some("none") => body["assignee_id"] = Value::Null,
                Some("me") => {
                    let me = c.get("/api/v1/me").await?;
                    body["assignee_id"] = me["id"].clone();
                }
                Some(op) => body["assignee_id"] = json!(op),
            }
            if body.as_object().is_some_and(|o| o.is_empty()) {
                bail!("nothing to change: give --status, --priority, --category or --assignee");
            }
            c.request(
                reqwest::Method::PATCH,
                &format!("/api/v1/tickets/{id}"),
                Some(&body),
            )
            .await?
        }
        TicketCommand::Merge { id, into } => {
            c.post(
                &format!("/api/v1/tickets/{id}/merge"),
                &json!({"into": into}),
            )
            .await?
        }
        TicketCommand::Context { id } => {
            let v = c.get(&format!("/api/v1/tickets/{id}/context")).await?;
            print_context(out, &v);
            return Ok(());
        }
        TicketCommand::Attachment {
            id,
            attachment_id,
            file,
        } => {
            return download(c, &id, &attachment_id, file).await;
        }
        TicketCommand::CredentialLoss { id, decision, note } => {
            c.post(
                &format!("/api/v1/tickets/{id}/credential-loss"),
                &json!({"decision": decision, "note": note}),
            )
            .await?
        }
    };
    print_ticket(out, &v);
    Ok(())
}

/// The file name a download gets by default: the stored name without any path.
fn safe_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next()?.trim();
    (!base.is_empty() && !base.starts_with('.') && !base.chars().any(char::is_control))
        .then(|| base.to_string())
}

async fn download(
    c: &Client,
    id: &str,
    attachment_id: &str,
    file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let bytes = c
        .get_bytes(&format!("/api/v1/tickets/{id}/attachments/{attachment_id}"))
        .await?;
    let target = match file {
        Some(p) if p.as_os_str() == "-" => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
            return Ok(());
        }
        Some(p) => p,
        None => {
            // The name from the thread, never from a header: it was checked when uploaded.
            let t = c.get(&format!("/api/v1/tickets/{id}")).await?;
            let name = t["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|m| m["attachments"].as_array().cloned().unwrap_or_default())
                .find(|a| a["id"] == json!(attachment_id))
                .and_then(|a| a["file_name"].as_str().and_then(safe_name))
                .unwrap_or_else(|| format!("attachment-{attachment_id}"));
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

fn print_context(out: Format, v: &Value) {
    if out == Format::Json {
        output::print(out, v, &[]);
        return;
    }
    output::print(
        out,
        v,
        &[
            col("SUBSCRIBER", "subscriber_id"),
            col("NAME", "name"),
            col("EMAIL", "email"),
        ],
    );
    let sections: [(&str, &str, Vec<output::Column>); 6] = [
        (
            "Subscriptions",
            "subscriptions",
            vec![
                col("ID", "id"),
                col("OFFER", "offer"),
                col("STATUS", "status"),
            ],
        ),
        (
            "VMs",
            "vms",
            vec![col("ID", "id"), col("NAME", "name"), col("STATE", "state")],
        ),
        (
            "Buckets",
            "buckets",
            vec![
                col("NAME", "name"),
                col("BYTES", "bytes"),
                col("OBJECTS", "objects"),
            ],
        ),
        (
            "Unpaid invoices",
            "unpaid_invoices",
            vec![
                col("NUMBER", "number"),
                col("DUE", "due_date"),
                col("LEFT TO PAY (cents)", "remaining_cents"),
            ],
        ),
        (
            "Suspensions",
            "suspensions",
            vec![
                col("CAUSE", "cause"),
                col("STATUS", "status"),
                col("SINCE", "since"),
            ],
        ),
        (
            "Other tickets",
            "other_tickets",
            vec![
                col("ID", "id"),
                col("#", "number"),
                col("SUBJECT", "subject"),
                col("STATUS", "status"),
            ],
        ),
    ];
    for (title, field, cols) in sections {
        if v[field].as_array().is_some_and(|a| !a.is_empty()) {
            println!("\n{title}:");
            output::print(out, &v[field], &cols);
        }
    }
}

pub async fn support(c: &Client, out: Format, cmd: SupportCommand) -> anyhow::Result<()> {
    let target_cols = [
        col("PRIORITY", "priority"),
        col("FIRST RESPONSE (min)", "first_response_minutes"),
        col("RESOLUTION (min)", "resolution_minutes"),
    ];
    match cmd {
        SupportCommand::Targets => {
            output::print(out, &c.get("/api/v1/support/targets").await?, &target_cols)
        }
        SupportCommand::TargetsSet {
            priority,
            first_response,
            resolution,
        } => {
            let v = c
                .request(
                    reqwest::Method::PUT,
                    &format!("/api/v1/support/targets/{}", query(&priority)),
                    Some(&json!({
                        "first_response_minutes": first_response,
                        "resolution_minutes": resolution,
                    })),
                )
                .await?;
            output::print(out, &v, &target_cols)
        }
        SupportCommand::Report { month } => {
            let path = match month {
                Some(m) => format!("/api/v1/support/report?month={}", query(&m)),
                None => "/api/v1/support/report".into(),
            };
            let v = c.get(&path).await?;
            if out == Format::Table {
                println!("Tickets opened in {}:", v["month"].as_str().unwrap_or("?"));
                output::print(
                    out,
                    &v["rows"],
                    &[
                        col("PRIORITY", "priority"),
                        col("TICKETS", "tickets"),
                        col("1ST RESPONSE OK", "first_response_within"),
                        col("LATE", "first_response_breached"),
                        col("RESOLVED OK", "resolution_within"),
                        col("LATE", "resolution_breached"),
                        col("RATINGS", "ratings"),
                        col("MEAN x100", "mean_rating_x100"),
                    ],
                );
            } else {
                output::print(out, &v, &[]);
            }
        }
        SupportCommand::Canned(cmd) => {
            // The bodies span lines: `-o json` shows them.
            let cols = [
                col("ID", "id"),
                col("TITLE", "title"),
                col("BY", "created_by"),
                col("CREATED", "created_at"),
            ];
            match cmd {
                CannedCommand::List => {
                    output::print(out, &c.get("/api/v1/support/canned-replies").await?, &cols)
                }
                CannedCommand::Add { title, body } => output::print(
                    out,
                    &c.post(
                        "/api/v1/support/canned-replies",
                        &json!({"title": title, "body": body}),
                    )
                    .await?,
                    &cols,
                ),
                CannedCommand::Delete { id } => {
                    c.delete(&format!("/api/v1/support/canned-replies/{id}"))
                        .await?;
                    eprintln!("Canned reply {id} deleted.");
                }
            }
        }
        SupportCommand::Letter {
            subscriber,
            received_on,
            subject,
            summary,
            scan,
            subscription,
            end,
            end_date,
        } => {
            let scan = scan.as_deref().map(attachment).transpose()?;
            let body = json!({
                "subscriber_id": subscriber,
                "received_on": received_on,
                "subject": subject,
                "summary": summary,
                "scan": scan,
                "subscription_id": subscription,
                "end": end,
                "end_date": end_date,
            });
            let v = c.post("/api/v1/support/letters", &body).await?;
            if out == Format::Table {
                eprintln!("Letter recorded as ticket #{}.", v["number"]);
            }
            print_ticket(out, &v);
        }
    }
    Ok(())
}
