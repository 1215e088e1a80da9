//! The support desk, open 24/7 (R-1d): tickets with a category, a priority and linked resources,
//! a thread of messages with attachments (type and size checked, sealed at rest, R-9.4),
//! statuses, operators' internal notes, assignment, canned replies, merge and the subscriber's
//! context. Response targets and escalation live in `sla`, the public forms (abuse reports R-4a,
//! credential loss R-5a, registered letters R-7.2a) in `forms`, replies by email in `inbound`.
//!
//! Who sees what: a subscriber sees their own tickets, never an abuse report about them nor a
//! credential-loss report (a stolen credential must not read or close it), never an internal
//! note; admins and the support role see the whole desk; the billing and abuse roles see their
//! own category.

mod forms;
mod inbound;
mod sla;

pub use forms::*;
pub use inbound::*;
pub use sla::*;

use crate::i18n::{t, tf, Lang};
use crate::notify::{self, Recipient};
use crate::{audit, seal, App, Ctx, Error, FieldError, Result};
use maocloud_datastore::{Account, Scope, Tx};
use maocloud_types::{OperatorRole, Page, PageRequest, Principal, SubscriberId, Timestamp};
use serde_json::json;

pub use maocloud_datastore::support::{
    CannedReply, SupportTarget, Ticket, TicketAttachment, TicketEvent, TicketFilter, TicketMessage,
    TicketResource,
};

pub const CATEGORIES: [&str; 4] = ["technical", "billing", "account", "abuse"];
pub const PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];
pub const STATUSES: [&str; 5] = ["new", "open", "waiting", "resolved", "closed"];
pub const RESOURCE_KINDS: [&str; 3] = ["vm", "bucket", "invoice"];

/// Largest attachment: 5 MiB; at most 3 per message.
pub const MAX_ATTACHMENT_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_ATTACHMENTS: usize = 3;
const MAX_SUBJECT: usize = 200;
const MAX_BODY: usize = 20_000;
const MAX_RESOURCES: usize = 10;

/// The line above which a reply by email is kept (everything below is the quoted history).
pub const REPLY_MARKER: &str = "#-#-#";

/// A file attached to a message, as received.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub file_name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A resource named when opening a ticket.
#[derive(Debug, Clone)]
pub struct ResourceRef {
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Clone)]
pub struct NewTicket {
    pub subject: String,
    pub category: String,
    pub priority: String,
    pub body: String,
    pub resources: Vec<ResourceRef>,
    pub attachments: Vec<NewAttachment>,
    /// console, api or cli.
    pub source: String,
}

#[derive(Debug, Clone, Default)]
pub struct NewReply {
    pub body: String,
    /// An operators' note, never shown to the subscriber.
    pub internal: bool,
    /// Operators: the status after a public reply (default `waiting`).
    pub status: Option<String>,
    pub attachments: Vec<NewAttachment>,
    /// The Message-ID of the email it came in (replies by email).
    pub external_id: Option<String>,
}

/// An operator's change to a ticket (every field optional).
#[derive(Debug, Clone, Default)]
pub struct TicketUpdate {
    pub status: Option<String>,
    pub priority: Option<String>,
    pub category: Option<String>,
    /// `Some(None)` unassigns.
    pub assignee: Option<Option<String>>,
}

/// One message of a thread with its attachments.
#[derive(Debug, Clone)]
pub struct ThreadMessage {
    pub message: TicketMessage,
    pub attachments: Vec<TicketAttachment>,
}

/// A ticket as its reader may see it.
#[derive(Debug, Clone)]
pub struct TicketView {
    pub ticket: Ticket,
    pub thread: Vec<ThreadMessage>,
    /// Escalations, breaches, assignments, merges: operators only.
    pub events: Vec<TicketEvent>,
    /// The assignee's name, when assigned.
    pub assignee_name: Option<String>,
    /// The subscriber's name and email: operators only.
    pub subscriber: Option<(SubscriberId, String, String)>,
}

// ---- who sees what ----

/// The one category an operator's role is limited to (None: the whole desk).
fn desk_category(p: &Principal) -> Option<&'static str> {
    match p {
        Principal::Operator {
            role: OperatorRole::Billing,
            ..
        } => Some("billing"),
        Principal::Operator {
            role: OperatorRole::Abuse,
            ..
        } => Some("abuse"),
        _ => None,
    }
}

fn is_operator(ctx: &Ctx) -> bool {
    matches!(
        ctx.principal,
        Principal::Operator { .. } | Principal::System
    )
}

/// Reads a ticket the caller may see (NotFound otherwise: never someone else's).
async fn visible(tx: &mut Tx, ctx: &Ctx, id: &str) -> Result<Ticket> {
    if ctx.principal.subscriber().is_none() && !is_operator(ctx) {
        return Err(Error::NotFound);
    }
    let t = tx.ticket_fetch(&ctx.scope(), id).await?;
    if desk_category(&ctx.principal).is_some_and(|c| c != t.category) {
        return Err(Error::NotFound);
    }
    Ok(t)
}

// ---- input checks ----

/// A free-text message: trimmed, non-empty, bounded; newlines and tabs allowed.
pub(crate) fn body_text(field: &str, raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    let reason = if s.is_empty() {
        Some("is required")
    } else if s.chars().count() > MAX_BODY {
        Some("is too long (20,000 characters at most)")
    } else if s
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Some("contains control characters")
    } else {
        None
    };
    match reason {
        Some(r) => Err(FieldError {
            field: field.into(),
            reason: r.into(),
        }),
        None => Ok(s.replace("\r\n", "\n")),
    }
}

fn one_of(c: &mut crate::error::Checker, field: &str, v: &str, allowed: &[&str]) {
    if !allowed.contains(&v) {
        c.fail(field, &format!("must be one of {}", allowed.join(", ")));
    }
}

/// The attachment types accepted, each checked against the file's bytes, with the file-name
/// extensions that go with it.
fn attachment_type(content_type: &str, bytes: &[u8]) -> Option<&'static [&'static str]> {
    match content_type {
        "application/pdf" if bytes.starts_with(b"%PDF-") => Some(&["pdf"]),
        "image/png" if bytes.starts_with(b"\x89PNG\r\n\x1a\n") => Some(&["png"]),
        "image/jpeg" if bytes.starts_with(b"\xff\xd8\xff") => Some(&["jpg", "jpeg"]),
        "text/plain" if std::str::from_utf8(bytes).is_ok_and(|s| !s.contains('\0')) => {
            Some(&["txt", "log"])
        }
        _ => None,
    }
}

/// Checks one attachment: a plain file name (no path, no control or reserved characters, no
/// hidden file), an accepted type that the bytes confirm and the extension matches, a size.
pub fn check_attachment(field: &str, a: &NewAttachment) -> Result<(), FieldError> {
    let fail = |reason: &str| {
        Err(FieldError {
            field: field.into(),
            reason: reason.into(),
        })
    };
    let name = a.file_name.as_str();
    if name.is_empty() || name.chars().count() > 120 {
        return fail("has a file name that is empty or longer than 120 characters");
    }
    if name.starts_with('.')
        || name.chars().any(|c| {
            c.is_control() || matches!(c, '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*')
        })
    {
        return fail("has a file name with a path, a reserved character or a leading dot");
    }
    if a.bytes.is_empty() {
        return fail("is empty");
    }
    if a.bytes.len() > MAX_ATTACHMENT_BYTES {
        return fail("is larger than 5 MiB");
    }
    let Some(exts) = attachment_type(&a.content_type, &a.bytes) else {
        return fail("must be a PDF, PNG, JPEG or plain-text file whose content matches its type");
    };
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if !exts.contains(&ext.as_str()) {
        return fail("has a file-name extension that does not match its type");
    }
    Ok(())
}

fn check_attachments(c: &mut crate::error::Checker, list: &[NewAttachment]) {
    if list.len() > MAX_ATTACHMENTS {
        c.fail("attachments", "at most 3 files per message");
        return;
    }
    for (i, a) in list.iter().enumerate() {
        if let Err(e) = check_attachment(&format!("attachments[{i}]"), a) {
            c.fail(&e.field, &e.reason);
        }
    }
}

// ---- building blocks shared by every way in ----

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// 26 random base-32 characters (130 bits): the secret of a reply address.
fn reply_token() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::thread_rng();
    (0..26)
        .map(|_| ALPHABET[rng.gen_range(0..32)] as char)
        .collect()
}

/// A ticket's reply address: `local+<token>@domain` of the support address.
pub fn reply_address(app: &App, token: &str) -> String {
    let addr = app.settings().support_address.as_str();
    match addr.rsplit_once('@') {
        Some((local, domain)) => format!("{local}+{token}@{domain}"),
        None => addr.to_string(),
    }
}

/// The targets for one priority.
pub(crate) async fn target_for(tx: &mut Tx, priority: &str) -> Result<SupportTarget> {
    tx.support_targets()
        .await?
        .into_iter()
        .find(|t| t.priority == priority)
        .ok_or_else(|| Error::internal(format!("no support target for {priority}")))
}

/// What a new ticket needs besides its content.
pub(crate) struct Opening<'a> {
    pub kind: &'a str,
    pub subscriber: Option<SubscriberId>,
    pub contact: Option<(String, Option<String>)>,
    pub subject: String,
    pub category: &'a str,
    pub priority: &'a str,
    pub resources: Vec<TicketResource>,
    pub source: &'a str,
    pub detail: serde_json::Value,
    /// The first message and who wrote it.
    pub body: String,
    pub author: Author,
    pub attachments: Vec<NewAttachment>,
}

/// Who wrote a message.
#[derive(Debug, Clone)]
pub(crate) struct Author {
    pub kind: &'static str,
    pub id: Option<String>,
    pub label: String,
}

impl Author {
    fn system() -> Author {
        Author {
            kind: "system",
            id: None,
            label: "Maocloud".into(),
        }
    }
}

/// The author a context stands for.
async fn author_of(tx: &mut Tx, ctx: &Ctx) -> Result<Author> {
    Ok(match ctx.principal {
        Principal::Subscriber(s) => Author {
            kind: "subscriber",
            id: Some(s.to_string()),
            label: tx.account_fetch(s.0).await?.display_name,
        },
        Principal::Operator { id, .. } => Author {
            kind: "operator",
            id: Some(id.to_string()),
            label: tx.account_fetch(id.0).await?.display_name,
        },
        Principal::System => Author::system(),
    })
}

/// Creates a ticket with its first message in `tx`.
pub(crate) async fn create(app: &App, tx: &mut Tx, o: Opening<'_>) -> Result<Ticket> {
    let now = app.now();
    let target = target_for(tx, o.priority).await?;
    let (fr, res) = sla::due(now, &target);
    let number = tx.sequence_next("ticket").await?;
    let (contact_email, contact_name) = o.contact.unzip();
    let t = Ticket {
        id: new_id(),
        number,
        kind: o.kind.into(),
        subscriber_id: o.subscriber,
        contact_email,
        contact_name: contact_name.flatten(),
        subject: o.subject,
        category: o.category.into(),
        priority: o.priority.into(),
        status: "new".into(),
        assignee_id: None,
        resources: o.resources,
        reply_token: reply_token(),
        source: o.source.into(),
        merged_into: None,
        detail: o.detail,
        created_at: now,
        updated_at: now,
        first_response_due_at: fr,
        resolution_due_at: res,
        first_response_at: None,
        resolved_at: None,
        closed_at: None,
        first_response_stage: 0,
        resolution_stage: 0,
        first_response_breached: false,
        resolution_breached: false,
        rating: None,
        rating_comment: None,
    };
    tx.ticket_create(&t).await?;
    post(
        app,
        tx,
        &t,
        &o.author,
        &o.body,
        false,
        "web",
        None,
        o.attachments,
    )
    .await?;
    event(
        tx,
        &t.id,
        "opened",
        &o.author.label,
        json!({"source": o.source}),
        now,
    )
    .await?;
    Ok(t)
}

/// Appends a message (and its sealed attachments) to a ticket's thread.
pub(crate) async fn post(
    app: &App,
    tx: &mut Tx,
    t: &Ticket,
    author: &Author,
    body: &str,
    internal: bool,
    via: &str,
    external_id: Option<&str>,
    attachments: Vec<NewAttachment>,
) -> Result<TicketMessage> {
    let now = app.now();
    let m = TicketMessage {
        id: new_id(),
        ticket_id: t.id.clone(),
        author_kind: author.kind.into(),
        author_id: author.id.clone(),
        author_label: author.label.clone(),
        body: body.into(),
        internal,
        via: via.into(),
        external_id: external_id.map(str::to_string),
        created_at: now,
    };
    tx.ticket_message_create(&m).await?;
    for a in attachments {
        let meta = TicketAttachment {
            id: new_id(),
            ticket_id: t.id.clone(),
            message_id: m.id.clone(),
            file_name: a.file_name,
            content_type: a.content_type,
            size: a.bytes.len() as i64,
            created_at: now,
        };
        let sealed = seal::seal(app, &a.bytes)?;
        tx.ticket_attachment_create(&meta, &sealed).await?;
    }
    Ok(m)
}

pub(crate) async fn event(
    tx: &mut Tx,
    ticket: &str,
    kind: &str,
    actor: &str,
    detail: serde_json::Value,
    now: Timestamp,
) -> Result<()> {
    tx.ticket_event_create(&TicketEvent {
        id: new_id(),
        ticket_id: ticket.into(),
        kind: kind.into(),
        actor: actor.into(),
        detail,
        created_at: now,
    })
    .await?;
    Ok(())
}

/// Emails the ticket's other side: the subscriber (and their inbox) or the contact, with the
/// ticket's reply address so that answering the email answers the ticket.
pub(crate) async fn tell_requester(
    app: &App,
    tx: &mut Tx,
    t: &Ticket,
    key: &str,
    args: &[(&str, &str)],
) -> Result<()> {
    let account = match (t.kind.as_str(), t.subscriber_id) {
        ("abuse_report", _) | (_, None) => None,
        (_, Some(s)) => Some(tx.account_fetch(s.0).await?),
    };
    let lang = account
        .as_ref()
        .map(|a| Lang::parse(&a.locale))
        .unwrap_or(Lang::Fr);
    let number = t.number.to_string();
    let link = format!(
        "{}/account/support/{}",
        app.settings().public_url.trim_end_matches('/'),
        t.id
    );
    let name = account
        .as_ref()
        .map(|a| a.display_name.clone())
        .or_else(|| t.contact_name.clone())
        .unwrap_or_default();
    let marker = format!(
        "{REPLY_MARKER} {} {REPLY_MARKER}",
        crate::i18n::t(lang, "email.ticket.marker")
    );
    let mut all: Vec<(&str, &str)> = vec![
        ("number", &number),
        ("subject", &t.subject),
        ("name", &name),
        ("link", &link),
        ("marker", &marker),
    ];
    all.extend_from_slice(args);
    let subject = tf(lang, &format!("{key}.subject"), &all);
    let body = tf(lang, &format!("{key}.body"), &all);
    let reply_to = Some(reply_address(app, &t.reply_token));
    match (&account, &t.contact_email) {
        (Some(a), _) => {
            notify::queue(
                app,
                tx,
                Recipient::Account(a),
                &subject,
                &body,
                notify::Extras {
                    reply_to,
                    about: t.subscriber_id,
                    ..Default::default()
                },
            )
            .await
        }
        (None, Some(addr)) => {
            notify::queue(
                app,
                tx,
                Recipient::Address(addr),
                &subject,
                &body,
                notify::Extras {
                    reply_to,
                    about: t.subscriber_id,
                    ..Default::default()
                },
            )
            .await
        }
        (None, None) => Ok(()),
    }
}

/// The operators who handle a ticket's category (the desk's queue owners).
pub(crate) fn desk_role(category: &str) -> OperatorRole {
    match category {
        "abuse" => OperatorRole::Abuse,
        "billing" => OperatorRole::Billing,
        _ => OperatorRole::Support,
    }
}

/// Emails operators about a ticket: the assignee if there is one, else the category's role.
pub(crate) async fn tell_desk(
    app: &App,
    tx: &mut Tx,
    t: &Ticket,
    key: &str,
    excerpt: &str,
) -> Result<()> {
    let recipients: Vec<Account> = match &t.assignee_id {
        Some(a) => match a.parse() {
            Ok(id) => vec![tx.account_fetch(id).await?],
            Err(_) => vec![],
        },
        None => tx.operators_with_role(desk_role(&t.category)).await?,
    };
    for op in recipients {
        operator_email(
            app,
            tx,
            Recipient::Account(&op),
            Lang::parse(&op.locale),
            t,
            key,
            excerpt,
        )
        .await?;
    }
    Ok(())
}

/// One email to an operator (or an operators' alias) about a ticket.
pub(crate) async fn operator_email(
    app: &App,
    tx: &mut Tx,
    to: Recipient<'_>,
    lang: Lang,
    t: &Ticket,
    key: &str,
    excerpt: &str,
) -> Result<()> {
    let number = t.number.to_string();
    let link = format!(
        "{}/admin/support/{}",
        app.settings().public_url.trim_end_matches('/'),
        t.id
    );
    let priority = crate::i18n::t(lang, &format!("support.priority.{}", t.priority));
    let due = t.first_response_due_at.to_string();
    let res_due = t.resolution_due_at.to_string();
    let args = [
        ("number", number.as_str()),
        ("subject", &t.subject),
        ("priority", &priority),
        ("link", &link),
        ("excerpt", excerpt),
        ("due", &due),
        ("resolution_due", &res_due),
    ];
    let subject = tf(lang, &format!("{key}.subject"), &args);
    let body = tf(lang, &format!("{key}.body"), &args);
    notify::queue(
        app,
        tx,
        to,
        &subject,
        &body,
        notify::Extras {
            about: t.subscriber_id,
            ..Default::default()
        },
    )
    .await
}

fn excerpt(s: &str) -> String {
    let mut e: String = s.chars().take(400).collect();
    if e.len() < s.len() {
        e.push('…');
    }
    e
}

/// Checks the resources a subscriber links to a ticket: each must be theirs.
async fn own_resources(
    tx: &mut Tx,
    who: SubscriberId,
    refs: &[ResourceRef],
    c: &mut crate::error::Checker,
) -> Result<Vec<TicketResource>> {
    if refs.len() > MAX_RESOURCES {
        c.fail("resources", "at most 10 resources per ticket");
        return Ok(vec![]);
    }
    let scope = Scope::Subscriber(who);
    let mut out = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        let field = format!("resources[{i}]");
        let label = match r.kind.as_str() {
            "vm" => match tx.vm_fetch(&scope, &r.id).await {
                Ok(vm) => Some(vm.name),
                Err(maocloud_datastore::Error::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            "bucket" => match tx.bucket_fetch(&r.id).await {
                Ok(b) if b.subscriber_id == who => Some(b.name),
                Ok(_) | Err(maocloud_datastore::Error::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            "invoice" => match r.id.parse() {
                Ok(id) => match tx.invoice_fetch(&scope, id).await {
                    Ok(inv) => Some(inv.number),
                    Err(maocloud_datastore::Error::NotFound) => None,
                    Err(e) => return Err(e.into()),
                },
                Err(_) => None,
            },
            _ => {
                c.fail(&field, "kind must be vm, bucket or invoice");
                continue;
            }
        };
        match label {
            Some(label) => out.push(TicketResource {
                kind: r.kind.clone(),
                id: r.id.clone(),
                label,
            }),
            None => c.fail(&field, "is not one of your resources"),
        }
    }
    Ok(out)
}

// ---- use cases ----

/// A subscriber opens a ticket, at any hour, suspended or not (R-1d).
pub async fn open(app: &App, ctx: &Ctx, input: NewTicket) -> Result<TicketView> {
    let me = ctx.require_subscriber()?;
    let mut c = crate::error::Checker::default();
    let subject = c.check(
        "subject",
        maocloud_types::validate::text(&input.subject, MAX_SUBJECT),
    );
    one_of(&mut c, "category", &input.category, &CATEGORIES);
    one_of(&mut c, "priority", &input.priority, &PRIORITIES);
    let body = match body_text("message", &input.body) {
        Ok(b) => Some(b),
        Err(e) => {
            c.fail(&e.field, &e.reason);
            None
        }
    };
    check_attachments(&mut c, &input.attachments);
    let mut tx = app.db().write().await?;
    let resources = own_resources(&mut tx, me, &input.resources, &mut c).await?;
    c.finish()?;
    let (subject, body) = (subject.expect("checked"), body.expect("checked"));
    let author = author_of(&mut tx, ctx).await?;
    let source = match input.source.as_str() {
        "console" | "cli" => input.source.as_str(),
        _ => "api",
    };
    let t = create(
        app,
        &mut tx,
        Opening {
            kind: "request",
            subscriber: Some(me),
            contact: None,
            subject,
            category: &input.category,
            priority: &input.priority,
            resources,
            source,
            detail: json!({}),
            body: body.clone(),
            author,
            attachments: input.attachments,
        },
    )
    .await?;
    tell_requester(app, &mut tx, &t, "email.ticket.opened", &[]).await?;
    tell_desk(app, &mut tx, &t, "email.desk.new", &excerpt(&body)).await?;
    let view = assemble(&mut tx, ctx, t).await?;
    tx.commit().await?;
    Ok(view)
}

/// Tickets: a subscriber's own; for operators, the queue narrowed by `filter`.
pub async fn list(
    app: &App,
    ctx: &Ctx,
    mut filter: TicketFilter,
    page: &PageRequest,
) -> Result<Page<Ticket>> {
    if ctx.principal.subscriber().is_none() {
        ctx.require_operator(&[
            OperatorRole::Support,
            OperatorRole::Billing,
            OperatorRole::Abuse,
        ])?;
    } else {
        // A subscriber's filters narrow their own list; queue-only ones do not apply.
        filter.assignee = None;
        filter.unassigned = false;
        filter.subscriber = None;
    }
    if let Some(s) = &filter.status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(Error::invalid(
                "status",
                "must be new, open, waiting, resolved or closed",
            ));
        }
    }
    if let Some(p) = &filter.priority {
        if !PRIORITIES.contains(&p.as_str()) {
            return Err(Error::invalid(
                "priority",
                "must be low, normal, high or urgent",
            ));
        }
    }
    if let Some(cat) = &filter.category {
        if !CATEGORIES.contains(&cat.as_str()) {
            return Err(Error::invalid(
                "category",
                "must be technical, billing, account or abuse",
            ));
        }
    }
    // A role limited to one category sees it alone, whatever the filter asks.
    if let Some(c) = desk_category(&ctx.principal) {
        match filter.category.as_deref() {
            Some(other) if other != c => {
                return Ok(Page::from_rows(
                    vec![],
                    page.effective_limit(),
                    |t: &Ticket| t.id.clone(),
                ))
            }
            _ => filter.category = Some(c.into()),
        }
    }
    let mut tx = app.db().read().await?;
    let rows = tx.ticket_list(&ctx.scope(), &filter, page).await?;
    Ok(Page::from_rows(rows, page.effective_limit(), |t| {
        t.id.clone()
    }))
}

/// The queue's "breach risk" filter: tickets escalated already or due within the hour.
pub fn at_risk_horizon(app: &App) -> Timestamp {
    app.now() + jiff::SignedDuration::from_hours(1)
}

/// Builds what the reader may see of a ticket.
async fn assemble(tx: &mut Tx, ctx: &Ctx, ticket: Ticket) -> Result<TicketView> {
    let operator = is_operator(ctx);
    let messages = tx.ticket_messages(&ticket.id, operator).await?;
    let mut attachments = tx.ticket_attachments(&ticket.id).await?;
    let thread = messages
        .into_iter()
        .map(|m| {
            let (mine, rest): (Vec<_>, Vec<_>) =
                attachments.drain(..).partition(|a| a.message_id == m.id);
            attachments = rest;
            ThreadMessage {
                message: m,
                attachments: mine,
            }
        })
        .collect();
    let assignee_name = match ticket.assignee_id.as_deref().map(str::parse) {
        Some(Ok(id)) => Some(tx.account_fetch(id).await?.display_name),
        _ => None,
    };
    let (events, subscriber) = if operator {
        let subscriber = match ticket.subscriber_id {
            Some(s) => {
                let a = tx.account_fetch(s.0).await?;
                Some((s, a.display_name, a.email))
            }
            None => None,
        };
        (tx.ticket_events(&ticket.id).await?, subscriber)
    } else {
        (vec![], None)
    };
    Ok(TicketView {
        ticket,
        thread,
        events,
        assignee_name,
        subscriber,
    })
}

/// One ticket with its thread (operators' reads are audited, R-9.4).
pub async fn get(app: &App, ctx: &Ctx, id: &str) -> Result<TicketView> {
    // Only an operator's read writes (its audit entry): a subscriber's takes no write lock.
    let mut tx = if matches!(ctx.principal, Principal::Operator { .. }) {
        app.db().write().await?
    } else {
        app.db().read().await?
    };
    let t = visible(&mut tx, ctx, id).await?;
    if matches!(ctx.principal, Principal::Operator { .. }) {
        audit::record(
            &mut tx,
            ctx,
            app.now(),
            "ticket.read",
            Some(&t.id),
            t.subscriber_id,
            json!({}),
        )
        .await?;
    }
    let view = assemble(&mut tx, ctx, t).await?;
    tx.commit().await?;
    Ok(view)
}

/// Adds a message: the subscriber's reply (reopens a resolved or closed ticket), or an
/// operator's reply (the first one stops the first-response clock) or internal note.
pub async fn reply(app: &App, ctx: &Ctx, id: &str, input: NewReply) -> Result<TicketView> {
    let mut c = crate::error::Checker::default();
    let body = match body_text("message", &input.body) {
        Ok(b) => Some(b),
        Err(e) => {
            c.fail(&e.field, &e.reason);
            None
        }
    };
    check_attachments(&mut c, &input.attachments);
    let operator = is_operator(ctx);
    if operator {
        ctx.require_operator(&[
            OperatorRole::Support,
            OperatorRole::Billing,
            OperatorRole::Abuse,
        ])?;
    }
    if let Some(s) = &input.status {
        if !operator {
            c.fail("status", "is set by operators only");
        } else if !["open", "waiting", "resolved"].contains(&s.as_str()) {
            c.fail("status", "must be open, waiting or resolved");
        }
    }
    if input.internal && !operator {
        c.fail("internal", "notes are for operators only");
    }
    let mut tx = app.db().write().await?;
    let t = visible(&mut tx, ctx, id).await?;
    c.finish()?;
    let body = body.expect("checked");
    let author = author_of(&mut tx, ctx).await?;
    let t = add_reply(app, &mut tx, t, &author, &body, &input, "web").await?;
    let view = assemble(&mut tx, ctx, t).await?;
    tx.commit().await?;
    Ok(view)
}

/// The effect of one reply on a ticket, whoever wrote it and however it came (web or email).
pub(crate) async fn add_reply(
    app: &App,
    tx: &mut Tx,
    mut t: Ticket,
    author: &Author,
    body: &str,
    input: &NewReply,
    via: &str,
) -> Result<Ticket> {
    if let Some(into) = &t.merged_into {
        let target = tx.ticket_fetch(&Scope::All, into).await?;
        return Err(Error::Conflict {
            field: None,
            reason: format!(
                "this ticket was merged into #{}: reply there",
                target.number
            ),
        });
    }
    let now = app.now();
    post(
        app,
        tx,
        &t,
        author,
        body,
        input.internal,
        via,
        input.external_id.as_deref(),
        input.attachments.clone(),
    )
    .await?;
    t.updated_at = now;
    if input.internal {
        tx.ticket_save(&t).await?;
        return Ok(t);
    }
    if author.kind == "operator" {
        if t.first_response_at.is_none() {
            t.first_response_at = Some(now);
            t.first_response_breached |= now >= t.first_response_due_at;
        }
        if t.assignee_id.is_none() {
            t.assignee_id = author.id.clone();
        }
        let status = input.status.clone().unwrap_or_else(|| "waiting".into());
        set_status(&mut t, &status, now);
        tx.ticket_save(&t).await?;
        let key = if status == "resolved" {
            "email.ticket.resolved"
        } else {
            "email.ticket.reply"
        };
        tell_requester(app, tx, &t, key, &[("message", body)]).await?;
    } else {
        if matches!(t.status.as_str(), "resolved" | "closed") {
            event(
                tx,
                &t.id,
                "reopened",
                &author.label,
                json!({"via": via}),
                now,
            )
            .await?;
        }
        if t.status != "new" {
            set_status(&mut t, "open", now);
        }
        tx.ticket_save(&t).await?;
        tell_desk(app, tx, &t, "email.desk.reply", &excerpt(body)).await?;
    }
    Ok(t)
}

/// Moves a ticket to `status`, keeping the resolution and closing times true.
fn set_status(t: &mut Ticket, status: &str, now: Timestamp) {
    match status {
        "resolved" => {
            if t.resolved_at.is_none() {
                t.resolved_at = Some(now);
                t.resolution_breached |= now >= t.resolution_due_at;
            }
            t.closed_at = None;
        }
        "closed" => {
            if t.resolved_at.is_none() {
                t.resolved_at = Some(now);
                t.resolution_breached |= now >= t.resolution_due_at;
            }
            t.closed_at = Some(now);
        }
        _ => {
            t.resolved_at = None;
            t.closed_at = None;
        }
    }
    t.status = status.into();
}

/// An operator changes a ticket's status, priority, category or assignee.
pub async fn update(app: &App, ctx: &Ctx, id: &str, u: TicketUpdate) -> Result<TicketView> {
    ctx.require_operator(&[
        OperatorRole::Support,
        OperatorRole::Billing,
        OperatorRole::Abuse,
    ])?;
    let mut c = crate::error::Checker::default();
    if let Some(s) = &u.status {
        one_of(&mut c, "status", s, &STATUSES);
    }
    if let Some(p) = &u.priority {
        one_of(&mut c, "priority", p, &PRIORITIES);
    }
    if let Some(cat) = &u.category {
        one_of(&mut c, "category", cat, &CATEGORIES);
    }
    let mut tx = app.db().write().await?;
    let mut t = visible(&mut tx, ctx, id).await?;
    let assignee = match &u.assignee {
        Some(Some(a)) => match a.parse::<uuid::Uuid>() {
            Ok(uid) => match tx.account_fetch(uid).await {
                Ok(acc) if acc.role.is_some() && acc.disabled_at.is_none() => {
                    Some(Some(acc.id.to_string()))
                }
                Ok(_) | Err(maocloud_datastore::Error::NotFound) => {
                    c.fail("assignee_id", "is not an active operator");
                    None
                }
                Err(e) => return Err(e.into()),
            },
            Err(_) => {
                c.fail("assignee_id", "is not an operator id");
                None
            }
        },
        Some(None) => Some(None),
        None => None,
    };
    c.finish()?;
    if t.merged_into.is_some() {
        return Err(Error::Conflict {
            field: None,
            reason: "this ticket was merged into another one".into(),
        });
    }
    let actor = author_of(&mut tx, ctx).await?.label;
    let now = app.now();
    if let Some(p) = &u.priority {
        if *p != t.priority {
            let target = target_for(&mut tx, p).await?;
            let (fr, res) = sla::due(t.created_at, &target);
            event(
                &mut tx,
                &t.id,
                "priority",
                &actor,
                json!({"from": t.priority, "to": p}),
                now,
            )
            .await?;
            t.priority = p.clone();
            t.first_response_due_at = fr;
            t.resolution_due_at = res;
        }
    }
    if let Some(cat) = &u.category {
        if *cat != t.category {
            event(
                &mut tx,
                &t.id,
                "category",
                &actor,
                json!({"from": t.category, "to": cat}),
                now,
            )
            .await?;
            t.category = cat.clone();
        }
    }
    if let Some(a) = assignee {
        if a != t.assignee_id {
            event(&mut tx, &t.id, "assigned", &actor, json!({"to": a}), now).await?;
            t.assignee_id = a;
        }
    }
    if let Some(s) = &u.status {
        if *s != t.status {
            event(
                &mut tx,
                &t.id,
                "status",
                &actor,
                json!({"from": t.status, "to": s}),
                now,
            )
            .await?;
            set_status(&mut t, s, now);
        }
    }
    t.updated_at = now;
    tx.ticket_save(&t).await?;
    let view = assemble(&mut tx, ctx, t).await?;
    tx.commit().await?;
    Ok(view)
}

/// A subscriber's satisfaction rating (1–5, with an optional comment).
#[derive(Debug, Clone)]
pub struct Rating {
    pub score: i64,
    pub comment: Option<String>,
}

fn check_rating(c: &mut crate::error::Checker, r: &Option<Rating>) -> Option<Option<String>> {
    let r = r.as_ref()?;
    if !(1..=5).contains(&r.score) {
        c.fail("rating", "must be 1 to 5");
    }
    match r
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => Some(None),
        Some(s) => match body_text("comment", s) {
            Ok(s) if s.chars().count() <= 2000 => Some(Some(s)),
            _ => {
                c.fail("comment", "must be plain text of at most 2,000 characters");
                None
            }
        },
    }
}

/// The subscriber closes their ticket, rating the help they got if they wish.
pub async fn close(app: &App, ctx: &Ctx, id: &str, rating: Option<Rating>) -> Result<TicketView> {
    ctx.require_subscriber()?;
    let mut c = crate::error::Checker::default();
    let comment = check_rating(&mut c, &rating);
    c.finish()?;
    let mut tx = app.db().write().await?;
    let mut t = visible(&mut tx, ctx, id).await?;
    if t.merged_into.is_some() {
        return Err(Error::Conflict {
            field: None,
            reason: "this ticket was merged into another one".into(),
        });
    }
    let now = app.now();
    let actor = author_of(&mut tx, ctx).await?.label;
    if t.status != "closed" {
        event(
            &mut tx,
            &t.id,
            "status",
            &actor,
            json!({"from": t.status, "to": "closed"}),
            now,
        )
        .await?;
        set_status(&mut t, "closed", now);
    }
    if let Some(r) = rating {
        t.rating = Some(r.score);
        t.rating_comment = comment.flatten();
        event(
            &mut tx,
            &t.id,
            "rated",
            &actor,
            json!({"rating": r.score}),
            now,
        )
        .await?;
    }
    t.updated_at = now;
    tx.ticket_save(&t).await?;
    let view = assemble(&mut tx, ctx, t).await?;
    tx.commit().await?;
    Ok(view)
}

/// The subscriber reopens a resolved or closed ticket.
pub async fn reopen(app: &App, ctx: &Ctx, id: &str) -> Result<TicketView> {
    ctx.require_subscriber()?;
    let mut tx = app.db().write().await?;
    let mut t = visible(&mut tx, ctx, id).await?;
    if !matches!(t.status.as_str(), "resolved" | "closed") || t.merged_into.is_some() {
        return Err(Error::Conflict {
            field: Some("status".into()),
            reason: "only a resolved or closed ticket can be reopened".into(),
        });
    }
    let now = app.now();
    let actor = author_of(&mut tx, ctx).await?.label;
    event(
        &mut tx,
        &t.id,
        "reopened",
        &actor,
        json!({"via": "web"}),
        now,
    )
    .await?;
    set_status(&mut t, "open", now);
    t.updated_at = now;
    tx.ticket_save(&t).await?;
    tell_desk(app, &mut tx, &t, "email.desk.reply", "").await?;
    let view = assemble(&mut tx, ctx, t).await?;
    tx.commit().await?;
    Ok(view)
}

/// Merges ticket `from` into `into` (same subscriber): the thread moves, `from` closes.
pub async fn merge(app: &App, ctx: &Ctx, from: &str, into: &str) -> Result<TicketView> {
    ctx.require_operator(&[
        OperatorRole::Support,
        OperatorRole::Abuse,
        OperatorRole::Billing,
    ])?;
    if from == into {
        return Err(Error::invalid("into", "must be another ticket"));
    }
    let mut tx = app.db().write().await?;
    let mut a = visible(&mut tx, ctx, from).await?;
    let b = match visible(&mut tx, ctx, into).await {
        Ok(b) => b,
        Err(Error::NotFound) => return Err(Error::invalid("into", "is not a ticket you can see")),
        Err(e) => return Err(e),
    };
    if a.subscriber_id != b.subscriber_id || a.contact_email != b.contact_email {
        return Err(Error::invalid(
            "into",
            "belongs to someone else: only one requester's tickets merge",
        ));
    }
    if a.merged_into.is_some() || b.merged_into.is_some() {
        return Err(Error::Conflict {
            field: Some("into".into()),
            reason: "a merged ticket cannot be merged again".into(),
        });
    }
    let now = app.now();
    let actor = author_of(&mut tx, ctx).await?;
    tx.ticket_thread_move(&a.id, &b.id).await?;
    a.merged_into = Some(b.id.clone());
    set_status(&mut a, "closed", now);
    a.updated_at = now;
    tx.ticket_save(&a).await?;
    let note = format!("#{} → #{}", a.number, b.number);
    post(
        app,
        &mut tx,
        &b,
        &Author::system(),
        &note,
        false,
        "web",
        None,
        vec![],
    )
    .await?;
    event(
        &mut tx,
        &a.id,
        "merged",
        &actor.label,
        json!({"into": b.number}),
        now,
    )
    .await?;
    event(
        &mut tx,
        &b.id,
        "merged_from",
        &actor.label,
        json!({"from": a.number}),
        now,
    )
    .await?;
    let view = assemble(&mut tx, ctx, b).await?;
    tx.commit().await?;
    Ok(view)
}

/// One attachment's bytes, if the caller may see the message that carries it.
pub async fn attachment(
    app: &App,
    ctx: &Ctx,
    ticket: &str,
    id: &str,
) -> Result<(TicketAttachment, Vec<u8>)> {
    let mut tx = if is_operator(ctx) {
        app.db().write().await?
    } else {
        app.db().read().await?
    };
    let t = visible(&mut tx, ctx, ticket).await?;
    let (meta, sealed) = tx.ticket_attachment_fetch(&t.id, id).await?;
    if !is_operator(ctx) {
        let visible_messages = tx.ticket_messages(&t.id, false).await?;
        if !visible_messages.iter().any(|m| m.id == meta.message_id) {
            return Err(Error::NotFound);
        }
    } else {
        audit::record(
            &mut tx,
            ctx,
            app.now(),
            "ticket.attachment.read",
            Some(&meta.id),
            t.subscriber_id,
            json!({}),
        )
        .await?;
    }
    tx.commit().await?;
    let bytes = seal::open(app, &sealed)?;
    Ok((meta, bytes))
}

/// What an operator sees beside a ticket: the subscriber's offers, resources, unpaid
/// invoices and suspensions.
#[derive(Debug, Clone, Default)]
pub struct SubscriberContext {
    pub subscriber_id: Option<SubscriberId>,
    pub name: String,
    pub email: String,
    /// (subscription id, offer name, status)
    pub subscriptions: Vec<(String, String, String)>,
    /// (id, name, status)
    pub vms: Vec<(String, String, String)>,
    /// (name, bytes, objects)
    pub buckets: Vec<(String, i64, i64)>,
    /// (invoice number, due date, left to pay in cents)
    pub unpaid: Vec<(String, Option<String>, i64)>,
    /// (cause, status, since)
    pub suspensions: Vec<(String, String, Option<Timestamp>)>,
    /// Other tickets of the same subscriber: (id, number, subject, status)
    pub other_tickets: Vec<(String, i64, String, String)>,
}

pub async fn context(app: &App, ctx: &Ctx, id: &str) -> Result<SubscriberContext> {
    ctx.require_operator(&[
        OperatorRole::Support,
        OperatorRole::Billing,
        OperatorRole::Abuse,
    ])?;
    let mut tx = app.db().write().await?;
    let t = visible(&mut tx, ctx, id).await?;
    let Some(s) = t.subscriber_id else {
        return Ok(SubscriberContext {
            name: t.contact_name.clone().unwrap_or_default(),
            email: t.contact_email.clone().unwrap_or_default(),
            ..Default::default()
        });
    };
    let all = Scope::All;
    let account = tx.account_fetch(s.0).await?;
    let subscriptions = tx
        .subscription_list(&all, s)
        .await?
        .into_iter()
        .map(|sub| {
            let name = sub
                .terms
                .get("name")
                .and_then(|v| v.as_str())
                .unwrap_or("?")
                .to_string();
            (sub.id.to_string(), name, sub.status)
        })
        .collect();
    let vms = tx
        .vm_list(&all, Some(s), None, &PageRequest::first(100))
        .await?
        .into_iter()
        .map(|v| (v.id.to_string(), v.name, v.state))
        .collect();
    let buckets = tx
        .bucket_list(&Scope::Subscriber(s))
        .await?
        .into_iter()
        .map(|b| (b.name, b.bytes, b.objects))
        .collect();
    let unpaid = tx
        .invoice_outstanding(&all, s)
        .await?
        .into_iter()
        .map(|o| {
            let left = o.remaining().0;
            (o.number, o.due_date, left)
        })
        .collect();
    let suspensions = tx
        .suspension_list(&all, Some(s))
        .await?
        .into_iter()
        .filter(|x| x.status != "lifted")
        .map(|x| (x.cause, x.status, x.started_at))
        .collect();
    let other_tickets = tx
        .ticket_list(
            &all,
            &TicketFilter {
                subscriber: Some(s),
                ..Default::default()
            },
            &PageRequest::first(20),
        )
        .await?
        .into_iter()
        .filter(|o| o.id != t.id)
        .map(|o| (o.id, o.number, o.subject, o.status))
        .collect();
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "ticket.context.read",
        Some(&t.id),
        Some(s),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(SubscriberContext {
        subscriber_id: Some(s),
        name: account.display_name,
        email: account.email,
        subscriptions,
        vms,
        buckets,
        unpaid,
        suspensions,
        other_tickets,
    })
}

// ---- canned replies and targets ----

pub async fn canned_list(app: &App, ctx: &Ctx) -> Result<Vec<CannedReply>> {
    ctx.require_operator(&[
        OperatorRole::Support,
        OperatorRole::Billing,
        OperatorRole::Abuse,
    ])?;
    let mut tx = app.db().read().await?;
    Ok(tx.canned_replies().await?)
}

pub async fn canned_create(app: &App, ctx: &Ctx, title: &str, body: &str) -> Result<CannedReply> {
    ctx.require_operator(&[OperatorRole::Support])?;
    let mut c = crate::error::Checker::default();
    let title = c.check("title", maocloud_types::validate::text(title, 100));
    let body = match body_text("body", body) {
        Ok(b) => Some(b),
        Err(e) => {
            c.fail(&e.field, &e.reason);
            None
        }
    };
    c.finish()?;
    let r = CannedReply {
        id: new_id(),
        title: title.expect("checked"),
        body: body.expect("checked"),
        created_by: ctx.principal.label(),
        created_at: app.now(),
    };
    let mut tx = app.db().write().await?;
    match tx.canned_reply_create(&r).await {
        Err(maocloud_datastore::Error::Conflict(_)) => {
            return Err(Error::Conflict {
                field: Some("title".into()),
                reason: "a canned reply with this title exists".into(),
            })
        }
        other => other?,
    }
    tx.commit().await?;
    Ok(r)
}

pub async fn canned_delete(app: &App, ctx: &Ctx, id: &str) -> Result<()> {
    ctx.require_operator(&[OperatorRole::Support])?;
    let mut tx = app.db().write().await?;
    tx.canned_reply_delete(id).await?;
    tx.commit().await?;
    Ok(())
}

/// The response targets (public: subscribers see what they are promised).
pub async fn targets(app: &App) -> Result<Vec<SupportTarget>> {
    let mut tx = app.db().read().await?;
    let mut all = tx.support_targets().await?;
    all.sort_by_key(|t| std::cmp::Reverse(PRIORITIES.iter().position(|p| *p == t.priority)));
    Ok(all)
}

/// Admins set the targets of one priority (tickets opened from now on use them; open tickets
/// keep the promise made when they were opened).
pub async fn set_target(app: &App, ctx: &Ctx, target: SupportTarget) -> Result<SupportTarget> {
    ctx.require_operator(&[])?;
    let mut c = crate::error::Checker::default();
    one_of(&mut c, "priority", &target.priority, &PRIORITIES);
    const YEAR: i64 = 366 * 24 * 60;
    if !(1..=YEAR).contains(&target.first_response_minutes) {
        c.fail("first_response_minutes", "must be 1 minute to 1 year");
    }
    if !(1..=YEAR).contains(&target.resolution_minutes) {
        c.fail("resolution_minutes", "must be 1 minute to 1 year");
    } else if target.resolution_minutes < target.first_response_minutes {
        c.fail(
            "resolution_minutes",
            "must not be shorter than the first-response target",
        );
    }
    c.finish()?;
    let mut tx = app.db().write().await?;
    tx.support_target_set(&target, app.now()).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "support.target.set",
        Some(&target.priority),
        None,
        json!({"first_response_minutes": target.first_response_minutes, "resolution_minutes": target.resolution_minutes}),
    )
    .await?;
    tx.commit().await?;
    Ok(target)
}

/// The label of a priority, status or category in a language (console, emails).
pub fn label(lang: Lang, what: &str, value: &str) -> String {
    t(lang, &format!("support.{what}.{value}"))
}
