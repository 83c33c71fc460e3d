//! SQL functions over text: the rules of Refinery's stages, callable in any query (`refinery
//! query`, the reports), each with the default settings of the stage of the same name. Each is a
//! pure function of one text, so a query can measure a corpus against a stage before a run adds
//! the stage, or check a run's output against it.
//!
//! | function | returns |
//! |---|---|
//! | `normalize(text)` | the text as the `normalize` stage writes it |
//! | `gopher_quality(text)`, `gopher_repetition(text)`, `fineweb(text)`, `c4(text)` | the rule that drops the text (`gopher_quality.min_doc_words`, ...), NULL when it passes |
//! | `language(text)` | the detected language, as the `language` column (`eng`, `fra`, ...; `und` when none) |
//! | `redact_pii(text)` | the text with e-mail addresses, IP addresses and phone numbers replaced, as the `pii` stage writes it |
//! | `content_hash(text)` | xxh3-64 of the text in hex, as the documents' `content_hash` column |
//!
//! A NULL text gives NULL.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use filters::language::LanguageRule;
use filters::normalize::{NormalizeOptions, normalize};
use filters::pii::Redactor;
use filters::quality::c4::C4;
use filters::quality::fineweb::FineWeb;
use filters::quality::gopher_quality::GopherQuality;
use filters::quality::gopher_repetition::GopherRepetition;

/// Registers every function of this module in `ctx`.
pub fn register(ctx: &SessionContext) {
    let options = NormalizeOptions::default();
    let gopher_quality = GopherQuality::default();
    let gopher_repetition = GopherRepetition::default();
    let fineweb = FineWeb::default();
    let c4 = C4::default();
    let language = LanguageRule::default();
    let redactor = Redactor::default();
    let rule = |rule: &'static str| Cow::Borrowed(rule);
    for udf in [
        text_function("normalize", move |t| Some(normalize(t, &options))),
        text_function("gopher_quality", move |t| {
            gopher_quality.check(t).map(|v| rule(v.rule))
        }),
        text_function("gopher_repetition", move |t| {
            gopher_repetition.check(t).map(|v| rule(v.rule))
        }),
        text_function("fineweb", move |t| fineweb.check(t).map(|v| rule(v.rule))),
        text_function("c4", move |t| c4.apply(t).verdict.map(|v| rule(v.rule))),
        text_function("language", move |t| Some(rule(language.detect(t).language))),
        text_function("redact_pii", move |t| {
            Some(redactor.redact(t).0.map_or(Cow::Borrowed(t), Cow::Owned))
        }),
        text_function("content_hash", |t| {
            Some(Cow::Owned(crate::schema::content_hash(t)))
        }),
    ] {
        ctx.register_udf(udf);
    }
}

/// A SQL function of one text that returns text, or NULL where `apply` gives `None` (and for a
/// NULL text).
fn text_function(
    name: &str,
    apply: impl for<'a> Fn(&'a str) -> Option<Cow<'a, str>> + Send + Sync + 'static,
) -> ScalarUDF {
    let owned = name.to_string();
    let fun = move |args: &[ColumnarValue]| match args {
        [ColumnarValue::Array(texts)] => {
            let Some(texts) = texts.as_string_opt::<i32>() else {
                return exec_err!("{owned}: expected text, got {}", texts.data_type());
            };
            let out: StringArray = texts.iter().map(|t| t.and_then(&apply)).collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }
        [ColumnarValue::Scalar(ScalarValue::Utf8(text))] => Ok(ColumnarValue::Scalar(
            ScalarValue::Utf8(text.as_deref().and_then(&apply).map(Cow::into_owned)),
        )),
        _ => exec_err!("{owned}: expected one text argument"),
    };
    create_udf(
        name,
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(fun),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int32Array, RecordBatch};
    use datafusion::datasource::MemTable;

    const NAMES: [&str; 8] = [
        "normalize",
        "gopher_quality",
        "gopher_repetition",
        "fineweb",
        "c4",
        "language",
        "redact_pii",
        "content_hash",
    ];

    /// What each function of [`NAMES`] should give, from the filters called directly.
    fn direct(text: &str) -> Vec<Option<String>> {
        let rule = |v: Option<filters::Verdict>| v.map(|v| v.rule.to_string());
        vec![
            Some(normalize(text, &NormalizeOptions::default()).into_owned()),
            rule(GopherQuality::default().check(text)),
            rule(GopherRepetition::default().check(text)),
            rule(FineWeb::default().check(text)),
            rule(C4::default().apply(text).verdict),
            Some(LanguageRule::default().detect(text).language.to_string()),
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

    /// Every function, over a column of texts (the array path) and over each text as a literal
    /// (the scalar path), gives what its filter gives called directly, and NULL for NULL.
    #[test]
    fn each_function_gives_what_its_filter_gives() {
        let texts = texts();
        let batch = RecordBatch::try_from_iter([
            (
                "i",
                Arc::new(Int32Array::from_iter_values(0..texts.len() as i32)) as ArrayRef,
            ),
            ("t", Arc::new(StringArray::from(texts.clone())) as ArrayRef),
        ])
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ctx = crate::lineage::catalog::session();
        let calls = NAMES.map(|f| format!("{f}(t)")).join(", ");
        let (column, literals) = rt.block_on(async {
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
            ctx.register_table("texts", Arc::new(table)).unwrap();
            let sql = format!("SELECT {calls} FROM texts ORDER BY i");
            let column = crate::sql::query(&ctx, &sql).await.unwrap();
            let mut literals = Vec::new();
            for text in texts.iter().flatten() {
                let sql = format!("SELECT {}", calls.replace("(t)", "($1)"));
                let df = ctx.sql(&sql).await.unwrap();
                let df = df
                    .with_param_values(vec![ScalarValue::from(*text)])
                    .unwrap();
                literals.push(df.collect().await.unwrap());
            }
            (column, literals)
        });
        let rows = |batches: &[RecordBatch]| -> Vec<Vec<Option<String>>> {
            let batch = arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap();
            (0..batch.num_rows())
                .map(|r| {
                    batch
                        .columns()
                        .iter()
                        .map(|c| {
                            let c = c.as_string::<i32>();
                            c.is_valid(r).then(|| c.value(r).to_string())
                        })
                        .collect()
                })
                .collect()
        };
        let want: Vec<Vec<Option<String>>> = texts
            .iter()
            .map(|t| t.map_or(vec![None; NAMES.len()], direct))
            .collect();
        assert_eq!(rows(&column), want);
        for (batches, text) in literals.iter().zip(texts.iter().flatten()) {
            assert_eq!(rows(batches), vec![direct(text)], "{text:?}");
        }
        // The samples reach both outcomes of every rule function.
        for f in 1..5 {
            let dropped = want.iter().filter(|row| row[f].is_some()).count();
            assert!(dropped > 0 && dropped < texts.len() - 1, "{}", NAMES[f]);
        }
    }
}
