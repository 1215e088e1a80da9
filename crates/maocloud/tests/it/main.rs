//! The one integration-test binary: whole-system tests through the real HTTP API, the CLI and
//! the console, each on a fresh database (SQLite and PostgreSQL; see `harness`).

mod harness;

mod accounts;
mod authz_sweep;
pub mod billing;
mod billing_crash;
mod cli;
mod compute;
mod compute_qemu;
mod console;
mod console_compute;
mod console_privacy;
mod console_session;
mod console_storage;
mod console_support;
mod contract;
mod email;
mod jobs;
mod openapi;
mod privacy;
mod privacy_api;
mod storage;
mod storage_clients;
mod storage_crash;
mod support;
mod support_mail;
mod tokens;
mod webdriver;
