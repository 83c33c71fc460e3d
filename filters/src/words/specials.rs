//! spaCy's English tokenizer special cases: strings tokenized by a fixed rule (`don't` is `do`,
//! `n't`; `U.S.` stays whole). Generated from `spacy.blank("en").tokenizer.rules`.
//!
//! Like spaCy, special cases apply twice: to whole chunks while affixes are peeled, and then
//! (spaCy's special-case matcher) to runs of adjacent tokens that spell a special case, such as
//! `t` `.` in `t.Fatal(err)`, which become `t.`.

use std::collections::HashMap;
use std::sync::LazyLock;

/// Each special case's token lengths in bytes, by the whole string (the tokens concatenated).
static SPECIALS: LazyLock<HashMap<String, Vec<usize>>> = LazyLock::new(|| {
    include_str!("en_special_cases.tsv")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let lens = line.split('\t').map(str::len).collect();
            (line.replace('\t', ""), lens)
        })
        .collect()
});

/// Special cases that tokenize into several tokens without the special-case rules, with the
/// byte lengths of those tokens: what the matcher looks for.
static SPLIT_SPECIALS: LazyLock<(HashMap<&'static str, Vec<usize>>, usize)> = LazyLock::new(|| {
    let mut patterns = HashMap::new();
    let mut longest = 0;
    for key in SPECIALS.keys() {
        let mut tokens = Vec::new();
        super::tokenize_chunk(key, false, &mut tokens);
        if tokens.len() > 1 {
            longest = longest.max(tokens.len());
            patterns.insert(key.as_str(), tokens.iter().map(|t| t.len()).collect());
        }
    }
    (patterns, longest)
});

/// Whether `s` is a special case.
pub(super) fn is_special(s: &str) -> bool {
    SPECIALS.contains_key(s)
}

/// Pushes `s`'s special-case tokens and returns true, or returns false if it is not one.
pub(super) fn emit<'a>(s: &'a str, out: &mut Vec<&'a str>) -> bool {
    let Some(lens) = SPECIALS.get(s) else {
        return false;
    };
    let mut at = 0;
    for &len in lens {
        out.push(&s[at..at + len]);
        at += len;
    }
    true
}

/// Replaces runs of `tokens` (consecutive pieces of `chunk`) that spell a special case by that
/// special case's tokens. Longer runs win, as in spaCy's `_filter_special_spans`.
pub(super) fn merge_split_specials<'a>(chunk: &'a str, tokens: &mut Vec<&'a str>) {
    let (patterns, longest) = &*SPLIT_SPECIALS;
    let offset = |t: &str| t.as_ptr() as usize - chunk.as_ptr() as usize;
    let mut matches: Vec<(usize, usize)> = Vec::new();
    for i in 0..tokens.len() {
        for len in 2..=(*longest).min(tokens.len() - i) {
            let run = &tokens[i..i + len];
            let (start, end) = (offset(run[0]), offset(run[len - 1]) + run[len - 1].len());
            if let Some(lens) = patterns.get(&chunk[start..end])
                && lens.iter().copied().eq(run.iter().map(|t| t.len()))
            {
                matches.push((i, i + len));
            }
        }
    }
    if matches.is_empty() {
        return;
    }
    // Longest first, earlier start first among equals; keep runs whose ends are not taken.
    matches.sort_by_key(|&(s, e)| (e - s, std::cmp::Reverse(s)));
    let mut taken = vec![false; tokens.len()];
    let mut kept: Vec<(usize, usize)> = Vec::new();
    for &(s, e) in matches.iter().rev() {
        if !taken[s] && !taken[e - 1] {
            kept.push((s, e));
        }
        taken[s..e].iter_mut().for_each(|t| *t = true);
    }
    kept.sort_unstable();
    let old = std::mem::take(tokens);
    let mut i = 0;
    for (s, e) in kept {
        tokens.extend_from_slice(&old[i..s]);
        let (start, end) = (offset(old[s]), offset(old[e - 1]) + old[e - 1].len());
        emit(&chunk[start..end], tokens);
        i = e;
    }
    tokens.extend_from_slice(&old[i..]);
}
