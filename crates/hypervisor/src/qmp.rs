//! A small QMP client (QEMU Machine Protocol over a Unix socket, newline-delimited JSON): the
//! greeting, `qmp_capabilities`, commands matched to their answers by `id`, and asynchronous
//! events recorded on the side. One task owns the socket, so the connection also watches the
//! VM: the socket's end means QEMU is gone, and the last `SHUTDOWN` event says why.
//!
//! QEMU serves one QMP client at a time per socket, so the agent keeps exactly one [`Qmp`] per
//! VM; dropping it closes the socket, which lets the next agent (after a restart) connect.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

/// How long a command may take before the caller gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("QMP connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("QMP: {0}")]
    Protocol(String),
    /// QEMU answered with an error.
    #[error("QEMU refused {command}: {desc}")]
    Refused { command: String, desc: String },
    #[error("QMP connection closed (QEMU exited)")]
    Closed,
    #[error("QMP command {0} timed out")]
    Timeout(String),
}

/// What is known of a connection, shared between its owner and the task reading the socket.
#[derive(Debug, Default)]
struct Shared {
    closed: AtomicBool,
    /// The data of the last `SHUTDOWN` event (`{"guest": bool, "reason": "..."}`).
    shutdown: Mutex<Option<Value>>,
}

/// Called once when the socket closes, with the last `SHUTDOWN` event's data if any.
pub type OnClose = Box<dyn FnOnce(Option<Value>) + Send>;

struct Request {
    command: String,
    arguments: Option<Value>,
    reply: oneshot::Sender<Result<Value, QmpError>>,
}

/// One QMP connection. Cheap to clone; the socket closes when the last clone is dropped.
#[derive(Clone)]
pub struct Qmp {
    requests: mpsc::Sender<Request>,
    shared: Arc<Shared>,
}

impl Qmp {
    /// Connects to `path`, reads the greeting and negotiates capabilities, all within `timeout`.
    pub async fn connect(
        path: &Path,
        timeout: Duration,
        on_close: OnClose,
    ) -> Result<Qmp, QmpError> {
        let handshake = async {
            let stream = UnixStream::connect(path).await?;
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let greeting = lines.next_line().await?.ok_or(QmpError::Closed)?;
            let greeting: Value = serde_json::from_str(&greeting)
                .map_err(|e| QmpError::Protocol(format!("bad greeting: {e}")))?;
            if greeting.get("QMP").is_none() {
                return Err(QmpError::Protocol(format!(
                    "unexpected greeting {greeting}"
                )));
            }
            write
                .write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
                .await?;
            loop {
                let line = lines.next_line().await?.ok_or(QmpError::Closed)?;
                let msg: Value = serde_json::from_str(&line)
                    .map_err(|e| QmpError::Protocol(format!("bad message: {e}")))?;
                if msg.get("return").is_some() {
                    break;
                }
                if let Some(err) = msg.get("error") {
                    return Err(QmpError::Refused {
                        command: "qmp_capabilities".into(),
                        desc: err.to_string(),
                    });
                }
            }
            Ok::<_, QmpError>((lines, write))
        };
        let (lines, write) = tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| QmpError::Timeout("greeting".into()))??;
        let shared = Arc::new(Shared::default());
        let (requests, rx) = mpsc::channel(16);
        tokio::spawn(run(lines, write, rx, shared.clone(), on_close));
        Ok(Qmp { requests, shared })
    }

    /// Runs `command` and returns its `return` value.
    pub async fn execute(
        &self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, QmpError> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            command: command.to_owned(),
            arguments,
            reply,
        };
        self.requests
            .send(request)
            .await
            .map_err(|_| QmpError::Closed)?;
        match tokio::time::timeout(COMMAND_TIMEOUT, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(QmpError::Closed),
            Err(_) => Err(QmpError::Timeout(command.to_owned())),
        }
    }

    /// Whether the socket has closed (QEMU exited or the connection broke).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst) || self.requests.is_closed()
    }
}

/// A command sent, waiting for its answer: its name and its caller.
type Pending = (String, oneshot::Sender<Result<Value, QmpError>>);

/// The task owning the socket: writes commands, routes answers to their callers by `id`, records
/// events. Ends when the socket closes or every [`Qmp`] clone is gone.
async fn run(
    mut lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    mut write: tokio::net::unix::OwnedWriteHalf,
    mut requests: mpsc::Receiver<Request>,
    shared: Arc<Shared>,
    on_close: OnClose,
) {
    let mut next_id: u64 = 0;
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut eof = false;
    loop {
        tokio::select! {
            request = requests.recv() => {
                let Some(request) = request else { break };
                next_id += 1;
                let mut msg = json!({ "execute": request.command, "id": next_id });
                if let Some(arguments) = request.arguments {
                    msg["arguments"] = arguments;
                }
                let mut line = msg.to_string();
                line.push('\n');
                if let Err(e) = write.write_all(line.as_bytes()).await {
                    let _ = request.reply.send(Err(QmpError::Io(e)));
                    eof = true;
                    break;
                }
                pending.insert(next_id, (request.command, request.reply));
            }
            line = lines.next_line() => match line {
                Ok(Some(line)) => answer(&line, &mut pending, &shared),
                Ok(None) | Err(_) => {
                    eof = true;
                    break;
                }
            },
        }
    }
    shared.closed.store(true, Ordering::SeqCst);
    for (_, (_, reply)) in pending.drain() {
        let _ = reply.send(Err(QmpError::Closed));
    }
    if eof {
        on_close(
            shared
                .shutdown
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        );
    }
}

/// Handles one message from QEMU: an event is recorded, an answer goes to its caller.
fn answer(line: &str, pending: &mut HashMap<u64, Pending>, shared: &Shared) {
    let Ok(msg) = serde_json::from_str::<Value>(line) else {
        tracing::warn!(%line, "unparsable QMP message");
        return;
    };
    if let Some(event) = msg.get("event").and_then(Value::as_str) {
        let data = msg.get("data").cloned().unwrap_or(Value::Null);
        tracing::debug!(event, data = %data.to_string(), "QMP event");
        if event == "SHUTDOWN" {
            *shared.shutdown.lock().unwrap_or_else(|p| p.into_inner()) = Some(data);
        }
        return;
    }
    let id = msg.get("id").and_then(Value::as_u64);
    let Some((command, reply)) = id.and_then(|id| pending.remove(&id)) else {
        return;
    };
    let result = match (msg.get("return"), msg.get("error")) {
        (Some(value), _) => Ok(value.clone()),
        (None, Some(err)) => {
            let desc = err.get("desc").and_then(Value::as_str);
            let desc = desc.unwrap_or("unknown error").to_owned();
            Err(QmpError::Refused { command, desc })
        }
        (None, None) => Err(QmpError::Protocol(format!("unexpected message {msg}"))),
    };
    let _ = reply.send(result);
}
