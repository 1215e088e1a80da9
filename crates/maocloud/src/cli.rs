//! The command line: `maocloud serve` runs the platform; `maocloud operator …` administers it
//! locally; `maocloud login`, `whoami`, `token …` (and later `maocloud <resource> <verb>`) are
//! the client of a platform's API. Errors print a message and exit non-zero.

use crate::client::{Client, Credentials};
use crate::config::ServeArgs;
use crate::output::{self, col, Format};
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use maocloud_types::OperatorRole;
use serde_json::json;
use std::io::Read;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "maocloud", version, about = "Maocloud: the cloud platform for hosting providers, in one binary.")]
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
    /// Print the OpenAPI document of this version of the API.
    Openapi,
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
    let filter = std::env::var("MAOCLOUD_LOG").unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into());
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).with_writer(std::io::stderr).init();
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
        std::io::stdin().read_to_string(&mut s).context("reading the password from standard input")?;
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
        Command::Operator(OperatorCommand::Create { email, role, name, password_stdin, db }) => {
            let password = read_password(password_stdin, "Password: ")?;
            let mut config = db.resolve()?;
            config.demo = false;
            let platform = crate::serve::Platform::build(config, std::sync::Arc::new(maocloud_types::SystemClock)).await?;
            let ctx = maocloud_app::Ctx { principal: maocloud_types::Principal::System, ip: "cli".into() };
            let name = name.unwrap_or_else(|| email.clone());
            let op = maocloud_app::accounts::operator_create(&platform.app, &ctx, &email, role, &password, &name, true)
                .await
                .map_err(app_error)?;
            let v = json!({"id": op.id.to_string(), "email": email, "role": role.as_str(), "totp_secret": op.totp_secret, "totp_uri": op.totp_uri});
            output::print(out, &v, &[col("ID", "id"), col("EMAIL", "email"), col("ROLE", "role"), col("TOTP SECRET", "totp_secret"), col("TOTP URI", "totp_uri")]);
            if out == Format::Table {
                eprintln!("Add the TOTP secret to an authenticator app now: it is shown only once and needed to sign in.");
            }
            Ok(())
        }
        Command::Login { email, password_stdin, totp } => {
            let url = cli.url.clone().or_else(|| Credentials::load().ok().flatten().map(|c| c.url)).unwrap_or_else(|| "http://127.0.0.1:8080".into());
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
            let token = resp["token"].as_str().context("the server returned no token")?.to_string();
            let path = Credentials { url: client.url().to_string(), token, email: Some(email.clone()) }.save()?;
            eprintln!("Signed in to {} as {email}; token stored in {}", client.url(), path.display());
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
            output::print(out, &me, &[col("ID", "id"), col("KIND", "kind"), col("EMAIL", "email"), col("NAME", "display_name"), col("ROLE", "role"), col("VERIFIED", "email_verified"), col("TOTP", "totp_enabled")]);
            Ok(())
        }
        Command::Token(cmd) => {
            let c = Client::from_env(cli.url.as_deref(), cli.token.as_deref())?;
            let cols = [col("ID", "id"), col("NAME", "name"), col("PREFIX", "prefix"), col("CREATED", "created_at"), col("EXPIRES", "expires_at"), col("LAST USED", "last_used_at")];
            match cmd {
                TokenCommand::List => output::print(out, &c.get("/api/v1/tokens").await?, &cols),
                TokenCommand::Create { name, expires_in_days } => {
                    let mut body = json!({"name": name});
                    if let Some(d) = expires_in_days {
                        body["expires_in_days"] = json!(d);
                    }
                    let t = c.post("/api/v1/tokens", &body).await?;
                    output::print(out, &t, &[col("ID", "id"), col("NAME", "name"), col("EXPIRES", "expires_at"), col("TOKEN", "token")]);
                }
                TokenCommand::Revoke { id } => {
                    c.delete(&format!("/api/v1/tokens/{id}")).await?;
                    eprintln!("Token {id} revoked.");
                }
            }
            Ok(())
        }
        Command::Openapi => {
            print!("{}", maocloud_api::openapi_json());
            Ok(())
        }
    }
}

fn app_error(e: maocloud_app::Error) -> anyhow::Error {
    match e {
        maocloud_app::Error::Invalid(fields) => {
            anyhow::anyhow!("{}", fields.iter().map(|f| format!("{}: {}", f.field, f.reason)).collect::<Vec<_>>().join("\n"))
        }
        other => anyhow::anyhow!("{other}"),
    }
}
