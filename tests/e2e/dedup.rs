//! Dedup on the real corpus: known duplicates are found and explained, the query for "removed
//! as duplicates of X" works, and the outputs do not depend on the thread count; with
//! `scheme = "datatrove"`, the clusters are datatrove's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tests::{corpus, own_file, query_csv as query, query_row, run, scratch, texts, tree_bytes};

fn config(dir: &Path, out: &str, threads: usize) -> PathBuf {
    let mut text = format!("[run]\nthreads = {threads}\n\n");
    for name in ["code_go", "manpages_en"] {
        text += &format!(
            "[[sources]]\nname = \"{name}\"\npaths = [\"{}\"]\n\n",
            corpus(&format!("{name}.jsonl.zst")).display()
        );
    }
    text += "[[stages]]\ntype = \"normalize\"\n\n";
    text += "[[stages]]\ntype = \"exact_dedup\"\npriority = [\"manpages_en\"]\n\n";
    text += "[[stages]]\ntype = \"minhash_dedup\"\n\n";
    text += &format!("[output]\npath = \"{}\"\n", dir.join(out).display());
    let path = dir.join(format!("{out}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn real_duplicates_are_found_explained_and_queryable() {
    let dir = scratch("dedup");
    let cfg = config(dir.path(), "out", 2);
    let o = run(&["run", "--quiet", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", texts(&o).1);
    let out = dir.path().join("out");

    // The Go test suite ships the same "// rundir" stub file (2021 copyright) in many folders:
    // exact duplicates, all in one cluster, one kept.
    let groups = query(
        &out,
        "SELECT duplicate_of, count(*) AS n FROM rejects \
         WHERE rule = 'exact_duplicate' AND text LIKE '// rundir\n\n// Copyright 2021 %' \
         GROUP BY duplicate_of ORDER BY n DESC",
    );
    let rows: Vec<&str> = groups.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "one survivor for the stub: {groups}");
    let (survivor, n) = rows[0].split_once(',').unwrap();
    let n: usize = n.parse().unwrap();
    assert!(n >= 10, "the stub is duplicated many times: {n}");

    // "Which documents were removed as duplicates of X?" and the clusters table agree.
    let removed = query(
        &out,
        &format!("SELECT id FROM rejects WHERE duplicate_of = '{survivor}'"),
    );
    assert_eq!(removed.lines().count() - 1, n);
    let cluster = query(
        &out,
        &format!(
            "SELECT role, count(*) AS n, min(size) AS size FROM clusters \
             WHERE stage = 'exact_dedup' AND cluster IN \
             (SELECT cluster FROM clusters WHERE id = '{survivor}') GROUP BY role ORDER BY role"
        ),
    );
    assert_eq!(
        cluster.lines().skip(1).collect::<Vec<_>>(),
        [
            format!("dropped,{n},{}", n + 1),
            format!("kept,1,{}", n + 1)
        ]
    );

    // Near duplicates: found, each naming a kept survivor and a cluster of its stage.
    let near: Vec<f64> = query_row(
        &out,
        "SELECT count(*), min(value), \
         sum(CASE WHEN c.role = 'kept' THEN 1 ELSE 0 END) FROM rejects r \
         JOIN clusters c ON c.id = r.duplicate_of AND c.stage = r.stage \
         WHERE r.rule = 'near_duplicate'",
    );
    assert!(near[0] >= 100.0, "near duplicates found: {near:?}");
    assert_eq!(
        near[2], near[0],
        "every survivor is a kept member of its cluster"
    );
    assert!(near[1] > 0.0 && near[1] <= 1.0);

    // One thread gives the same bytes.
    let one = config(dir.path(), "one", 1);
    let o = run(&["run", "--quiet", one.to_str().unwrap()]);
    assert!(o.status.success(), "{}", texts(&o).1);
    let strip = |tree: Vec<(String, Vec<u8>)>| -> Vec<(String, Vec<u8>)> {
        tree.into_iter()
            .filter(|(p, _)| !p.ends_with(".json"))
            .collect()
    };
    assert_eq!(
        strip(tree_bytes(&dir.path().join("one"))),
        strip(tree_bytes(&out)),
        "Parquet outputs are byte-identical for 1 and 2 threads"
    );
}

#[test]
fn the_datatrove_scheme_finds_datatrove_s_clusters() {
    let dir = scratch("dedup-datatrove");
    let mut text = String::from("[run]\nthreads = 2\n\n");
    for name in ["email_spam", "news_bbc"] {
        text += &format!(
            "[[sources]]\nname = \"{name}\"\npaths = [\"{}\"]\n\n",
            corpus(&format!("{name}.jsonl.zst")).display()
        );
    }
    text += "[[stages]]\ntype = \"minhash_dedup\"\nscheme = \"datatrove\"\n\n";
    text += &format!(
        "[output]\npath = \"{}\"\n",
        dir.path().join("out").display()
    );
    let cfg = dir.path().join("dt.toml");
    std::fs::write(&cfg, text).unwrap();
    let o = run(&["run", "--quiet", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", texts(&o).1);

    // Refinery's clusters as SOURCE:LINE, members in line order, the kept one marked.
    let rows = query(
        &dir.path().join("out"),
        "SELECT c.cluster, d.source, d.locator, c.role FROM clusters c \
         JOIN documents d ON d.id = c.id WHERE c.stage = 'minhash_dedup'",
    );
    let mut ours: BTreeMap<String, Vec<(String, u64, bool)>> = BTreeMap::new();
    for row in rows.lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        let line: u64 = f[2].parse().unwrap();
        ours.entry(f[0].to_string())
            .or_default()
            .push((f[1].to_string(), line, f[3] == "kept"));
    }
    let mut ours: Vec<Vec<(String, u64, bool)>> = ours.into_values().collect();
    ours.iter_mut().for_each(|c| c.sort());
    ours.sort();
    let members = |c: &Vec<(String, u64, bool)>| -> String {
        let names: Vec<String> = c.iter().map(|(s, l, _)| format!("{s}:{l}")).collect();
        names.join(" ")
    };

    let fixture = std::fs::read_to_string(own_file("fixtures/datatrove_minhash_clusters.txt"))
        .expect("fixture");
    let theirs: Vec<&str> = fixture.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(theirs.len(), 573);
    let ours_text: Vec<String> = ours.iter().map(members).collect();
    assert_eq!(ours_text, theirs, "the same clusters, member for member");
    // The oldest member of each cluster survives.
    for c in &ours {
        let kept: Vec<bool> = c.iter().map(|m| m.2).collect();
        assert!(kept[0] && !kept[1..].contains(&true), "{}", members(c));
    }
}
