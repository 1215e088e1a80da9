//! Typed identifiers: one newtype per resource around a time-ordered UUIDv7, so a subscriber id can
//! never be passed where a token id is expected, and ordering by id is ordering by creation.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! define_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = "uuid")]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh id, ordered after every id made before it.
            pub fn new() -> Self { Self(Uuid::now_v7()) }
            pub fn as_uuid(&self) -> Uuid { self.0 }
        }
        impl Default for $name { fn default() -> Self { Self::new() } }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { self.0.fmt(f) }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Uuid::parse_str(s).map(Self) }
        }
    )*};
}

define_id!(
    /// A subscriber account (abonné).
    SubscriberId,
    /// An operator: the provider's staff member.
    OperatorId,
    /// A bearer token for the API and the CLI.
    ApiTokenId,
    /// A console session.
    SessionId,
    /// An email in the outbox.
    EmailId,
    /// A message in a subscriber's inbox.
    MessageId,
    /// A background job.
    JobId,
    /// An entry of the audit log.
    AuditId,
    /// A version of the terms of service.
    TermsVersionId,
    /// An offer of the price list.
    OfferId,
    /// A subscription: one contract between a subscriber and the operator.
    SubscriptionId,
    /// An invoice or a credit note.
    InvoiceId,
    /// A payment received.
    PaymentId,
    /// A hypervisor host (compute).
    HostId,
    /// A disk image VMs boot from.
    ImageId,
    /// A virtual machine.
    VmId,
    /// A subscriber's SSH public key.
    SshKeyId,
    /// A subscriber's network on one host.
    NetworkId,
);
