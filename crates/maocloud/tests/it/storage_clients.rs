//! Object storage through real S3 clients, run as subprocesses against the in-process S3
//! endpoint: boto3 (the scenarios of `tests/s3/scenarios.py`: buckets, objects, ranges and
//! conditions, copy, multipart, presigned URLs fetched by curl, 1,500-key listings, batch
//! deletes, trailing and header checksums, bad signatures and keys, another subscriber denied
//! everywhere, CORS, keys URL encoding changes, kept-alive connections after a refusal, small
//! GET latency), the AWS CLI (a 100 MiB multipart upload and download, server-side
//! multipart copy, `aws s3 ls` over 1,500 keys, recursive delete, presign), rclone (copy and
//! sync both ways, checked) and s3cmd (put, get, ls, del). `./scripts/test` installs every tool;
//! a missing one fails the test.

use crate::harness::*;
use maocloud_app::storage;
use maocloud_app::Ctx;
use maocloud_types::{Principal, SubscriberId};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

/// An access key: id and secret.
#[derive(Clone)]
struct Key {
    id: String,
    secret: String,
}

/// A platform with S3, two subscribers with a 2 GB quota, a key each, and a scratch dir.
struct Env {
    s: TestServer,
    endpoint: String,
    /// `127.0.0.1:PORT`
    host: String,
    alice: Key,
    alice_id: SubscriberId,
    bob: Key,
    bob_id: SubscriberId,
    tmp: tempfile::TempDir,
}

async fn subscriber_with_key(s: &TestServer, email: &str) -> (SubscriberId, Key) {
    let sub = s.subscriber(email).await;
    let id: SubscriberId = sub.id.parse().expect("subscriber id");
    storage::quota_set(&s.app, &Ctx::system(), id, Some((2_000_000_000, 100_000)))
        .await
        .expect("quota set");
    let k = storage::key_create(
        &s.app,
        &Ctx {
            principal: Principal::Subscriber(id),
            ip: "t".into(),
        },
        "clients",
    )
    .await
    .expect("key created");
    (
        id,
        Key {
            id: k.key.id,
            secret: k.secret,
        },
    )
}

async fn setup() -> Env {
    let s = TestServer::start().await;
    let endpoint = s.s3_url.clone().expect("the test server serves S3");
    let host = endpoint.trim_start_matches("http://").to_string();
    let (alice_id, alice) = subscriber_with_key(&s, "alice@example.test").await;
    let (bob_id, bob) = subscriber_with_key(&s, "bob@example.test").await;
    Env {
        s,
        endpoint,
        host,
        alice,
        alice_id,
        bob,
        bob_id,
        tmp: tempfile::tempdir().expect("temp dir"),
    }
}

const INSTALL: &str = "run the tests with ./scripts/test, which installs it";

/// The Python with boto3 (and, beside it, the AWS CLI) that `./scripts/test` prepares.
fn python() -> PathBuf {
    let py = std::env::var("MAOCLOUD_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("MAOCLOUD_TEST_PYTHON must name a Python with boto3 and awscli: {INSTALL}")
    });
    let ok = std::process::Command::new(&py)
        .args(["-c", "import boto3, botocore"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{py} (MAOCLOUD_TEST_PYTHON) cannot import boto3: {INSTALL}"
    );
    PathBuf::from(py)
}

/// The AWS CLI installed in MAOCLOUD_TEST_PYTHON's venv.
fn aws() -> PathBuf {
    let aws = python().with_file_name("aws");
    assert!(
        aws.is_file(),
        "the AWS CLI is not installed at {}: {INSTALL}",
        aws.display()
    );
    aws
}

/// A tool on PATH (a Debian package `./scripts/test` installs).
fn tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|f| f.is_file())
        })
        .unwrap_or_else(|| panic!("`{name}` is not installed: {INSTALL}"))
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs a client command (without blocking the server's runtime), failing the test with its
/// output unless it succeeds; returns its stdout.
async fn run(what: &str, cmd: &mut tokio::process::Command) -> String {
    let o = output(what, cmd).await;
    assert!(o.status.success(), "{what} failed: {}", show(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A client command that reads no AWS or rclone settings from the environment it runs in (a
/// CA bundle, profile or endpoint set for the machine) but those the test gives it.
fn client(program: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(program);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("AWS_") || k.starts_with("RCLONE_") || k.starts_with("S3CMD") {
            c.env_remove(&*k);
        }
    }
    c
}

async fn output(what: &str, cmd: &mut tokio::process::Command) -> Output {
    cmd.kill_on_drop(true).stdin(std::process::Stdio::null());
    let t = Instant::now();
    let o = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 300 s"))
        .unwrap_or_else(|e| panic!("{what}: could not run: {e}"));
    eprintln!("{what}: {:.1} s", t.elapsed().as_secs_f64());
    o
}

/// `n` pseudo-random bytes (xorshift: incompressible enough, fast in a debug build).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

fn sha256_file(p: &Path) -> String {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    format!("{:x}", Sha256::digest(&b))
}

/// Every file under `dir`, relative path → sha256.
fn tree(dir: &Path) -> std::collections::BTreeMap<String, String> {
    fn walk(root: &Path, d: &Path, out: &mut std::collections::BTreeMap<String, String>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, sha256_file(&p));
            }
        }
    }
    let mut out = Default::default();
    walk(dir, dir, &mut out);
    out
}

/// How many parts Alice's object was uploaded in (None: a single PUT).
async fn parts_of(e: &Env, bucket: &str, key: &str) -> Option<u32> {
    let ctx = Ctx {
        principal: Principal::Subscriber(e.alice_id),
        ip: "t".into(),
    };
    storage::head_object(&e.s.app, &ctx, bucket, key)
        .await
        .unwrap_or_else(|err| panic!("{bucket}/{key}: {err}"))
        .meta
        .parts
}

fn write(p: &Path, b: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, b).unwrap();
}

/// The boto3 scenarios (tests/s3/scenarios.py), each on its own bucket; the script prints
/// `ok`/`FAIL` per scenario and exits non-zero when one failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_scenarios() {
    let py = python();
    let _ = tool("curl");
    let e = setup().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3/scenarios.py");
    let o = output(
        "boto3 scenarios",
        client(&py)
            .arg(&script)
            // e.g. MAOCLOUD_S3_SCENARIOS="listing foreign" to run only those.
            .args(
                std::env::var("MAOCLOUD_S3_SCENARIOS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .env("S3_ENDPOINT", &e.endpoint)
            .env("S3_A_KEY", &e.alice.id)
            .env("S3_A_SECRET", &e.alice.secret)
            .env("S3_B_KEY", &e.bob.id)
            .env("S3_B_SECRET", &e.bob.secret)
            .env("S3_PREFIX", "py")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("PYTHONUNBUFFERED", "1"),
    )
    .await;
    assert!(
        o.status.success(),
        "boto3 scenarios failed (see the FAIL lines): {}",
        show(&o)
    );
    eprintln!("{}", String::from_utf8_lossy(&o.stdout));
    // Bob's key only ever read or copied Alice's objects (refused): he stores nothing.
    let usage = storage::usage(&e.s.app, &Ctx::system(), Some(e.bob_id))
        .await
        .unwrap();
    assert_eq!((usage.objects, usage.bytes), (0, 0), "Bob stores nothing");
}

/// The AWS CLI: `aws s3 cp` of 100 MiB (multipart with its default 8 MiB threshold and chunk)
/// up and back with a sha256 check, a server-side multipart copy (UploadPartCopy), `aws s3 ls`
/// over 1,500 keys (two pages), a presigned URL fetched by curl, recursive delete (batches).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli() {
    let aws = aws();
    let curl = tool("curl");
    let e = setup().await;
    let dir = e.tmp.path();
    let config = dir.join("aws-config");
    std::fs::write(
        &config,
        "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n",
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let mut c = client(&aws);
        c.args(["--endpoint-url", &e.endpoint])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &e.alice.id)
            .env("AWS_SECRET_ACCESS_KEY", &e.alice.secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_PAGER", "");
        c
    };
    run("aws s3 mb", &mut cli(&["s3", "mb", "s3://awscli"])).await;

    // 100 MiB up (13 parts of 8 MiB) and down.
    let big = dir.join("big.bin");
    std::fs::write(&big, noise(100 * MIB, 7)).unwrap();
    let want = sha256_file(&big);
    let big_s = big.to_str().unwrap();
    run(
        "aws s3 cp (100 MiB up)",
        &mut cli(&["s3", "cp", big_s, "s3://awscli/big/file.bin"]),
    )
    .await;
    let head = run(
        "aws s3api head-object",
        &mut cli(&[
            "s3api",
            "head-object",
            "--bucket",
            "awscli",
            "--key",
            "big/file.bin",
        ]),
    )
    .await;
    let head: serde_json::Value = serde_json::from_str(&head).unwrap();
    assert_eq!(head["ContentLength"], 100 * MIB, "{head}");
    let etag = head["ETag"].as_str().unwrap().to_string();
    assert!(etag.ends_with("-13\""), "a 13-part multipart ETag: {head}");
    let down = dir.join("down.bin");
    run(
        "aws s3 cp (100 MiB down)",
        &mut cli(&[
            "s3",
            "cp",
            "s3://awscli/big/file.bin",
            down.to_str().unwrap(),
        ]),
    )
    .await;
    assert_eq!(
        sha256_file(&down),
        want,
        "the 100 MiB object came back different"
    );
    std::fs::remove_file(&down).unwrap();

    // Server-side copy: the CLI copies objects over 8 MiB part by part (UploadPartCopy) with
    // the same part size, so the copy's multipart ETag is the original's.
    run(
        "aws s3 cp (server-side copy)",
        &mut cli(&[
            "s3",
            "cp",
            "s3://awscli/big/file.bin",
            "s3://awscli/copy.bin",
        ]),
    )
    .await;
    let head: serde_json::Value = serde_json::from_str(
        &run(
            "aws s3api head-object (copy)",
            &mut cli(&[
                "s3api",
                "head-object",
                "--bucket",
                "awscli",
                "--key",
                "copy.bin",
            ]),
        )
        .await,
    )
    .unwrap();
    assert_eq!(head["ContentLength"], 100 * MIB, "{head}");
    assert_eq!(
        head["ETag"].as_str(),
        Some(etag.as_str()),
        "copy's ETag: {head}"
    );
    let part = dir.join("part.bin");
    run(
        "aws s3api get-object --range",
        &mut cli(&[
            "s3api",
            "get-object",
            "--bucket",
            "awscli",
            "--key",
            "copy.bin",
            "--range",
            "bytes=8388600-8388615",
            part.to_str().unwrap(),
        ]),
    )
    .await;
    let src = std::fs::read(&big).unwrap();
    assert_eq!(
        std::fs::read(&part).unwrap(),
        &src[8388600..8388616],
        "range of the copy"
    );
    drop(src);

    // Presigned by the CLI, fetched by curl.
    let url = run(
        "aws s3 presign",
        &mut cli(&[
            "s3",
            "presign",
            "s3://awscli/copy.bin",
            "--expires-in",
            "120",
        ]),
    )
    .await;
    let fetched = dir.join("presigned.bin");
    run(
        "curl presigned",
        tokio::process::Command::new(&curl)
            .args(["-sS", "-f", "-o"])
            .arg(&fetched)
            .arg(url.trim()),
    )
    .await;
    assert_eq!(sha256_file(&fetched), want, "presigned download");
    std::fs::remove_file(&fetched).unwrap();

    // 1,500 keys (stored in-process: the boto3 scenarios time client-side puts), listed by the
    // CLI, which pages by 1,000.
    let ctx = Ctx {
        principal: Principal::Subscriber(e.alice_id),
        ip: "t".into(),
    };
    let keys: Vec<String> = (0..1500)
        .map(|i| {
            if i < 1490 {
                format!("many/dir{}/obj{i:05}", i % 5)
            } else {
                format!("many/top{i:05}")
            }
        })
        .collect();
    for chunk in keys.chunks(50) {
        let puts = chunk.iter().map(|k| {
            storage::put_object(
                &e.s.app,
                &ctx,
                storage::PutObject {
                    bucket: "awscli".into(),
                    key: k.clone(),
                    content_type: None,
                    meta: Default::default(),
                    cond: Default::default(),
                },
                storage::Body::from_bytes(bytes::Bytes::from(k.clone().into_bytes())),
            )
        });
        for r in futures::future::join_all(puts).await {
            r.expect("object stored");
        }
    }
    let ls = run(
        "aws s3 ls --recursive",
        &mut cli(&["s3", "ls", "--recursive", "s3://awscli/many/"]),
    )
    .await;
    let listed: Vec<&str> = ls
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        listed, sorted,
        "aws s3 ls --recursive lists every key once, in order"
    );
    let ls = run(
        "aws s3 ls (delimiter)",
        &mut cli(&["s3", "ls", "s3://awscli/many/"]),
    )
    .await;
    let pre: Vec<&str> = ls
        .lines()
        .filter(|l| l.trim_start().starts_with("PRE "))
        .collect();
    assert_eq!(pre.len(), 5, "five common prefixes: {ls}");
    for d in 0..5 {
        assert!(ls.contains(&format!("PRE dir{d}/")), "dir{d}/ listed: {ls}");
    }
    assert_eq!(ls.lines().count(), 15, "5 prefixes + 10 keys: {ls}");
    let page: serde_json::Value = serde_json::from_str(
        &run(
            "aws s3api list-objects-v2 (one page)",
            &mut cli(&[
                "s3api",
                "list-objects-v2",
                "--bucket",
                "awscli",
                "--prefix",
                "many/",
                "--no-paginate",
            ]),
        )
        .await,
    )
    .unwrap();
    assert_eq!(
        page["Contents"].as_array().map(Vec::len),
        Some(1000),
        "a page holds 1000"
    );
    assert_eq!(page["IsTruncated"], true);
    assert!(
        page["NextContinuationToken"].is_string(),
        "{}",
        page["NextContinuationToken"]
    );

    // Recursive delete (DeleteObjects in batches of 1000), then the rest, then the bucket.
    run(
        "aws s3 rm --recursive",
        &mut cli(&["s3", "rm", "--recursive", "--quiet", "s3://awscli/many/"]),
    )
    .await;
    let ls = run(
        "aws s3 ls (after rm)",
        &mut cli(&["s3", "ls", "--recursive", "s3://awscli/"]),
    )
    .await;
    let left: Vec<&str> = ls
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(
        left,
        ["big/file.bin", "copy.bin"],
        "only the big objects are left"
    );
    run(
        "aws s3 rb --force",
        &mut cli(&["s3", "rb", "--force", "s3://awscli"]),
    )
    .await;
    let ls = run("aws s3 ls (buckets)", &mut cli(&["s3", "ls"])).await;
    assert!(!ls.contains("awscli"), "the bucket is gone: {ls}");

    // Keys that URL encoding changes: the CLI lists with encoding-type=url and decodes.
    // KNOWN SERVER BUG (fails until fixed): the endpoint echoes EncodingType=url without
    // encoding the keys, so `100% sure+plus.txt` lists as `100% sure plus.txt`.
    run(
        "aws s3 mb (odd)",
        &mut cli(&["s3", "mb", "s3://awscli-odd"]),
    )
    .await;
    let small = dir.join("small.txt");
    std::fs::write(&small, b"odd\n").unwrap();
    for k in ["100% sure+plus.txt", "a%2Fb.txt"] {
        run(
            "aws s3 cp (odd key)",
            &mut cli(&[
                "s3",
                "cp",
                small.to_str().unwrap(),
                &format!("s3://awscli-odd/odd/{k}"),
            ]),
        )
        .await;
    }
    let ls = run(
        "aws s3 ls (odd keys)",
        &mut cli(&["s3", "ls", "s3://awscli-odd/odd/"]),
    )
    .await;
    assert!(
        ls.contains(" 100% sure+plus.txt") && ls.contains(" a%2Fb.txt"),
        "aws s3 ls shows the keys as stored (server bug: EncodingType=url echoed, keys not URL-encoded): {ls}"
    );
}

/// rclone (copy and sync, both ways, `rclone check`; multipart above a 5 MiB cutoff) and s3cmd
/// (mb, put with multipart, ls, get, info, del, rb).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_and_s3cmd() {
    let rclone = tool("rclone");
    let s3cmd = tool("s3cmd");
    let e = setup().await;
    let dir = e.tmp.path();

    // --- rclone, with a remote `mc` configured by the environment.
    let rc = |args: &[&str]| {
        let mut c = client(&rclone);
        c.args(args)
            .args([
                "--s3-upload-cutoff",
                "5M",
                "--s3-chunk-size",
                "5M",
                "--retries",
                "1",
                "--low-level-retries",
                "1",
            ])
            .env("RCLONE_CONFIG", dir.join("rclone.conf"))
            .env("RCLONE_CONFIG_MC_TYPE", "s3")
            .env("RCLONE_CONFIG_MC_PROVIDER", "Other")
            .env("RCLONE_CONFIG_MC_ENDPOINT", &e.endpoint)
            .env("RCLONE_CONFIG_MC_REGION", "us-east-1")
            .env("RCLONE_CONFIG_MC_FORCE_PATH_STYLE", "true")
            .env("RCLONE_CONFIG_MC_ACCESS_KEY_ID", &e.alice.id)
            .env("RCLONE_CONFIG_MC_SECRET_ACCESS_KEY", &e.alice.secret);
        c
    };
    let local = dir.join("local");
    for i in 0..40 {
        write(
            &local.join(format!("d{}/f{i:02}.txt", i % 4)),
            format!("file {i}\n").as_bytes(),
        );
    }
    write(&local.join("big/twelve.bin"), &noise(12 * MIB + 1, 3));
    write(&local.join("empty"), b"");
    write(&local.join("space name/é.txt"), b"unicode\n");
    write(&local.join("odd/100% sure+plus.txt"), b"percent and plus\n");
    let l = local.to_str().unwrap();
    run("rclone mkdir", &mut rc(&["mkdir", "mc:rclone"])).await;
    run("rclone copy (up)", &mut rc(&["copy", l, "mc:rclone/data"])).await;
    run(
        "rclone check (after copy)",
        &mut rc(&["check", l, "mc:rclone/data"]),
    )
    .await;
    let down = dir.join("down");
    let d = down.to_str().unwrap();
    run(
        "rclone copy (down)",
        &mut rc(&["copy", "mc:rclone/data", d]),
    )
    .await;
    assert_eq!(tree(&down), tree(&local), "rclone copy down = what went up");
    let lsf = run(
        "rclone lsf -R",
        &mut rc(&["lsf", "-R", "--files-only", "mc:rclone/data"]),
    )
    .await;
    assert_eq!(lsf.lines().count(), 44, "{lsf}");

    // Change the local tree: one file removed, one changed, one added, then sync both ways.
    std::fs::remove_file(local.join("d0/f00.txt")).unwrap();
    write(&local.join("d1/f01.txt"), b"changed\n");
    write(&local.join("new/added.bin"), &noise(6 * MIB, 9));
    run("rclone sync (up)", &mut rc(&["sync", l, "mc:rclone/data"])).await;
    run(
        "rclone check (after sync)",
        &mut rc(&["check", l, "mc:rclone/data"]),
    )
    .await;
    run(
        "rclone sync (down)",
        &mut rc(&["sync", "mc:rclone/data", d]),
    )
    .await;
    assert_eq!(
        tree(&down),
        tree(&local),
        "rclone sync down = the local tree"
    );
    run("rclone purge", &mut rc(&["purge", "mc:rclone"])).await;
    let o = output("rclone lsd", &mut rc(&["lsd", "mc:"])).await;
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("rclone"),
        "the bucket is gone: {}",
        show(&o)
    );

    // --- s3cmd, with its own configuration file (path-style: host_bucket without %(bucket)s).
    let cfg = dir.join("s3cfg");
    std::fs::write(
        &cfg,
        format!(
            "[default]\naccess_key = {}\nsecret_key = {}\nhost_base = {h}\nhost_bucket = {h}\n\
             use_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n\
             check_ssl_certificate = False\n",
            e.alice.id,
            e.alice.secret,
            h = e.host
        ),
    )
    .unwrap();
    let sc = |args: &[&str]| {
        let mut c = client(&s3cmd);
        c.arg("-c")
            .arg(&cfg)
            .args(["--no-ssl", "--host", &e.host, "--host-bucket", &e.host]);
        c.args(args).env("HOME", dir);
        c
    };
    run("s3cmd mb", &mut sc(&["mb", "s3://s3cmd-bucket"])).await;
    let small = dir.join("small.txt");
    std::fs::write(&small, b"hello from s3cmd\n").unwrap();
    let big = local.join("big/twelve.bin");
    run(
        "s3cmd put",
        &mut sc(&[
            "put",
            small.to_str().unwrap(),
            "s3://s3cmd-bucket/dir/small.txt",
        ]),
    )
    .await;
    run(
        "s3cmd put (multipart)",
        &mut sc(&[
            "put",
            "--multipart-chunk-size-mb=5",
            big.to_str().unwrap(),
            "s3://s3cmd-bucket/dir/big.bin",
        ]),
    )
    .await;
    assert_eq!(
        parts_of(&e, "s3cmd-bucket", "dir/big.bin").await,
        Some(3),
        "s3cmd uploaded 12 MiB in 5 MiB parts"
    );
    let ls = run("s3cmd ls", &mut sc(&["ls", "s3://s3cmd-bucket/dir/"])).await;
    assert!(
        ls.contains("s3://s3cmd-bucket/dir/small.txt")
            && ls.contains("s3://s3cmd-bucket/dir/big.bin"),
        "{ls}"
    );
    let ls = run("s3cmd ls (top)", &mut sc(&["ls", "s3://s3cmd-bucket"])).await;
    assert!(
        ls.contains("DIR") && ls.contains("s3://s3cmd-bucket/dir/"),
        "a common prefix: {ls}"
    );
    let info = run(
        "s3cmd info",
        &mut sc(&["info", "s3://s3cmd-bucket/dir/big.bin"]),
    )
    .await;
    assert!(info.contains(&format!("{}", 12 * MIB + 1)), "{info}");
    let got = dir.join("got");
    std::fs::create_dir_all(&got).unwrap();
    run(
        "s3cmd get",
        &mut sc(&[
            "get",
            "s3://s3cmd-bucket/dir/small.txt",
            got.join("small.txt").to_str().unwrap(),
        ]),
    )
    .await;
    run(
        "s3cmd get (multipart object)",
        &mut sc(&[
            "get",
            "s3://s3cmd-bucket/dir/big.bin",
            got.join("big.bin").to_str().unwrap(),
        ]),
    )
    .await;
    assert_eq!(
        std::fs::read(got.join("small.txt")).unwrap(),
        b"hello from s3cmd\n"
    );
    assert_eq!(
        sha256_file(&got.join("big.bin")),
        sha256_file(&big),
        "s3cmd get of the multipart object"
    );
    run(
        "s3cmd del",
        &mut sc(&["del", "s3://s3cmd-bucket/dir/small.txt"]),
    )
    .await;
    let ls = run(
        "s3cmd ls (after del)",
        &mut sc(&["ls", "s3://s3cmd-bucket/dir/"]),
    )
    .await;
    assert!(!ls.contains("small.txt") && ls.contains("big.bin"), "{ls}");
    run(
        "s3cmd del --recursive",
        &mut sc(&["del", "--recursive", "--force", "s3://s3cmd-bucket/"]),
    )
    .await;
    run("s3cmd rb", &mut sc(&["rb", "s3://s3cmd-bucket"])).await;
    let ls = run("s3cmd ls (buckets)", &mut sc(&["ls"])).await;
    assert!(!ls.contains("s3cmd-bucket"), "{ls}");
}
