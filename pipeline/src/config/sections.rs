//! Type errors of every config section at once. Serde stops at a document's first error; this
//! deserializes each section (`[run]`, every `[[sources]]` and `[[stages]]` entry, `[output]`,
//! `[tokenize]`) on its own, so that a config with mistakes in several sections reports them all
//! in one go, and names every unknown section. Within one section the first error still hides
//! the rest.

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::validate::line_of;
use super::{ConfigError, OutputConfig, RunConfig, SourceConfig};
use crate::stages::StageConfig;
use crate::tokenize::TokenizeConfig;

/// The config's sections, in the order of [`super::Config`]'s fields.
const SECTIONS: &[&str] = &["run", "sources", "stages", "output", "tokenize"];

/// Every problem serde finds in `text`, section by section, in the order of the text; syntax
/// errors (which leave no sections to check) come all together, as the parser recovers from them.
pub fn section_errors(text: &str) -> Vec<ConfigError> {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return syntax
            .iter()
            .map(|e| ConfigError::from_toml(e, text))
            .collect();
    }
    let mut errors = Vec::new();
    for (key, value) in doc.get_ref() {
        let section = Section { text, value };
        match key.get_ref().as_ref() {
            "run" => errors.extend(section.check::<RunConfig>()),
            "sources" => errors.extend(section.each::<SourceConfig>()),
            "stages" => errors.extend(section.each::<StageConfig>()),
            "output" => errors.extend(section.check::<OutputConfig>()),
            "tokenize" => errors.extend(section.check::<TokenizeConfig>()),
            unknown => {
                // Serde's own wording, so that the document's error matches it.
                let e = <toml::de::Error as serde::de::Error>::unknown_field(unknown, SECTIONS);
                errors.push(ConfigError {
                    line: Some(line_of(text, key.span().start)),
                    message: e.message().trim().to_string(),
                });
            }
        }
    }
    errors.sort_by_key(|e| e.line);
    errors
}

/// One section's value in the config's text.
struct Section<'a, 'i> {
    text: &'a str,
    value: &'a Spanned<DeValue<'i>>,
}

impl Section<'_, '_> {
    /// The section's error, if it has one, at the line serde names or else the section's own
    /// (errors inside a `type`-tagged stage come without a position).
    fn check<T: DeserializeOwned>(&self) -> Option<ConfigError> {
        let e = T::deserialize(ValueDeserializer::from(self.value.clone())).err()?;
        let mut error = ConfigError::from_toml(&e, self.text);
        if error.line.is_none() {
            error.line = Some(line_of(self.text, self.value.span().start));
        }
        Some(error)
    }

    /// The errors of each entry of an array of tables (a lone table is left to the document's
    /// own error).
    fn each<T: DeserializeOwned>(&self) -> Vec<ConfigError> {
        let DeValue::Array(items) = self.value.get_ref() else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|value| Section { value, ..*self }.check::<T>())
            .collect()
    }
}
