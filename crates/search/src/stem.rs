//! Snowball English stemming, as tantivy's `Stemmer` filter does it, with
//! a per-thread memo of the words recently stemmed.
//!
//! Stemming is most of the cost of analysing text: at indexing, and at
//! query time for each hit's snippet, whose window of text is analysed
//! again to find the query's stems. Text repeats its words, so a thread
//! looks a word up before running the stemmer's rules on it.

use std::borrow::Cow;
use std::cell::RefCell;

use fnv::FnvHashMap;
use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Words a thread remembers; its memo is emptied when full.
const CAPACITY: usize = 32_768;

/// Longer words are stemmed each time: they seldom recur.
const LONGEST: usize = 24;

struct Memo {
    stemmer: frostem::Stemmer,
    stems: FnvHashMap<Box<str>, Box<str>>,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo {
        stemmer: frostem::Stemmer::new(frostem::Algorithm::English),
        stems: FnvHashMap::default(),
    });
}

/// Replaces `word` (lowercase) by its English stem.
fn stem(word: &mut String) {
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        if let Some(stem) = memo.stems.get(word.as_str()) {
            if **stem != **word {
                word.clear();
                word.push_str(stem);
            }
            return;
        }
        let stemmed = match memo.stemmer.stem(word) {
            Cow::Borrowed(same) if same == word.as_str() => None,
            other => Some(other.into_owned()),
        };
        if word.len() <= LONGEST {
            if memo.stems.len() >= CAPACITY {
                memo.stems.clear();
            }
            let stem = stemmed.as_deref().unwrap_or(word.as_str()).into();
            memo.stems.insert(word.as_str().into(), stem);
        }
        if let Some(stemmed) = stemmed {
            *word = stemmed;
        }
    });
}

/// The token filter: tantivy's `Stemmer::new(Language::English)`, whose
/// output it gives token for token.
#[derive(Clone, Copy, Default)]
pub struct EnglishStemmer;

impl TokenFilter for EnglishStemmer {
    type Tokenizer<T: Tokenizer> = StemmerFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> StemmerFilter<T> {
        StemmerFilter { inner: tokenizer }
    }
}

#[derive(Clone)]
pub struct StemmerFilter<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for StemmerFilter<T> {
    type TokenStream<'a> = StemmerStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        StemmerStream {
            tail: self.inner.token_stream(text),
        }
    }
}

pub struct StemmerStream<T> {
    tail: T,
}

impl<T: TokenStream> TokenStream for StemmerStream<T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        stem(&mut self.tail.token_mut().text);
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use tantivy::tokenizer::{Language, LowerCaser, SimpleTokenizer, Stemmer, TextAnalyzer};

    use super::*;

    fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<(String, usize, usize, usize)> {
        let mut out = Vec::new();
        analyzer
            .token_stream(text)
            .process(&mut |t| out.push((t.text.clone(), t.offset_from, t.offset_to, t.position)));
        out
    }

    fn pair() -> (TextAnalyzer, TextAnalyzer) {
        let ours = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(EnglishStemmer)
            .build();
        let tantivy = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(Stemmer::new(Language::English))
            .build();
        (ours, tantivy)
    }

    #[test]
    fn stems_as_tantivy_does_on_license_texts_twice_over() {
        let (mut ours, mut theirs) = pair();
        let mut texts: Vec<String> = std::fs::read_dir("/usr/share/common-licenses")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect();
        texts.push("Running runners ran; the generalizations were generously generalized.".into());
        let mut words = 0;
        // The second pass answers from the memo.
        for _ in 0..2 {
            for text in &texts {
                let expected = tokens(&mut theirs, text);
                words += expected.len();
                assert_eq!(tokens(&mut ours, text), expected);
            }
        }
        assert!(words > 20, "only {words} words compared");
    }

    proptest! {
        #[test]
        fn stems_as_tantivy_does_on_any_text(text in "[a-zA-Z' éü-]{0,200}") {
            let (mut ours, mut theirs) = pair();
            prop_assert_eq!(tokens(&mut ours, &text), tokens(&mut theirs, &text));
            prop_assert_eq!(tokens(&mut ours, &text), tokens(&mut theirs, &text));
        }
    }
}
