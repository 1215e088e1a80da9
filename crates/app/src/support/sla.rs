//! Response targets and escalation (R-1d): every ticket gets a first-response and a resolution
//! deadline from its priority's targets; the clock runs around the clock (nights, weekends and
//! while waiting on the subscriber alike). At 80 % of a target the on-call group is warned; at
//! the target itself the ticket is breached, admins are told and the breach is recorded for the
//! monthly report. Resolved tickets close by themselves after 7 days.

use super::{event, operator_email, PRIORITIES};
use crate::i18n::Lang;
use crate::notify::Recipient;
use crate::{App, Ctx, Error, Result};
use jiff::SignedDuration;
use maocloud_billing::calendar::{next_month, paris_midnight};
use maocloud_datastore::support::{SupportTarget, Ticket};
use maocloud_datastore::Tx;
use maocloud_types::{OperatorRole, Timestamp};
use serde_json::json;

/// Days a resolved ticket stays open to a reply before it closes by itself.
pub const AUTO_CLOSE_DAYS: i64 = 7;

/// The share of a target after which the on-call group is warned.
const WARN_NUM: i64 = 4;
const WARN_DEN: i64 = 5;

/// The first-response and resolution deadlines of a ticket opened at `from`.
pub fn due(from: Timestamp, t: &SupportTarget) -> (Timestamp, Timestamp) {
    (
        from + SignedDuration::from_mins(t.first_response_minutes),
        from + SignedDuration::from_mins(t.resolution_minutes),
    )
}

/// When the on-call group is warned about a deadline.
pub fn warn_at(created: Timestamp, due: Timestamp) -> Timestamp {
    let span = due.duration_since(created).as_micros();
    created + SignedDuration::from_micros((span * WARN_NUM as i128 / WARN_DEN as i128) as i64)
}

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub warned: usize,
    pub breached: usize,
    pub closed: usize,
}

/// The stage a deadline has reached at `now`: 0 running, 1 about to breach, 2 breached.
fn stage(created: Timestamp, due: Timestamp, now: Timestamp) -> i64 {
    if now >= due {
        2
    } else if now >= warn_at(created, due) {
        1
    } else {
        0
    }
}

/// Escalates every ticket that reached a stage since the last sweep, and closes resolved
/// tickets left alone for 7 days. Run every few seconds by `serve`; idempotent, and safe with
/// several replicas (a stage moves once).
pub async fn sweep(app: &App) -> Result<SweepReport> {
    let mut report = SweepReport::default();
    let now = app.now();
    let running = app.db().read().await?.tickets_running().await?;
    for t in running {
        // The stages each deadline has reached; a write only for a ticket that moved (the sweep
        // runs every 15 s over every open ticket).
        let first = (t.first_response_at.is_none())
            .then(|| stage(t.created_at, t.first_response_due_at, now))
            .filter(|to| *to > t.first_response_stage);
        let resolution = Some(stage(t.created_at, t.resolution_due_at, now))
            .filter(|to| *to > t.resolution_stage);
        if first.is_none() && resolution.is_none() {
            continue;
        }
        let mut tx = app.db().write().await?;
        if let Some(to) = first {
            escalate(app, &mut tx, &t, false, to, now, &mut report).await?;
        }
        if let Some(to) = resolution {
            escalate(app, &mut tx, &t, true, to, now, &mut report).await?;
        }
        tx.commit().await?;
    }
    let cutoff = now - SignedDuration::from_hours(24 * AUTO_CLOSE_DAYS);
    let stale = app
        .db()
        .read()
        .await?
        .tickets_resolved_before(cutoff)
        .await?;
    for mut t in stale {
        let mut tx = app.db().write().await?;
        // Re-read: a reply may have reopened it since.
        let fresh = tx
            .ticket_fetch(&maocloud_datastore::Scope::All, &t.id)
            .await?;
        if fresh.status != "resolved" {
            continue;
        }
        t = fresh;
        t.status = "closed".into();
        t.closed_at = Some(now);
        t.updated_at = now;
        tx.ticket_save(&t).await?;
        event(
            &mut tx,
            &t.id,
            "status",
            "Maocloud",
            json!({"from": "resolved", "to": "closed", "auto": true}),
            now,
        )
        .await?;
        tx.commit().await?;
        report.closed += 1;
    }
    Ok(report)
}

/// Moves one deadline to `to` and tells who must know: the on-call group at stage 1, admins
/// (and the on-call group, if it was never warned) at stage 2.
async fn escalate(
    app: &App,
    tx: &mut Tx,
    t: &Ticket,
    resolution: bool,
    to: i64,
    now: Timestamp,
    report: &mut SweepReport,
) -> Result<()> {
    let from = if resolution {
        t.resolution_stage
    } else {
        t.first_response_stage
    };
    if !tx
        .ticket_stage_advance(&t.id, resolution, from, to, now)
        .await?
    {
        return Ok(());
    }
    let target = if resolution {
        "resolution"
    } else {
        "first_response"
    };
    let due = if resolution {
        t.resolution_due_at
    } else {
        t.first_response_due_at
    };
    if to >= 1 && from < 1 {
        tell_oncall(app, tx, t, target).await?;
        event(
            tx,
            &t.id,
            "escalated",
            "Maocloud",
            json!({"target": target, "level": "on_call", "due": due.to_string()}),
            now,
        )
        .await?;
        report.warned += 1;
    }
    if to >= 2 {
        for admin in tx.operators_with_role(OperatorRole::Admin).await? {
            let key = format!("email.desk.breach.{target}");
            operator_email(
                app,
                tx,
                Recipient::Account(&admin),
                Lang::parse(&admin.locale),
                t,
                &key,
                "",
            )
            .await?;
        }
        event(
            tx,
            &t.id,
            "breached",
            "Maocloud",
            json!({"target": target, "level": "admins", "due": due.to_string()}),
            now,
        )
        .await?;
        report.breached += 1;
    }
    Ok(())
}

/// Warns the on-call group: its alias when one is configured, else every operator with the
/// role that handles the ticket's category.
async fn tell_oncall(app: &App, tx: &mut Tx, t: &Ticket, target: &str) -> Result<()> {
    let key = format!("email.desk.warn.{target}");
    match &app.settings().support_oncall {
        Some(alias) => {
            operator_email(app, tx, Recipient::Address(alias), Lang::Fr, t, &key, "").await
        }
        None => {
            for op in tx
                .operators_with_role(super::desk_role(&t.category))
                .await?
            {
                operator_email(
                    app,
                    tx,
                    Recipient::Account(&op),
                    Lang::parse(&op.locale),
                    t,
                    &key,
                    "",
                )
                .await?;
            }
            Ok(())
        }
    }
}

/// One priority's line of the monthly report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportRow {
    pub priority: String,
    pub tickets: i64,
    /// First responses given before the deadline / after it (or none yet, past it).
    pub first_response_within: i64,
    pub first_response_breached: i64,
    /// Tickets resolved before the deadline / breached.
    pub resolution_within: i64,
    pub resolution_breached: i64,
    /// Share of tickets answered within target, in per mille of those decided (None: none yet).
    pub first_response_share_permille: Option<i64>,
    pub resolution_share_permille: Option<i64>,
    pub ratings: i64,
    /// Mean rating × 100 (e.g. 450 = 4.5), None without ratings.
    pub mean_rating_x100: Option<i64>,
}

/// The month's report (tickets opened that calendar month, Paris time), one row per priority,
/// highest first, then a total row (`priority` = "all").
pub async fn report(app: &App, ctx: &Ctx, month: &str) -> Result<Vec<ReportRow>> {
    ctx.require_operator(&[OperatorRole::Support])?;
    let first: jiff::civil::Date = format!("{month}-01")
        .parse()
        .map_err(|_| Error::invalid("month", "must be a month YYYY-MM"))?;
    let (from, to) = (paris_midnight(first), paris_midnight(next_month(first)));
    let tickets = app
        .db()
        .read()
        .await?
        .tickets_created_between(from, to)
        .await?;
    let now = app.now();
    let mut rows: Vec<ReportRow> = PRIORITIES
        .iter()
        .rev()
        .chain(std::iter::once(&"all"))
        .map(|p| ReportRow {
            priority: p.to_string(),
            ..Default::default()
        })
        .collect();
    let mut rating_sums = vec![0i64; rows.len()];
    for t in &tickets {
        let i = rows
            .iter()
            .position(|r| r.priority == t.priority)
            .unwrap_or(rows.len() - 1);
        for idx in [i, rows.len() - 1] {
            let r = &mut rows[idx];
            r.tickets += 1;
            match t.first_response_at {
                Some(at) if at < t.first_response_due_at => r.first_response_within += 1,
                Some(_) => r.first_response_breached += 1,
                None if now >= t.first_response_due_at || t.first_response_breached => {
                    r.first_response_breached += 1
                }
                None => {}
            }
            match t.resolved_at {
                Some(at) if at < t.resolution_due_at => r.resolution_within += 1,
                Some(_) => r.resolution_breached += 1,
                None if now >= t.resolution_due_at || t.resolution_breached => {
                    r.resolution_breached += 1
                }
                None => {}
            }
            if let Some(score) = t.rating {
                r.ratings += 1;
                rating_sums[idx] += score;
            }
        }
    }
    let share = |within: i64, breached: i64| {
        (within + breached > 0).then(|| within * 1000 / (within + breached))
    };
    for (r, sum) in rows.iter_mut().zip(rating_sums) {
        r.first_response_share_permille = share(r.first_response_within, r.first_response_breached);
        r.resolution_share_permille = share(r.resolution_within, r.resolution_breached);
        r.mean_rating_x100 = (r.ratings > 0).then(|| sum * 100 / r.ratings);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_comes_at_four_fifths_of_the_target() {
        let t0: Timestamp = "2026-11-26T09:00:00Z".parse().unwrap();
        let target = SupportTarget {
            priority: "urgent".into(),
            first_response_minutes: 30,
            resolution_minutes: 240,
        };
        let (fr, res) = due(t0, &target);
        assert_eq!(fr, "2026-11-26T09:30:00Z".parse().unwrap());
        assert_eq!(res, "2026-11-26T13:00:00Z".parse().unwrap());
        assert_eq!(warn_at(t0, fr), "2026-11-26T09:24:00Z".parse().unwrap());
        let s = |at: &str| stage(t0, fr, at.parse().unwrap());
        assert_eq!(s("2026-11-26T09:23:59.999999Z"), 0);
        assert_eq!(s("2026-11-26T09:24:00Z"), 1);
        assert_eq!(s("2026-11-26T09:29:59.999999Z"), 1);
        assert_eq!(s("2026-11-26T09:30:00Z"), 2);
    }
}
