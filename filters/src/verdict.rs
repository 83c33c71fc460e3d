//! The outcome of one measured check on one document.

/// One rule's measurement of one document: what was measured, against what, and the outcome.
///
/// ```
/// use filters::length::LengthLimits;
/// let limits = LengthLimits { min_words: Some(3), ..LengthLimits::default() };
/// let verdict = limits.first_failure("too short").unwrap();
/// assert_eq!((verdict.rule, verdict.value, verdict.threshold), ("length.min_words", 2.0, 3.0));
/// assert!(!verdict.passed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Stable rule name, `<family>.<rule>`.
    pub rule: &'static str,
    /// Whether the document passed the rule.
    pub passed: bool,
    /// The measured value.
    pub value: f64,
    /// The threshold it was compared with.
    pub threshold: f64,
}
