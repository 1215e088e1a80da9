//! Tests of the embedded engine through `BlobStore`: round trips and ranges, surviving lost and
//! corrupt shards, scrub restoring full redundancy, encryption at rest, failed bodies, orphans.

use crate::meta::ExtentMeta;
use crate::shard::FRAME_HEADER_LEN;
use crate::{BlobStore, ByteStream, Engine, EngineConfig, Error, Extent, Uuid};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const BS: usize = 64 * 1024;
const KEY: [u8; 32] = [7; 32];

/// Disk directories under a unique temporary root, removed on drop.
struct TempDisks {
    root: PathBuf,
    disks: Vec<PathBuf>,
}

impl TempDisks {
    fn new(n: usize) -> TempDisks {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "maocloud-objstore-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            Uuid::now_v7().simple()
        ));
        let disks = (0..n).map(|i| root.join(format!("disk{i}"))).collect();
        TempDisks { root, disks }
    }

    fn engine(&self, parity: usize) -> Engine {
        self.engine_with_key(parity, KEY)
    }

    fn engine_with_key(&self, parity: usize, master_key: [u8; 32]) -> Engine {
        Engine::open(EngineConfig {
            disks: self.disks.clone(),
            parity,
            block_size: BS,
            master_key,
        })
        .expect("engine opens")
    }

    /// Every file under `shards/` and `tmp/` of every disk.
    fn stored_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        for d in &self.disks {
            walk(&d.join("shards"), &mut out);
            walk(&d.join("tmp"), &mut out);
        }
        out
    }
}

impl Drop for TempDisks {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Deterministic bytes that do not repeat with any short period.
fn data(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ len as u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The body in chunks of an awkward size, so blocks straddle chunks.
fn body(bytes: &[u8]) -> ByteStream {
    let chunks: Vec<io::Result<Bytes>> = bytes
        .chunks(7001)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

async fn read(e: &Engine, ext: &Extent, range: std::ops::Range<u64>) -> crate::Result<Vec<u8>> {
    let chunks: Vec<Bytes> = e.get(ext, range).try_collect().await?;
    Ok(chunks.concat())
}

/// The path of shard `index` of `ext`, and the disk directory holding it.
fn shard_path(t: &TempDisks, ext: &Extent, index: usize) -> (PathBuf, PathBuf) {
    let meta = ExtentMeta::parse(ext).unwrap();
    let disk = t.disks[meta.shards[index].slot as usize].clone();
    let hex = ext.id.simple().to_string();
    (
        disk.join("shards")
            .join(&hex[..2])
            .join(format!("{}.{index}", ext.id)),
        disk,
    )
}

/// Flips a byte inside block `b`'s chunk of shard `index`; with `fix_crc` the frame's
/// checksum is recomputed, so only the AEAD tag can notice.
fn damage_chunk(t: &TempDisks, ext: &Extent, index: usize, b: u64, fix_crc: bool) {
    let (path, _) = shard_path(t, ext, index);
    let geo = ExtentMeta::parse(ext).unwrap().geometry(ext.size);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let off = geo.frame_offset(b);
    let mut chunk = vec![0u8; geo.shard_len(b)];
    f.read_exact_at(&mut chunk, off + FRAME_HEADER_LEN as u64)
        .unwrap();
    let mid = chunk.len() / 2;
    chunk[mid] ^= 0x5a;
    f.write_all_at(&chunk, off + FRAME_HEADER_LEN as u64)
        .unwrap();
    if fix_crc {
        f.write_all_at(&crc32c::crc32c(&chunk).to_le_bytes(), off)
            .unwrap();
    }
}

#[tokio::test]
async fn round_trips_every_size_and_range() {
    for (disks, parity) in [(4, 2), (3, 1), (1, 0), (2, 0)] {
        let t = TempDisks::new(disks);
        let e = t.engine(parity);
        for size in [0, 1, BS - 1, BS, 3 * BS + 17] {
            let bytes = data(size);
            let ext = e.put(Uuid::now_v7(), body(&bytes)).await.unwrap();
            assert_eq!(ext.size, size as u64);
            let ext: Extent = serde_json::from_str(&serde_json::to_string(&ext).unwrap()).unwrap();
            assert_eq!(
                read(&e, &ext, 0..size as u64).await.unwrap(),
                bytes,
                "{disks}/{parity} {size}"
            );
            let s = size as u64;
            let mut ranges = vec![
                0..s.min(10),
                s / 2..s / 2,
                s / 3..(2 * s / 3),
                s.saturating_sub(5)..s,
            ];
            if size > BS + 5 {
                ranges.push(BS as u64 - 5..BS as u64 + 5);
                ranges.push(BS as u64..2 * BS as u64 + 1);
                ranges.push(1..s - 1);
            }
            for r in ranges {
                let want = &bytes[r.start as usize..r.end as usize];
                assert_eq!(
                    read(&e, &ext, r.clone()).await.unwrap(),
                    want,
                    "{size} {r:?}"
                );
            }
            assert!(matches!(read(&e, &ext, 0..s + 1).await, Err(Error::Io(_))));
        }
    }
}

#[tokio::test]
async fn survives_a_lost_disk_and_a_corrupt_shard_and_scrub_restores_redundancy() {
    let t = TempDisks::new(4);
    let e = t.engine(2);
    let bytes = data(3 * BS + 17);
    let ext = e.put(Uuid::now_v7(), body(&bytes)).await.unwrap();
    let whole = 0..bytes.len() as u64;

    // One whole disk gone (holding a data shard), a chunk corrupt on another.
    let (lost, lost_disk) = shard_path(&t, &ext, 0);
    std::fs::remove_dir_all(&lost_disk).unwrap();
    damage_chunk(&t, &ext, 1, 2, false);
    assert_eq!(read(&e, &ext, whole.clone()).await.unwrap(), bytes);
    assert_eq!(
        read(&e, &ext, 100..BS as u64 * 2).await.unwrap(),
        &bytes[100..BS * 2]
    );

    let first = e.scrub(&ext).await.unwrap();
    assert_eq!(first.shards_checked, 4);
    assert_eq!((first.missing, first.corrupt, first.repaired), (1, 1, 2));
    assert!(!first.unrecoverable);
    let second = e.scrub(&ext).await.unwrap();
    assert_eq!((second.missing, second.corrupt, second.repaired), (0, 0, 0));
    assert!(lost.is_file());
    assert!(lost_disk.join(crate::disk::MARKER).is_file());
    let status = e.status();
    assert!(
        status.disks.iter().all(|d| d.online && d.id.is_some()),
        "{status:?}"
    );

    // Full redundancy again: any two other disks may go.
    for index in [2, 3] {
        std::fs::remove_file(shard_path(&t, &ext, index).0).unwrap();
    }
    assert_eq!(read(&e, &ext, whole).await.unwrap(), bytes);
    assert!(t
        .stored_files()
        .iter()
        .all(|p| !p.starts_with(lost_disk.join("tmp"))));
}

#[tokio::test]
async fn a_chunk_with_a_good_checksum_but_wrong_bytes_is_caught_by_the_tag() {
    let t = TempDisks::new(4);
    let e = t.engine(2);
    let bytes = data(2 * BS + 3);
    let ext = e.put(Uuid::now_v7(), body(&bytes)).await.unwrap();
    damage_chunk(&t, &ext, 0, 1, true);
    assert_eq!(read(&e, &ext, 0..bytes.len() as u64).await.unwrap(), bytes);
    // The scrub checks checksums only; the block still authenticates from other chunks.
    assert!(!e.scrub(&ext).await.unwrap().unrecoverable);
}

#[tokio::test]
async fn more_bad_shards_than_parity_is_unrecoverable() {
    let t = TempDisks::new(4);
    let e = t.engine(2);
    let bytes = data(BS + 1);
    let ext = e.put(Uuid::now_v7(), body(&bytes)).await.unwrap();
    std::fs::remove_file(shard_path(&t, &ext, 0).0).unwrap();
    std::fs::remove_file(shard_path(&t, &ext, 3).0).unwrap();
    damage_chunk(&t, &ext, 1, 0, false);
    match read(&e, &ext, 0..bytes.len() as u64).await {
        Err(Error::Unrecoverable(id, _)) => assert_eq!(id, ext.id),
        other => panic!("expected Unrecoverable, got {other:?}"),
    }
    // Block 1 alone is still readable: only block 0's chunk is corrupt.
    assert_eq!(
        read(&e, &ext, BS as u64..BS as u64 + 1).await.unwrap(),
        &bytes[BS..]
    );
    let outcome = e.scrub(&ext).await.unwrap();
    assert!(outcome.unrecoverable);
    assert_eq!(
        (outcome.missing, outcome.corrupt, outcome.repaired),
        (2, 1, 0)
    );
    assert_eq!(
        t.stored_files().len(),
        2,
        "nothing written by the failed repair"
    );
}

#[tokio::test]
async fn a_failing_body_keeps_its_error_and_leaves_nothing() {
    let t = TempDisks::new(4);
    let e = t.engine(2);
    let chunks: Vec<io::Result<Bytes>> = vec![
        Ok(Bytes::from(data(3 * BS))),
        Ok(Bytes::from(data(100))),
        Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            "quota exceeded",
        )),
    ];
    match e
        .put(Uuid::now_v7(), futures::stream::iter(chunks).boxed())
        .await
    {
        Err(Error::Body(err)) => {
            assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
            assert_eq!(err.to_string(), "quota exceeded");
        }
        other => panic!("expected Body, got {other:?}"),
    }
    assert_eq!(t.stored_files(), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn shards_hold_no_plaintext() {
    let t = TempDisks::new(3);
    let e = t.engine(1);
    let needle = b"MAOCLOUD-PLAINTEXT-PATTERN";
    let bytes: Vec<u8> = needle.iter().copied().cycle().take(3 * BS + 100).collect();
    let ext = e.put(Uuid::now_v7(), body(&bytes)).await.unwrap();
    let files = t.stored_files();
    assert_eq!(files.len(), 3);
    for f in files {
        let raw = std::fs::read(&f).unwrap();
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle),
            "{} holds plaintext",
            f.display()
        );
        assert!(!raw.windows(8).any(|w| w == &needle[..8]));
    }
    assert!(!ext.meta.to_string().contains("MAOCLOUD"));
    assert_eq!(read(&e, &ext, 0..bytes.len() as u64).await.unwrap(), bytes);
}

#[tokio::test]
async fn another_master_key_cannot_read() {
    let t = TempDisks::new(2);
    let e = t.engine(1);
    let ext = e.put(Uuid::now_v7(), body(&data(1000))).await.unwrap();
    let other = t.engine_with_key(1, [8; 32]);
    match read(&other, &ext, 0..1000).await {
        Err(Error::Descriptor(msg)) => assert!(msg.contains("master key"), "{msg}"),
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(other.scrub(&ext).await.is_err());
}

#[tokio::test]
async fn orphans_are_listed_and_removed() {
    let t = TempDisks::new(4);
    let e = t.engine(2);
    let kept = e.put(Uuid::now_v7(), body(&data(10))).await.unwrap();
    let orphan = e.put(Uuid::now_v7(), body(&data(BS + 10))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let ids = e.stored_ids(Duration::from_millis(5)).await.unwrap();
    assert!(
        ids.contains(&kept.id) && ids.contains(&orphan.id),
        "{ids:?}"
    );
    assert!(e
        .stored_ids(Duration::from_secs(3600))
        .await
        .unwrap()
        .is_empty());

    // A stale temporary file is swept on the way.
    let stale = t.disks[0].join("tmp").join("leftover");
    std::fs::write(&stale, b"x").unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    e.stored_ids(Duration::from_millis(5)).await.unwrap();
    assert!(!stale.exists());

    e.remove_orphan(orphan.id).await.unwrap();
    e.remove_orphan(orphan.id).await.unwrap();
    assert_eq!(e.stored_ids(Duration::ZERO).await.unwrap(), vec![kept.id]);
    assert_eq!(t.stored_files().len(), 4);
}

#[tokio::test]
async fn delete_is_idempotent() {
    let t = TempDisks::new(4);
    let e = t.engine(2);
    let ext = e.put(Uuid::now_v7(), body(&data(BS * 2))).await.unwrap();
    assert_eq!(t.stored_files().len(), 4);
    e.delete(&ext).await.unwrap();
    e.delete(&ext).await.unwrap();
    assert!(t.stored_files().is_empty());
}

#[tokio::test]
async fn a_write_goes_on_without_one_disk_but_not_without_two() {
    let t = TempDisks::new(4);
    let e = t.engine(2);
    std::fs::remove_dir_all(&t.disks[1]).unwrap();
    let bytes = data(2 * BS + 9);
    let ext = e.put(Uuid::now_v7(), body(&bytes)).await.unwrap();
    assert_eq!(t.stored_files().len(), 3);
    assert_eq!(read(&e, &ext, 0..bytes.len() as u64).await.unwrap(), bytes);
    let outcome = e.scrub(&ext).await.unwrap();
    assert_eq!((outcome.missing, outcome.repaired), (1, 1));
    assert_eq!(t.stored_files().len(), 4);

    std::fs::remove_dir_all(&t.disks[1]).unwrap();
    std::fs::remove_dir_all(&t.disks[2]).unwrap();
    match e.put(Uuid::now_v7(), body(&bytes)).await {
        Err(Error::NoQuorum(_)) => {}
        other => panic!("expected NoQuorum, got {other:?}"),
    }
    assert_eq!(
        t.stored_files().len(),
        2,
        "only the first extent's surviving shards"
    );
    let status = e.status();
    assert_eq!(status.disks.iter().filter(|d| d.online).count(), 2);
}

#[tokio::test]
async fn open_refuses_impossible_configurations() {
    let t = TempDisks::new(2);
    let cfg = |parity, block_size| EngineConfig {
        disks: t.disks.clone(),
        parity,
        block_size,
        master_key: KEY,
    };
    assert!(Engine::open(cfg(2, BS)).is_err());
    assert!(Engine::open(cfg(1, 0)).is_err());
    assert!(Engine::open(EngineConfig {
        disks: vec![],
        parity: 0,
        block_size: BS,
        master_key: KEY
    })
    .is_err());
    let twice = EngineConfig {
        disks: vec![t.disks[0].clone(), t.disks[0].clone()],
        ..cfg(1, BS)
    };
    assert!(Engine::open(twice).is_err());
    let e = Engine::open(cfg(1, BS)).unwrap();
    let s = e.status();
    assert_eq!((s.data_shards, s.parity_shards, s.block_size), (1, 1, BS));
    assert!(s.disks.iter().all(|d| d.online && d.total_bytes > 0));
    // Reopening keeps the disk ids.
    let again = Engine::open(cfg(1, BS)).unwrap().status();
    assert_eq!(
        s.disks.iter().map(|d| d.id).collect::<Vec<_>>(),
        again.disks.iter().map(|d| d.id).collect::<Vec<_>>()
    );
}
