//! Object storage through the API and the use cases (R-1b, R-7.1c, R-6.1b): keys and buckets
//! over REST with ownership (another subscriber gets 404), quotas refusing writes and changing
//! nothing, suspension refusing every request and losing nothing, usage metered into billing's
//! records, and the engine's redundancy seen end to end: a disk directory removed and shards
//! corrupted, the bytes still right, the scrub repairing. Real S3 clients are in
//! `storage_clients`.

use crate::billing::{offer, subscribe};
use crate::both_dbs;
use crate::harness::*;
use bytes::Bytes;
use maocloud_app::storage::{self, Body, Code, ObjectMeta, PutObject, WriteIf};
use maocloud_app::{Ctx, Error};
use maocloud_types::{OperatorRole, Principal, SubscriberId};
use reqwest::StatusCode;
use serde_json::json;

fn as_sub(id: &str) -> Ctx {
    Ctx {
        principal: Principal::Subscriber(id.parse::<SubscriberId>().unwrap()),
        ip: "test".into(),
    }
}

fn put(bucket: &str, key: &str) -> PutObject {
    PutObject {
        bucket: bucket.into(),
        key: key.into(),
        content_type: Some("application/octet-stream".into()),
        meta: ObjectMeta::default(),
        cond: WriteIf::default(),
    }
}

fn pattern(n: usize, seed: u8) -> Bytes {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

async fn read(s: &TestServer, ctx: &Ctx, bucket: &str, key: &str) -> Bytes {
    let o = storage::head_object(&s.app, ctx, bucket, key)
        .await
        .expect("head");
    read_all(&s.app, &o).await
}

/// An object's whole body, read as the S3 endpoint streams it.
pub async fn read_all(app: &maocloud_app::App, o: &storage::ObjectInfo) -> Bytes {
    let mut s = storage::read_object(app, o, 0..o.size).expect("readable");
    let mut out = Vec::with_capacity(o.size as usize);
    while let Some(c) = futures::StreamExt::next(&mut s).await {
        out.extend_from_slice(&c.expect("a chunk"));
    }
    out.into()
}

fn code_of<T: std::fmt::Debug>(r: Result<T, Error>) -> Code {
    match r {
        Err(Error::Storage { code, .. }) => code,
        other => panic!("expected a storage refusal, got {other:?}"),
    }
}

/// A subscriber on an offer including 100 GB of storage.
async fn with_storage(s: &TestServer, email: &str) -> Subscriber {
    let billing = s
        .operator(&format!("billing-{email}"), OperatorRole::Billing)
        .await;
    let o = offer(
        s,
        &billing.token,
        &format!("st-{}", email.len()),
        "Storage",
        999,
        0,
    )
    .await;
    let sub = s.subscriber(email).await;
    subscribe(s, &sub.token, &o).await;
    sub
}

both_dbs!(
    keys_and_buckets_over_rest_are_owned,
    |s: TestServer| async move {
        let alice = with_storage(&s, "alice@example.test").await;
        let bob = s.subscriber("bob@example.test").await;

        // Keys: the secret once, then only the id.
        let (st, k) = s
            .post(
                "/api/v1/storage/keys",
                Some(&alice.token),
                json!({"name": "laptop"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{k}");
        let id = k["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("MCK") && id.len() == 20, "{id}");
        assert_eq!(k["secret_access_key"].as_str().unwrap().len(), 40);
        let (_, list) = s.get("/api/v1/storage/keys", Some(&alice.token)).await;
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert!(list[0].get("secret_access_key").is_none(), "{list}");
        let (_, bobs) = s.get("/api/v1/storage/keys", Some(&bob.token)).await;
        assert_eq!(bobs, json!([]));
        // Bob can't revoke Alice's key: 404, and it stays active.
        let (st, _) = s
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/storage/keys/{id}"),
                Some(&bob.token),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (secret, _) = storage::key_resolve(&s.app, &id)
            .await
            .expect("still active");
        assert_eq!(secret, k["secret_access_key"].as_str().unwrap());

        // Buckets: S3's naming rules, one platform-wide namespace, owned.
        let (st, p) = s
            .post(
                "/api/v1/storage/buckets",
                Some(&alice.token),
                json!({"name": "Bad_Name"}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert_eq!(p["field"], "name");
        let (st, b) = s
            .post(
                "/api/v1/storage/buckets",
                Some(&alice.token),
                json!({"name": "photos"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let (st, p) = s
            .post(
                "/api/v1/storage/buckets",
                Some(&bob.token),
                json!({"name": "photos"}),
            )
            .await;
        assert_eq!(st, StatusCode::CONFLICT, "{p}");
        let (st, _) = s
            .get("/api/v1/storage/buckets/photos", Some(&bob.token))
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = s
            .call(
                reqwest::Method::DELETE,
                "/api/v1/storage/buckets/photos",
                Some(&bob.token),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        // An object makes the bucket non-empty; totals are live.
        let a = as_sub(&alice.id);
        storage::put_object(
            &s.app,
            &a,
            put("photos", "cat.jpg"),
            Body::from_bytes(pattern(3000, 1)),
        )
        .await
        .unwrap();
        let (_, b) = s
            .get("/api/v1/storage/buckets/photos", Some(&alice.token))
            .await;
        assert_eq!(
            (b["bytes"].as_i64(), b["objects"].as_i64()),
            (Some(3000), Some(1)),
            "{b}"
        );
        let (st, p) = s
            .call(
                reqwest::Method::DELETE,
                "/api/v1/storage/buckets/photos",
                Some(&alice.token),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::CONFLICT, "{p}");
        let (_, u) = s.get("/api/v1/storage/usage", Some(&alice.token)).await;
        assert_eq!(u["bytes"], 3000);
        assert_eq!(
            u["quota"]["bytes"], 100_000_000_000i64,
            "the offer's 100 GB: {u}"
        );

        // Bob's requests on Alice's bucket are denied; nothing changes.
        let b_ctx = as_sub(&bob.id);
        assert_eq!(
            code_of(storage::head_object(&s.app, &b_ctx, "photos", "cat.jpg").await),
            Code::AccessDenied
        );
        assert_eq!(
            code_of(storage::delete_object(&s.app, &b_ctx, "photos", "cat.jpg").await),
            Code::AccessDenied
        );
        assert_eq!(read(&s, &a, "photos", "cat.jpg").await, pattern(3000, 1));

        // Revoked: the key no longer resolves.
        let (st, k2) = s
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/storage/keys/{id}"),
                Some(&alice.token),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{k2}");
        assert_eq!(k2["status"], "revoked");
        assert!(storage::key_resolve(&s.app, &id).await.is_err());
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_refuses_writes_beyond_it_and_changes_nothing() {
    let s = TestServer::start().await;
    let alice = s.subscriber("alice@example.test").await;
    let a = as_sub(&alice.id);
    // No offer yet: no storage included, every write refused.
    storage::bucket_create(&s.app, &a, "docs").await.unwrap();
    assert_eq!(
        code_of(
            storage::put_object(
                &s.app,
                &a,
                put("docs", "x"),
                Body::from_bytes(pattern(10, 0))
            )
            .await
        ),
        Code::QuotaExceeded
    );
    // An operator sets 10 kB and 2 objects.
    let support = s.operator("support@op.test", OperatorRole::Support).await;
    let (st, q) = s
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/subscribers/{}/storage-quota", alice.id),
            Some(&support.token),
            Some(json!({"bytes": 10_000, "objects": 2})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{q}");
    storage::put_object(
        &s.app,
        &a,
        put("docs", "a"),
        Body::from_bytes(pattern(6_000, 1)),
    )
    .await
    .unwrap();
    // 6,000 + 5,000 > 10,000: refused while streaming, even without a declared length.
    let mut body = Body::from_bytes(pattern(5_000, 2));
    body.length = None;
    assert_eq!(
        code_of(storage::put_object(&s.app, &a, put("docs", "b"), body).await),
        Code::QuotaExceeded
    );
    storage::put_object(
        &s.app,
        &a,
        put("docs", "b"),
        Body::from_bytes(pattern(4_000, 2)),
    )
    .await
    .unwrap();
    // A third object: the count is full.
    assert_eq!(
        code_of(
            storage::put_object(
                &s.app,
                &a,
                put("docs", "c"),
                Body::from_bytes(pattern(1, 3))
            )
            .await
        ),
        Code::QuotaExceeded
    );
    let u = storage::usage(&s.app, &a, None).await.unwrap();
    assert_eq!((u.bytes, u.objects), (10_000, 2));
    assert_eq!(read(&s, &a, "docs", "a").await, pattern(6_000, 1));
    // Overwriting with something smaller is fine at the limit.
    storage::put_object(
        &s.app,
        &a,
        put("docs", "a"),
        Body::from_bytes(pattern(100, 9)),
    )
    .await
    .unwrap();
    assert_eq!(storage::usage(&s.app, &a, None).await.unwrap().bytes, 4_100);
    // Refused writes left no bytes behind once garbage is collected.
    assert_eq!(
        storage::sweep_orphans(&s.app, std::time::Duration::ZERO)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspension_refuses_every_request_and_loses_nothing() {
    // R-7.1c
    let s = TestServer::start().await;
    let alice = with_storage(&s, "alice@example.test").await;
    let a = as_sub(&alice.id);
    storage::bucket_create(&s.app, &a, "keep").await.unwrap();
    storage::put_object(
        &s.app,
        &a,
        put("keep", "k"),
        Body::from_bytes(pattern(70_000, 5)),
    )
    .await
    .unwrap();
    let abuse = s.operator("abuse@op.test", OperatorRole::Abuse).await;
    let (st, susp) = s
        .post(
            "/api/v1/suspensions",
            Some(&abuse.token),
            json!({"subscriber_id": alice.id, "cause": "authority", "reason": "court order 42"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{susp}");
    assert_eq!(
        code_of(storage::head_object(&s.app, &a, "keep", "k").await),
        Code::Suspended
    );
    assert_eq!(
        code_of(
            storage::put_object(
                &s.app,
                &a,
                put("keep", "n"),
                Body::from_bytes(pattern(1, 1))
            )
            .await
        ),
        Code::Suspended
    );
    assert_eq!(
        code_of(storage::list_objects(&s.app, &a, "keep", "", None, None, 10).await),
        Code::Suspended
    );
    assert_eq!(
        code_of(storage::bucket_create(&s.app, &a, "other").await),
        Code::Suspended
    );
    // The S3 answer names the problem.
    let err = storage::delete_object(&s.app, &a, "keep", "k")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("suspended") && err.to_string().contains("no data is lost"),
        "{err}"
    );
    // Lifted: everything is there.
    let id = susp["id"].as_str().unwrap();
    let (st, v) = s
        .post(
            &format!("/api/v1/suspensions/{id}/lift"),
            Some(&abuse.token),
            json!({"reason": "order withdrawn"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(read(&s, &a, "keep", "k").await, pattern(70_000, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_metered_into_billing_records() {
    // R-6.1b: egress and GB-hours become usage records the invoice reads.
    let s = TestServer::start().await;
    let alice = with_storage(&s, "alice@example.test").await;
    let a = as_sub(&alice.id);
    storage::bucket_create(&s.app, &a, "meter").await.unwrap();
    storage::put_object(
        &s.app,
        &a,
        put("meter", "o"),
        Body::from_bytes(pattern(123_456, 7)),
    )
    .await
    .unwrap();
    read(&s, &a, "meter", "o").await;
    let o = storage::head_object(&s.app, &a, "meter", "o")
        .await
        .unwrap();
    // A range read counts only its bytes.
    let mut part = storage::read_object(&s.app, &o, 10..1010).unwrap();
    let mut n = 0;
    while let Some(c) = futures::StreamExt::next(&mut part).await {
        n += c.unwrap().len();
    }
    assert_eq!(n, 1000);
    storage::flush_meter(&s.app).await.unwrap();
    storage::sample_usage(&s.app, 1).await.unwrap();
    let c = storage::counters(&s.app, alice.id.parse().unwrap(), 1)
        .await
        .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].ingress_bytes, 123_456);
    assert_eq!(c[0].egress_bytes, 123_456 + 1000);
    // Create bucket, put, and two reads (each starts with a head); a range read is the same GET.
    assert_eq!(c[0].requests, 4, "{c:?}");
    let mut tx = s.app.db().read().await.unwrap();
    let day = c[0].day.clone();
    let totals = tx
        .usage_totals(alice.id.parse().unwrap(), &day, &day)
        .await
        .unwrap();
    assert!(
        totals.contains(&("egress_bytes".to_string(), 124_456)),
        "{totals:?}"
    );
    assert!(
        totals.contains(&("storage_byte_hours".to_string(), 123_456)),
        "{totals:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_disk_and_corrupt_shards_are_survived_and_repaired() {
    // R-1b: 4 disks, 2 parity: one disk directory removed and shards corrupted on another, the
    // bytes still come back right; the scrub rebuilds; then any two other disks can go.
    let s = TestServer::start().await;
    let alice = with_storage(&s, "alice@example.test").await;
    let a = as_sub(&alice.id);
    storage::bucket_create(&s.app, &a, "safe").await.unwrap();
    let keys = ["small", "one-block", "many-blocks"];
    let sizes = [5_000usize, 1 << 20, (3 << 20) + 12_345];
    for (k, n) in keys.iter().zip(sizes) {
        storage::put_object(
            &s.app,
            &a,
            put("safe", k),
            Body::from_bytes(pattern(n, n as u8)),
        )
        .await
        .unwrap();
    }
    let disks: Vec<_> = (1..=4)
        .map(|i| s.data.path().join("storage").join(format!("disk{i}")))
        .collect();
    std::fs::remove_dir_all(&disks[0]).unwrap();
    // Flip bytes in the middle of every shard file on disk 2.
    let mut corrupted = 0;
    for entry in walk(&disks[1].join("shards")) {
        let mut b = std::fs::read(&entry).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0xff;
        b[mid + 1] ^= 0x55;
        std::fs::write(&entry, b).unwrap();
        corrupted += 1;
    }
    assert!(corrupted >= 3, "shard files on disk 2: {corrupted}");
    for (k, n) in keys.iter().zip(sizes) {
        assert_eq!(read(&s, &a, "safe", k).await, pattern(n, n as u8), "{k}");
    }
    let p = storage::scrub_all(&s.app).await.unwrap();
    assert_eq!(p.objects_checked, 3);
    assert!(p.missing >= 3 && p.corrupt >= 3, "{p:?}");
    assert_eq!(p.repaired, p.missing + p.corrupt, "{p:?}");
    assert!(p.unrecoverable.is_empty());
    let again = storage::scrub_all(&s.app).await.unwrap();
    assert_eq!((again.missing, again.corrupt), (0, 0), "{again:?}");
    // Full redundancy is back: two other disks can go.
    std::fs::remove_dir_all(&disks[2]).unwrap();
    std::fs::remove_dir_all(&disks[3]).unwrap();
    for (k, n) in keys.iter().zip(sizes) {
        assert_eq!(read(&s, &a, "safe", k).await, pattern(n, n as u8), "{k}");
    }
    // And the operator sees it.
    let st = storage::status(&s.app, &Ctx::system()).await.unwrap();
    assert_eq!(st.store.disks.len(), 4);
    assert_eq!(
        st.store.disks.iter().filter(|d| d.online).count(),
        2,
        "{:?}",
        st.store.disks
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A request signed as S3 clients sign it (SigV4, unsigned payload), sent to `addr` with the
/// Host header `host` (virtual-host style puts the bucket there).
async fn s3_request(
    method: reqwest::Method,
    addr: &str,
    host: &str,
    path: &str,
    key: &maocloud_app::storage::NewKey,
    body: Option<Bytes>,
) -> reqwest::Response {
    let amz_date = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let auth = maocloud::bench_s3::sigv4(&maocloud::bench_s3::SigV4 {
        method: method.as_str(),
        host,
        path,
        query: "",
        key: &key.key.id,
        secret: &key.secret,
        amz_date: &amz_date,
    });
    let mut req = reqwest::Client::new()
        .request(method, format!("{addr}{path}"))
        .header("host", host)
        .header("x-amz-date", amz_date)
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .header("authorization", auth);
    if let Some(b) = body {
        req = req.body(b);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_host_style_addressing_reaches_the_same_objects() {
    let s = TestServer::start_with(Db::Sqlite, |c| {
        c.s3_domain = Some("s3.maocloud.test".into())
    })
    .await;
    let alice = with_storage(&s, "alice@example.test").await;
    let a = as_sub(&alice.id);
    let key = storage::key_create(&s.app, &a, "vh").await.unwrap();
    storage::bucket_create(&s.app, &a, "vhosted").await.unwrap();
    let addr = s.s3_url.clone().unwrap();
    let port = addr.rsplit(':').next().unwrap();
    let vhost = format!("vhosted.s3.maocloud.test:{port}");
    let r = s3_request(
        reqwest::Method::PUT,
        &addr,
        &vhost,
        "/dir/hello.txt",
        &key,
        Some(pattern(5000, 3)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // Path style on the bare domain finds it.
    let plain = format!("s3.maocloud.test:{port}");
    let r = s3_request(
        reqwest::Method::GET,
        &addr,
        &plain,
        "/vhosted/dir/hello.txt",
        &key,
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap(), pattern(5000, 3));
    // And virtual-host style lists it.
    let r = s3_request(reqwest::Method::GET, &addr, &vhost, "/", &key, None).await;
    let xml = r.text().await.unwrap();
    assert!(
        xml.contains("<Key>dir/hello.txt</Key>") && xml.contains("<Name>vhosted</Name>"),
        "{xml}"
    );
}

// R-7.3c: at the contract's end date the buckets become read-only (reads and deletes still
// work, for export); after the grace period they are erased with every object and the keys
// are revoked.
crate::both_dbs!(
    an_ended_contract_keeps_buckets_read_only_then_erases_them_r_7_3c,
    |s: TestServer| async move {
        let alice = with_storage(&s, "alice@example.test").await;
        let a = as_sub(&alice.id);
        let key = storage::key_create(&s.app, &a, "export").await.unwrap();
        storage::bucket_create(&s.app, &a, "archive").await.unwrap();
        for k in ["a", "b"] {
            storage::put_object(
                &s.app,
                &a,
                put("archive", k),
                Body::from_bytes(pattern(200_000, 4)),
            )
            .await
            .unwrap();
        }
        let (_, subs) = s.get("/api/v1/subscriptions", Some(&alice.token)).await;
        let sub_id = subs[0]["id"].as_str().unwrap();
        let (st, v) = s
            .post(
                &format!("/api/v1/subscriptions/{sub_id}/termination"),
                Some(&alice.token),
                json!({"end": "month_end"}),
            )
            .await;
        assert_eq!(st.as_u16() / 100, 2, "{v}");
        storage::put_object(
            &s.app,
            &a,
            put("archive", "c"),
            Body::from_bytes(pattern(10, 1)),
        )
        .await
        .expect("writable until the end date");
        // The day after the end date (30 November).
        s.clock.advance(jiff::SignedDuration::from_hours(24 * 5));
        maocloud_app::daily::sweep_live(&s.app).await.unwrap();
        let refused = storage::put_object(
            &s.app,
            &a,
            put("archive", "d"),
            Body::from_bytes(pattern(10, 1)),
        )
        .await;
        assert_eq!(code_of(refused), Code::ReadOnly);
        assert_eq!(
            code_of(storage::bucket_create(&s.app, &a, "more").await),
            Code::ReadOnly
        );
        assert_eq!(
            read(&s, &a, "archive", "a").await,
            pattern(200_000, 4),
            "readable for export"
        );
        assert!(storage::delete_object(&s.app, &a, "archive", "c")
            .await
            .unwrap());
        assert!(storage::key_resolve(&s.app, &key.key.id).await.is_ok());
        // After the 30-day grace period: erased.
        s.clock.advance(jiff::SignedDuration::from_hours(24 * 31));
        maocloud_app::daily::sweep_live(&s.app).await.unwrap();
        assert!(storage::bucket_list(&s.app, &a).await.unwrap().is_empty());
        assert!(
            storage::key_resolve(&s.app, &key.key.id).await.is_err(),
            "keys revoked"
        );
        storage::collect_garbage(&s.app, std::time::Duration::ZERO)
            .await
            .unwrap();
        let disks = s.data.path().join("storage");
        let left: usize = (1..=4)
            .map(|d| walk_if(&disks.join(format!("disk{d}/shards"))).len())
            .sum();
        assert_eq!(
            left, 0,
            "no byte of the erased objects is left on the disks"
        );
    }
);

fn walk_if(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    if dir.exists() {
        walk(dir)
    } else {
        vec![]
    }
}

/// Sends a signed request head with `Content-Length: len` and no body over a raw connection,
/// and returns what the server answers before any body byte is sent.
async fn head_only(
    addr: &str,
    method: &str,
    path: &str,
    len: u64,
    key: &maocloud_app::storage::NewKey,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = addr.trim_start_matches("http://").to_string();
    let amz_date = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    // The query must be in canonical order for the signature (the tests' are).
    let auth = maocloud::bench_s3::sigv4(&maocloud::bench_s3::SigV4 {
        method,
        host: &host,
        path: p,
        query: q,
        key: &key.key.id,
        secret: &key.secret,
        amz_date: &amz_date,
    });
    let mut tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\nx-amz-date: {amz_date}\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\nauthorization: {auth}\r\ncontent-length: {len}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .expect("the server answers before the body arrives")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_object_or_part_is_refused_before_its_body() {
    let s = TestServer::start().await;
    let alice = with_storage(&s, "alice@example.test").await;
    let a = as_sub(&alice.id);
    let key = storage::key_create(&s.app, &a, "big").await.unwrap();
    storage::bucket_create(&s.app, &a, "big").await.unwrap();
    let addr = s.s3_url.clone().unwrap();
    // 6 GiB in one PUT: more than S3's 5 GiB for a single upload.
    let answer = head_only(&addr, "PUT", "/big/huge", 6 << 30, &key).await;
    assert!(answer.contains("EntityTooLarge"), "{answer}");
    // The same for a part of a multipart upload.
    let u = storage::upload_create(&s.app, &a, "big", "parts", None, ObjectMeta::default())
        .await
        .unwrap();
    let path = format!("/big/parts?partNumber=1&uploadId={}", u.id);
    let answer = head_only(&addr, "PUT", &path, 6 << 30, &key).await;
    assert!(answer.contains("EntityTooLarge"), "{answer}");
    assert!(storage::list_objects(&s.app, &a, "big", "", None, None, 10)
        .await
        .unwrap()
        .objects
        .is_empty());
}
