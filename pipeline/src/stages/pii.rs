//! `pii`: replaces e-mail addresses, IP addresses and phone numbers with typed placeholders
//! ([`filters::pii`]). Drops nothing; each redacted document gets an `edits` row
//! (`pii.redacted`) with the number of replacements per kind. Matched values are never logged
//! or stored.

use std::collections::BTreeMap;

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use filters::pii::{PiiCounts, PiiKind, Redactor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{text_column, with_edited_texts};
use crate::stage::{Edit, Stage, StageError, StageOutput};

/// Config of the `pii` stage.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    /// Stage name. Default `pii`.
    pub name: Option<String>,
    /// Kinds to redact: `email`, `ipv4`, `ipv6`, `phone`. Default all four.
    pub kinds: Vec<String>,
    /// Placeholder per kind. Defaults `<EMAIL>`, `<IPV4>`, `<IPV6>`, `<PHONE>`.
    pub placeholders: BTreeMap<String, String>,
}

impl Default for PiiConfig {
    fn default() -> Self {
        Self {
            name: None,
            kinds: PiiKind::ALL.map(|k| k.name().to_string()).to_vec(),
            placeholders: BTreeMap::new(),
        }
    }
}

fn kind_named(name: &str) -> Option<PiiKind> {
    PiiKind::ALL.into_iter().find(|k| k.name() == name)
}

impl PiiConfig {
    /// Problems: unknown kinds.
    pub fn check(&self) -> Vec<String> {
        let names = self.kinds.iter().chain(self.placeholders.keys());
        let unknown: Vec<String> = names
            .filter(|n| kind_named(n).is_none())
            .map(|n| format!("unknown PII kind `{n}` (known: email, ipv4, ipv6, phone)"))
            .collect();
        if unknown.is_empty() && self.kinds.is_empty() {
            return vec!["`kinds` is empty: nothing to redact".to_string()];
        }
        unknown
    }

    /// Builds the stage.
    pub fn build(&self, name: String) -> Pii {
        Pii {
            name,
            redactor: self.redactor(),
        }
    }

    /// The redactor as configured: the listed kinds, each with its placeholder.
    pub fn redactor(&self) -> Redactor {
        let placeholders = PiiKind::ALL.map(|kind| {
            self.kinds.iter().any(|k| k == kind.name()).then(|| {
                let custom = self.placeholders.get(kind.name());
                custom
                    .map_or(kind.default_placeholder(), String::as_str)
                    .to_string()
            })
        });
        Redactor { placeholders }
    }
}

/// The running `pii` stage.
pub struct Pii {
    name: String,
    redactor: Redactor,
}

fn detail(counts: &PiiCounts) -> String {
    let fields: Vec<String> = PiiKind::ALL
        .iter()
        .map(|k| format!(r#""{}":{}"#, k.name(), counts.get(*k)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

impl Stage for Pii {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, batch: &RecordBatch) -> Result<StageOutput, StageError> {
        let texts = text_column(batch, &self.name)?;
        let redacted: Vec<(Option<String>, PiiCounts)> = (0..texts.len())
            .into_par_iter()
            .map(|i| self.redactor.redact(texts.value(i)))
            .collect();
        let edits: Vec<Edit> = redacted
            .iter()
            .enumerate()
            .filter_map(|(row, (text, counts))| {
                text.as_ref().map(|after| Edit {
                    row,
                    rule: "pii.redacted",
                    bytes_before: texts.value(row).len() as u64,
                    bytes_after: after.len() as u64,
                    detail: detail(counts),
                })
            })
            .collect();
        let kept = with_edited_texts(batch, texts, |i| redacted[i].0.as_deref())?;
        Ok(StageOutput {
            edits,
            ..StageOutput::keep_all(&kept)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::tests::docs;

    #[test]
    fn redacts_and_counts_without_dropping() {
        let cfg: PiiConfig =
            toml::from_str("kinds = ['email', 'phone']\nplaceholders = { email = '[email]' }")
                .unwrap();
        assert!(cfg.check().is_empty());
        let batch = docs(&[
            "write to a@b.org or 555-123-4567",
            "nothing here",
            "ip 8.8.8.8",
        ]);
        let out = cfg.build("pii".into()).process(&batch).unwrap();
        let texts = text_column(&out.kept, "pii").unwrap();
        assert_eq!(
            texts.iter().flatten().collect::<Vec<_>>(),
            ["write to [email] or <PHONE>", "nothing here", "ip 8.8.8.8"]
        );
        assert_eq!(out.edits.len(), 1);
        assert_eq!(
            out.edits[0].detail,
            r#"{"email":1,"ipv4":0,"ipv6":0,"phone":1}"#
        );
        assert!(!out.edits[0].detail.contains("a@b.org"));
    }

    #[test]
    fn unknown_kinds_are_config_errors() {
        let cfg: PiiConfig = toml::from_str("kinds = ['ssn']").unwrap();
        assert!(cfg.check()[0].contains("unknown PII kind `ssn`"));
    }
}
