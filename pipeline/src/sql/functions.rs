//! SQL functions over text: the rules of Refinery's stages, callable in any query (`refinery
//! query`, the reports). Each is a pure function of one text, so a query can measure a corpus
//! against a stage before a run adds the stage, or check a run's output against it.
//!
//! | function | returns |
//! |---|---|
//! | `normalize(text)` | the text as the `normalize` stage writes it |
//! | `gopher_quality(text)`, `gopher_repetition(text)`, `fineweb(text)`, `c4(text)` | the rule that drops the text (`gopher_quality.min_doc_words`, ...), NULL when it passes |
//! | `language(text)` | the detected language, as the `language` column (`eng`, `fra`, ...; `und` when none) |
//! | `language_score(text)` | the detection's confidence in 0..1, as the `language_score` column |
//! | `language_rule(text)` | the `language` stage's rule that drops the text (`language.other`, `language.low_score`), NULL when it passes |
//! | `redact_pii(text)` | the text with e-mail addresses, IP addresses and phone numbers replaced, as the `pii` stage writes it |
//! | `content_hash(text)` | xxh3-64 of the text in hex, as the documents' `content_hash` column |
//!
//! Alone, a text gets the default settings of the stage of the same name (`pii` for
//! `redact_pii`, `language` for the three language functions). Every function but
//! `content_hash` takes the stage's options as a second argument, a string literal with the
//! keys of the stage's config table, written as in a TOML inline table:
//! `gopher_quality(text, 'min_doc_words = 100, stop_words = ["the", "and"]')`,
//! `redact_pii(text, 'kinds = ["email"], placeholders = { email = "[mail]" }')`. A key the stage
//! does not have, or a bad value, is an error naming the key, as `refinery validate` names it in
//! a config; c4's `bad_words` path is relative to the current folder.
//!
//! A NULL text gives NULL.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, AsArray, Float64Array, StringArray};
use arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarUDF, Signature, SimpleScalarUDF, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;
use filters::Verdict;
use filters::normalize::normalize;
use toml::de::{DeValue, ValueDeserializer};

use crate::config::sections::name_key;
use crate::stages::StageConfig;

/// A function of a text that returns text, borrowed from its argument where it can be.
type TextFn = dyn for<'a> Fn(&'a str) -> Option<Cow<'a, str>> + Send + Sync;

/// A function of a text that returns a number.
type NumberFn = dyn Fn(&str) -> Option<f64> + Send + Sync;

/// A function's work on one text: the text or number it returns, `None` for NULL.
#[derive(Clone)]
enum Apply {
    /// Text values.
    Text(Arc<TextFn>),
    /// Number values.
    Number(Arc<NumberFn>),
}

impl Apply {
    /// The type of the function's values.
    fn data_type(&self) -> DataType {
        match self {
            Apply::Text(_) => DataType::Utf8,
            Apply::Number(_) => DataType::Float64,
        }
    }

    /// The function over a column of texts.
    fn array(&self, texts: &StringArray) -> ArrayRef {
        match self {
            Apply::Text(f) => Arc::new(
                texts
                    .iter()
                    .map(|t| t.and_then(&**f))
                    .collect::<StringArray>(),
            ),
            Apply::Number(f) => Arc::new(
                texts
                    .iter()
                    .map(|t| t.and_then(&**f))
                    .collect::<Float64Array>(),
            ),
        }
    }

    /// The function of one text.
    fn scalar(&self, text: Option<&str>) -> ScalarValue {
        match self {
            Apply::Text(f) => ScalarValue::Utf8(text.and_then(&**f).map(Cow::into_owned)),
            Apply::Number(f) => ScalarValue::Float64(text.and_then(&**f)),
        }
    }
}

/// The functions that take their stage's options, each with the `type` of that stage.
const WITH_OPTIONS: [(&str, &str); 9] = [
    ("normalize", "normalize"),
    ("gopher_quality", "gopher_quality"),
    ("gopher_repetition", "gopher_repetition"),
    ("fineweb", "fineweb"),
    ("c4", "c4"),
    ("language", "language"),
    ("language_score", "language"),
    ("language_rule", "language"),
    ("redact_pii", "pii"),
];

/// Registers every function of this module in `ctx`.
pub fn register(ctx: &SessionContext) {
    for (name, stage) in WITH_OPTIONS {
        let defaults = stage_function(name, stage, "").expect("a stage's defaults are valid");
        ctx.register_udf(sql_function(name, Some(stage), defaults));
    }
    let content_hash = text(|t| Some(Cow::Owned(crate::schema::content_hash(t))));
    ctx.register_udf(sql_function("content_hash", None, content_hash));
}

/// `f` as an [`Apply`] (a closure passed here gets the signature that borrows from its text).
fn text(f: impl for<'a> Fn(&'a str) -> Option<Cow<'a, str>> + Send + Sync + 'static) -> Apply {
    Apply::Text(Arc::new(f))
}

/// The function `name` of the stage of type `stage` with `options`: the keys of its config
/// table, written as in a TOML inline table, with or without the braces. The error names the
/// key.
fn stage_function(name: &str, stage: &str, options: &str) -> Result<Apply, String> {
    let body = options.trim();
    let body = body
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .unwrap_or(body);
    let table = format!("{{ {body} }}");
    let one_line = |e: &toml::de::Error| e.message().trim().replace('\n', ": ");
    let value = DeValue::parse(&table).map_err(|e| one_line(&e))?;
    let read = StageConfig::deserialize_as(stage, ValueDeserializer::from(value.clone()))
        .ok_or_else(|| format!("no stage of type `{stage}`"))?;
    let config = read.map_err(|e| {
        let mut message = one_line(&e);
        if let Some(span) = e.span() {
            name_key(&mut message, &value, span.start);
        }
        message
    })?;
    let problems = config.check();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let rule = |verdict: Option<Verdict>| verdict.map(|v| Cow::Borrowed(v.rule));
    Ok(match config {
        StageConfig::Normalize(c) => {
            let options = c.options();
            text(move |t| Some(normalize(t, &options)))
        }
        StageConfig::GopherQuality(c) => {
            let rules = c.rules();
            text(move |t| rule(rules.check(t)))
        }
        StageConfig::GopherRepetition(c) => {
            let rules = c.rules();
            text(move |t| rule(rules.check(t)))
        }
        StageConfig::Fineweb(c) => {
            let rules = c.rules();
            text(move |t| rule(rules.check(t)))
        }
        StageConfig::C4(c) => {
            let rules = c.rules()?;
            text(move |t| rule(rules.apply(t).verdict))
        }
        StageConfig::Language(c) => {
            let language = c.rule();
            match name {
                "language" => text(move |t| Some(Cow::Borrowed(language.detect(t).language))),
                "language_score" => {
                    Apply::Number(Arc::new(move |t| Some(language.detect(t).score)))
                }
                "language_rule" => text(move |t| rule(language.check(t).1)),
                _ => return Err(format!("the `{stage}` stage has no SQL function `{name}`")),
            }
        }
        StageConfig::Pii(c) => {
            let redactor = c.redactor();
            text(move |t| Some(redactor.redact(t).0.map_or(Cow::Borrowed(t), Cow::Owned)))
        }
        _ => return Err(format!("the `{stage}` stage has no SQL function")),
    })
}

/// A SQL function of one text that returns what `defaults` returns, or NULL where it gives
/// `None` (and for a NULL text). With a `stage`, an optional second argument gives that stage's
/// options (see [`stage_function`]); each options string is read once per query session.
fn sql_function(name: &'static str, stage: Option<&'static str>, defaults: Apply) -> ScalarUDF {
    let data_type = defaults.data_type();
    let one_text = TypeSignature::Exact(vec![DataType::Utf8]);
    let signature = match stage {
        Some(_) => Signature::one_of(
            vec![one_text, TypeSignature::Exact(vec![DataType::Utf8; 2])],
            Volatility::Immutable,
        ),
        None => Signature::new(one_text, Volatility::Immutable),
    };
    let configured: Mutex<HashMap<String, Apply>> = Mutex::default();
    let options = move |options: &ScalarValue| -> Result<Apply> {
        let (Some(stage), ScalarValue::Utf8(Some(options))) = (stage, options) else {
            return exec_err!("{name}: its options must be a string literal, not {options}");
        };
        let mut configured = configured.lock().expect("no panic while locked");
        if let Some(f) = configured.get(options) {
            return Ok(f.clone());
        }
        let f = stage_function(name, stage, options).map_err(|e| {
            DataFusionError::Execution(format!("{name}: bad options '{options}': {e}"))
        })?;
        configured.insert(options.clone(), f.clone());
        Ok(f)
    };
    let fun = move |args: &[ColumnarValue]| {
        let (texts, f) = match args {
            [texts] => (texts, defaults.clone()),
            [texts, ColumnarValue::Scalar(o)] => (texts, options(o)?),
            [_, ColumnarValue::Array(_)] => {
                return exec_err!("{name}: its options must be a string literal, not a column");
            }
            _ => return exec_err!("{name}: expected a text and at most one options string"),
        };
        match texts {
            ColumnarValue::Array(texts) => {
                let Some(texts) = texts.as_string_opt::<i32>() else {
                    return exec_err!("{name}: expected text, got {}", texts.data_type());
                };
                Ok(ColumnarValue::Array(f.array(texts)))
            }
            ColumnarValue::Scalar(ScalarValue::Utf8(text)) => {
                Ok(ColumnarValue::Scalar(f.scalar(text.as_deref())))
            }
            ColumnarValue::Scalar(other) => {
                exec_err!("{name}: expected text, got {}", other.data_type())
            }
        }
    };
    ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        name,
        signature,
        data_type,
        Arc::new(fun),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int32Array, RecordBatch};
    use arrow::datatypes::Float64Type;
    use datafusion::datasource::MemTable;
    use filters::language::LanguageRule;
    use filters::normalize::NormalizeOptions;
    use filters::pii::Redactor;
    use filters::quality::c4::C4;
    use filters::quality::fineweb::FineWeb;
    use filters::quality::gopher_quality::GopherQuality;
    use filters::quality::gopher_repetition::GopherRepetition;

    const NAMES: [&str; 10] = [
        "normalize",
        "gopher_quality",
        "gopher_repetition",
        "fineweb",
        "c4",
        "language_rule",
        "language",
        "language_score",
        "redact_pii",
        "content_hash",
    ];

    /// What a filter gives for a text, as the SQL function's value.
    fn rule(verdict: Option<Verdict>) -> Option<String> {
        verdict.map(|v| v.rule.to_string())
    }

    /// What each function of [`NAMES`] should give, from the filters called directly.
    fn direct(text: &str) -> Vec<Option<String>> {
        vec![
            Some(normalize(text, &NormalizeOptions::default()).into_owned()),
            rule(GopherQuality::default().check(text)),
            rule(GopherRepetition::default().check(text)),
            rule(FineWeb::default().check(text)),
            rule(C4::default().apply(text).verdict),
            rule(LanguageRule::default().check(text).1),
            Some(LanguageRule::default().detect(text).language.to_string()),
            Some(LanguageRule::default().detect(text).score.to_string()),
            Some(
                Redactor::default()
                    .redact(text)
                    .0
                    .unwrap_or(text.to_string()),
            ),
            Some(crate::schema::content_hash(text)),
        ]
    }

    fn texts() -> Vec<Option<&'static str>> {
        vec![
            Some(
                "The committee met on Tuesday to discuss the budget for the coming year. \
                 Members agreed that the library should be open longer, and that the park \
                 needs new benches. The chair thanked everyone for their work and closed the \
                 meeting at nine. A report will be sent to all residents with the minutes. \
                 The council will vote on the plan next month.",
            ),
            Some("too short"),
            Some("Le chat dort sur la table de la cuisine depuis ce matin, et il ne bouge pas."),
            Some("Call +44 20 7946 0958 or mail jo@example.org  \r\n\r\n\r\nThanks.\u{7}"),
            Some("lorem ipsum {\nfunction f() { return 1; }\nvar x = 1;\n}"),
            Some("same line\nsame line\nsame line\nsame line\nsame line\n"),
            Some("Cafe\u{301} au lait\u{a0}!"),
            None,
        ]
    }

    /// A session with the functions and a table `texts` (`i`, `t`) of [`texts`].
    fn session() -> SessionContext {
        let texts = texts();
        let batch = RecordBatch::try_from_iter([
            (
                "i",
                Arc::new(Int32Array::from_iter_values(0..texts.len() as i32)) as ArrayRef,
            ),
            ("t", Arc::new(StringArray::from(texts)) as ArrayRef),
        ])
        .unwrap();
        let ctx = crate::sql::session::session(512 << 20);
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
        ctx.register_table("texts", Arc::new(table)).unwrap();
        ctx
    }

    /// Runs `sql` in `ctx` with `params` bound to `$1`, ...
    fn sql(ctx: &SessionContext, sql: &str, params: Vec<ScalarValue>) -> Result<Vec<RecordBatch>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            ctx.sql(sql)
                .await?
                .with_param_values(params)?
                .collect()
                .await
        })
    }

    /// The columns of `batches` (text, or numbers as Rust writes them), row by row.
    fn rows(batches: &[RecordBatch]) -> Vec<Vec<Option<String>>> {
        let batch = arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap();
        (0..batch.num_rows())
            .map(|r| {
                let text = |c: &ArrayRef| match c.as_primitive_opt::<Float64Type>() {
                    Some(c) => c.is_valid(r).then(|| c.value(r).to_string()),
                    None => {
                        let c = c.as_string::<i32>();
                        c.is_valid(r).then(|| c.value(r).to_string())
                    }
                };
                batch.columns().iter().map(text).collect()
            })
            .collect()
    }

    /// Every function, over a column of texts (the array path) and over each text as a literal
    /// (the scalar path), gives what its filter gives called directly, and NULL for NULL.
    #[test]
    fn each_function_gives_what_its_filter_gives() {
        let texts = texts();
        let ctx = session();
        let calls = NAMES.map(|f| format!("{f}(t)")).join(", ");
        let column = sql(
            &ctx,
            &format!("SELECT {calls} FROM texts ORDER BY i"),
            vec![],
        );
        let want: Vec<Vec<Option<String>>> = texts
            .iter()
            .map(|t| t.map_or(vec![None; NAMES.len()], direct))
            .collect();
        assert_eq!(rows(&column.unwrap()), want);
        let literal = format!("SELECT {}", calls.replace("(t)", "($1)"));
        for text in texts.iter().flatten() {
            let batches = sql(&ctx, &literal, vec![ScalarValue::from(*text)]).unwrap();
            assert_eq!(rows(&batches), vec![direct(text)], "{text:?}");
        }
        // The samples reach both outcomes of every rule function.
        for f in 1..6 {
            let dropped = want.iter().filter(|row| row[f].is_some()).count();
            assert!(dropped > 0 && dropped < texts.len() - 1, "{}", NAMES[f]);
        }
    }

    /// Each function's second argument configures it as the same keys configure its stage: the
    /// results are those of the filter built with those settings, they differ from the
    /// defaults' on some sample (so the options are not ignored), and an options string
    /// written with braces is the same as one without.
    #[test]
    fn options_configure_each_function_as_its_stage() {
        type Direct = Box<dyn Fn(&str) -> Option<String>>;
        let gopher_quality = GopherQuality {
            min_doc_words: Some(2),
            stop_words: vec!["chat".into(), "la".into()],
            ..Default::default()
        };
        let gopher_repetition = GopherRepetition {
            dup_line_frac: None,
            dup_line_char_frac: None,
            top_n_grams: vec![(2, 0.5)],
            ..Default::default()
        };
        let fineweb = FineWeb {
            min_line_punct_ratio: None,
            short_line_length: 5,
            ..Default::default()
        };
        let c4 = C4 {
            min_num_sentences: None,
            filter_curly_bracket: false,
            ..Default::default()
        };
        let language = LanguageRule {
            languages: vec!["fra".into(), "eng".into()],
            min_score: 0.0,
            ..Default::default()
        };
        let detection = LanguageRule {
            max_chars: 4,
            ..Default::default()
        };
        let scoring = detection.clone();
        let redactor = Redactor {
            placeholders: [Some("[mail]".into()), None, None, None],
        };
        let normalize_options = NormalizeOptions {
            whitespace: false,
            ..Default::default()
        };
        let cases: Vec<(&str, &str, Direct)> = vec![
            (
                "normalize",
                "whitespace = false",
                Box::new(move |t| Some(normalize(t, &normalize_options).into_owned())),
            ),
            (
                "gopher_quality",
                r#"min_doc_words = 2, stop_words = ["chat", "la"]"#,
                Box::new(move |t| rule(gopher_quality.check(t))),
            ),
            (
                "gopher_repetition",
                "dup_line_frac = 0, dup_line_char_frac = 0, top_n_grams = [[2, 0.5]]",
                Box::new(move |t| rule(gopher_repetition.check(t))),
            ),
            (
                "fineweb",
                "min_line_punct_ratio = 0, short_line_length = 5",
                Box::new(move |t| rule(fineweb.check(t))),
            ),
            (
                "c4",
                "min_num_sentences = 0, filter_curly_bracket = false",
                Box::new(move |t| rule(c4.apply(t).verdict)),
            ),
            (
                "language_rule",
                r#"languages = ["fra", "eng"], min_score = 0"#,
                Box::new(move |t| rule(language.check(t).1)),
            ),
            (
                "language",
                "max_chars = 4",
                Box::new(move |t| Some(detection.detect(t).language.to_string())),
            ),
            (
                "language_score",
                "max_chars = 4",
                Box::new(move |t| Some(scoring.detect(t).score.to_string())),
            ),
            (
                "redact_pii",
                r#"kinds = ["email"], placeholders = { email = "[mail]" }"#,
                Box::new(move |t| Some(redactor.redact(t).0.unwrap_or(t.to_string()))),
            ),
        ];
        let ctx = session();
        let texts = texts();
        for (name, options, direct) in cases {
            let query = format!(
                "SELECT {name}(t, '{options}'), {name}(t, '{{ {options} }}'), {name}(t) \
                 FROM texts ORDER BY i"
            );
            let got = rows(&sql(&ctx, &query, vec![]).unwrap());
            let want: Vec<Option<String>> = texts.iter().map(|t| t.and_then(&direct)).collect();
            let configured: Vec<Option<String>> = got.iter().map(|r| r[0].clone()).collect();
            let braced: Vec<Option<String>> = got.iter().map(|r| r[1].clone()).collect();
            let defaults: Vec<Option<String>> = got.iter().map(|r| r[2].clone()).collect();
            assert_eq!(configured, want, "{name}");
            assert_eq!(braced, want, "{name} with braces");
            assert_ne!(configured, defaults, "{name}: the options change nothing");
        }
    }

    /// Options a stage would refuse in a config are refused with the key named; options that
    /// are not a literal string are refused too.
    #[test]
    fn bad_options_are_errors_naming_the_key() {
        let ctx = session();
        let cases = [
            (
                "gopher_quality(t, 'min_doc_wrds = 3')",
                "unknown field `min_doc_wrds`",
            ),
            (
                "gopher_quality(t, 'min_doc_words = \"many\"')",
                "`min_doc_words`: invalid type",
            ),
            (
                "fineweb(t, 'short_line_length = -1')",
                "`short_line_length`",
            ),
            (
                "redact_pii(t, 'kinds = [\"ssn\"]')",
                "unknown PII kind `ssn`",
            ),
            (
                "language_rule(t, 'languages = [\"en\"]')",
                "unknown language `en`",
            ),
            (
                "gopher_repetition(t, 'top_n_grams = [[0, 0.2]]')",
                "at least 1",
            ),
            (
                "c4(t, 'bad_words = \"/no/such/list\"')",
                "cannot read bad words /no/such/list",
            ),
            ("normalize(t, 'nfc = ')", "bad options 'nfc = '"),
            ("normalize(t, t)", "must be a string literal, not a column"),
            ("normalize(t, NULL)", "must be a string literal"),
        ];
        for (call, expected) in cases {
            let error = sql(&ctx, &format!("SELECT {call} FROM texts"), vec![])
                .expect_err(call)
                .to_string();
            assert!(error.contains(expected), "{call}: {error}");
        }
        let error = sql(
            &ctx,
            "SELECT content_hash(t, 'seed = 1') FROM texts",
            vec![],
        );
        assert!(error.is_err(), "content_hash takes no options");
    }
}
