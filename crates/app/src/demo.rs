//! The `--demo` seed: an operator admin and a subscriber, so a newcomer can sign in at once.
//! Passwords are random (or `MAOCLOUD_DEMO_PASSWORD`) and returned once, for printing at start.

use crate::accounts::{self, SignupInput};
use crate::{App, Ctx, Error, Result};
use maocloud_types::OperatorRole;

pub const DEMO_SUBSCRIBER: &str = "demo@maocloud.test";
pub const DEMO_OPERATOR: &str = "admin@maocloud.test";

/// Credentials created by the seed (none when the accounts already existed).
pub struct DemoCredentials {
    pub operator: Option<(String, String)>,
    pub subscriber: Option<(String, String)>,
}

pub async fn seed(app: &App, password: Option<&str>) -> Result<DemoCredentials> {
    let pw = |p: Option<&str>| p.map(str::to_owned).unwrap_or_else(|| crate::auth::new_secret("demo-")[..21].to_string());
    let mut out = DemoCredentials { operator: None, subscriber: None };
    let op_pw = pw(password);
    match accounts::operator_create(app, &Ctx::system(), DEMO_OPERATOR, OperatorRole::Admin, &op_pw, "Admin (démo)", false).await {
        Ok(_) => out.operator = Some((DEMO_OPERATOR.into(), op_pw)),
        Err(Error::Conflict { .. }) => {}
        Err(e) => return Err(e),
    }
    let sub_pw = pw(password);
    let terms = crate::terms::current(app).await?;
    let input = SignupInput {
        email: DEMO_SUBSCRIBER.into(),
        password: sub_pw.clone(),
        full_name: "Camille Martin".into(),
        customer_kind: "consumer".into(),
        address_line1: "3 rue des Alouettes".into(),
        postal_code: "80120".into(),
        city: "Quend".into(),
        country: "FR".into(),
        accept_terms_version: terms.version,
        locale: Some("fr".into()),
        ..Default::default()
    };
    match accounts::signup(app, "demo-seed", &input).await {
        Ok(id) => {
            let mut tx = app.db().write().await?;
            tx.account_set_email_verified(id.0, app.now()).await?;
            tx.commit().await?;
            out.subscriber = Some((DEMO_SUBSCRIBER.into(), sub_pw));
        }
        Err(Error::Conflict { .. }) => {}
        Err(e) => return Err(e),
    }
    Ok(out)
}
