//! The email outbox and the subscriber inbox. An email is written here in the same
//! transaction as the change that causes it, then delivered by a background job.

use crate::model::*;
use crate::{col, us, Error, Result, Scope, Tx};
use maocloud_types::{EmailId, MessageId, PageRequest, SubscriberId, Timestamp};
use sqlx::any::AnyRow;

fn email(row: &AnyRow) -> Result<Email> {
    Ok(Email {
        id: col::id(row, "id")?,
        account_id: col::opt_id(row, "account_id")?,
        to_addr: col::get(row, "to_addr")?,
        subject: col::get(row, "subject")?,
        body_text: col::get(row, "body_text")?,
        state: col::get(row, "state")?,
        attempts: col::get(row, "attempts")?,
        transport: col::get(row, "transport")?,
        last_error: col::get(row, "last_error")?,
        created_at: col::ts(row, "created_at")?,
        sent_at: col::opt_ts(row, "sent_at")?,
        reply_to: col::get(row, "reply_to")?,
        about: col::opt_id(row, "about_subscriber")?,
        list_unsubscribe: col::get(row, "list_unsubscribe")?,
    })
}

fn message(row: &AnyRow) -> Result<Message> {
    Ok(Message {
        id: col::id(row, "id")?,
        subscriber_id: col::id(row, "subscriber_id")?,
        subject: col::get(row, "subject")?,
        body: col::get(row, "body")?,
        created_at: col::ts(row, "created_at")?,
        read_at: col::opt_ts(row, "read_at")?,
    })
}

const EMAIL_COLS: &str = "id, account_id, to_addr, subject, body_text, state, attempts, transport, last_error, created_at, sent_at, reply_to, about_subscriber, list_unsubscribe";
const MESSAGE_COLS: &str = "id, subscriber_id, subject, body, created_at, read_at";

impl Tx {
    pub async fn email_create(&mut self, e: &Email) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO emails (id, account_id, to_addr, subject, body_text, state, attempts, created_at, reply_to, about_subscriber, list_unsubscribe) \
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $8, $9)",
        )
        .bind(e.id.to_string())
        .bind(e.account_id.map(|a| a.to_string()))
        .bind(&e.to_addr)
        .bind(&e.subject)
        .bind(&e.body_text)
        .bind(us(e.created_at))
        .bind(&e.reply_to)
        .bind(e.about.map(|s| s.to_string()))
        .bind(&e.list_unsubscribe)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn email_fetch(&mut self, id: EmailId) -> Result<Email> {
        let q = format!("SELECT {EMAIL_COLS} FROM emails WHERE id = $1");
        let row = sqlx::query(&q)
            .bind(id.to_string())
            .fetch_one(&mut *self.tx)
            .await?;
        email(&row)
    }

    /// Records a delivery attempt: sent (with the transport used), or failed with the error;
    /// `final_failure` marks it failed for good.
    pub async fn email_record_attempt(
        &mut self,
        id: EmailId,
        outcome: Result<&str, &str>,
        final_failure: bool,
        now: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        let q = match outcome {
            Ok(_) => "UPDATE emails SET state = 'sent', attempts = attempts + 1, transport = $2, sent_at = $3 WHERE id = $1",
            Err(_) if final_failure => "UPDATE emails SET state = 'failed', attempts = attempts + 1, last_error = $2 WHERE id = $1 AND $3 > 0",
            Err(_) => "UPDATE emails SET attempts = attempts + 1, last_error = $2 WHERE id = $1 AND $3 > 0",
        };
        let text = match outcome {
            Ok(t) | Err(t) => t,
        };
        sqlx::query(q)
            .bind(id.to_string())
            .bind(text)
            .bind(us(now))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Every email, newest first (the back office's view of the outbox).
    pub async fn email_list(&mut self, page: &PageRequest) -> Result<Vec<Email>> {
        let q = format!("SELECT {EMAIL_COLS} FROM emails WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2");
        let rows = sqlx::query(&q)
            .bind(page.after.clone())
            .bind(page.effective_limit() as i64 + 1)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(email).collect()
    }

    pub async fn message_create(&mut self, m: &Message, email: Option<EmailId>) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO messages (id, subscriber_id, email_id, subject, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(m.id.to_string())
        .bind(m.subscriber_id.to_string())
        .bind(email.map(|e| e.to_string()))
        .bind(&m.subject)
        .bind(&m.body)
        .bind(us(m.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// A subscriber's inbox, newest first.
    pub async fn message_list(
        &mut self,
        scope: &Scope,
        subscriber: SubscriberId,
        page: &PageRequest,
    ) -> Result<Vec<Message>> {
        let q = format!(
            "SELECT {MESSAGE_COLS} FROM messages WHERE subscriber_id = $1 AND ($2 IS NULL OR subscriber_id = $2) \
             AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
        );
        let rows = sqlx::query(&q)
            .bind(subscriber.to_string())
            .bind(scope.owner())
            .bind(page.after.clone())
            .bind(page.effective_limit() as i64 + 1)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(message).collect()
    }

    pub async fn message_fetch(&mut self, scope: &Scope, id: MessageId) -> Result<Message> {
        let q = format!("SELECT {MESSAGE_COLS} FROM messages WHERE id = $1 AND ($2 IS NULL OR subscriber_id = $2)");
        let row = sqlx::query(&q)
            .bind(id.to_string())
            .bind(scope.owner())
            .fetch_one(&mut *self.tx)
            .await?;
        message(&row)
    }

    pub async fn message_mark_read(
        &mut self,
        scope: &Scope,
        id: MessageId,
        now: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE messages SET read_at = COALESCE(read_at, $3) WHERE id = $1 AND ($2 IS NULL OR subscriber_id = $2)",
        )
        .bind(id.to_string())
        .bind(scope.owner())
        .bind(us(now))
        .execute(&mut *self.tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    pub async fn message_unread_count(
        &mut self,
        scope: &Scope,
        subscriber: SubscriberId,
    ) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM messages WHERE subscriber_id = $1 AND ($2 IS NULL OR subscriber_id = $2) AND read_at IS NULL",
        )
        .bind(subscriber.to_string())
        .bind(scope.owner())
        .fetch_one(&mut *self.tx)
        .await?;
        col::get(&row, "n")
    }
}
