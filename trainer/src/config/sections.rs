//! Type errors of every training-config section at once. Serde stops at a document's first
//! error; this deserializes `[data]`, `[model]`, `[optim]` and `[train]` each on its own, so a
//! config with mistakes in several sections reports them all in one go, and names every unknown
//! section.

use serde::Deserialize;
use toml::de::{DeTable, ValueDeserializer};

use super::{DataConfig, ModelConfig, OptimConfig, RunConfig};

/// The config's sections, in the order of [`super::TrainConfig`]'s fields.
const SECTIONS: &[&str] = &["data", "model", "optim", "train"];

/// Every problem serde finds in `text`, as `line N: message`, in the order of the text, unknown
/// sections included; syntax errors (which leave no sections to check) come all together, as
/// the parser recovers from them.
pub(super) fn section_errors(text: &str) -> Vec<String> {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    let mut errors: Vec<(Option<usize>, String)> = syntax.iter().map(located).collect();
    if errors.is_empty() {
        for (key, value) in doc.get_ref() {
            let de = ValueDeserializer::from(value.clone());
            let error = match key.get_ref().as_ref() {
                "data" => DataConfig::deserialize(de).err(),
                "model" => ModelConfig::deserialize(de).err(),
                "optim" => OptimConfig::deserialize(de).err(),
                "train" => RunConfig::deserialize(de).err(),
                unknown => {
                    // Serde's own wording, so that the document's error matches it.
                    let e = <toml::de::Error as serde::de::Error>::unknown_field(unknown, SECTIONS);
                    errors.push((Some(key.span().start), e.message().trim().to_string()));
                    None
                }
            };
            errors.extend(error.as_ref().map(located));
        }
    }
    errors.sort_by_key(|(offset, _)| *offset);
    errors
        .into_iter()
        .map(|(offset, message)| describe(offset, &message, text))
        .collect()
}

/// `line N: message` for an error with a position, the message alone otherwise.
pub(super) fn describe_error(e: &toml::de::Error, text: &str) -> String {
    let (offset, message) = located(e);
    describe(offset, &message, text)
}

fn located(e: &toml::de::Error) -> (Option<usize>, String) {
    (e.span().map(|s| s.start), e.message().trim().to_string())
}

fn describe(offset: Option<usize>, message: &str, text: &str) -> String {
    match offset {
        Some(offset) => {
            let line = text.as_bytes()[..offset.min(text.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            format!("line {line}: {message}")
        }
        None => message.to_string(),
    }
}
