//! Contract-lifecycle records: dunning reminders, suspensions, proof requests, terminations,
//! terms notices, incidents and compensations. The rules that decide them live in the app crate.

use crate::{col, us, Error, Result, Scope, Tx};
use maocloud_types::{Cents, InvoiceId, SubscriberId, SubscriptionId, Timestamp};
use sqlx::any::AnyRow;

/// The test-clock filter every daily sweep binds: live subscribers, or those of one clock.
const CLOCK: &str = "COALESCE(a.test_clock_id, '') = COALESCE($CLK, '')";

fn clock(sql: &str, n: usize) -> String {
    sql.replace("$CLK", &format!("${n}"))
}

#[derive(Debug, Clone)]
pub struct Suspension {
    pub id: String,
    pub subscriber_id: SubscriberId,
    pub cause: String,
    pub reason: String,
    pub status: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub lifted_at: Option<Timestamp>,
    pub lifted_by: Option<String>,
    pub lift_reason: Option<String>,
}

const SUSP_COLS: &str = "id, subscriber_id, cause, reason, status, created_by, created_at, started_at, lifted_at, lifted_by, lift_reason";

fn suspension(r: &AnyRow) -> Result<Suspension> {
    Ok(Suspension {
        id: col::get(r, "id")?,
        subscriber_id: col::id(r, "subscriber_id")?,
        cause: col::get(r, "cause")?,
        reason: col::get(r, "reason")?,
        status: col::get(r, "status")?,
        created_by: col::get(r, "created_by")?,
        created_at: col::ts(r, "created_at")?,
        started_at: col::opt_ts(r, "started_at")?,
        lifted_at: col::opt_ts(r, "lifted_at")?,
        lifted_by: col::get(r, "lifted_by")?,
        lift_reason: col::get(r, "lift_reason")?,
    })
}

#[derive(Debug, Clone)]
pub struct ProofRequest {
    pub id: String,
    pub subscriber_id: SubscriberId,
    pub kind: String,
    pub note: String,
    pub status: String,
    pub requested_by: String,
    pub requested_at: Timestamp,
    pub requested_on: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub size: Option<i64>,
    pub submitted_at: Option<Timestamp>,
    pub decided_at: Option<Timestamp>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
}

const PROOF_COLS: &str = "id, subscriber_id, kind, note, status, requested_by, requested_at, requested_on, file_name, content_type, size, submitted_at, decided_at, decided_by, decision_reason";

fn proof(r: &AnyRow) -> Result<ProofRequest> {
    Ok(ProofRequest {
        id: col::get(r, "id")?,
        subscriber_id: col::id(r, "subscriber_id")?,
        kind: col::get(r, "kind")?,
        note: col::get(r, "note")?,
        status: col::get(r, "status")?,
        requested_by: col::get(r, "requested_by")?,
        requested_at: col::ts(r, "requested_at")?,
        requested_on: col::get(r, "requested_on")?,
        file_name: col::get(r, "file_name")?,
        content_type: col::get(r, "content_type")?,
        size: col::get(r, "size")?,
        submitted_at: col::opt_ts(r, "submitted_at")?,
        decided_at: col::opt_ts(r, "decided_at")?,
        decided_by: col::get(r, "decided_by")?,
        decision_reason: col::get(r, "decision_reason")?,
    })
}

#[derive(Debug, Clone)]
pub struct Termination {
    pub id: String,
    pub subscription_id: SubscriptionId,
    pub subscriber_id: SubscriberId,
    pub channel: String,
    pub received_on: String,
    pub end_choice: String,
    pub end_date: String,
    pub reason: Option<String>,
    pub proof_request_id: Option<String>,
    pub penalty_free_terms: Option<String>,
    pub status: String,
    pub final_invoice_id: Option<InvoiceId>,
    pub settled_at: Option<Timestamp>,
    pub recorded_by: String,
    pub created_at: Timestamp,
    pub withdrawn_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub erase_on: Option<String>,
    pub erased_at: Option<Timestamp>,
}

const TERM_COLS: &str = "id, subscription_id, subscriber_id, channel, received_on, end_choice, end_date, reason, proof_request_id, penalty_free_terms, status, final_invoice_id, settled_at, recorded_by, created_at, withdrawn_at, ended_at, erase_on, erased_at";

fn termination(r: &AnyRow) -> Result<Termination> {
    Ok(Termination {
        id: col::get(r, "id")?,
        subscription_id: col::id(r, "subscription_id")?,
        subscriber_id: col::id(r, "subscriber_id")?,
        channel: col::get(r, "channel")?,
        received_on: col::get(r, "received_on")?,
        end_choice: col::get(r, "end_choice")?,
        end_date: col::get(r, "end_date")?,
        reason: col::get(r, "reason")?,
        proof_request_id: col::get(r, "proof_request_id")?,
        penalty_free_terms: col::get(r, "penalty_free_terms")?,
        status: col::get(r, "status")?,
        final_invoice_id: col::opt_id(r, "final_invoice_id")?,
        settled_at: col::opt_ts(r, "settled_at")?,
        recorded_by: col::get(r, "recorded_by")?,
        created_at: col::ts(r, "created_at")?,
        withdrawn_at: col::opt_ts(r, "withdrawn_at")?,
        ended_at: col::opt_ts(r, "ended_at")?,
        erase_on: col::get(r, "erase_on")?,
        erased_at: col::opt_ts(r, "erased_at")?,
    })
}

/// How a terms version is classed.
#[derive(Debug, Clone)]
pub struct TermsClassing {
    pub class: String,
    pub substantial: bool,
    pub closure: bool,
    pub equivalent_migration: bool,
    pub summary: String,
    pub published_by: String,
}

#[derive(Debug, Clone)]
pub struct TermsNotice {
    pub terms_version_id: String,
    pub version: String,
    pub subscriber_id: SubscriberId,
    pub notified_at: Timestamp,
    pub window_end: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Incident {
    pub id: String,
    pub title: String,
    pub resources: String,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub force_majeure: bool,
    pub recorded_by: String,
    pub created_at: Timestamp,
}

const INC_COLS: &str =
    "id, title, resources, started_at, ended_at, force_majeure, recorded_by, created_at";

fn incident(r: &AnyRow) -> Result<Incident> {
    Ok(Incident {
        id: col::get(r, "id")?,
        title: col::get(r, "title")?,
        resources: col::get(r, "resources")?,
        started_at: col::ts(r, "started_at")?,
        ended_at: col::opt_ts(r, "ended_at")?,
        force_majeure: col::flag(r, "force_majeure")?,
        recorded_by: col::get(r, "recorded_by")?,
        created_at: col::ts(r, "created_at")?,
    })
}

#[derive(Debug, Clone)]
pub struct Compensation {
    pub id: String,
    pub incident_id: String,
    pub subscriber_id: SubscriberId,
    pub credit_note_id: InvoiceId,
    pub amount: Cents,
    pub granted_by: String,
    pub created_at: Timestamp,
}

/// An invoice past its due date with something left to pay.
#[derive(Debug, Clone)]
pub struct Overdue {
    pub invoice_id: InvoiceId,
    pub number: String,
    pub subscriber_id: SubscriberId,
    pub due_date: String,
    pub remaining: Cents,
    pub reminded_on: Option<String>,
}

impl Tx {
    // ---- dunning (R-7.1b) ----

    /// Invoices due before `before` with something left to pay, with the date of their reminder
    /// if one was sent: of one subscriber, or else of live subscribers or of one test clock's.
    pub async fn invoice_overdue(
        &mut self,
        before: &str,
        test_clock: Option<&str>,
        subscriber: Option<SubscriberId>,
    ) -> Result<Vec<Overdue>> {
        let sql = clock(
            &format!(
                "SELECT i.id, i.number, i.subscriber_id, i.due_date, i.total_incl, r.reminded_on, \
                 CAST(COALESCE((SELECT SUM(al.amount) FROM payment_allocations al JOIN payments p ON p.id = al.payment_id WHERE al.invoice_id = i.id AND p.reversed_at IS NULL), 0) AS BIGINT) AS paid, \
                 CAST(COALESCE((SELECT SUM(c.total_incl) FROM invoices c WHERE c.credited_invoice_id = i.id), 0) AS BIGINT) AS credited \
                 FROM invoices i JOIN accounts a ON a.id = i.subscriber_id \
                 LEFT JOIN dunning_reminders r ON r.invoice_id = i.id \
                 WHERE i.kind = 'invoice' AND i.due_date < $1 AND ($2 IS NULL OR i.subscriber_id = $2) AND ($2 IS NOT NULL OR {CLOCK}) \
                 ORDER BY i.id"
            ),
            3,
        );
        let rows = sqlx::query(&sql)
            .bind(before)
            .bind(subscriber.map(|s| s.to_string()))
            .bind(test_clock)
            .fetch_all(&mut *self.tx)
            .await?;
        let mut out = vec![];
        for r in &rows {
            let total: i64 = col::get(r, "total_incl")?;
            let paid: i64 = col::get(r, "paid")?;
            let credited: i64 = col::get(r, "credited")?;
            let remaining = total - paid - credited;
            if remaining > 0 {
                out.push(Overdue {
                    invoice_id: col::id(r, "id")?,
                    number: col::get(r, "number")?,
                    subscriber_id: col::id(r, "subscriber_id")?,
                    due_date: col::get(r, "due_date")?,
                    remaining: Cents(remaining),
                    reminded_on: col::get(r, "reminded_on")?,
                });
            }
        }
        Ok(out)
    }

    /// Records the reminder of an invoice; false if one was already recorded.
    pub async fn dunning_remind(
        &mut self,
        invoice: InvoiceId,
        subscriber: SubscriberId,
        on: &str,
        at: Timestamp,
    ) -> Result<bool> {
        self.check_writable()?;
        let r = sqlx::query(
            "INSERT INTO dunning_reminders (invoice_id, subscriber_id, reminded_on, reminded_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (invoice_id) DO NOTHING",
        )
        .bind(invoice.to_string())
        .bind(subscriber.to_string())
        .bind(on)
        .bind(us(at))
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    // ---- suspensions (R-7.1) ----

    pub async fn suspension_create(&mut self, s: &Suspension) -> Result<()> {
        self.check_writable()?;
        sqlx::query(&format!(
            "INSERT INTO suspensions ({SUSP_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&s.id)
        .bind(s.subscriber_id.to_string())
        .bind(&s.cause)
        .bind(&s.reason)
        .bind(&s.status)
        .bind(&s.created_by)
        .bind(us(s.created_at))
        .bind(s.started_at.map(us))
        .bind(s.lifted_at.map(us))
        .bind(&s.lifted_by)
        .bind(&s.lift_reason)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn suspension_fetch(&mut self, scope: &Scope, id: &str) -> Result<Suspension> {
        let row = sqlx::query(&format!(
            "SELECT {SUSP_COLS} FROM suspensions WHERE id = $1 AND ($2 IS NULL OR subscriber_id = $2)"
        ))
        .bind(id)
        .bind(scope.owner())
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(Error::NotFound)?;
        suspension(&row)
    }

    /// Suspensions in view: one subscriber's (all of them), or every pending and active one.
    pub async fn suspension_list(
        &mut self,
        scope: &Scope,
        subscriber: Option<SubscriberId>,
    ) -> Result<Vec<Suspension>> {
        let rows = sqlx::query(&format!(
            "SELECT {SUSP_COLS} FROM suspensions WHERE ($1 IS NULL OR subscriber_id = $1) \
             AND ($2 IS NULL OR subscriber_id = $2) AND ($1 IS NOT NULL OR status <> 'lifted') \
             ORDER BY id DESC LIMIT 500"
        ))
        .bind(subscriber.map(|s| s.to_string()))
        .bind(scope.owner())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(suspension).collect()
    }

    /// The pending or active suspension of `subscriber` for `cause`, if any.
    pub async fn suspension_open(
        &mut self,
        subscriber: SubscriberId,
        cause: &str,
    ) -> Result<Option<Suspension>> {
        let row = sqlx::query(&format!(
            "SELECT {SUSP_COLS} FROM suspensions WHERE subscriber_id = $1 AND cause = $2 \
             AND status <> 'lifted' ORDER BY id DESC LIMIT 1"
        ))
        .bind(subscriber.to_string())
        .bind(cause)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(suspension).transpose()
    }

    /// Moves a suspension from `from` to `to`, stamping the start or the lift.
    pub async fn suspension_set_status(
        &mut self,
        id: &str,
        from: &str,
        to: &str,
        at: Timestamp,
        by: &str,
        reason: Option<&str>,
    ) -> Result<bool> {
        self.check_writable()?;
        let sql = match to {
            "active" => "UPDATE suspensions SET status = 'active', started_at = $3 WHERE id = $1 AND status = $2",
            _ => "UPDATE suspensions SET status = 'lifted', lifted_at = $3, lifted_by = $4, lift_reason = $5 WHERE id = $1 AND status = $2",
        };
        let r = sqlx::query(sql)
            .bind(id)
            .bind(from)
            .bind(us(at))
            .bind(by)
            .bind(reason)
            .execute(&mut *self.tx)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Subscribers (live, or of one test clock) with an open suspension for `cause`.
    pub async fn suspended_for(
        &mut self,
        cause: &str,
        test_clock: Option<&str>,
    ) -> Result<Vec<Suspension>> {
        let sql = clock(
            &format!(
                "SELECT {} FROM suspensions s JOIN accounts a ON a.id = s.subscriber_id \
                 WHERE s.cause = $1 AND s.status <> 'lifted' AND {CLOCK} ORDER BY s.id",
                crate::prefixed(SUSP_COLS, "s")
            ),
            2,
        );
        let rows = sqlx::query(&sql)
            .bind(cause)
            .bind(test_clock)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(suspension).collect()
    }

    // ---- proof requests (R-3.3) ----

    pub async fn proof_create(&mut self, p: &ProofRequest) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO proof_requests (id, subscriber_id, kind, note, status, requested_by, requested_at, requested_on) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&p.id)
        .bind(p.subscriber_id.to_string())
        .bind(&p.kind)
        .bind(&p.note)
        .bind(&p.status)
        .bind(&p.requested_by)
        .bind(us(p.requested_at))
        .bind(&p.requested_on)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn proof_fetch(&mut self, scope: &Scope, id: &str) -> Result<ProofRequest> {
        let row = sqlx::query(&format!(
            "SELECT {PROOF_COLS} FROM proof_requests WHERE id = $1 AND ($2 IS NULL OR subscriber_id = $2)"
        ))
        .bind(id)
        .bind(scope.owner())
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(Error::NotFound)?;
        proof(&row)
    }

    /// One subscriber's requests, or (no subscriber) every request waiting for someone.
    pub async fn proof_list(
        &mut self,
        scope: &Scope,
        subscriber: Option<SubscriberId>,
    ) -> Result<Vec<ProofRequest>> {
        let rows = sqlx::query(&format!(
            "SELECT {PROOF_COLS} FROM proof_requests WHERE ($1 IS NULL OR subscriber_id = $1) \
             AND ($2 IS NULL OR subscriber_id = $2) AND ($1 IS NOT NULL OR status IN ('open', 'submitted', 'rejected')) \
             ORDER BY id DESC LIMIT 500"
        ))
        .bind(subscriber.map(|s| s.to_string()))
        .bind(scope.owner())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(proof).collect()
    }

    /// Stores a submitted document (already sealed) and marks the request submitted.
    #[allow(clippy::too_many_arguments)]
    pub async fn proof_submit(
        &mut self,
        id: &str,
        file_name: &str,
        content_type: &str,
        size: i64,
        sealed: &str,
        at: Timestamp,
    ) -> Result<bool> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE proof_requests SET status = 'submitted', file_name = $2, content_type = $3, size = $4, \
             sealed = $5, submitted_at = $6, decided_at = NULL, decided_by = NULL, decision_reason = NULL \
             WHERE id = $1 AND status IN ('open', 'rejected')",
        )
        .bind(id)
        .bind(file_name)
        .bind(content_type)
        .bind(size)
        .bind(sealed)
        .bind(us(at))
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The sealed document of a request.
    pub async fn proof_sealed(&mut self, scope: &Scope, id: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT sealed FROM proof_requests WHERE id = $1 AND ($2 IS NULL OR subscriber_id = $2)",
        )
        .bind(id)
        .bind(scope.owner())
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(Error::NotFound)?;
        col::get(&row, "sealed")
    }

    pub async fn proof_decide(
        &mut self,
        id: &str,
        status: &str,
        at: Timestamp,
        by: &str,
        reason: &str,
    ) -> Result<bool> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE proof_requests SET status = $2, decided_at = $3, decided_by = $4, decision_reason = $5 \
             WHERE id = $1 AND status = 'submitted'",
        )
        .bind(id)
        .bind(status)
        .bind(us(at))
        .bind(by)
        .bind(reason)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Subscribers (live or of one clock) with an identity or address request still unanswered
    /// (open or rejected) that was made on or before `requested_by`.
    pub async fn proof_overdue(
        &mut self,
        requested_by: &str,
        test_clock: Option<&str>,
    ) -> Result<Vec<SubscriberId>> {
        let sql = clock(
            &format!(
                "SELECT DISTINCT p.subscriber_id FROM proof_requests p JOIN accounts a ON a.id = p.subscriber_id \
                 WHERE p.kind IN ('identity', 'address') AND p.status IN ('open', 'rejected') \
                 AND p.requested_on <= $1 AND {CLOCK}"
            ),
            2,
        );
        let rows = sqlx::query(&sql)
            .bind(requested_by)
            .bind(test_clock)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(|r| col::id(r, "subscriber_id")).collect()
    }

    /// Whether the subscriber's file is complete: no identity or address request unanswered.
    pub async fn proof_file_complete(&mut self, subscriber: SubscriberId) -> Result<bool> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM proof_requests WHERE subscriber_id = $1 \
             AND kind IN ('identity', 'address') AND status IN ('open', 'rejected')",
        )
        .bind(subscriber.to_string())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(col::get::<i64>(&row, "n")? == 0)
    }

    // ---- terminations (R-7.2, R-7.3) ----

    pub async fn termination_create(&mut self, t: &Termination) -> Result<()> {
        self.check_writable()?;
        sqlx::query(&format!(
            "INSERT INTO terminations ({TERM_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ))
        .bind(&t.id)
        .bind(t.subscription_id.to_string())
        .bind(t.subscriber_id.to_string())
        .bind(&t.channel)
        .bind(&t.received_on)
        .bind(&t.end_choice)
        .bind(&t.end_date)
        .bind(&t.reason)
        .bind(&t.proof_request_id)
        .bind(&t.penalty_free_terms)
        .bind(&t.status)
        .bind(t.final_invoice_id.map(|i| i.to_string()))
        .bind(t.settled_at.map(us))
        .bind(&t.recorded_by)
        .bind(us(t.created_at))
        .bind(t.withdrawn_at.map(us))
        .bind(t.ended_at.map(us))
        .bind(&t.erase_on)
        .bind(t.erased_at.map(us))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The latest termination of a subscription that is not withdrawn.
    pub async fn termination_of(
        &mut self,
        scope: &Scope,
        subscription: SubscriptionId,
    ) -> Result<Option<Termination>> {
        let row = sqlx::query(&format!(
            "SELECT {TERM_COLS} FROM terminations WHERE subscription_id = $1 AND status <> 'withdrawn' \
             AND ($2 IS NULL OR subscriber_id = $2) ORDER BY id DESC LIMIT 1"
        ))
        .bind(subscription.to_string())
        .bind(scope.owner())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(termination).transpose()
    }

    pub async fn termination_list(
        &mut self,
        scope: &Scope,
        subscriber: Option<SubscriberId>,
    ) -> Result<Vec<Termination>> {
        let rows = sqlx::query(&format!(
            "SELECT {TERM_COLS} FROM terminations WHERE ($1 IS NULL OR subscriber_id = $1) \
             AND ($2 IS NULL OR subscriber_id = $2) ORDER BY id DESC LIMIT 500"
        ))
        .bind(subscriber.map(|s| s.to_string()))
        .bind(scope.owner())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(termination).collect()
    }

    pub async fn termination_withdraw(&mut self, id: &str, at: Timestamp) -> Result<bool> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE terminations SET status = 'withdrawn', withdrawn_at = $2 WHERE id = $1 AND status = 'scheduled'",
        )
        .bind(id)
        .bind(us(at))
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Terminations (live or of one clock) whose end date is before `before` and still to
    /// carry out, or ended with their final invoice still to issue.
    pub async fn termination_due(
        &mut self,
        before: &str,
        test_clock: Option<&str>,
    ) -> Result<Vec<Termination>> {
        let sql = clock(
            &format!(
                "SELECT {} FROM terminations t JOIN accounts a ON a.id = t.subscriber_id \
                 WHERE t.end_date < $1 AND (t.status = 'scheduled' OR (t.status = 'ended' AND t.settled_at IS NULL)) \
                 AND {CLOCK} ORDER BY t.end_date, t.id",
                crate::prefixed(TERM_COLS, "t")
            ),
            2,
        );
        let rows = sqlx::query(&sql)
            .bind(before)
            .bind(test_clock)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(termination).collect()
    }

    pub async fn termination_ended(
        &mut self,
        id: &str,
        at: Timestamp,
        erase_on: &str,
    ) -> Result<bool> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE terminations SET status = 'ended', ended_at = $2, erase_on = $3 WHERE id = $1 AND status = 'scheduled'",
        )
        .bind(id)
        .bind(us(at))
        .bind(erase_on)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records the final invoice (or that there was nothing to charge).
    pub async fn termination_settled(
        &mut self,
        id: &str,
        invoice: Option<InvoiceId>,
        at: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query("UPDATE terminations SET final_invoice_id = $2, settled_at = $3 WHERE id = $1")
            .bind(id)
            .bind(invoice.map(|i| i.to_string()))
            .bind(us(at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Ended terminations (live or of one clock) whose grace period is over and data not yet erased.
    pub async fn termination_to_erase(
        &mut self,
        on: &str,
        test_clock: Option<&str>,
    ) -> Result<Vec<Termination>> {
        let sql = clock(
            &format!(
                "SELECT {} FROM terminations t JOIN accounts a ON a.id = t.subscriber_id \
                 WHERE t.status = 'ended' AND t.erase_on <= $1 AND t.erased_at IS NULL AND {CLOCK} ORDER BY t.id",
                crate::prefixed(TERM_COLS, "t")
            ),
            2,
        );
        let rows = sqlx::query(&sql)
            .bind(on)
            .bind(test_clock)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(termination).collect()
    }

    pub async fn termination_erased(&mut self, id: &str, at: Timestamp) -> Result<()> {
        self.check_writable()?;
        sqlx::query("UPDATE terminations SET erased_at = $2 WHERE id = $1")
            .bind(id)
            .bind(us(at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Marks a subscription terminated (services stop).
    pub async fn subscription_terminate(
        &mut self,
        id: SubscriptionId,
        at: Timestamp,
    ) -> Result<bool> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE subscriptions SET status = 'terminated', ended_at = $2 WHERE id = $1 AND status = 'active'",
        )
        .bind(id.to_string())
        .bind(us(at))
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    // ---- terms versions and notices (R-6.3, R-3.4, R-3.5) ----

    pub async fn terms_classing_set(&mut self, version_id: &str, c: &TermsClassing) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "UPDATE terms_versions SET class = $2, substantial = $3, closure = $4, equivalent_migration = $5, \
             summary = $6, published_by = $7 WHERE id = $1",
        )
        .bind(version_id)
        .bind(&c.class)
        .bind(i64::from(c.substantial))
        .bind(i64::from(c.closure))
        .bind(i64::from(c.equivalent_migration))
        .bind(&c.summary)
        .bind(&c.published_by)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Every terms version with its classing, newest effective date first.
    pub async fn terms_version_list(
        &mut self,
    ) -> Result<Vec<(crate::TermsVersion, TermsClassing)>> {
        let rows = sqlx::query(
            "SELECT id, version, title, body, published_at, effective_at, class, substantial, closure, \
             equivalent_migration, summary, published_by FROM terms_versions ORDER BY effective_at DESC, id DESC",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    crate::TermsVersion {
                        id: col::id(r, "id")?,
                        version: col::get(r, "version")?,
                        title: col::get(r, "title")?,
                        body: col::get(r, "body")?,
                        published_at: col::ts(r, "published_at")?,
                        effective_at: col::ts(r, "effective_at")?,
                    },
                    TermsClassing {
                        class: col::get(r, "class")?,
                        substantial: col::flag(r, "substantial")?,
                        closure: col::flag(r, "closure")?,
                        equivalent_migration: col::flag(r, "equivalent_migration")?,
                        summary: col::get(r, "summary")?,
                        published_by: col::get(r, "published_by")?,
                    },
                ))
            })
            .collect()
    }

    pub async fn terms_notice_create(&mut self, n: &TermsNotice) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO terms_notices (terms_version_id, subscriber_id, notified_at, window_end) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (terms_version_id, subscriber_id) DO NOTHING",
        )
        .bind(&n.terms_version_id)
        .bind(n.subscriber_id.to_string())
        .bind(us(n.notified_at))
        .bind(&n.window_end)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Notices of one version (operators), or of one subscriber.
    pub async fn terms_notice_list(
        &mut self,
        version_id: Option<&str>,
        subscriber: Option<SubscriberId>,
    ) -> Result<Vec<TermsNotice>> {
        let rows = sqlx::query(
            "SELECT n.terms_version_id, v.version, n.subscriber_id, n.notified_at, n.window_end FROM terms_notices n \
             JOIN terms_versions v ON v.id = n.terms_version_id \
             WHERE ($1 IS NULL OR n.terms_version_id = $1) AND ($2 IS NULL OR n.subscriber_id = $2) \
             ORDER BY n.notified_at, n.subscriber_id",
        )
        .bind(version_id)
        .bind(subscriber.map(|s| s.to_string()))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TermsNotice {
                    terms_version_id: col::get(r, "terms_version_id")?,
                    version: col::get(r, "version")?,
                    subscriber_id: col::id(r, "subscriber_id")?,
                    notified_at: col::ts(r, "notified_at")?,
                    window_end: col::get(r, "window_end")?,
                })
            })
            .collect()
    }

    /// Every subscriber with an active subscription, live and sandbox: those a terms change affects.
    pub async fn subscribers_under_contract(&mut self) -> Result<Vec<SubscriberId>> {
        let rows = sqlx::query(
            "SELECT DISTINCT subscriber_id FROM subscriptions WHERE status = 'active' ORDER BY subscriber_id",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(|r| col::id(r, "subscriber_id")).collect()
    }

    // ---- incidents and compensation (R-8.1, R-8.2) ----

    pub async fn incident_create(&mut self, i: &Incident) -> Result<()> {
        self.check_writable()?;
        sqlx::query(&format!(
            "INSERT INTO incidents ({INC_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&i.id)
        .bind(&i.title)
        .bind(&i.resources)
        .bind(us(i.started_at))
        .bind(i.ended_at.map(us))
        .bind(i64::from(i.force_majeure))
        .bind(&i.recorded_by)
        .bind(us(i.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn incident_fetch(&mut self, id: &str) -> Result<Incident> {
        let row = sqlx::query(&format!("SELECT {INC_COLS} FROM incidents WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(Error::NotFound)?;
        incident(&row)
    }

    pub async fn incident_list(&mut self) -> Result<Vec<Incident>> {
        let rows = sqlx::query(&format!(
            "SELECT {INC_COLS} FROM incidents ORDER BY id DESC LIMIT 500"
        ))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(incident).collect()
    }

    pub async fn compensation_create(&mut self, c: &Compensation) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO compensations (id, incident_id, subscriber_id, credit_note_id, amount, granted_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.id)
        .bind(&c.incident_id)
        .bind(c.subscriber_id.to_string())
        .bind(c.credit_note_id.to_string())
        .bind(c.amount.0)
        .bind(&c.granted_by)
        .bind(us(c.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn compensation_list(
        &mut self,
        incident: &str,
        subscriber: Option<SubscriberId>,
    ) -> Result<Vec<Compensation>> {
        let rows = sqlx::query(
            "SELECT id, incident_id, subscriber_id, credit_note_id, amount, granted_by, created_at FROM compensations \
             WHERE incident_id = $1 AND ($2 IS NULL OR subscriber_id = $2) ORDER BY id",
        )
        .bind(incident)
        .bind(subscriber.map(|s| s.to_string()))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Compensation {
                    id: col::get(r, "id")?,
                    incident_id: col::get(r, "incident_id")?,
                    subscriber_id: col::id(r, "subscriber_id")?,
                    credit_note_id: col::id(r, "credit_note_id")?,
                    amount: Cents(col::get(r, "amount")?),
                    granted_by: col::get(r, "granted_by")?,
                    created_at: col::ts(r, "created_at")?,
                })
            })
            .collect()
    }

    /// Amounts paid (allocated, not reversed) on each invoice of a subscriber, for the cap.
    pub async fn invoice_paid(&mut self, invoice: InvoiceId) -> Result<Cents> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(al.amount), 0) AS BIGINT) AS paid FROM payment_allocations al \
             JOIN payments p ON p.id = al.payment_id WHERE al.invoice_id = $1 AND p.reversed_at IS NULL",
        )
        .bind(invoice.to_string())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(Cents(col::get(&row, "paid")?))
    }
}
