//! The `maocloud` binary's library: command-line parsing, configuration (flags, `MAOCLOUD_*`
//! environment, TOML file), the wiring that starts the whole platform in one process, and the
//! CLI client that talks to a platform's API. The integration tests start the server through
//! [`serve::Platform`], exactly as `maocloud serve` does.

pub mod agent;
pub mod bench;
pub mod bench_compute;
pub mod bench_s3;
pub mod cli;
pub mod client;
pub mod compute_cli;
pub mod config;
pub mod output;
pub mod privacy_cli;
pub mod serve;
pub mod storage_cli;
pub mod support_cli;
