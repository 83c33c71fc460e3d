//! The sample corpus behind `refinery demo`: generated, deterministic, small, and with every kind
//! of trouble a real corpus has: exact and near duplicates, junk, PII, messy whitespace and
//! control characters, and records that cannot be read. Four sources in four formats.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::record_batch::RecordBatch;

/// A tiny deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const SUBJECTS: &[&str] = &[
    "The council",
    "A local farmer",
    "The research team",
    "Our reporter",
    "The old library",
    "A small startup",
    "The river authority",
    "Volunteers",
];
const VERBS: &[&str] = &[
    "announced",
    "discovered",
    "questioned",
    "celebrated",
    "rebuilt",
    "measured",
    "described",
    "opposed",
];
const OBJECTS: &[&str] = &[
    "a new bridge over the valley",
    "the history of the harbour",
    "plans for a wind farm",
    "the results of the spring survey",
    "a collection of rare maps",
    "the cost of the new school",
    "changes to the bus timetable",
    "a festival of traditional music",
];
const TAILS: &[&str] = &[
    "on Monday.",
    "after a long debate.",
    "despite the weather.",
    "with some surprise.",
    "for the first time in years.",
    "in front of a large crowd.",
];

fn sentence(rng: &mut Rng) -> String {
    format!(
        "{} {} {} {}",
        rng.pick(SUBJECTS),
        rng.pick(VERBS),
        rng.pick(OBJECTS),
        rng.pick(TAILS)
    )
}

fn article(rng: &mut Rng, sentences: usize) -> String {
    (0..sentences)
        .map(|_| sentence(rng))
        .collect::<Vec<_>>()
        .join(" ")
}

fn json_line(id: &str, text: &str, extra: &str) -> String {
    format!(
        "{{\"id\":{},\"text\":{}{extra}}}\n",
        serde_json::Value::from(id),
        serde_json::Value::from(text)
    )
}

/// Writes the sample inputs and `refinery.toml` under `dir`; returns the config's path.
pub fn write_sample(dir: &Path) -> std::io::Result<std::path::PathBuf> {
    let input = dir.join("input");
    std::fs::create_dir_all(input.join("notes"))?;
    let mut rng = Rng(2024);

    // news: clean articles, 10 exact duplicates and 10 near duplicates (one sentence changed).
    let mut news = String::new();
    let mut originals = Vec::new();
    for i in 0..120 {
        let text = article(&mut rng, 6 + (i % 8));
        news += &json_line(&format!("news-{i}"), &text, ",\"section\":\"local\"");
        originals.push(text);
    }
    for i in 0..10 {
        news += &json_line(
            &format!("news-copy-{i}"),
            &originals[i * 3],
            ",\"section\":\"wire\"",
        );
        let mut near: Vec<String> = originals[i * 5 + 1].split(". ").map(String::from).collect();
        near[0] = sentence(&mut rng).trim_end_matches('.').to_string();
        news += &json_line(
            &format!("news-near-{i}"),
            &near.join(". "),
            ",\"section\":\"wire\"",
        );
    }
    std::fs::write(input.join("news.jsonl"), news)?;

    // forum: posts with PII, junk, and unreadable records, gzip-compressed.
    let mut forum = String::new();
    for i in 0..60 {
        let text = match i % 6 {
            0 => format!(
                "{} Contact me at user{i}@example.com or call +1 555 010 {i:04}.",
                article(&mut rng, 4)
            ),
            1 => format!(
                "{} My server is at 192.0.2.{i} if you want to check.",
                article(&mut rng, 3)
            ),
            2 => "lol".to_string(),
            3 => "!!!! $$$ ### !!!! $$$ ###".to_string(),
            _ => article(&mut rng, 5),
        };
        forum += &json_line(&format!("forum-{i}"), &text, ",\"thread\":7");
    }
    forum += "{\"id\":\"forum-bad-1\",\"text\":\"unterminated\n";
    forum += "{\"id\":\"forum-bad-2\",\"body\":\"no text field\"}\n";
    forum += "{\"id\":\"forum-bad-3\",\"text\":12345}\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(forum.as_bytes())?;
    std::fs::write(input.join("forum.jsonl.gz"), gz.finish()?)?;

    // notes: plain-text files with CRLF line ends, control characters and odd spaces.
    for i in 0..12 {
        let body = format!(
            "Note {i}\r\n\r\n\r\n\r\n{}\u{7}\u{A0}\r\n{}   \r\n",
            article(&mut rng, 4),
            article(&mut rng, 3)
        );
        std::fs::write(input.join(format!("notes/note-{i:02}.txt")), body)?;
    }

    // wiki: a Parquet file with a text column and a title column.
    let (titles, texts): (Vec<String>, Vec<String>) = (0..40)
        .map(|i| (format!("Article {i}"), article(&mut rng, 8)))
        .unzip();
    let batch = RecordBatch::try_from_iter([
        ("title", Arc::new(StringArray::from(titles)) as ArrayRef),
        ("text", Arc::new(StringArray::from(texts)) as ArrayRef),
    ])
    .map_err(std::io::Error::other)?;
    let file = std::fs::File::create(input.join("wiki.parquet"))?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)
        .map_err(std::io::Error::other)?;
    writer.write(&batch).map_err(std::io::Error::other)?;
    writer.close().map_err(std::io::Error::other)?;

    let config = dir.join("refinery.toml");
    std::fs::write(&config, CONFIG)?;
    std::fs::write(dir.join(TRAIN_CONFIG_FILE), TRAIN_CONFIG)?;
    Ok(config)
}

/// The demo's config (paths relative to it).
pub const CONFIG: &str = r#"# The Refinery demo config: four sources, six stages, then tokenize.
[run]
batch_size = 256

[[sources]]
name = "news"
paths = ["input/news.jsonl"]
id_field = "id"

[[sources]]
name = "forum"
paths = ["input/forum.jsonl.gz"]

[[sources]]
name = "notes"
paths = ["input/notes/"]
format = "text"

[[sources]]
name = "wiki"
paths = ["input/wiki.parquet"]

[[stages]]
type = "normalize"

[[stages]]
type = "length"
min_words = 20

[[stages]]
type = "exact_dedup"
priority = ["wiki", "news"]

[[stages]]
type = "minhash_dedup"
priority = ["wiki", "news"]

[[stages]]
type = "language"
languages = ["eng"]

[[stages]]
type = "pii"

[output]
path = "out"
stages = ["normalize", "length", "minhash_dedup", "pii"]

# Train a small byte-level BPE on the curated text, then write versioned token shards.
[tokenize]
root = "tokens"
train_vocab_size = 1024
shard_tokens = 8192
validation_fraction = 0.05
validation_min_docs = 2       # small sources hold out two documents all the same
"#;

/// Name of the demo's training config, beside [`CONFIG`].
pub const TRAIN_CONFIG_FILE: &str = "train.toml";

/// The demo's training config: a short CPU run of a small model on the demo's token shards.
pub const TRAIN_CONFIG: &str = r#"# A short CPU training run of a small model on the demo's token shards.
[data]
root = "tokens"
seq_len = 64

[model]
preset = "tiny"
layers = 2
width = 64
context = 64

[optim]
lr = 3e-3
min_lr = 3e-4
warmup_steps = 10

[train]
steps = 60
batch_size = 8
eval_every = 20
eval_windows = 4
checkpoint_every = 30
out = "train"
device = "cpu"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_deterministic_and_its_config_is_valid() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_sample(a.path()).unwrap();
        write_sample(b.path()).unwrap();
        for f in [
            "input/news.jsonl",
            "input/forum.jsonl.gz",
            "input/notes/note-03.txt",
            "input/wiki.parquet",
        ] {
            assert_eq!(
                std::fs::read(a.path().join(f)).unwrap(),
                std::fs::read(b.path().join(f)).unwrap(),
                "{f}"
            );
        }
        let (config, text) = crate::config::Config::load(&a.path().join("refinery.toml")).unwrap();
        assert!(crate::config::validate(&config, &text).is_empty());
        let train = trainer::TrainConfig::load(&a.path().join(TRAIN_CONFIG_FILE)).unwrap();
        assert!(train.data.root.ends_with("tokens") && train.train.out.ends_with("train"));
    }
}
