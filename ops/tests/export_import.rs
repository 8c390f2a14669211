//! Export and import through the `PooledStore` trait, against real stores.

mod common;

use std::io::{BufRead, Cursor};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{BACKENDS, Backend, assert_filled, fill, key, open_with, options, value};
use pooledstore_ops::{
    ExportOptions, ImportOptions, count_entries, export, export_to_file, import, import_from_file,
};
use storage_api::{ErrorKind, PooledStore, PutOptions, ScanOptions};

/// A store whose scans return at most 7 entries, so exports and imports span many pages.
async fn small_page_store(backend: Backend, path: &Path) -> Arc<dyn PooledStore> {
    let mut opts = options(path);
    opts.limits.max_scan_limit = 7;
    opts.limits.max_value_bytes = 4096;
    open_with(backend, opts).await.unwrap()
}

fn lines_of(path: &Path) -> Vec<String> {
    let file = std::fs::File::open(path).unwrap();
    std::io::BufReader::new(file)
        .lines()
        .map(|l| l.unwrap())
        .collect()
}

#[tokio::test]
async fn export_then_import_reproduces_every_entry_across_backends() {
    for (from, to) in [
        (Backend::Sqlx, Backend::Deadpool),
        (Backend::Deadpool, Backend::Sqlx),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let source = small_page_store(from, &dir.path().join("a.db")).await;
        fill(&*source, "k/", 60).await;
        source.put(&[0], &[], PutOptions::default()).await.unwrap();
        source
            .put(&[0xFF; 1024], &[7; 4096], PutOptions::default())
            .await
            .unwrap();
        let ttl = PutOptions::default().with_ttl(Duration::from_secs(3600));
        source.put(b"ttl", b"soon", ttl).await.unwrap();
        let expires = source
            .get(b"ttl")
            .await
            .unwrap()
            .unwrap()
            .expires_at
            .unwrap();

        let file = dir.path().join("dump.jsonl");
        let report = export_to_file(&*source, &file, ExportOptions::default())
            .await
            .unwrap();
        assert_eq!(report.entries, 63);
        let lines = lines_of(&file);
        assert_eq!(lines.len(), 65, "header + 63 entries + end line");
        assert!(
            lines[0].contains("\"format\":\"pooledstore-export\""),
            "{}",
            lines[0]
        );
        assert_eq!(lines[64], r#"{"end":true,"entries":63}"#);

        let target = small_page_store(to, &dir.path().join("b.db")).await;
        target
            .put(b"k/000001", b"older", PutOptions::default())
            .await
            .unwrap();
        let before = target.get(b"k/000001").await.unwrap().unwrap().version;
        let imported = import_from_file(&*target, &file, ImportOptions::default())
            .await
            .unwrap();
        assert_eq!(imported.lines, 63);
        assert_eq!(imported.written, 63);

        let all_source = page_all(&*source).await;
        let all_target = page_all(&*target).await;
        assert_eq!(all_source.len(), all_target.len());
        for (a, b) in all_source.iter().zip(&all_target) {
            assert_eq!((&a.key, &a.value), (&b.key, &b.value));
        }
        let overwritten = target.get(b"k/000001").await.unwrap().unwrap();
        assert!(
            overwritten.version > before,
            "the target assigns newer versions"
        );
        let moved = target
            .get(b"ttl")
            .await
            .unwrap()
            .unwrap()
            .expires_at
            .unwrap();
        let drift = moved
            .duration_since(expires)
            .unwrap_or_else(|e| e.duration());
        assert!(drift < Duration::from_secs(2), "expiry moved by {drift:?}");
        source.close().await;
        target.close().await;
    }
}

async fn page_all(store: &dyn PooledStore) -> Vec<storage_api::Entry> {
    let mut all = Vec::new();
    loop {
        let mut scan = ScanOptions::default().with_limit(7);
        scan.after = all.last().map(|e: &storage_api::Entry| e.key.clone());
        let page = store.scan(scan).await.unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// A snapshot export reads inside one read-only transaction: a writer committing pairs
/// of keys at both ends of the key space (`a/N`, `z/N`) never shows half a pair, though
/// the pages of `a/` are read long before those of `z/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_export_never_shows_half_a_batch() {
    use base64::Engine;
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let store = small_page_store(backend, &dir.path().join("a.db")).await;
        fill(&*store, "m/", 200).await;
        let writer = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..300 {
                    let ops = vec![
                        storage_api::WriteOp::put(key("a/", i), b"x".to_vec()),
                        storage_api::WriteOp::put(key("z/", i), b"x".to_vec()),
                    ];
                    store.batch(ops).await.unwrap();
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut out = Vec::new();
        export(&*store, &mut out, true).await.unwrap();
        writer.await.unwrap();
        store.close().await;

        let text = String::from_utf8(out).unwrap();
        let (mut a, mut z) = (Vec::new(), Vec::new());
        for line in text.lines().skip(1) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let Some(k) = v["key"].as_str() else { continue };
            let k = base64::engine::general_purpose::STANDARD.decode(k).unwrap();
            match &k[..2] {
                b"a/" => a.push(k[2..].to_vec()),
                b"z/" => z.push(k[2..].to_vec()),
                _ => {}
            }
        }
        assert_eq!(a, z, "{backend:?}: the export shows half of a batch");
    }
}

fn export_text(entries: usize) -> Vec<String> {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut lines = vec![r#"{"format":"pooledstore-export","format_version":1}"#.to_owned()];
    for i in 0..entries {
        lines.push(format!(
            r#"{{"key":"{}","value":"{}","version":{},"expires_at":null}}"#,
            b64(&key("k/", i)),
            b64(&value(i)),
            i + 1
        ));
    }
    lines.push(format!(r#"{{"end":true,"entries":{entries}}}"#));
    lines
}

/// A malformed line stops the import before anything is written, however late in the
/// file it comes; an import of the sound file that stops part way (here: only the first
/// 60 entries were imported) completes with `resume`, skipping what is present.
#[tokio::test]
async fn a_bad_line_is_found_before_any_write_and_imports_resume() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with(backend, options(&dir.path().join("a.db")))
            .await
            .unwrap();
        let mut lines = export_text(100);
        let good_line_61 = lines[61].clone();
        lines[61] = r#"{"key":"@@not base64@@","value":"","version":1,"expires_at":null}"#.into();
        let file = dir.path().join("dump.jsonl");
        std::fs::write(&file, lines.join("\n")).unwrap();

        let small = ImportOptions {
            batch_entries: 16,
            ..ImportOptions::default()
        };
        let e = import_from_file(&*store, &file, small).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.message().contains("line 62"), "{e}");
        assert!(!e.message().contains("@@"), "echoed input: {e}");
        assert_eq!(count_entries(&*store).await.unwrap(), 0, "{backend:?}");

        let first_60 = dir.path().join("first-60.jsonl");
        std::fs::write(&first_60, export_text(60).join("\n")).unwrap();
        import_from_file(&*store, &first_60, small).await.unwrap();
        assert_filled(&*store, "k/", 60).await;

        lines[61] = good_line_61;
        std::fs::write(&file, lines.join("\n")).unwrap();
        let resumed = import_from_file(
            &*store,
            &file,
            ImportOptions {
                resume: true,
                ..small
            },
        )
        .await
        .unwrap();
        assert_eq!(resumed.skipped_present, 60);
        assert_eq!(resumed.written, 40);
        assert_eq!((resumed.distinct_keys, resumed.duplicates), (100, 0));
        assert_filled(&*store, "k/", 100).await;

        let again = import_from_file(&*store, &file, small).await.unwrap();
        assert_eq!(again.written, 100, "plain re-runs upsert everything");
        assert_eq!(count_entries(&*store).await.unwrap(), 100);
        store.close().await;
    }
}

/// Keys that occur more than once are counted; the last line of each wins, with and
/// without `resume`, and only that one is written.
#[tokio::test]
async fn duplicate_keys_are_counted_and_the_last_one_wins() {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let entry = |k: &[u8], v: &[u8]| {
        format!(
            r#"{{"key":"{}","value":"{}","version":1,"expires_at":null}}"#,
            b64(k),
            b64(v)
        )
    };
    let text = [
        r#"{"format":"pooledstore-export","format_version":1}"#.to_owned(),
        entry(b"a", b"first"),
        entry(b"b", b"only"),
        entry(b"a", b"second"),
        entry(b"c", b"one"),
        entry(b"a", b"third"),
        entry(b"c", b"two"),
        r#"{"end":true,"entries":6}"#.to_owned(),
    ]
    .join("\n");
    for resume in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with(Backend::Sqlx, options(&dir.path().join("a.db")))
            .await
            .unwrap();
        let small = ImportOptions {
            resume,
            batch_entries: 2,
            ..ImportOptions::default()
        };
        let report = import(&*store, Cursor::new(text.as_bytes()), small)
            .await
            .unwrap();
        assert_eq!(
            (report.distinct_keys, report.duplicates),
            (3, 3),
            "{report:?}"
        );
        assert_eq!((report.lines, report.written), (6, 3), "{report:?}");
        for (key, value) in [(&b"a"[..], &b"third"[..]), (b"b", b"only"), (b"c", b"two")] {
            let got = store.get(key).await.unwrap().unwrap();
            assert_eq!(got.value, value, "resume {resume}");
        }
        store.close().await;
    }
}

/// A truncated, miscounted, overlong or newer export is refused before any write.
#[tokio::test]
async fn damaged_exports_are_refused_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(Backend::Sqlx, options(&dir.path().join("a.db")))
        .await
        .unwrap();
    let lines = export_text(10);

    let truncated = lines[..8].join("\n");
    let e = import(
        &*store,
        Cursor::new(truncated.as_bytes()),
        ImportOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("truncated"), "{e}");
    assert!(e.message().starts_with("line 9: "), "{e}");
    assert_eq!(count_entries(&*store).await.unwrap(), 0);

    let mut miscounted = lines.clone();
    miscounted[11] = r#"{"end":true,"entries":11}"#.into();
    let e = import(
        &*store,
        Cursor::new(miscounted.join("\n").as_bytes()),
        ImportOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(e.message().contains("counts 11"), "{e}");

    let mut trailing = lines.clone();
    trailing.push(lines[1].clone());
    let e = import(
        &*store,
        Cursor::new(trailing.join("\n").as_bytes()),
        ImportOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(e.message().contains("after the end line"), "{e}");

    let mut newer = lines.clone();
    newer[0] = r#"{"format":"pooledstore-export","format_version":2}"#.into();
    let e = import(
        &*store,
        Cursor::new(newer.join("\n").as_bytes()),
        ImportOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");

    for junk in ["", "key,value\n1,2\n"] {
        let e = import(
            &*store,
            Cursor::new(junk.as_bytes()),
            ImportOptions::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
    assert_eq!(
        count_entries(&*store).await.unwrap(),
        0,
        "nothing was written"
    );
    store.close().await;
}

/// Entries past their expiry are skipped; values over the target's limit name the
/// line; a line longer than any valid one is refused without being read whole.
#[tokio::test]
async fn import_checks_each_entry_against_the_target() {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&dir.path().join("a.db"));
    opts.limits.max_value_bytes = 16;
    let store = open_with(Backend::Deadpool, opts).await.unwrap();
    let past = storage_api::backend::to_unix_millis(SystemTime::now()) - 1000;
    let future = storage_api::backend::to_unix_millis(SystemTime::now()) + 3_600_000;
    let header = r#"{"format":"pooledstore-export","format_version":1}"#;
    let text = [
        header.to_owned(),
        format!(
            r#"{{"key":"{}","value":"","version":1,"expires_at":{past}}}"#,
            b64(b"old")
        ),
        format!(
            r#"{{"key":"{}","value":"","version":1,"expires_at":{future}}}"#,
            b64(b"new")
        ),
        r#"{"end":true,"entries":2}"#.to_owned(),
    ]
    .join("\n");
    let report = import(
        &*store,
        Cursor::new(text.as_bytes()),
        ImportOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!((report.written, report.skipped_expired), (1, 1));
    assert!(store.get(b"old").await.unwrap().is_none());
    assert!(
        store
            .get(b"new")
            .await
            .unwrap()
            .unwrap()
            .expires_at
            .is_some()
    );

    let too_big = [
        header.to_owned(),
        format!(
            r#"{{"key":"{}","value":"{}","version":1,"expires_at":null}}"#,
            b64(b"a"),
            b64(&[1; 17])
        ),
        r#"{"end":true,"entries":1}"#.to_owned(),
    ]
    .join("\n");
    let e = import(
        &*store,
        Cursor::new(too_big.as_bytes()),
        ImportOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("line 2"), "{e}");

    let huge = format!("{header}\n{{\"key\":\"{}\"", "A".repeat(1 << 20));
    let e = import(
        &*store,
        Cursor::new(huge.as_bytes()),
        ImportOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(e.message().contains("longer than"), "{e}");
    store.close().await;
}

#[tokio::test]
async fn export_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(Backend::Sqlx, options(&dir.path().join("a.db")))
        .await
        .unwrap();
    fill(&*store, "k/", 3).await;
    let file = dir.path().join("out.jsonl");
    std::fs::write(&file, "keep me").unwrap();
    let e = export_to_file(&*store, &file, ExportOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    let forced = ExportOptions {
        force: true,
        ..ExportOptions::default()
    };
    assert_eq!(
        export_to_file(&*store, &file, forced)
            .await
            .unwrap()
            .entries,
        3
    );
    assert_eq!(lines_of(&file).len(), 5);
    store.close().await;
}
