//! Who is acting: a subscriber, an operator with a role, or the platform itself. Every use case
//! and every datastore method for owned data takes one, so tenancy is checked in one place.

use crate::id::{OperatorId, SubscriberId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The operator roles the terms and the back office know (RULES.md, "Words").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OperatorRole {
    Admin,
    Billing,
    Support,
    Abuse,
}

impl OperatorRole {
    pub const ALL: [OperatorRole; 4] = [
        OperatorRole::Admin,
        OperatorRole::Billing,
        OperatorRole::Support,
        OperatorRole::Abuse,
    ];
    pub fn as_str(&self) -> &'static str {
        match self {
            OperatorRole::Admin => "admin",
            OperatorRole::Billing => "billing",
            OperatorRole::Support => "support",
            OperatorRole::Abuse => "abuse",
        }
    }
}

impl fmt::Display for OperatorRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OperatorRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(OperatorRole::Admin),
            "billing" => Ok(OperatorRole::Billing),
            "support" => Ok(OperatorRole::Support),
            "abuse" => Ok(OperatorRole::Abuse),
            other => Err(format!(
                "unknown role '{other}' (admin, billing, support, abuse)"
            )),
        }
    }
}

/// The authenticated caller of a use case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    Subscriber(SubscriberId),
    Operator {
        id: OperatorId,
        role: OperatorRole,
    },
    /// Background jobs and start-up tasks: never reachable from a request.
    System,
}

impl Principal {
    pub fn subscriber(&self) -> Option<SubscriberId> {
        match self {
            Principal::Subscriber(id) => Some(*id),
            _ => None,
        }
    }
    pub fn operator_role(&self) -> Option<OperatorRole> {
        match self {
            Principal::Operator { role, .. } => Some(*role),
            _ => None,
        }
    }
    /// A short stable label for the audit log: `subscriber:<id>`, `operator:<id>`, `system`.
    pub fn label(&self) -> String {
        match self {
            Principal::Subscriber(id) => format!("subscriber:{id}"),
            Principal::Operator { id, .. } => format!("operator:{id}"),
            Principal::System => "system".into(),
        }
    }
}
