//! Sentence counting as spaCy's `sentencizer` does it over the tokenizer's tokens: a sentence
//! ends after a token that is one of its sentence-ending characters, at the next token that is
//! not punctuation, whitespace tokens included (`Io?   ?` is two sentences).

use crate::words::{for_each_token, is_punct_token};

/// spaCy's `Sentencizer.default_punct_chars`.
const SENTENCE_ENDS: &str = "!.?։؟۔܀܁܂߹।॥၊။።፧፨᙮᜵᜶᠃᠉᥄᥅᪨᪩᪪᪫᭚᭛᭞᭟᰻᰼᱾᱿‼‽⁇⁈⁉⸮⸼꓿꘎꘏꛳꛷꡶꡷꣎꣏꤯꧈꧉꩝꩞꩟꫰꫱꯫﹒﹖﹗！．？𐩖𐩗𑁇𑁈𑂾𑂿𑃀𑃁𑅁𑅂𑅃𑇅𑇆𑇍𑇞𑇟𑈸𑈹𑈻𑈼𑊩𑑋𑑌𑗂𑗃𑗉𑗊𑗋𑗌𑗍𑗎𑗏𑗐𑗑𑗒𑗓𑗔𑗕𑗖𑗗𑙁𑙂𑜼𑜽𑜾𑩂𑩃𑪛𑪜𑱁𑱂𖩮𖩯𖫵𖬷𖬸𖭄𛲟𝪈｡。";

fn ends_sentence(token: &str) -> bool {
    let mut chars = token.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => SENTENCE_ENDS.contains(c),
        _ => false,
    }
}

/// The number of sentences spaCy's sentencizer finds in `text` (0 for text without words).
pub(super) fn count_sentences(text: &str) -> usize {
    let (mut sentences, mut seen_end) = (0, false);
    for_each_token(text, true, |token| {
        if sentences == 0 {
            sentences = 1;
        }
        let is_end = ends_sentence(token);
        if seen_end && !is_end && !is_punct_token(token) {
            sentences += 1;
            seen_end = false;
        } else if is_end {
            seen_end = true;
        }
    });
    sentences
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_like_the_sentencizer() {
        assert_eq!(count_sentences(""), 0);
        assert_eq!(count_sentences("One. Two! Three?"), 3);
        assert_eq!(count_sentences("He said \"stop.\" Then left."), 2);
        assert_eq!(count_sentences("Wait... what"), 1);
        assert_eq!(count_sentences("The U.S. is big. Yes"), 2);
        assert_eq!(count_sentences("Sono io?  Io?   ?"), 3);
        assert_eq!(count_sentences("Hi. .  ."), 2);
    }
}
