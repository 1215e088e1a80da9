//! The command line: `maocloud serve` runs the platform; `maocloud operator …` administers it
//! locally; `maocloud login`, `whoami`, `token …` and `maocloud <resource> <verb>` (offer,
//! subscription, invoice, suspension, proof, terms, incident, vm, storage, ticket, support,
//! privacy, processor, statistics, marketing) are the client of a platform's API. Errors print
//! a message and exit non-zero.

use crate::client::{Client, Credentials};
use crate::config::ServeArgs;
use crate::output::{self, col, Format};
use crate::privacy_cli::ProcessorCommand;
use crate::support_cli::SupportCommand;
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use maocloud_types::OperatorRole;
use serde_json::json;
use std::io::Read;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "maocloud",
    version,
    about = "Maocloud: the cloud platform for hosting providers, in one binary."
)]
pub struct Cli {
    /// Platform URL for client commands [default: the one stored by `maocloud login`].
    #[arg(long, global = true, env = "MAOCLOUD_URL")]
    pub url: Option<String>,
    /// API token for client commands [default: the one stored by `maocloud login`].
    #[arg(long, global = true, env = "MAOCLOUD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// How client commands print results.
    #[arg(long, short, global = true, env = "MAOCLOUD_OUTPUT", value_enum, default_value_t = Format::Table)]
    pub output: Format,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole platform (API, web console, background jobs) in this process.
    Serve(ServeArgs),
    /// Run a hypervisor host that joins a platform (`--join URL --token T`).
    Agent(crate::agent::AgentArgs),
    /// Administer operators directly on the platform's database.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Sign in to a platform and store the token for the other commands.
    Login {
        /// Account email (asked if absent).
        #[arg(long)]
        email: Option<String>,
        /// Read the password from standard input instead of asking for it.
        #[arg(long)]
        password_stdin: bool,
        /// Current TOTP code, for accounts with a second factor.
        #[arg(long)]
        totp: Option<String>,
    },
    /// Forget the stored token.
    Logout,
    /// Show the account behind the token.
    Whoami,
    /// Manage your API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The price list and, for operators, offers.
    #[command(subcommand)]
    Offer(OfferCommand),
    /// Your subscriptions: subscribe, change offer.
    #[command(subcommand)]
    Subscription(SubscriptionCommand),
    /// Invoices (and, for operators, the monthly run).
    #[command(subcommand)]
    Invoice(InvoiceCommand),
    /// Suspensions of service: yours, or for operators suspend, confirm and lift.
    #[command(subcommand)]
    Suspension(SuspensionCommand),
    /// Documents asked of subscribers: request, upload, decide.
    #[command(subcommand)]
    Proof(ProofCommand),
    /// Terms-of-service versions: list, and for admins publish.
    #[command(subcommand)]
    Terms(TermsCommand),
    /// Incidents and compensation, for operators.
    #[command(subcommand)]
    Incident(IncidentCommand),
    /// Virtual machines: launch, control, console (R-1a).
    #[command(subcommand)]
    Vm(crate::compute_cli::VmCommand),
    /// The image catalogue, and for admins importing images.
    #[command(subcommand)]
    Image(crate::compute_cli::ImageCommand),
    /// Your SSH public keys, put into the VMs you launch.
    #[command(subcommand, name = "ssh-key")]
    SshKey(crate::compute_cli::SshKeyCommand),
    /// Hypervisor hosts and their load (operators).
    #[command(subcommand)]
    Host(crate::compute_cli::HostCommand),
    /// Object storage: S3 access keys, buckets, usage; operators: quotas and disk health (R-1b).
    #[command(subcommand)]
    Storage(crate::storage_cli::StorageCommand),
    /// Support tickets (R-1d): open, follow, answer, close; operators: the queue.
    #[command(subcommand)]
    Ticket(crate::support_cli::TicketCommand),
    /// The support desk: response targets, the monthly report; operators: canned replies and
    /// registered letters.
    #[command(subcommand)]
    Support(crate::support_cli::SupportCommand),
    /// Your personal data: marketing consents, restriction, objection, the export of
    /// everything held about you.
    #[command(subcommand)]
    Privacy(crate::privacy_cli::PrivacyCommand),
    /// The register of processors and recipients of personal data; admins edit it.
    #[command(subcommand)]
    Processor(crate::privacy_cli::ProcessorCommand),
    /// Billing operators: the anonymised statistics.
    Statistics {
        /// `YYYY-MM`: the first month of the revenue figures [default: 11 months ago].
        #[arg(long)]
        since: Option<String>,
    },
    /// Admins: marketing emails, to consenting subscribers only.
    #[command(subcommand)]
    Marketing(crate::privacy_cli::MarketingCommand),
    /// Print the OpenAPI document of this version of the API.
    Openapi,
    /// Measure the platform on this machine (see `scripts/bench`).
    #[command(subcommand, hide = true)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum OfferCommand {
    /// The public price list (no sign-in needed).
    List,
    /// Create an offer from a JSON file shaped like `POST /api/v1/offers` (billing operators).
    Create {
        #[arg(long, value_name = "FILE")]
        file: std::path::PathBuf,
    },
    /// Withdraw an offer from the price list (billing operators).
    Retire { id: String },
}

#[derive(Debug, Subcommand)]
pub enum SubscriptionCommand {
    /// Your subscriptions.
    List,
    /// Subscribe to an offer; prints the first invoice.
    Create {
        #[arg(long)]
        offer: String,
    },
    /// Move a subscription to another offer (no fee; pro rata from today).
    ChangeOffer {
        id: String,
        #[arg(long)]
        offer: String,
    },
    /// Terminate a subscription: at month end, or on a date within 10 days.
    /// Operators recording a registered letter give `--received-on`.
    Terminate {
        id: String,
        #[arg(long, value_enum)]
        end: TerminationEnd,
        /// `YYYY-MM-DD`, with `--end date`.
        #[arg(long)]
        date: Option<String>,
        /// A legitimate reason (R-7.3b), to be proven by a document.
        #[arg(long)]
        reason: Option<String>,
        /// `YYYY-MM-DD`: the date the registered letter was received (operators).
        #[arg(long)]
        received_on: Option<String>,
    },
    /// The scheduled termination of a subscription, with its dues.
    Termination { id: String },
    /// Withdraw a scheduled termination (until its end date).
    WithdrawTermination { id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TerminationEnd {
    /// The last day of the month of the request.
    MonthEnd,
    /// The date given with `--date`.
    Date,
}

impl TerminationEnd {
    fn api(self) -> &'static str {
        match self {
            TerminationEnd::MonthEnd => "month_end",
            TerminationEnd::Date => "date",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum SuspensionCommand {
    /// Your suspensions (operators: every open one, or one subscriber's).
    List {
        #[arg(long)]
        subscriber: Option<String>,
    },
    /// Suspend a subscriber at once (abuse operators, R-7.1a).
    Create {
        #[arg(long)]
        subscriber: String,
        /// breach, network or authority.
        #[arg(long)]
        cause: String,
        #[arg(long)]
        reason: String,
    },
    /// Lift a suspension, with a reason.
    Lift {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Confirm a suspension waiting for an operator (non-payment).
    Confirm { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ProofCommand {
    /// Your document requests (operators: every one waiting).
    List,
    /// Ask a subscriber for a document (support and billing operators).
    Request {
        #[arg(long)]
        subscriber: String,
        /// identity or address.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        note: String,
    },
    /// Upload the document of a request (PDF, PNG or JPEG, 5 MiB at most).
    Upload {
        id: String,
        file: std::path::PathBuf,
    },
    /// Approve or reject a submitted document, with a reason.
    #[command(group(clap::ArgGroup::new("decision").required(true).args(["approve", "reject"])))]
    Decide {
        id: String,
        #[arg(long)]
        approve: bool,
        #[arg(long)]
        reject: bool,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TermsCommand {
    /// Every version, newest first.
    List,
    /// Publish a new version and notify every subscriber under contract (admins).
    Publish {
        #[arg(long)]
        version: String,
        #[arg(long)]
        title: String,
        /// The terms text (Markdown subset), read from this file.
        #[arg(long, value_name = "FILE")]
        body_file: std::path::PathBuf,
        /// What changed, in the subscribers' words.
        #[arg(long)]
        summary: String,
        /// `YYYY-MM-DD` (Paris).
        #[arg(long)]
        effective_on: String,
        /// beneficial, administrative, legal or other.
        #[arg(long)]
        class: String,
        #[arg(long)]
        substantial: bool,
        #[arg(long)]
        closure: bool,
        #[arg(long)]
        equivalent_migration: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Every incident, newest first.
    List,
    /// Record an incident.
    Create {
        #[arg(long)]
        title: String,
        #[arg(long)]
        resources: String,
        /// RFC 3339, e.g. 2026-11-26T09:00:00Z.
        #[arg(long)]
        started_at: String,
        #[arg(long)]
        ended_at: Option<String>,
        #[arg(long)]
        force_majeure: bool,
    },
    /// The compensation cap of an incident for one subscriber, with its reasons.
    Cap {
        id: String,
        #[arg(long)]
        subscriber: String,
    },
    /// Grant compensation as a credit note (billing operators).
    Compensate {
        id: String,
        #[arg(long)]
        subscriber: String,
        /// Excluding VAT, in cents.
        #[arg(long)]
        amount_cents: i64,
        /// The invoice to credit [default: the subscriber's latest].
        #[arg(long)]
        invoice: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum InvoiceCommand {
    /// Your invoices of the last 12 months (operators: everyone's, or `--subscriber`).
    List {
        #[arg(long)]
        subscriber: Option<String>,
    },
    /// One invoice with its lines.
    Show { id: String },
    /// Run the monthly invoicing for a date (billing operators); idempotent.
    Run {
        /// `YYYY-MM-DD` (Paris); default today.
        #[arg(long)]
        date: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Seed subscriptions on a fresh database and time the monthly run over them.
    InvoiceRun {
        #[arg(long, default_value_t = 100_000)]
        subscriptions: u64,
        #[command(flatten)]
        db: ServeArgs,
    },
    /// Time the rendering of invoice PDFs (Factur-X PDF/A-3b).
    Pdf {
        #[arg(long, default_value_t = 20)]
        count: u32,
    },
    /// Time POST /api/v1/vms to the guest's first init line, against a bare QEMU boot.
    VmBoot {
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        #[arg(long, default_value = "target/test-guest")]
        guest: std::path::PathBuf,
    },
    /// Time create -> running -> delete cycles against simulated hosts.
    VmCycles {
        #[arg(long, default_value_t = 100)]
        cycles: u32,
        #[arg(long, default_value_t = 10)]
        hosts: u32,
    },
    /// S3 PUT/GET throughput (4 KiB, 1 MiB, 64 MiB objects; 1, 16, 64 in flight) against the
    /// raw speed of the same disk, and the memory it takes.
    S3 {
        /// Where the platform keeps its data and the disk is measured [default: a temporary dir].
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Multiplies the number of objects per round.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// GET what the PUTs left in the page cache instead of dropping it first.
        #[arg(long)]
        warm: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create an operator (the first admin, typically). Prints their TOTP secret once.
    Create {
        #[arg(long)]
        email: String,
        /// admin, billing, support or abuse.
        #[arg(long)]
        role: OperatorRole,
        /// Display name [default: the email].
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        db: ServeArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// List your live tokens.
    List,
    /// Create a token (its secret is printed once).
    Create {
        #[arg(long, default_value = "cli")]
        name: String,
        /// Lifetime in days (1 to 3650).
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    /// Revoke a token by id.
    Revoke { id: String },
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        <Format as clap::ValueEnum>::from_str(s, true)
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        // s3s logs every refused S3 request (a bad signature, a missing key) as an error: those
        // are the client's; the S3 endpoint logs its own failures itself.
        std::env::var("MAOCLOUD_LOG")
            .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info,s3s=off".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn read_password(from_stdin: bool, prompt: &str) -> anyhow::Result<String> {
    let pw = if from_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the password from standard input")?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        rpassword::prompt_password(prompt).context("reading the password")?
    };
    if pw.is_empty() {
        bail!("the password is empty");
    }
    Ok(pw)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = cli.output;
    match cli.command {
        Command::Serve(args) => crate::serve::serve(args.resolve()?).await,
        Command::Agent(args) => crate::agent::run(args).await,
        Command::Operator(OperatorCommand::Create {
            email,
            role,
            name,
            password_stdin,
            db,
        }) => {
            let password = read_password(password_stdin, "Password: ")?;
            let mut config = db.resolve()?;
            config.demo = false;
            // Only the database is needed: no hypervisor, no metadata listener.
            config.compute = crate::config::ComputeMode::Off;
            config.s3_listen = None;
            let platform = crate::serve::Platform::build(
                config,
                std::sync::Arc::new(maocloud_types::SystemClock),
            )
            .await?;
            let ctx = maocloud_app::Ctx {
                principal: maocloud_types::Principal::System,
                ip: "cli".into(),
            };
            let name = name.unwrap_or_else(|| email.clone());
            let op = maocloud_app::accounts::operator_create(
                &platform.app,
                &ctx,
                &email,
                role,
                &password,
                &name,
                true,
            )
            .await
            .map_err(app_error)?;
            let v = json!({"id": op.id.to_string(), "email": email, "role": role.as_str(), "totp_secret": op.totp_secret, "totp_uri": op.totp_uri});
            output::print(
                out,
                &v,
                &[
                    col("ID", "id"),
                    col("EMAIL", "email"),
                    col("ROLE", "role"),
                    col("TOTP SECRET", "totp_secret"),
                    col("TOTP URI", "totp_uri"),
                ],
            );
            if out == Format::Table {
                eprintln!("Add the TOTP secret to an authenticator app now: it is shown only once and needed to sign in.");
            }
            Ok(())
        }
        Command::Login {
            email,
            password_stdin,
            totp,
        } => {
            let url = cli
                .url
                .clone()
                .or_else(|| Credentials::load().ok().flatten().map(|c| c.url))
                .unwrap_or_else(|| "http://127.0.0.1:8080".into());
            let email = match email {
                Some(e) => e,
                None => {
                    eprint!("Email: ");
                    let mut s = String::new();
                    std::io::stdin().read_line(&mut s)?;
                    s.trim().to_string()
                }
            };
            let password = read_password(password_stdin, "Password: ")?;
            let client = Client::new(&url, None)?;
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "cli".into());
            let mut body = json!({"email": email, "password": password, "name": format!("maocloud CLI on {host}")});
            if let Some(t) = totp {
                body["totp"] = json!(t);
            }
            let resp = client.post("/api/v1/tokens", &body).await?;
            let token = resp["token"]
                .as_str()
                .context("the server returned no token")?
                .to_string();
            let path = Credentials {
                url: client.url().to_string(),
                token,
                email: Some(email.clone()),
            }
            .save()?;
            eprintln!(
                "Signed in to {} as {email}; token stored in {}",
                client.url(),
                path.display()
            );
            Ok(())
        }
        Command::Logout => {
            if Credentials::remove()? {
                eprintln!("Signed out: the stored token is deleted (it stays valid until revoked or expired).");
            } else {
                eprintln!("Not signed in.");
            }
            Ok(())
        }
        Command::Whoami => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            let me = c.get("/api/v1/me").await?;
            output::print(
                out,
                &me,
                &[
                    col("ID", "id"),
                    col("KIND", "kind"),
                    col("EMAIL", "email"),
                    col("NAME", "display_name"),
                    col("ROLE", "role"),
                    col("VERIFIED", "email_verified"),
                    col("TOTP", "totp_enabled"),
                ],
            );
            Ok(())
        }
        Command::Token(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            let cols = [
                col("ID", "id"),
                col("NAME", "name"),
                col("PREFIX", "prefix"),
                col("CREATED", "created_at"),
                col("EXPIRES", "expires_at"),
                col("LAST USED", "last_used_at"),
            ];
            match cmd {
                TokenCommand::List => output::print(out, &c.get("/api/v1/tokens").await?, &cols),
                TokenCommand::Create {
                    name,
                    expires_in_days,
                } => {
                    let mut body = json!({"name": name});
                    if let Some(d) = expires_in_days {
                        body["expires_in_days"] = json!(d);
                    }
                    let t = c.post("/api/v1/tokens", &body).await?;
                    output::print(
                        out,
                        &t,
                        &[
                            col("ID", "id"),
                            col("NAME", "name"),
                            col("EXPIRES", "expires_at"),
                            col("TOKEN", "token"),
                        ],
                    );
                }
                TokenCommand::Revoke { id } => {
                    c.delete(&format!("/api/v1/tokens/{id}")).await?;
                    eprintln!("Token {id} revoked.");
                }
            }
            Ok(())
        }
        Command::Vm(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            crate::compute_cli::vm(&c, out, cmd).await
        }
        Command::Image(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            crate::compute_cli::image(&c, out, cmd).await
        }
        Command::SshKey(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            crate::compute_cli::ssh_key(&c, out, cmd).await
        }
        Command::Host(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            crate::compute_cli::host(&c, out, cmd).await
        }
        Command::Storage(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            crate::storage_cli::storage(&c, out, cmd).await
        }
        Command::Ticket(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            crate::support_cli::ticket(&c, out, cmd).await
        }
        Command::Support(SupportCommand::Targets) => {
            // Public: no sign-in needed.
            let url = cli
                .url
                .clone()
                .or_else(|| Credentials::load().ok().flatten().map(|c| c.url))
                .unwrap_or_else(|| "http://127.0.0.1:8080".into());
            let c = Client::new(&url, None)?;
            crate::support_cli::support(&c, out, SupportCommand::Targets).await
        }
        Command::Support(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            crate::support_cli::support(&c, out, cmd).await
        }
        Command::Privacy(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            crate::privacy_cli::privacy(&c, out, cmd).await
        }
        Command::Processor(ProcessorCommand::List) => {
            // Public: no sign-in needed.
            let url = cli
                .url
                .clone()
                .or_else(|| Credentials::load().ok().flatten().map(|c| c.url))
                .unwrap_or_else(|| "http://127.0.0.1:8080".into());
            let c = Client::new(&url, None)?;
            crate::privacy_cli::processor(&c, out, ProcessorCommand::List).await
        }
        Command::Processor(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            crate::privacy_cli::processor(&c, out, cmd).await
        }
        Command::Statistics { since } => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            crate::privacy_cli::statistics(&c, out, since).await
        }
        Command::Marketing(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            crate::privacy_cli::marketing(&c, out, cmd).await
        }
        Command::Openapi => {
            print!("{}", maocloud_api::openapi_json());
            Ok(())
        }
        Command::Offer(cmd) => {
            let cols = [
                col("ID", "id"),
                col("CODE", "code"),
                col("NAME", "terms.name"),
                col("EUR/MONTH EXCL. VAT", "terms.monthly_price_cents"),
                col("VAT BP", "terms.vat_rate_bp"),
                col("COMMITMENT", "terms.commitment_months"),
                col("STATUS", "status"),
            ];
            match cmd {
                OfferCommand::List => {
                    let url = cli
                        .url
                        .clone()
                        .or_else(|| Credentials::load().ok().flatten().map(|c| c.url))
                        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
                    let list = Client::new(&url, None)?.get("/api/v1/offers").await?;
                    output::print(out, &list["offers"], &cols);
                }
                OfferCommand::Create { file } => {
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    let body: serde_json::Value = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not JSON", file.display()))?;
                    let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
                    output::print(out, &c.post("/api/v1/offers", &body).await?, &cols);
                }
                OfferCommand::Retire { id } => {
                    let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
                    c.post(&format!("/api/v1/offers/{id}/retire"), &json!({}))
                        .await?;
                    eprintln!("Offer {id} retired from the price list.");
                }
            }
            Ok(())
        }
        Command::Subscription(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            let cols = [
                col("ID", "id"),
                col("OFFER", "terms.name"),
                col("STATUS", "status"),
                col("START", "start_date"),
                col("COMMITMENT END", "commitment_end"),
                col("BILLED UNTIL", "billed_until"),
            ];
            match cmd {
                SubscriptionCommand::List => {
                    output::print(out, &c.get("/api/v1/subscriptions").await?, &cols)
                }
                SubscriptionCommand::Create { offer } => {
                    let v = c
                        .post("/api/v1/subscriptions", &json!({"offer_id": offer}))
                        .await?;
                    output::print(out, &v["subscription"], &cols);
                    if out == Format::Table && !v["invoice"].is_null() {
                        println!();
                        output::print(out, &v["invoice"], &invoice_cols());
                    }
                }
                SubscriptionCommand::ChangeOffer { id, offer } => output::print(
                    out,
                    &c.post(
                        &format!("/api/v1/subscriptions/{id}/change-offer"),
                        &json!({"offer_id": offer}),
                    )
                    .await?,
                    &cols,
                ),
                SubscriptionCommand::Terminate {
                    id,
                    end,
                    date,
                    reason,
                    received_on,
                } => {
                    let body = json!({
                        "end": end.api(),
                        "date": date,
                        "reason": reason,
                        "received_on": received_on,
                    });
                    let v = c
                        .post(&format!("/api/v1/subscriptions/{id}/termination"), &body)
                        .await?;
                    output::print(out, &v, &termination_cols());
                }
                SubscriptionCommand::Termination { id } => output::print(
                    out,
                    &c.get(&format!("/api/v1/subscriptions/{id}/termination"))
                        .await?,
                    &termination_cols(),
                ),
                SubscriptionCommand::WithdrawTermination { id } => {
                    c.delete(&format!("/api/v1/subscriptions/{id}/termination"))
                        .await?;
                    eprintln!(
                        "Termination of subscription {id} withdrawn: the contract continues."
                    );
                }
            }
            Ok(())
        }
        Command::Suspension(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            let cols = [
                col("ID", "id"),
                col("SUBSCRIBER", "subscriber_id"),
                col("CAUSE", "cause"),
                col("REASON", "reason"),
                col("STATUS", "status"),
                col("STARTED", "started_at"),
                col("LIFTED", "lifted_at"),
            ];
            let v = match cmd {
                SuspensionCommand::List { subscriber } => {
                    let path = match subscriber {
                        Some(s) => format!("/api/v1/suspensions?subscriber_id={}", query(&s)),
                        None => "/api/v1/suspensions".into(),
                    };
                    c.get(&path).await?
                }
                SuspensionCommand::Create {
                    subscriber,
                    cause,
                    reason,
                } => {
                    let body =
                        json!({"subscriber_id": subscriber, "cause": cause, "reason": reason});
                    c.post("/api/v1/suspensions", &body).await?
                }
                SuspensionCommand::Lift { id, reason } => {
                    c.post(
                        &format!("/api/v1/suspensions/{id}/lift"),
                        &json!({"reason": reason}),
                    )
                    .await?
                }
                SuspensionCommand::Confirm { id } => {
                    c.post(&format!("/api/v1/suspensions/{id}/confirm"), &json!({}))
                        .await?
                }
            };
            output::print(out, &v, &cols);
            Ok(())
        }
        Command::Proof(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            let cols = [
                col("ID", "id"),
                col("SUBSCRIBER", "subscriber_id"),
                col("KIND", "kind"),
                col("STATUS", "status"),
                col("REQUESTED", "requested_on"),
                col("FILE", "file_name"),
                col("DECISION", "decision_reason"),
            ];
            let v = match cmd {
                ProofCommand::List => c.get("/api/v1/proof-requests").await?,
                ProofCommand::Request {
                    subscriber,
                    kind,
                    note,
                } => {
                    let body = json!({"subscriber_id": subscriber, "kind": kind, "note": note});
                    c.post("/api/v1/proof-requests", &body).await?
                }
                ProofCommand::Upload { id, file } => {
                    let bytes = std::fs::read(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    let name = file
                        .file_name()
                        .and_then(|n| n.to_str())
                        .context("the file has no usable name")?
                        .to_string();
                    let content_type = content_type_of(&name)?;
                    // A header carries visible ASCII only.
                    let name: String = name
                        .chars()
                        .map(|c| {
                            if c.is_ascii_graphic() || c == ' ' {
                                c
                            } else {
                                '_'
                            }
                        })
                        .collect();
                    c.put_bytes(
                        &format!("/api/v1/proof-requests/{id}/document"),
                        content_type,
                        &[("X-File-Name", &name)],
                        bytes,
                    )
                    .await?
                }
                ProofCommand::Decide {
                    id,
                    approve,
                    reject: _,
                    reason,
                } => {
                    c.post(
                        &format!("/api/v1/proof-requests/{id}/decision"),
                        &json!({"approve": approve, "reason": reason}),
                    )
                    .await?
                }
            };
            output::print(out, &v, &cols);
            Ok(())
        }
        Command::Terms(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            let cols = [
                col("ID", "id"),
                col("VERSION", "version"),
                col("TITLE", "title"),
                col("EFFECTIVE", "effective_at"),
                col("CLASS", "class"),
                col("SUMMARY", "summary"),
            ];
            let v = match cmd {
                TermsCommand::List => c.get("/api/v1/terms").await?,
                TermsCommand::Publish {
                    version,
                    title,
                    body_file,
                    summary,
                    effective_on,
                    class,
                    substantial,
                    closure,
                    equivalent_migration,
                } => {
                    let body = std::fs::read_to_string(&body_file)
                        .with_context(|| format!("reading {}", body_file.display()))?;
                    let published = c
                        .post(
                            "/api/v1/terms",
                            &json!({
                                "version": version,
                                "title": title,
                                "body": body,
                                "summary": summary,
                                "effective_on": effective_on,
                                "class": class,
                                "substantial": substantial,
                                "closure": closure,
                                "equivalent_migration": equivalent_migration,
                            }),
                        )
                        .await?;
                    if out == Format::Table {
                        eprintln!(
                            "Published; {} subscriber(s) notified.",
                            published["notified"]
                        );
                        published["version"].clone()
                    } else {
                        published
                    }
                }
            };
            output::print(out, &v, &cols);
            Ok(())
        }
        Command::Incident(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            let cols = [
                col("ID", "id"),
                col("TITLE", "title"),
                col("RESOURCES", "resources"),
                col("STARTED", "started_at"),
                col("ENDED", "ended_at"),
                col("FORCE MAJEURE", "force_majeure"),
            ];
            match cmd {
                IncidentCommand::List => {
                    output::print(out, &c.get("/api/v1/incidents").await?, &cols)
                }
                IncidentCommand::Create {
                    title,
                    resources,
                    started_at,
                    ended_at,
                    force_majeure,
                } => {
                    let body = json!({
                        "title": title,
                        "resources": resources,
                        "started_at": started_at,
                        "ended_at": ended_at,
                        "force_majeure": force_majeure,
                    });
                    output::print(out, &c.post("/api/v1/incidents", &body).await?, &cols)
                }
                IncidentCommand::Cap { id, subscriber } => {
                    let v = c
                        .get(&format!(
                            "/api/v1/incidents/{id}/cap?subscriber_id={}",
                            query(&subscriber)
                        ))
                        .await?;
                    output::print(
                        out,
                        &v,
                        &[
                            col("PROFESSIONAL", "professional"),
                            col("FORCE MAJEURE", "force_majeure"),
                            col("CAP (cents)", "cap_cents"),
                            col("GRANTED (cents)", "granted_cents"),
                            col("REMAINING (cents)", "remaining_cents"),
                        ],
                    );
                    if out == Format::Table
                        && v["periods"].as_array().is_some_and(|p| !p.is_empty())
                    {
                        println!();
                        output::print(
                            out,
                            &v["periods"],
                            &[
                                col("MONTH", "month"),
                                col("INVOICE", "invoice_number"),
                                col("FEE INCL. VAT (cents)", "fee_incl_cents"),
                                col("PAID (cents)", "paid_cents"),
                            ],
                        );
                    }
                }
                IncidentCommand::Compensate {
                    id,
                    subscriber,
                    amount_cents,
                    invoice,
                } => {
                    let body = json!({
                        "subscriber_id": subscriber,
                        "amount_excl_cents": amount_cents,
                        "invoice_id": invoice,
                    });
                    let v = c
                        .post(&format!("/api/v1/incidents/{id}/compensations"), &body)
                        .await?;
                    if out == Format::Json {
                        output::print(out, &v, &[]);
                    } else {
                        output::print(
                            out,
                            &v["compensation"],
                            &[
                                col("ID", "id"),
                                col("SUBSCRIBER", "subscriber_id"),
                                col("CREDIT NOTE", "credit_note_id"),
                                col("AMOUNT INCL. VAT (cents)", "amount_cents"),
                            ],
                        );
                        eprintln!(
                            "Credit note {} issued.",
                            v["credit_note_number"].as_str().unwrap_or("?")
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Invoice(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            match cmd {
                InvoiceCommand::List { subscriber } => {
                    let path = match subscriber {
                        Some(s) => format!("/api/v1/invoices?limit=200&subscriber_id={s}"),
                        None => "/api/v1/invoices?limit=200".into(),
                    };
                    output::print(out, &c.get(&path).await?, &invoice_cols());
                }
                InvoiceCommand::Show { id } => {
                    let inv = c.get(&format!("/api/v1/invoices/{id}")).await?;
                    output::print(out, &inv, &invoice_cols());
                    if out == Format::Table {
                        println!();
                        output::print(
                            out,
                            &inv["lines"],
                            &[
                                col("KIND", "kind"),
                                col("DESCRIPTION", "description"),
                                col("FROM", "period_start"),
                                col("TO", "period_end"),
                                col("QTY (1/1000)", "quantity_milli"),
                                col("UNIT (cents)", "unit_price_cents"),
                                col("AMOUNT (cents)", "amount_cents"),
                                col("VAT BP", "vat_rate_bp"),
                            ],
                        );
                    }
                }
                InvoiceCommand::Run { date } => {
                    let body = match date {
                        Some(d) => json!({"date": d}),
                        None => json!({}),
                    };
                    output::print(
                        out,
                        &c.post("/api/v1/invoice-runs", &body).await?,
                        &[
                            col("DATE", "date"),
                            col("ISSUED", "invoices_issued"),
                            col("BILLED", "subscriptions_billed"),
                            col("SKIPPED", "skipped"),
                        ],
                    );
                }
            }
            Ok(())
        }
        Command::Bench(BenchCommand::InvoiceRun { subscriptions, db }) => {
            crate::bench::invoice_run(subscriptions, db.resolve()?).await
        }
        Command::Bench(BenchCommand::Pdf { count }) => crate::bench::pdf(count),
        Command::Bench(BenchCommand::VmBoot { rounds, guest }) => {
            crate::bench_compute::vm_boot(rounds, guest).await
        }
        Command::Bench(BenchCommand::VmCycles { cycles, hosts }) => {
            crate::bench_compute::vm_cycles(cycles, hosts).await
        }
        Command::Bench(BenchCommand::S3 { dir, scale, warm }) => {
            crate::bench::s3(dir, scale, warm).await
        }
    }
}

fn termination_cols() -> Vec<output::Column> {
    vec![
        col("ID", "id"),
        col("SUBSCRIPTION", "subscription_id"),
        col("STATUS", "status"),
        col("CHANNEL", "channel"),
        col("RECEIVED", "received_on"),
        col("END", "end_date"),
        col("REASON", "reason"),
        col("DUES", "dues"),
        col("DUES EXCL. VAT (cents)", "dues_excl_cents"),
    ]
}

/// A value for a query string, percent-encoded.
fn query(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// The content type of a document to upload, from its extension.
fn content_type_of(name: &str) -> anyhow::Result<&'static str> {
    let ext = std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    Ok(match ext.as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        _ => bail!("{name}: only .pdf, .png, .jpg and .jpeg documents are accepted"),
    })
}

fn invoice_cols() -> Vec<output::Column> {
    vec![
        col("ID", "id"),
        col("NUMBER", "number"),
        col("ISSUED", "issue_date"),
        col("DUE", "due_date"),
        col("EXCL. VAT (cents)", "total_excl_vat_cents"),
        col("VAT (cents)", "total_vat_cents"),
        col("INCL. VAT (cents)", "total_incl_vat_cents"),
    ]
}

fn app_error(e: maocloud_app::Error) -> anyhow::Error {
    match e {
        maocloud_app::Error::Invalid(fields) => {
            anyhow::anyhow!(
                "{}",
                fields
                    .iter()
                    .map(|f| format!("{}: {}", f.field, f.reason))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        }
        other => anyhow::anyhow!("{other}"),
    }
}
