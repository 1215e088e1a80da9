//! R-1b under failure: the real `maocloud serve` process is killed (SIGKILL) while sixteen
//! uploads of multi-block objects are in flight. Afterwards every object is whole (exactly the
//! bytes that were sent) or absent, never torn; every upload the server acknowledged is there;
//! the bytes of interrupted writes are orphans the sweep removes.

use crate::harness::*;
use bytes::Bytes;
use maocloud::bench_s3::{sigv4, SigV4};
use maocloud_app::storage;
use maocloud_app::Ctx;
use maocloud_types::{Principal, SubscriberId};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIZE: usize = (2 << 20) + 77_777;

/// What object `key` holds: bytes derived from its name, so a torn or mixed object shows.
fn content(key: &str) -> Bytes {
    let seed = key
        .bytes()
        .fold(17u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    (0..SIZE)
        .map(|i| ((i as u32).wrapping_mul(2654435761) ^ seed).to_le_bytes()[2])
        .collect::<Vec<u8>>()
        .into()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn put(
    http: &reqwest::Client,
    host: &str,
    key: &str,
    secret: &str,
    path: &str,
    body: Bytes,
) -> reqwest::Result<reqwest::StatusCode> {
    let now = jiff::Timestamp::now();
    let amz_date = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let auth = sigv4(&SigV4 {
        method: "PUT",
        host,
        path,
        query: "",
        key,
        secret,
        amz_date: &amz_date,
    });
    Ok(http
        .put(format!("http://{host}{path}"))
        .header("x-amz-date", amz_date)
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .header("authorization", auth)
        .body(body)
        .send()
        .await?
        .status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_killed_half_way_leave_whole_objects_or_none() {
    let s = TestServer::start().await;
    let alice = s.subscriber("alice@example.test").await;
    let who: SubscriberId = alice.id.parse().unwrap();
    let a = Ctx {
        principal: Principal::Subscriber(who),
        ip: "test".into(),
    };
    storage::quota_set(&s.app, &Ctx::system(), who, Some((10_000_000_000, 100_000)))
        .await
        .unwrap();
    let k = storage::key_create(&s.app, &a, "crash").await.unwrap();
    storage::bucket_create(&s.app, &a, "crash").await.unwrap();

    // The real server, on the same data directory and database (the in-process one stays, for
    // checking afterwards: it serves on other ports and holds no state of its own).
    let s3_port = free_port();
    let host = format!("127.0.0.1:{s3_port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_maocloud"))
        .args(["serve", "--compute", "off", "--jobs-interval-ms", "0"])
        .arg("--data-dir")
        .arg(s.data.path())
        .args(["--database-url", &s.database_url])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--s3-listen", &host])
        .env("MAOCLOUD_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("maocloud serve starts");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("http://{host}/")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the S3 endpoint did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Sixteen writers, each putting objects one after another until the server dies.
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..16 {
        let (http, host, acked, done) = (http.clone(), host.clone(), acked.clone(), done.clone());
        let (id, secret) = (k.key.id.clone(), k.secret.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let key = format!("w{w:02}/obj-{i:04}");
                let path = format!("/crash/{key}");
                match put(&http, &host, &id, &secret, &path, content(&key)).await {
                    Ok(st) if st.is_success() => {
                        acked.lock().unwrap().push(key);
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(st) => panic!("PUT {path} answered {st} before the kill"),
                    Err(_) => return,
                }
            }
        }));
    }
    // Kill once a few dozen objects are in, with uploads surely in flight.
    let deadline = Instant::now() + Duration::from_secs(120);
    while done.load(Ordering::SeqCst) < 40 {
        assert!(
            Instant::now() < deadline,
            "uploads too slow: {} done",
            done.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    // Every object in the index is whole; every acknowledged one is there.
    let listing = storage::list_objects(&s.app, &a, "crash", "", None, None, 1000)
        .await
        .unwrap();
    let present: Vec<String> = listing.objects.iter().map(|o| o.key.clone()).collect();
    for key in &acked {
        assert!(present.contains(key), "{key} was acknowledged but is gone");
    }
    for o in &listing.objects {
        assert_eq!(o.size as usize, SIZE, "{}", o.key);
        let bytes = crate::storage::read_all(&s.app, o).await;
        assert!(bytes == content(&o.key), "{} is torn", o.key);
    }
    let u = storage::usage(&s.app, &a, None).await.unwrap();
    assert_eq!(
        u.objects as usize,
        present.len(),
        "the bucket's totals match its objects"
    );
    assert_eq!(u.bytes as usize, present.len() * SIZE);

    // Bytes of the interrupted writes are orphans: swept, and the objects stay whole.
    let swept = storage::sweep_orphans(&s.app, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        storage::sweep_orphans(&s.app, Duration::ZERO)
            .await
            .unwrap(),
        0
    );
    for o in &listing.objects {
        let bytes = crate::storage::read_all(&s.app, o).await;
        assert!(
            bytes == content(&o.key),
            "{} is damaged after the sweep",
            o.key
        );
    }
    // Nothing else is left on the disks: one shard per object on each of the 4 disks, no
    // temporary file.
    let disks = s.data.path().join("storage");
    let (mut shards, mut temps) = (0, 0);
    for d in 1..=4 {
        shards += files(&disks.join(format!("disk{d}/shards")));
        temps += files(&disks.join(format!("disk{d}/tmp")));
    }
    assert_eq!(shards, present.len() * 4);
    assert_eq!(temps, 0);
    eprintln!(
        "killed with {} acknowledged, {} in the index, {swept} orphaned extents swept",
        acked.len(),
        present.len()
    );
}

fn files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        files(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
