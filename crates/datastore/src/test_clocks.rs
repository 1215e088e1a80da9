//! Test clocks and the sandbox subscribers bound to them.

use crate::{col, us, Error, Result, Tx};
use maocloud_types::{SubscriberId, Timestamp};
use sqlx::any::AnyRow;

#[derive(Debug, Clone)]
pub struct TestClock {
    pub id: String,
    pub name: String,
    pub now: Timestamp,
    pub created_by: String,
    pub created_at: Timestamp,
}

fn clock(row: &AnyRow) -> Result<TestClock> {
    Ok(TestClock {
        id: col::get(row, "id")?,
        name: col::get(row, "name")?,
        now: col::ts(row, "now_us")?,
        created_by: col::get(row, "created_by")?,
        created_at: col::ts(row, "created_at")?,
    })
}

impl Tx {
    pub async fn test_clock_create(&mut self, c: &TestClock) -> Result<()> {
        self.check_writable()?;
        sqlx::query("INSERT INTO test_clocks (id, name, now_us, created_by, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&c.id)
            .bind(&c.name)
            .bind(us(c.now))
            .bind(&c.created_by)
            .bind(us(c.created_at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn test_clock_fetch(&mut self, id: &str) -> Result<TestClock> {
        clock(
            &sqlx::query(
                "SELECT id, name, now_us, created_by, created_at FROM test_clocks WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&mut *self.tx)
            .await?,
        )
    }

    pub async fn test_clock_list(&mut self) -> Result<Vec<TestClock>> {
        let rows = sqlx::query(
            "SELECT id, name, now_us, created_by, created_at FROM test_clocks ORDER BY id DESC",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(clock).collect()
    }

    /// Moves a clock forward (never back).
    pub async fn test_clock_set(&mut self, id: &str, now: Timestamp) -> Result<()> {
        self.check_writable()?;
        let r = sqlx::query("UPDATE test_clocks SET now_us = $2 WHERE id = $1 AND now_us <= $2")
            .bind(id)
            .bind(us(now))
            .execute(&mut *self.tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    /// Binds an account to a clock (sandbox subscribers).
    pub async fn account_bind_test_clock(
        &mut self,
        account: SubscriberId,
        clock: &str,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query("UPDATE accounts SET test_clock_id = $2 WHERE id = $1")
            .bind(account.to_string())
            .bind(clock)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The clock an account lives on, if it is a sandbox account.
    pub async fn account_test_clock(&mut self, account: uuid::Uuid) -> Result<Option<TestClock>> {
        let row = sqlx::query(
            "SELECT c.id, c.name, c.now_us, c.created_by, c.created_at FROM accounts a JOIN test_clocks c ON c.id = a.test_clock_id WHERE a.id = $1",
        )
        .bind(account.to_string())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(clock).transpose()
    }
}
