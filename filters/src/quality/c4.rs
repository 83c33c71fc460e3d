//! C4's rules (Raffel et al. 2020), as datatrove's `C4QualityFilter` with its defaults: lines
//! are removed (no terminal punctuation, fewer than 3 words, a word over 1,000 characters,
//! "javascript", cookie and policy notices; citation markers are cut), and the document is
//! dropped for "lorem ipsum", a curly bracket, fewer than 5 sentences in the kept lines, or (when
//! a list is given) a bad word.

use regex::Regex;

use crate::Verdict;
use crate::pytext::{char_len, splitlines, strip};
use crate::words::py_isspace;

use super::sentences::count_sentences;

/// Lines containing one of these (lower-cased) are removed.
const POLICY_SUBSTRINGS: [&str; 6] = [
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
];

/// The C4 rules; `None` or `false` switches one off. Defaults are the published ones.
#[derive(Debug, Clone)]
pub struct C4 {
    /// Cut `[1]`, `[edit]` and `[citation needed]` markers from lines.
    pub remove_citations: bool,
    /// Remove lines not ending in `.`, `?`, `!`, `"` or `'` (or ending in `...`).
    pub filter_no_terminal_punct: bool,
    /// Fewest sentences in the kept lines (5).
    pub min_num_sentences: Option<usize>,
    /// Fewest words in a kept line (3).
    pub min_words_per_line: Option<usize>,
    /// Remove lines with a word longer than this, in characters (1,000).
    pub max_word_length: Option<usize>,
    /// Drop documents containing "lorem ipsum".
    pub filter_lorem_ipsum: bool,
    /// Remove lines mentioning "javascript".
    pub filter_javascript: bool,
    /// Drop documents with `{` in a kept line.
    pub filter_curly_bracket: bool,
    /// Remove cookie and terms-of-use lines.
    pub filter_policy: bool,
    /// Drop documents containing one of these words (whole words, any case). Off by default.
    pub bad_words: Option<BadWords>,
}

impl Default for C4 {
    fn default() -> Self {
        Self {
            remove_citations: true,
            filter_no_terminal_punct: true,
            min_num_sentences: Some(5),
            min_words_per_line: Some(3),
            max_word_length: Some(1000),
            filter_lorem_ipsum: true,
            filter_javascript: true,
            filter_curly_bracket: true,
            filter_policy: true,
            bad_words: None,
        }
    }
}

/// A bad-words list compiled into one whole-word, case-insensitive matcher.
#[derive(Debug, Clone)]
pub struct BadWords(Regex);

impl BadWords {
    /// Compiles `words` (blank entries ignored); `None` when the list is empty.
    pub fn new<'a>(words: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let alternatives: Vec<String> = words
            .into_iter()
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(regex::escape)
            .collect();
        if alternatives.is_empty() {
            return None;
        }
        let pattern = format!(r"(?i)(?:^|\W)(?:{})(?:$|\W)", alternatives.join("|"));
        Regex::new(&pattern).ok().map(Self)
    }
}

/// What C4 decided for one document.
#[derive(Debug, Clone, PartialEq)]
pub struct C4Outcome {
    /// The rule that dropped the document, if any.
    pub verdict: Option<Verdict>,
    /// The text after line removal (lines stripped and joined by `\n`), when the document is
    /// kept and the text changed.
    pub edited: Option<String>,
    /// Lines in the document.
    pub lines: usize,
    /// Lines removed.
    pub lines_removed: usize,
}

const CITATION: &str = r"\[\d*\]|\[edit\]|\[citation needed\]";

impl C4 {
    /// Applies the rules to `text`.
    pub fn apply(&self, text: &str) -> C4Outcome {
        let lines = splitlines(text);
        let mut kept: Vec<std::borrow::Cow<str>> = Vec::with_capacity(lines.len());
        let mut sentences = 0;
        let drop = |verdict| C4Outcome {
            verdict: Some(verdict),
            edited: None,
            lines: lines.len(),
            lines_removed: 0,
        };
        for raw in &lines {
            let line = strip(raw);
            let words: Vec<&str> = line.split(py_isspace).filter(|w| !w.is_empty()).collect();
            if self
                .max_word_length
                .is_some_and(|max| words.iter().any(|w| char_len(w) > max))
            {
                continue;
            }
            let line = if self.remove_citations && line.contains('[') {
                citation().replace_all(line, "")
            } else {
                std::borrow::Cow::Borrowed(line)
            };
            if self.filter_no_terminal_punct
                && (!line.ends_with(['.', '?', '!', '"', '\'']) || line.ends_with("..."))
            {
                continue;
            }
            if self.min_words_per_line.is_some_and(|min| words.len() < min) {
                continue;
            }
            let lower = line.to_lowercase();
            if self.filter_lorem_ipsum && lower.contains("lorem ipsum") {
                return drop(super::failed("c4.lorem_ipsum", 1.0, 0.0));
            }
            if self.filter_javascript && lower.contains("javascript") {
                continue;
            }
            if self.filter_curly_bracket && line.contains('{') {
                return drop(super::failed("c4.curly_bracket", 1.0, 0.0));
            }
            if self.filter_policy && POLICY_SUBSTRINGS.iter().any(|p| lower.contains(p)) {
                continue;
            }
            if self.min_num_sentences.is_some() {
                sentences += count_sentences(&line);
            }
            kept.push(line);
        }
        if let Some(min) = self.min_num_sentences
            && sentences < min
        {
            return drop(super::failed(
                "c4.too_few_sentences",
                sentences as f64,
                min as f64,
            ));
        }
        if let Some(bad) = &self.bad_words
            && kept.iter().any(|l| bad.0.is_match(l))
        {
            return drop(super::failed("c4.bad_words", 1.0, 0.0));
        }
        let joined = kept.join("\n");
        let result = strip(&joined);
        let lines_removed = lines.len() - kept.len();
        C4Outcome {
            verdict: None,
            edited: (result != text).then(|| result.to_string()),
            lines: lines.len(),
            lines_removed,
        }
    }
}

fn citation() -> &'static Regex {
    static RE: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(CITATION).expect("the citation pattern is valid"));
    &RE
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "This is a fine sentence. It has words.\nAnother line is here too. Yes it is.\nThe third line ends well.\n";

    fn rule(c4: &C4, text: &str) -> Option<&'static str> {
        c4.apply(text).verdict.map(|v| v.rule)
    }

    #[test]
    fn removes_lines_and_records_the_edit() {
        let text = format!(
            "Menu\n{GOOD}Please enable JavaScript to view this page.\nWe use cookies on this site ok.\nSee [1] the note here."
        );
        let out = C4::default().apply(&text);
        assert_eq!(out.verdict, None);
        assert_eq!((out.lines, out.lines_removed), (7, 3));
        let edited = out.edited.unwrap();
        assert!(
            edited.ends_with("it is.\nThe third line ends well.\nSee  the note here."),
            "{edited}"
        );
        assert!(!edited.contains("Menu") && !edited.contains("cookies"));
    }

    #[test]
    fn document_rules() {
        let c4 = C4::default();
        assert_eq!(rule(&c4, GOOD), None);
        assert_eq!(
            rule(&c4, "Too short. Really."),
            Some("c4.too_few_sentences")
        );
        let lorem = format!("{GOOD}Lorem ipsum dolor sit amet.");
        assert_eq!(rule(&c4, &lorem), Some("c4.lorem_ipsum"));
        let code = format!("{GOOD}if x then {{ y }} else z.");
        assert_eq!(rule(&c4, &code), Some("c4.curly_bracket"));
        let bad = C4 {
            bad_words: BadWords::new(["frobnicate"]),
            ..C4::default()
        };
        assert_eq!(rule(&bad, GOOD), None);
        let text = format!("{GOOD}They will Frobnicate the thing.");
        assert_eq!(rule(&bad, &text), Some("c4.bad_words"));
    }
}
