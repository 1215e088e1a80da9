//! Support-desk records: tickets, their messages, sealed attachments and events, response
//! targets, canned replies and the public forms' rate-limit ledger. The rules that decide
//! them (who sees what, escalation, threading) live in the app crate.

use crate::{col, us, Result, Scope, Tx};
use maocloud_types::{PageRequest, SubscriberId, Timestamp};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

/// A resource a ticket is about, checked as the subscriber's when linked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketResource {
    /// vm, bucket, invoice (or ip for an abuse report).
    pub kind: String,
    pub id: String,
    /// What people recognise it by (a VM's name, a bucket's name, an invoice number).
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: String,
    pub number: i64,
    pub kind: String,
    pub subscriber_id: Option<SubscriberId>,
    pub contact_email: Option<String>,
    pub contact_name: Option<String>,
    pub subject: String,
    pub category: String,
    pub priority: String,
    pub status: String,
    pub assignee_id: Option<String>,
    pub resources: Vec<TicketResource>,
    pub reply_token: String,
    pub source: String,
    pub merged_into: Option<String>,
    pub detail: serde_json::Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub first_response_due_at: Timestamp,
    pub resolution_due_at: Timestamp,
    pub first_response_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub first_response_stage: i64,
    pub resolution_stage: i64,
    pub first_response_breached: bool,
    pub resolution_breached: bool,
    pub rating: Option<i64>,
    pub rating_comment: Option<String>,
}

const TICKET_COLS: &str = "id, number, kind, subscriber_id, contact_email, contact_name, subject, category, priority, status, \
    assignee_id, resources, reply_token, source, merged_into, detail, created_at, updated_at, first_response_due_at, \
    resolution_due_at, first_response_at, resolved_at, closed_at, first_response_stage, resolution_stage, \
    first_response_breached, resolution_breached, rating, rating_comment";

fn ticket(r: &AnyRow) -> Result<Ticket> {
    let resources: String = col::get(r, "resources")?;
    let detail: String = col::get(r, "detail")?;
    Ok(Ticket {
        id: col::get(r, "id")?,
        number: col::get(r, "number")?,
        kind: col::get(r, "kind")?,
        subscriber_id: col::opt_id(r, "subscriber_id")?,
        contact_email: col::get(r, "contact_email")?,
        contact_name: col::get(r, "contact_name")?,
        subject: col::get(r, "subject")?,
        category: col::get(r, "category")?,
        priority: col::get(r, "priority")?,
        status: col::get(r, "status")?,
        assignee_id: col::get(r, "assignee_id")?,
        resources: serde_json::from_str(&resources)
            .map_err(|e| crate::Error::Corrupt(format!("ticket resources: {e}")))?,
        reply_token: col::get(r, "reply_token")?,
        source: col::get(r, "source")?,
        merged_into: col::get(r, "merged_into")?,
        detail: serde_json::from_str(&detail)
            .map_err(|e| crate::Error::Corrupt(format!("ticket detail: {e}")))?,
        created_at: col::ts(r, "created_at")?,
        updated_at: col::ts(r, "updated_at")?,
        first_response_due_at: col::ts(r, "first_response_due_at")?,
        resolution_due_at: col::ts(r, "resolution_due_at")?,
        first_response_at: col::opt_ts(r, "first_response_at")?,
        resolved_at: col::opt_ts(r, "resolved_at")?,
        closed_at: col::opt_ts(r, "closed_at")?,
        first_response_stage: col::get(r, "first_response_stage")?,
        resolution_stage: col::get(r, "resolution_stage")?,
        first_response_breached: col::flag(r, "first_response_breached")?,
        resolution_breached: col::flag(r, "resolution_breached")?,
        rating: col::get(r, "rating")?,
        rating_comment: col::get(r, "rating_comment")?,
    })
}

#[derive(Debug, Clone)]
pub struct TicketMessage {
    pub id: String,
    pub ticket_id: String,
    pub author_kind: String,
    pub author_id: Option<String>,
    pub author_label: String,
    pub body: String,
    pub internal: bool,
    pub via: String,
    /// The Message-ID of the email it came from.
    pub external_id: Option<String>,
    pub created_at: Timestamp,
}

const MSG_COLS: &str =
    "id, ticket_id, author_kind, author_id, author_label, body, internal, via, external_id, created_at";

fn ticket_message(r: &AnyRow) -> Result<TicketMessage> {
    Ok(TicketMessage {
        id: col::get(r, "id")?,
        ticket_id: col::get(r, "ticket_id")?,
        author_kind: col::get(r, "author_kind")?,
        author_id: col::get(r, "author_id")?,
        author_label: col::get(r, "author_label")?,
        body: col::get(r, "body")?,
        internal: col::flag(r, "internal")?,
        via: col::get(r, "via")?,
        external_id: col::get(r, "external_id")?,
        created_at: col::ts(r, "created_at")?,
    })
}

/// An attachment's description (its sealed bytes are read only on download).
#[derive(Debug, Clone)]
pub struct TicketAttachment {
    pub id: String,
    pub ticket_id: String,
    pub message_id: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub created_at: Timestamp,
}

const ATT_COLS: &str = "id, ticket_id, message_id, file_name, content_type, size, created_at";

fn attachment(r: &AnyRow) -> Result<TicketAttachment> {
    Ok(TicketAttachment {
        id: col::get(r, "id")?,
        ticket_id: col::get(r, "ticket_id")?,
        message_id: col::get(r, "message_id")?,
        file_name: col::get(r, "file_name")?,
        content_type: col::get(r, "content_type")?,
        size: col::get(r, "size")?,
        created_at: col::ts(r, "created_at")?,
    })
}

#[derive(Debug, Clone)]
pub struct TicketEvent {
    pub id: String,
    pub ticket_id: String,
    pub kind: String,
    pub actor: String,
    pub detail: serde_json::Value,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportTarget {
    pub priority: String,
    pub first_response_minutes: i64,
    pub resolution_minutes: i64,
}

#[derive(Debug, Clone)]
pub struct CannedReply {
    pub id: String,
    pub title: String,
    pub body: String,
    pub created_by: String,
    pub created_at: Timestamp,
}

/// The operators' queue filters (every field optional).
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<String>,
    /// `active`: every status but resolved and closed.
    pub active_only: bool,
    pub priority: Option<String>,
    pub category: Option<String>,
    pub kind: Option<String>,
    pub assignee: Option<String>,
    pub unassigned: bool,
    /// Tickets whose target is at risk: already escalated, or due before this instant.
    pub at_risk_before: Option<Timestamp>,
    pub subscriber: Option<SubscriberId>,
}

impl Tx {
    pub async fn ticket_create(&mut self, t: &Ticket) -> Result<()> {
        self.check_writable()?;
        let q = format!(
            "INSERT INTO tickets ({TICKET_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
             $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)"
        );
        sqlx::query(&q)
            .bind(&t.id)
            .bind(t.number)
            .bind(&t.kind)
            .bind(t.subscriber_id.map(|s| s.to_string()))
            .bind(&t.contact_email)
            .bind(&t.contact_name)
            .bind(&t.subject)
            .bind(&t.category)
            .bind(&t.priority)
            .bind(&t.status)
            .bind(&t.assignee_id)
            .bind(serde_json::to_string(&t.resources).expect("resources serialise"))
            .bind(&t.reply_token)
            .bind(&t.source)
            .bind(&t.merged_into)
            .bind(t.detail.to_string())
            .bind(us(t.created_at))
            .bind(us(t.updated_at))
            .bind(us(t.first_response_due_at))
            .bind(us(t.resolution_due_at))
            .bind(t.first_response_at.map(us))
            .bind(t.resolved_at.map(us))
            .bind(t.closed_at.map(us))
            .bind(t.first_response_stage)
            .bind(t.resolution_stage)
            .bind(i64::from(t.first_response_breached))
            .bind(i64::from(t.resolution_breached))
            .bind(t.rating)
            .bind(&t.rating_comment)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Saves every field a ticket's life changes (its identity, number and token never do).
    pub async fn ticket_save(&mut self, t: &Ticket) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "UPDATE tickets SET subject = $2, category = $3, priority = $4, status = $5, assignee_id = $6, \
             resources = $7, merged_into = $8, detail = $9, updated_at = $10, first_response_due_at = $11, \
             resolution_due_at = $12, first_response_at = $13, resolved_at = $14, closed_at = $15, \
             first_response_stage = $16, resolution_stage = $17, first_response_breached = $18, \
             resolution_breached = $19, rating = $20, rating_comment = $21, subscriber_id = $22 WHERE id = $1",
        )
        .bind(&t.id)
        .bind(&t.subject)
        .bind(&t.category)
        .bind(&t.priority)
        .bind(&t.status)
        .bind(&t.assignee_id)
        .bind(serde_json::to_string(&t.resources).expect("resources serialise"))
        .bind(&t.merged_into)
        .bind(t.detail.to_string())
        .bind(us(t.updated_at))
        .bind(us(t.first_response_due_at))
        .bind(us(t.resolution_due_at))
        .bind(t.first_response_at.map(us))
        .bind(t.resolved_at.map(us))
        .bind(t.closed_at.map(us))
        .bind(t.first_response_stage)
        .bind(t.resolution_stage)
        .bind(i64::from(t.first_response_breached))
        .bind(i64::from(t.resolution_breached))
        .bind(t.rating)
        .bind(&t.rating_comment)
        .bind(t.subscriber_id.map(|s| s.to_string()))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// One ticket as `scope` may see it: a subscriber sees their own, never an abuse report nor a
    /// credential-loss report (whoever holds a stolen credential must not read or close it).
    pub async fn ticket_fetch(&mut self, scope: &Scope, id: &str) -> Result<Ticket> {
        let q = format!(
            "SELECT {TICKET_COLS} FROM tickets WHERE id = $1 \
             AND ($2 IS NULL OR (subscriber_id = $2 AND kind NOT IN ('abuse_report', 'credential_loss')))"
        );
        let row = sqlx::query(&q)
            .bind(id)
            .bind(scope.owner())
            .fetch_one(&mut *self.tx)
            .await?;
        ticket(&row)
    }

    /// The ticket a reply address names (inbound email).
    pub async fn ticket_by_reply_token(&mut self, token: &str) -> Result<Ticket> {
        let q = format!("SELECT {TICKET_COLS} FROM tickets WHERE reply_token = $1");
        let row = sqlx::query(&q).bind(token).fetch_one(&mut *self.tx).await?;
        ticket(&row)
    }

    /// Tickets newest first, as `scope` may see them, narrowed by `f`.
    pub async fn ticket_list(
        &mut self,
        scope: &Scope,
        f: &TicketFilter,
        page: &PageRequest,
    ) -> Result<Vec<Ticket>> {
        let q = format!(
            "SELECT {TICKET_COLS} FROM tickets WHERE \
             ($1 IS NULL OR (subscriber_id = $1 AND kind NOT IN ('abuse_report', 'credential_loss'))) \
             AND ($2 IS NULL OR status = $2) \
             AND ($3 = 0 OR status NOT IN ('resolved', 'closed')) \
             AND ($4 IS NULL OR priority = $4) \
             AND ($5 IS NULL OR category = $5) \
             AND ($6 IS NULL OR kind = $6) \
             AND ($7 IS NULL OR assignee_id = $7) \
             AND ($8 = 0 OR assignee_id IS NULL) \
             AND ($9 IS NULL OR (status NOT IN ('resolved', 'closed') AND merged_into IS NULL AND ( \
                  first_response_stage > 0 OR resolution_stage > 0 \
                  OR (first_response_at IS NULL AND first_response_due_at <= $9) OR resolution_due_at <= $9))) \
             AND ($10 IS NULL OR subscriber_id = $10) \
             AND ($11 IS NULL OR id < $11) ORDER BY id DESC LIMIT $12"
        );
        let rows = sqlx::query(&q)
            .bind(scope.owner())
            .bind(&f.status)
            .bind(i64::from(f.active_only))
            .bind(&f.priority)
            .bind(&f.category)
            .bind(&f.kind)
            .bind(&f.assignee)
            .bind(i64::from(f.unassigned))
            .bind(f.at_risk_before.map(us))
            .bind(f.subscriber.map(|s| s.to_string()))
            .bind(page.after.clone())
            .bind(page.effective_limit() as i64 + 1)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(ticket).collect()
    }

    /// Moves one target's escalation stage from `from` to `to` (marking it breached at stage 2),
    /// only if no one else did: replicas sweeping at once notify once.
    pub async fn ticket_stage_advance(
        &mut self,
        id: &str,
        resolution: bool,
        from: i64,
        to: i64,
        now: Timestamp,
    ) -> Result<bool> {
        self.check_writable()?;
        let (stage, breached) = if resolution {
            ("resolution_stage", "resolution_breached")
        } else {
            ("first_response_stage", "first_response_breached")
        };
        let r = sqlx::query(&format!(
            "UPDATE tickets SET {stage} = $3, {breached} = CASE WHEN $3 >= 2 THEN 1 ELSE {breached} END, updated_at = $4 \
             WHERE id = $1 AND {stage} = $2"
        ))
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(us(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Tickets whose targets are still running (the escalation sweep's work list).
    pub async fn tickets_running(&mut self) -> Result<Vec<Ticket>> {
        let q = format!(
            "SELECT {TICKET_COLS} FROM tickets WHERE status NOT IN ('resolved', 'closed') AND merged_into IS NULL \
             AND ((first_response_at IS NULL AND first_response_stage < 2) OR resolution_stage < 2) ORDER BY id"
        );
        let rows = sqlx::query(&q).fetch_all(&mut *self.tx).await?;
        rows.iter().map(ticket).collect()
    }

    /// Resolved tickets untouched since `before` (closed by the sweep).
    pub async fn tickets_resolved_before(&mut self, before: Timestamp) -> Result<Vec<Ticket>> {
        let q = format!(
            "SELECT {TICKET_COLS} FROM tickets WHERE status = 'resolved' AND resolved_at <= $1 ORDER BY id"
        );
        let rows = sqlx::query(&q)
            .bind(us(before))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(ticket).collect()
    }

    /// Every ticket opened in [from, to), for the monthly report.
    pub async fn tickets_created_between(
        &mut self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Ticket>> {
        let q = format!(
            "SELECT {TICKET_COLS} FROM tickets WHERE created_at >= $1 AND created_at < $2 AND merged_into IS NULL ORDER BY id"
        );
        let rows = sqlx::query(&q)
            .bind(us(from))
            .bind(us(to))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(ticket).collect()
    }

    pub async fn ticket_message_create(&mut self, m: &TicketMessage) -> Result<()> {
        self.check_writable()?;
        let q = format!(
            "INSERT INTO ticket_messages ({MSG_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        sqlx::query(&q)
            .bind(&m.id)
            .bind(&m.ticket_id)
            .bind(&m.author_kind)
            .bind(&m.author_id)
            .bind(&m.author_label)
            .bind(&m.body)
            .bind(i64::from(m.internal))
            .bind(&m.via)
            .bind(&m.external_id)
            .bind(us(m.created_at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Whether a ticket already holds the message that came with this email's Message-ID.
    pub async fn ticket_message_seen(
        &mut self,
        ticket_id: &str,
        external_id: &str,
    ) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM ticket_messages WHERE ticket_id = $1 AND external_id = $2",
        )
        .bind(ticket_id)
        .bind(external_id)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(col::get::<i64>(&row, "n")? > 0)
    }

    /// A ticket's thread, oldest first; internal notes only when asked for.
    pub async fn ticket_messages(
        &mut self,
        ticket_id: &str,
        with_internal: bool,
    ) -> Result<Vec<TicketMessage>> {
        let q = format!(
            "SELECT {MSG_COLS} FROM ticket_messages WHERE ticket_id = $1 AND ($2 = 1 OR internal = 0) ORDER BY id"
        );
        let rows = sqlx::query(&q)
            .bind(ticket_id)
            .bind(i64::from(with_internal))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(ticket_message).collect()
    }

    pub async fn ticket_attachment_create(
        &mut self,
        a: &TicketAttachment,
        sealed: &str,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO ticket_attachments (id, ticket_id, message_id, file_name, content_type, size, sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&a.id)
        .bind(&a.ticket_id)
        .bind(&a.message_id)
        .bind(&a.file_name)
        .bind(&a.content_type)
        .bind(a.size)
        .bind(sealed)
        .bind(us(a.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// A ticket's attachments, in the order they came.
    pub async fn ticket_attachments(&mut self, ticket_id: &str) -> Result<Vec<TicketAttachment>> {
        let q =
            format!("SELECT {ATT_COLS} FROM ticket_attachments WHERE ticket_id = $1 ORDER BY id");
        let rows = sqlx::query(&q)
            .bind(ticket_id)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(attachment).collect()
    }

    /// One attachment of a ticket with its sealed bytes.
    pub async fn ticket_attachment_fetch(
        &mut self,
        ticket_id: &str,
        id: &str,
    ) -> Result<(TicketAttachment, String)> {
        let q = format!(
            "SELECT {ATT_COLS}, sealed FROM ticket_attachments WHERE ticket_id = $1 AND id = $2"
        );
        let row = sqlx::query(&q)
            .bind(ticket_id)
            .bind(id)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok((attachment(&row)?, col::get(&row, "sealed")?))
    }

    /// Moves a ticket's thread and attachments into another (a merge).
    pub async fn ticket_thread_move(&mut self, from: &str, to: &str) -> Result<()> {
        self.check_writable()?;
        for table in ["ticket_messages", "ticket_attachments"] {
            sqlx::query(&format!(
                "UPDATE {table} SET ticket_id = $2 WHERE ticket_id = $1"
            ))
            .bind(from)
            .bind(to)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    pub async fn ticket_event_create(&mut self, e: &TicketEvent) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO ticket_events (id, ticket_id, kind, actor, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&e.id)
        .bind(&e.ticket_id)
        .bind(&e.kind)
        .bind(&e.actor)
        .bind(e.detail.to_string())
        .bind(us(e.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn ticket_events(&mut self, ticket_id: &str) -> Result<Vec<TicketEvent>> {
        let rows = sqlx::query(
            "SELECT id, ticket_id, kind, actor, detail, created_at FROM ticket_events WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(ticket_id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                let detail: String = col::get(r, "detail")?;
                Ok(TicketEvent {
                    id: col::get(r, "id")?,
                    ticket_id: col::get(r, "ticket_id")?,
                    kind: col::get(r, "kind")?,
                    actor: col::get(r, "actor")?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                    created_at: col::ts(r, "created_at")?,
                })
            })
            .collect()
    }

    pub async fn support_targets(&mut self) -> Result<Vec<SupportTarget>> {
        let rows = sqlx::query(
            "SELECT priority, first_response_minutes, resolution_minutes FROM support_targets",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SupportTarget {
                    priority: col::get(r, "priority")?,
                    first_response_minutes: col::get(r, "first_response_minutes")?,
                    resolution_minutes: col::get(r, "resolution_minutes")?,
                })
            })
            .collect()
    }

    pub async fn support_target_set(&mut self, t: &SupportTarget, now: Timestamp) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "UPDATE support_targets SET first_response_minutes = $2, resolution_minutes = $3, updated_at = $4 WHERE priority = $1",
        )
        .bind(&t.priority)
        .bind(t.first_response_minutes)
        .bind(t.resolution_minutes)
        .bind(us(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn canned_reply_create(&mut self, c: &CannedReply) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO canned_replies (id, title, body, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&c.id)
        .bind(&c.title)
        .bind(&c.body)
        .bind(&c.created_by)
        .bind(us(c.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn canned_replies(&mut self) -> Result<Vec<CannedReply>> {
        let rows = sqlx::query(
            "SELECT id, title, body, created_by, created_at FROM canned_replies ORDER BY title",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CannedReply {
                    id: col::get(r, "id")?,
                    title: col::get(r, "title")?,
                    body: col::get(r, "body")?,
                    created_by: col::get(r, "created_by")?,
                    created_at: col::ts(r, "created_at")?,
                })
            })
            .collect()
    }

    /// Deletes a canned reply; `NotFound` when there is none.
    pub async fn canned_reply_delete(&mut self, id: &str) -> Result<()> {
        self.check_writable()?;
        let r = sqlx::query("DELETE FROM canned_replies WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(crate::Error::NotFound);
        }
        Ok(())
    }

    /// Records one use of a public form from `ip`; returns how many since `since` (this one included).
    pub async fn support_form_hit(
        &mut self,
        form: &str,
        ip: &str,
        now: Timestamp,
        since: Timestamp,
    ) -> Result<i64> {
        self.check_writable()?;
        sqlx::query("DELETE FROM support_form_hits WHERE at < $1")
            .bind(us(since))
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("INSERT INTO support_form_hits (id, form, ip, at) VALUES ($1, $2, $3, $4)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(form)
            .bind(ip)
            .bind(us(now))
            .execute(&mut *self.tx)
            .await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM support_form_hits WHERE form = $1 AND ip = $2 AND at >= $3",
        )
        .bind(form)
        .bind(ip)
        .bind(us(since))
        .fetch_one(&mut *self.tx)
        .await?;
        col::get(&row, "n")
    }
}
