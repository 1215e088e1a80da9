//! Test clocks (billing issue, item 8): an operator creates a clock, sandbox subscribers bound
//! to it, and advances it; every scheduled billing step of those subscribers (the monthly run
//! on each 1st) fires as the clock passes it — a preview of a contract's life before going live.
//! Live subscribers never see a test clock, and the live monthly run never bills a sandbox.

use crate::accounts::{self, SignupInput};
use crate::billing::RunReport;
use crate::{audit, App, Ctx, Error, Result};
use jiff::{SignedDuration, Timestamp};
use maocloud_billing::calendar::{paris_date, paris_midnight};
pub use maocloud_datastore::test_clocks::TestClock as TestClockRecord;
use maocloud_datastore::test_clocks::TestClock;
use maocloud_types::{OperatorRole, SubscriberId};
use serde_json::json;

const ROLES: &[OperatorRole] = &[OperatorRole::Billing];

/// The longest single advance: three years of monthly runs.
const MAX_ADVANCE: SignedDuration = SignedDuration::from_hours(24 * 366 * 3);

impl App {
    /// "Now" for an account: its test clock's time for a sandbox subscriber, else the platform's.
    pub async fn now_for(&self, account: uuid::Uuid) -> Result<Timestamp> {
        let mut tx = self.db().read().await?;
        Ok(match tx.account_test_clock(account).await? {
            Some(c) => c.now,
            None => self.now(),
        })
    }

    /// [`App::now_for`] inside a transaction already open.
    pub(crate) async fn now_in(
        &self,
        tx: &mut maocloud_datastore::Tx,
        account: uuid::Uuid,
    ) -> Result<Timestamp> {
        Ok(match tx.account_test_clock(account).await? {
            Some(c) => c.now,
            None => self.now(),
        })
    }
}

pub async fn create(
    app: &App,
    ctx: &Ctx,
    name: &str,
    start: Option<Timestamp>,
) -> Result<TestClock> {
    ctx.require_operator(ROLES)?;
    let name = maocloud_types::validate::text(name, 100).map_err(|r| Error::invalid("name", r))?;
    let clock = TestClock {
        id: uuid::Uuid::now_v7().to_string(),
        name,
        now: start.unwrap_or_else(|| app.now()),
        created_by: ctx.principal.label(),
        created_at: app.now(),
    };
    let mut tx = app.db().write().await?;
    tx.test_clock_create(&clock).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "test_clock.create",
        Some(&clock.id),
        None,
        json!({"name": clock.name, "now": clock.now.to_string()}),
    )
    .await?;
    tx.commit().await?;
    Ok(clock)
}

pub async fn list(app: &App, ctx: &Ctx) -> Result<Vec<TestClock>> {
    ctx.require_operator(ROLES)?;
    let mut tx = app.db().read().await?;
    Ok(tx.test_clock_list().await?)
}

pub async fn get(app: &App, ctx: &Ctx, id: &str) -> Result<TestClock> {
    ctx.require_operator(ROLES)?;
    let mut tx = app.db().read().await?;
    Ok(tx.test_clock_fetch(id).await?)
}

/// Creates a sandbox subscriber living on the clock (signs up like anyone, then is bound).
pub async fn sandbox_subscriber(
    app: &App,
    ctx: &Ctx,
    clock: &str,
    input: &SignupInput,
) -> Result<SubscriberId> {
    ctx.require_operator(ROLES)?;
    get(app, ctx, clock).await?;
    let id = accounts::signup(app, &format!("test-clock:{clock}"), input).await?;
    let mut tx = app.db().write().await?;
    tx.account_bind_test_clock(id, clock).await?;
    tx.account_set_email_verified(id.0, app.now()).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "test_clock.subscriber",
        Some(&id.to_string()),
        Some(id),
        json!({"clock": clock}),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Moves the clock forward to `to`, sweeping each day (Paris midnight) it passes for its sandbox
/// subscribers, in order. Returns the monthly run's report of every 1st passed.
pub async fn advance(
    app: &App,
    ctx: &Ctx,
    id: &str,
    to: Timestamp,
) -> Result<(TestClock, Vec<(jiff::civil::Date, RunReport)>)> {
    ctx.require_operator(ROLES)?;
    let clock = get(app, ctx, id).await?;
    if to <= clock.now {
        return Err(Error::invalid(
            "to",
            "must be after the clock's current time",
        ));
    }
    if to.duration_since(clock.now) > MAX_ADVANCE {
        return Err(Error::invalid(
            "to",
            "must be at most three years ahead of the clock",
        ));
    }
    // Every Paris midnight the clock passes runs that day's sweep: terminations, the monthly
    // invoicing on the 1st, dunning, incomplete files, erasure — as the live scheduler would.
    let mut reports = vec![];
    let mut day = paris_date(clock.now).tomorrow().map_err(Error::internal)?;
    while paris_midnight(day) <= to {
        let mut tx = app.db().write().await?;
        tx.test_clock_set(id, paris_midnight(day)).await?;
        tx.commit().await?;
        let report = crate::daily::sweep(app, day, Some(id)).await?;
        if day.day() == 1 {
            reports.push((day, report.run));
        }
        day = day.tomorrow().map_err(Error::internal)?;
    }
    let mut tx = app.db().write().await?;
    tx.test_clock_set(id, to).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "test_clock.advance",
        Some(id),
        None,
        json!({"to": to.to_string(), "runs": reports.len()}),
    )
    .await?;
    tx.commit().await?;
    Ok((get(app, ctx, id).await?, reports))
}
