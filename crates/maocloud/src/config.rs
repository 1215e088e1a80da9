//! `serve` configuration: each setting comes from a flag, else its `MAOCLOUD_*` environment
//! variable, else the TOML file given by `--config`, else its default.

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Flags of `maocloud serve`. Every flag can also be set in the environment or the file.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys as the long flags, with `_` for `-`).
    #[arg(long, env = "MAOCLOUD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address for the API and the web console [default: 127.0.0.1:8080].
    #[arg(long, env = "MAOCLOUD_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Directory for the platform's state: the SQLite database, the Maildir… [default: ./data].
    #[arg(long, env = "MAOCLOUD_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database: `postgres://user@host/db` to run on PostgreSQL (several replicas may share it)
    /// [default: sqlite://<data-dir>/maocloud.db, embedded, WAL].
    #[arg(long, env = "MAOCLOUD_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// The URL people reach the console at, used in emailed links [default: http://<listen>].
    #[arg(long, env = "MAOCLOUD_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// SMTP server for outgoing mail, e.g. `smtp://mail.example.net:587?tls=required` or
    /// `smtps://user:pass@host`. Without it, mail goes to <data-dir>/maildir and is shown to
    /// admins in the back office.
    #[arg(long, env = "MAOCLOUD_SMTP_URL", value_name = "URL")]
    pub smtp_url: Option<String>,
    /// Sender of every email [default: Maocloud <no-reply@maocloud.localhost>].
    #[arg(long, env = "MAOCLOUD_MAIL_FROM", value_name = "ADDRESS")]
    pub mail_from: Option<String>,
    /// Seed a demo operator admin and subscriber and print their credentials once
    /// (`MAOCLOUD_DEMO_PASSWORD` fixes their password). The demo operator may skip TOTP.
    #[arg(long, env = "MAOCLOUD_DEMO")]
    pub demo: bool,
    /// A bearer token Prometheus may use to scrape /metrics (operators' tokens work too).
    #[arg(long, env = "MAOCLOUD_METRICS_TOKEN", value_name = "TOKEN")]
    pub metrics_token: Option<String>,
    /// Mark console cookies `Secure` [default: true; browsers accept them on http://localhost].
    #[arg(long, env = "MAOCLOUD_COOKIE_SECURE", value_name = "BOOL")]
    pub cookie_secure: Option<bool>,
    /// How often the background-job runner looks for due jobs, in milliseconds; 0 runs no
    /// runner in this process [default: 1000]. New VM changes wake it at once.
    #[arg(long, env = "MAOCLOUD_JOBS_INTERVAL_MS", value_name = "MS")]
    pub jobs_interval_ms: Option<u64>,
    /// How often the daily sweep (terminations, monthly invoicing, dunning, incomplete files,
    /// erasure) runs for today, in seconds; 0 turns it off [default: 300].
    #[arg(long, env = "MAOCLOUD_SWEEP_INTERVAL_SECS", value_name = "SECS")]
    pub sweep_interval_secs: Option<u64>,
    /// Console session lifetime in hours [default: 12].
    #[arg(long, env = "MAOCLOUD_SESSION_TTL_HOURS", value_name = "HOURS")]
    pub session_ttl_hours: Option<i64>,
    /// Compute on this machine: `qemu` (real guests; needs root, qemu-system-x86 and
    /// dnsmasq-base), `sim` (a simulated host: nothing boots) or `off` [default: qemu].
    #[arg(long, env = "MAOCLOUD_COMPUTE", value_name = "MODE")]
    pub compute: Option<String>,
    /// Where guests' metadata requests (169.254.169.254, redirected by each host) are served
    /// [default: 0.0.0.0:8775; port 0 picks a free one].
    #[arg(long, env = "MAOCLOUD_METADATA_LISTEN", value_name = "ADDR:PORT")]
    pub metadata_listen: Option<SocketAddr>,
    /// First two octets of the private /16 subscribers' networks come from [default: 10.213].
    #[arg(long, env = "MAOCLOUD_COMPUTE_POOL", value_name = "A.B")]
    pub compute_pool: Option<String>,
    /// The host interface guests' traffic may leave by, masqueraded (outbound NAT); without it
    /// guests reach only their host's DHCP and metadata service and each other.
    #[arg(long, env = "MAOCLOUD_UPLINK", value_name = "IFACE")]
    pub uplink: Option<String>,
    /// The token remote hypervisor agents join with (`maocloud agent --join URL --token T`)
    /// [default: made at first start and kept in <data-dir>/agent.token].
    #[arg(
        long,
        env = "MAOCLOUD_AGENT_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub agent_token: Option<String>,
    /// In demo mode, the test guest to offer as an image, if built there
    /// (`scripts/build-test-guest`) [default: target/test-guest].
    #[arg(long, env = "MAOCLOUD_DEMO_GUEST", value_name = "DIR")]
    pub demo_guest: Option<PathBuf>,
    /// Where the S3 endpoint listens, or `off` for no object storage [default: 127.0.0.1:9000].
    #[arg(long, env = "MAOCLOUD_S3_LISTEN", value_name = "ADDR:PORT|off")]
    pub s3_listen: Option<String>,
    /// Base domain for virtual-host-style S3 addressing (`bucket.DOMAIN`); path-style always
    /// works [default: none].
    #[arg(long, env = "MAOCLOUD_S3_DOMAIN", value_name = "DOMAIN")]
    pub s3_domain: Option<String>,
    /// A directory on its own disk for object storage's shards; repeat once per disk
    /// [default: four directories under <data-dir>/storage].
    #[arg(long = "storage-disk", value_name = "DIR")]
    pub storage_disks: Vec<PathBuf>,
    /// Parity shards per block: how many disks may be lost without losing data [default: 2
    /// with 4 or more disks, 1 with 2 or 3, 0 with one].
    #[arg(long, env = "MAOCLOUD_STORAGE_PARITY", value_name = "N")]
    pub storage_parity: Option<usize>,
    /// The support desk's email address; a ticket's reply address is `LOCAL+<token>@DOMAIN` of
    /// it, so the MTA must deliver `LOCAL+*` there too [default: support@<domain of --mail-from>].
    #[arg(long, env = "MAOCLOUD_SUPPORT_ADDRESS", value_name = "EMAIL")]
    pub support_address: Option<String>,
    /// The on-call group's address, warned when a ticket nears its target [default: every
    /// operator with the ticket's desk role].
    #[arg(long, env = "MAOCLOUD_SUPPORT_ONCALL", value_name = "EMAIL")]
    pub support_oncall: Option<String>,
    /// The Maildir the MTA delivers the support address's mail into (replies by email)
    /// [default: <data-dir>/support-intake].
    #[arg(long, env = "MAOCLOUD_SUPPORT_INTAKE", value_name = "DIR")]
    pub support_intake: Option<PathBuf>,
    /// the smallest group of subscribers an anonymised statistic shows [default: 5].
    #[arg(long, env = "MAOCLOUD_PRIVACY_K", value_name = "K")]
    pub privacy_k: Option<i64>,
    /// days personal data is kept once every contract is over, then erased
    /// [default: 1095, three years].
    #[arg(long, env = "MAOCLOUD_RETENTION_DAYS", value_name = "DAYS")]
    pub retention_days: Option<i64>,
    /// The 32-byte data key that seals secrets and documents at rest, created there on
    /// first start if missing [default: <data-dir>/data.key].
    #[arg(long, env = "MAOCLOUD_DATA_KEY_FILE", value_name = "FILE")]
    pub data_key_file: Option<PathBuf>,
}

/// The same settings, as read from the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    public_url: Option<String>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    demo: Option<bool>,
    metrics_token: Option<String>,
    cookie_secure: Option<bool>,
    jobs_interval_ms: Option<u64>,
    session_ttl_hours: Option<i64>,
    /// The seller named on invoices (file only).
    seller: Option<maocloud_app::Seller>,
    /// Days from an invoice's issue to its due date (file only; default 15).
    invoice_due_days: Option<i64>,
    sweep_interval_secs: Option<u64>,
    /// Contract-lifecycle delays (file only).
    contract: Option<ContractConfig>,
    compute: Option<String>,
    metadata_listen: Option<SocketAddr>,
    compute_pool: Option<String>,
    demo_guest: Option<PathBuf>,
    uplink: Option<String>,
    agent_token: Option<String>,
    s3_listen: Option<String>,
    s3_domain: Option<String>,
    storage_disks: Option<Vec<PathBuf>>,
    storage_parity: Option<usize>,
    support_address: Option<String>,
    support_oncall: Option<String>,
    support_intake: Option<PathBuf>,
    privacy_k: Option<i64>,
    retention_days: Option<i64>,
    data_key_file: Option<PathBuf>,
}

/// `[contract]`: the delays of the terms where they leave a choice (R-7.1b, R-7.1d, R-7.3c).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractConfig {
    /// Days after the payment reminder before non-payment suspends [15].
    pub dunning_days: Option<i64>,
    /// `automatic` [default] or `operator` (an operator confirms each suspension).
    pub dunning_suspension: Option<String>,
    /// Days after a proof request before an incomplete file suspends [15].
    pub incomplete_file_days: Option<i64>,
    /// Days a terminated subscriber's data stays read-only before erasure [30].
    pub termination_grace_days: Option<i64>,
}

/// Resolved configuration of a `serve` process.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub public_url: String,
    pub smtp_url: Option<String>,
    pub mail_from: String,
    pub demo: bool,
    pub metrics_token: Option<String>,
    pub cookie_secure: bool,
    pub jobs_interval_ms: u64,
    pub sweep_interval_secs: u64,
    pub contract: ContractConfig,
    pub session_ttl_hours: i64,
    pub seller: maocloud_app::Seller,
    pub invoice_due_days: i64,
    pub compute: ComputeMode,
    pub metadata_listen: SocketAddr,
    pub compute_pool: String,
    pub demo_guest: PathBuf,
    pub uplink: Option<String>,
    pub agent_token: Option<String>,
    /// None: no object storage.
    pub s3_listen: Option<SocketAddr>,
    pub s3_domain: Option<String>,
    pub storage_disks: Vec<PathBuf>,
    pub storage_parity: usize,
    pub support_address: Option<String>,
    pub support_oncall: Option<String>,
    pub support_intake: Option<PathBuf>,
    pub privacy_k: i64,
    pub retention_days: i64,
    pub data_key_file: Option<PathBuf>,
}

/// How `serve` runs guests on its own machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComputeMode {
    Qemu,
    Sim,
    Off,
}

impl ServeArgs {
    pub fn resolve(&self) -> anyhow::Result<ServeConfig> {
        let file: FileConfig = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("in {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid"));
        let data_dir = self
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        let database_url = self
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("maocloud.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            bail!("--database-url must start with sqlite:// or postgres:// (got {database_url})");
        }
        let public_url = self
            .public_url
            .clone()
            .or(file.public_url)
            .unwrap_or_else(|| format!("http://{listen}"));
        url::Url::parse(&public_url)
            .with_context(|| format!("--public-url is not a URL: {public_url}"))?;
        let session_ttl_hours = self
            .session_ttl_hours
            .or(file.session_ttl_hours)
            .unwrap_or(12);
        if !(1..=24 * 90).contains(&session_ttl_hours) {
            bail!("--session-ttl-hours must be between 1 and 2160");
        }
        let privacy_k = self.privacy_k.or(file.privacy_k).unwrap_or(5);
        if !(2..=1000).contains(&privacy_k) {
            bail!("--privacy-k must be between 2 and 1000");
        }
        let retention_days = self
            .retention_days
            .or(file.retention_days)
            .unwrap_or(3 * 365);
        if !(30..=36500).contains(&retention_days) {
            bail!("--retention-days must be between 30 and 36500");
        }
        let invoice_due_days = file.invoice_due_days.unwrap_or(15);
        if !(0..=90).contains(&invoice_due_days) {
            bail!("invoice_due_days must be between 0 and 90");
        }
        let contract = file.contract.clone().unwrap_or_default();
        for (name, v, max) in [
            ("dunning_days", contract.dunning_days, 90),
            ("incomplete_file_days", contract.incomplete_file_days, 180),
            (
                "termination_grace_days",
                contract.termination_grace_days,
                365,
            ),
        ] {
            if v.is_some_and(|v| !(1..=max).contains(&v)) {
                bail!("[contract] {name} must be between 1 and {max}");
            }
        }
        if !matches!(
            contract.dunning_suspension.as_deref(),
            None | Some("automatic" | "operator")
        ) {
            bail!("[contract] dunning_suspension must be \"automatic\" or \"operator\"");
        }
        let compute = match self.compute.clone().or(file.compute).as_deref() {
            None | Some("qemu") => ComputeMode::Qemu,
            Some("sim") => ComputeMode::Sim,
            Some("off") => ComputeMode::Off,
            Some(other) => bail!("--compute must be qemu, sim or off (got {other})"),
        };
        let compute_pool = self
            .compute_pool
            .clone()
            .or(file.compute_pool)
            .unwrap_or_else(|| "10.213".into());
        let octets: Vec<&str> = compute_pool.split('.').collect();
        if octets.len() != 2 || octets.iter().any(|o| o.parse::<u8>().is_err()) {
            bail!("--compute-pool must be two octets such as 10.213 (got {compute_pool})");
        }
        let s3_listen = match self.s3_listen.clone().or(file.s3_listen).as_deref() {
            Some("off") => None,
            None => Some("127.0.0.1:9000".parse().expect("valid")),
            Some(a) => Some(
                a.parse()
                    .with_context(|| format!("--s3-listen must be ADDR:PORT or off (got {a})"))?,
            ),
        };
        let storage_disks = if !self.storage_disks.is_empty() {
            self.storage_disks.clone()
        } else {
            file.storage_disks.unwrap_or_else(|| {
                (1..=4)
                    .map(|i| data_dir.join("storage").join(format!("disk{i}")))
                    .collect()
            })
        };
        let storage_parity =
            self.storage_parity
                .or(file.storage_parity)
                .unwrap_or(match storage_disks.len() {
                    0 | 1 => 0,
                    2 | 3 => 1,
                    _ => 2,
                });
        if storage_parity >= storage_disks.len() {
            bail!(
                "--storage-parity must be less than the number of --storage-disk directories ({})",
                storage_disks.len()
            );
        }
        Ok(ServeConfig {
            s3_listen,
            s3_domain: self.s3_domain.clone().or(file.s3_domain),
            storage_disks,
            storage_parity,
            support_address: self.support_address.clone().or(file.support_address),
            support_oncall: self.support_oncall.clone().or(file.support_oncall),
            support_intake: self.support_intake.clone().or(file.support_intake),
            privacy_k,
            retention_days,
            data_key_file: self.data_key_file.clone().or(file.data_key_file),
            compute,
            metadata_listen: self
                .metadata_listen
                .or(file.metadata_listen)
                .unwrap_or_else(|| "0.0.0.0:8775".parse().expect("valid")),
            compute_pool,
            uplink: self.uplink.clone().or(file.uplink),
            agent_token: self.agent_token.clone().or(file.agent_token),
            demo_guest: self
                .demo_guest
                .clone()
                .or(file.demo_guest)
                .unwrap_or_else(|| PathBuf::from("target/test-guest")),
            sweep_interval_secs: self
                .sweep_interval_secs
                .or(file.sweep_interval_secs)
                .unwrap_or(300),
            contract,
            seller: file.seller.unwrap_or_default(),
            invoice_due_days,
            listen,
            data_dir,
            database_url,
            public_url,
            smtp_url: self.smtp_url.clone().or(file.smtp_url),
            mail_from: self
                .mail_from
                .clone()
                .or(file.mail_from)
                .unwrap_or_else(|| "Maocloud <no-reply@maocloud.localhost>".into()),
            demo: self.demo || file.demo.unwrap_or(false),
            metrics_token: self.metrics_token.clone().or(file.metrics_token),
            cookie_secure: self.cookie_secure.or(file.cookie_secure).unwrap_or(true),
            jobs_interval_ms: self
                .jobs_interval_ms
                .or(file.jobs_interval_ms)
                .map(|ms| if ms == 0 { 0 } else { ms.max(10) })
                .unwrap_or(1000),
            session_ttl_hours,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_and_file_beats_defaults() {
        let dir = std::env::temp_dir().join(format!("maocloud-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("maocloud.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:9999\"\ndata_dir = \"/srv/mc\"\nsmtp_url = \"smtp://mail:25\"\n[seller]\nname = \"Hébergeur SAS\"\nsiren = \"732829320\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(f.clone()),
            listen: Some("0.0.0.0:8081".parse().unwrap()),
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8081");
        assert_eq!(c.data_dir, PathBuf::from("/srv/mc"));
        assert_eq!(c.database_url, "sqlite:///srv/mc/maocloud.db");
        assert_eq!(c.smtp_url.as_deref(), Some("smtp://mail:25"));
        assert!(c.cookie_secure);
        assert_eq!(
            (
                c.seller.name.as_str(),
                c.seller.siren.as_str(),
                c.seller.city.as_str()
            ),
            ("Hébergeur SAS", "732829320", "Quend")
        );
        std::fs::write(&f, "lisen = \"typo\"\n").unwrap();
        let err = ServeArgs {
            config: Some(f),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `lisen`"),
            "{err:#}"
        );
    }

    #[test]
    fn rejects_unknown_database_schemes() {
        let args = ServeArgs {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        };
        assert!(args.resolve().is_err());
    }
}
