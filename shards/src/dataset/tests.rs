//! Writing a version and reading it back on the local file system (S3 is covered end to end).

use super::*;
use crate::StoreError;

fn info(version: &str, vocab_size: u64) -> VersionInfo {
    VersionInfo {
        version: version.to_string(),
        parents: vec![],
        config_hash: "c".into(),
        tokenizer: TokenizerInfo {
            hash: "t".into(),
            vocab_size,
            eod: "<eod>".into(),
            eod_id: 0,
            file: None,
        },
        validation_fraction: 0.1,
        validation_min_docs: 0,
        tokenizer_json: Some(bytes::Bytes::from_static(b"{\"model\": {}}")),
    }
}

/// Documents of two sources; returns the expected train streams.
fn write(root: &str, version: &str, shard_tokens: u64, vocab: u64) -> Vec<(String, Vec<u32>)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut writer = VersionWriter::new(
        DatasetRoot::open(root).unwrap(),
        info(version, vocab),
        shard_tokens,
        rt.handle().clone(),
    );
    let mut streams = vec![("a".to_string(), vec![]), ("b".to_string(), vec![])];
    for d in 0..60u32 {
        let (s, split) = (
            (d % 2) as usize,
            if d % 7 == 3 {
                Split::Validation
            } else {
                Split::Train
            },
        );
        let tokens: Vec<u32> = (0..(d * 7 % 23 + 1))
            .map(|t| (d * 1000 + t) % vocab as u32)
            .collect();
        writer
            .push(split, &streams[s].0.clone(), &format!("doc{d}"), &tokens)
            .unwrap();
        if split == Split::Train {
            streams[s].1.extend_from_slice(&tokens);
        }
    }
    writer.finish().unwrap();
    streams
}

#[test]
fn a_version_reads_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let expected = write(root, "v1", 50, 70_000);
    let reader = ShardReader::open(root, None, ReaderOptions::default()).unwrap();
    assert_eq!(reader.version(), "v1");
    assert_eq!(reader.manifest().token_bytes, 4, "70,000 ids need u32");
    for (source, tokens) in &expected {
        let n = reader.stream_tokens(Split::Train, source);
        assert_eq!(n, tokens.len() as u64);
        assert_eq!(&reader.read(Split::Train, source, 0..n).unwrap(), tokens);
        assert_eq!(
            reader.read(Split::Train, source, 45..112).unwrap(),
            tokens[45..112]
        );
        let shards: Vec<_> = reader.manifest().shards_of(Split::Train, source).collect();
        assert!(shards[..shards.len() - 1].iter().all(|s| s.tokens == 50));
        let totals = reader.manifest().sources[source][&Split::Train];
        assert_eq!(totals.tokens, n);
        assert_eq!(
            shards.iter().map(|s| s.documents).sum::<u64>(),
            totals.documents
        );
    }
    assert_eq!(reader.sources(Split::Validation), ["a", "b"]);
    let manifest = DatasetRoot::open(root).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(manifest.versions()).unwrap().len(), 1);

    // A file given as a root is named as such, not walked into.
    let file = dir.path().join("latest");
    let e = DatasetRoot::open(file.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("a file, not a dataset root"), "{e}");
}

#[test]
fn a_corrupted_shard_is_named_with_both_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    write(root, "v1", 40, 1000);
    let shard = dir.path().join("versions/v1/train/a/000001.bin");
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[1030] ^= 0xff;
    std::fs::write(&shard, bytes).unwrap();
    let reader = ShardReader::open(root, Some("v1"), ReaderOptions::default()).unwrap();
    assert!(
        reader.read(Split::Train, "a", 0..40).is_ok(),
        "shard 0 is intact"
    );
    let err = reader.read(Split::Train, "a", 0..80).unwrap_err();
    let StoreError::Checksum {
        path,
        expected,
        actual,
    } = &err
    else {
        panic!("expected a checksum error, got {err}");
    };
    assert!(path.ends_with("versions/v1/train/a/000001.bin"), "{path}");
    let listed = &reader
        .manifest()
        .shards_of(Split::Train, "a")
        .nth(1)
        .unwrap()
        .checksum;
    assert_eq!(expected, listed);
    assert_ne!(expected, actual);
}

#[test]
fn windows_follow_the_weights_hold_the_right_tokens_and_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let streams = write(root, "v1", 25, 1000);
    let phases = vec![crate::mixture::Phase {
        until_tokens: None,
        weights: vec![3.0, 1.0],
    }];
    let loader = || {
        let reader = ShardReader::open(root, None, ReaderOptions::default()).unwrap();
        WindowLoader::new(
            reader,
            Split::Train,
            vec!["a".into(), "b".into()],
            phases.clone(),
            8,
            5,
        )
        .unwrap()
    };
    let mut whole = loader();
    let windows: Vec<Window> = (0..40).map(|_| whole.next_window().unwrap()).collect();
    let from_a = windows.iter().filter(|w| w.draw.source == 0).count();
    assert_eq!(from_a, 30, "3:1 weights, exact for every prefix");
    for w in &windows {
        let start = (w.draw.window * 8) as usize;
        assert_eq!(w.tokens, streams[w.draw.source].1[start..start + 9]);
    }
    let mut first = loader();
    (0..17).for_each(|_| {
        first.next_window().unwrap();
    });
    let mut resumed = loader();
    resumed.restore(first.sampler().state().clone());
    let rest: Vec<Window> = (17..40).map(|_| resumed.next_window().unwrap()).collect();
    assert_eq!(rest, windows[17..]);
    let unknown = WindowLoader::new(
        ShardReader::open(root, None, ReaderOptions::default()).unwrap(),
        Split::Train,
        vec!["zzz".into()],
        vec![crate::mixture::Phase {
            until_tokens: None,
            weights: vec![1.0],
        }],
        8,
        5,
    );
    assert!(matches!(
        unknown,
        Err(windows::WindowError::UnknownSource(_))
    ));
}

#[test]
fn large_objects_go_up_in_parts_and_come_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let root = DatasetRoot::open(dir.path().to_str().unwrap()).unwrap();
    let n = root::MULTIPART_THRESHOLD + 3 * root::PART_BYTES / 2;
    let bytes: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(root.put(&root.child("big/object.bin"), bytes.clone().into()))
        .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("big/object.bin")).unwrap(),
        bytes
    );
}
