//! Type errors of every config section at once. Serde stops at a document's first error; this
//! deserializes each section (`[run]`, every `[[sources]]` and `[[stages]]` entry, `[output]`,
//! `[tokenize]`) on its own, so that a config with mistakes in several sections reports them all
//! in one go, and names every unknown section. Within one section the first error still hides
//! the rest. An error is on the line of the key it is about, inside a `[[stages]]` entry too, and
//! names that key when serde's message names only the value.

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
            "sources" => errors.extend(section.items().filter_map(|s| s.check::<SourceConfig>())),
            "stages" => errors.extend(section.items().filter_map(|stage| stage.check_stage())),
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
    /// The section's error, if it has one, at the line serde names or else the section's own.
    fn check<T: DeserializeOwned>(&self) -> Option<ConfigError> {
        let e = T::deserialize(ValueDeserializer::from(self.value.clone())).err()?;
        Some(self.error(&e))
    }

    /// A `[[stages]]` entry's error. The table is read as the config of its `type` (see
    /// [`StageConfig::deserialize_as`]), so that the error is on the line of its key; a
    /// missing or unknown type gets the tagged enum's own error, on the stage's line.
    fn check_stage(&self) -> Option<ConfigError> {
        if let DeValue::Table(table) = self.value.get_ref()
            && let Some(ty) = table.get("type")
            && let DeValue::String(ty) = ty.get_ref()
        {
            let mut rest = table.clone();
            rest.remove("type");
            let rest = Spanned::new(self.value.span(), DeValue::Table(rest));
            if let Some(read) = StageConfig::deserialize_as(ty, ValueDeserializer::from(rest)) {
                return read.err().map(|e| self.error(&e));
            }
        }
        self.check::<StageConfig>()
    }

    /// `e` at the line serde names, led by the key whose value it is about when the message does
    /// not name it (a type error names only the value); or else at the section's own line.
    fn error(&self, e: &toml::de::Error) -> ConfigError {
        let mut error = ConfigError::from_toml(e, self.text);
        match e.span() {
            Some(span) => name_key(&mut error.message, self.value, span.start),
            None => error.line = Some(line_of(self.text, self.value.span().start)),
        }
        error
    }

    /// Each entry of an array of tables (none for a lone table, which is left to the document's
    /// own error).
    fn items(&self) -> impl Iterator<Item = Section<'_, '_>> {
        let items = match self.value.get_ref() {
            DeValue::Array(items) => items.as_ref(),
            _ => &[],
        };
        items.iter().map(|value| Section { value, ..*self })
    }
}

/// Leads `message`, an error at byte `offset` of a TOML text, with the key of `table` whose
/// value holds that byte, unless the message names the key already (a type error names only the
/// value).
pub(crate) fn name_key(message: &mut String, table: &Spanned<DeValue<'_>>, offset: usize) {
    let DeValue::Table(entries) = table.get_ref() else {
        return;
    };
    let key = entries
        .iter()
        .find(|(_, value)| value.span().contains(&offset))
        .map(|(key, _)| key.get_ref().as_ref());
    if let Some(key) = key
        && !message.contains(&format!("`{key}`"))
        && !message.starts_with(&format!("{key} "))
    {
        *message = format!("`{key}`: {message}");
    }
}
