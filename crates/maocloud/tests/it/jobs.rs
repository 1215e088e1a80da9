//! Durable background jobs with several replicas on one PostgreSQL database: every job runs
//! exactly once; and a database that goes away gives 503, not a crash.

use crate::harness::*;
use maocloud_app::jobs::{self, JobOutcome, Registry};
use reqwest::StatusCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_run_each_job_exactly_once() {
    let a = TestServer::start_on(Db::Postgres).await;
    let data = tempfile::tempdir().unwrap();
    let b = TestServer::start_at(Db::Postgres, data, a.database_url.clone(), |_| {}).await;
    // Enqueue 60 jobs through the outbox: 60 sign-ups, each queuing a verification email.
    for i in 0..60 {
        let (st, v) = a
            .post(
                "/api/v1/signup",
                None,
                a.signup_form(&format!("r{i}@example.fr")).await,
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let counting = |runs: Arc<Mutex<HashMap<String, u32>>>| {
        let mut r = Registry::default();
        r.register(maocloud_app::notify::DELIVER_JOB, move |_app, job| {
            let runs = runs.clone();
            Box::pin(async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                *runs.lock().unwrap().entry(job.id.to_string()).or_default() += 1;
                JobOutcome::Done
            })
        });
        r
    };
    let (ra, rb) = (counting(runs.clone()), counting(runs.clone()));
    let (x, y) = tokio::join!(
        jobs::run_due(&a.app, &ra, "replica-a"),
        jobs::run_due(&b.app, &rb, "replica-b"),
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 60, "every job ran");
    assert!(runs.values().all(|n| *n == 1), "no job ran twice: {runs:?}");
    assert_eq!(x + y, 60);
    assert!(x > 0 && y > 0, "both replicas took part ({x} + {y})");
}

/// A TCP forwarder the test can cut, standing between the platform and PostgreSQL.
async fn forwarder(target: String) -> (String, tokio::sync::watch::Sender<bool>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        loop {
            let mut cut = rx.clone();
            tokio::select! {
                Ok((mut inbound, _)) = l.accept() => {
                    let target = target.clone();
                    let mut cut = rx.clone();
                    tokio::spawn(async move {
                        if let Ok(mut out) = TcpStream::connect(&target).await {
                            tokio::select! {
                                _ = copy_bidirectional(&mut inbound, &mut out) => {}
                                _ = cut.wait_for(|c| *c) => {}
                            }
                        }
                    });
                }
                _ = cut.wait_for(|c| *c) => return,
            }
        }
    });
    (addr, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_gives_503() {
    let direct = fresh_database(Db::Postgres, std::path::Path::new("/nonexistent")).await;
    let url = url::Url::parse(&direct).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let (proxy, cut) = forwarder(target).await;
    let via_proxy = direct.replacen(
        &format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432)),
        &proxy,
        1,
    );
    let data = tempfile::tempdir().unwrap();
    let s = TestServer::start_at(Db::Postgres, data, via_proxy, |_| {}).await;
    let sub = s.subscriber("up@example.fr").await;
    assert_eq!(s.get("/healthz", None).await.0, StatusCode::OK);
    cut.send(true).unwrap();
    let (st, p) = s.get("/healthz", None).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("database"), "{p}");
    let (st, _) = s.get("/api/v1/me", Some(&sub.token)).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
}
