//! The fast path of the commonest search: words ANDed together
//! (`configuration file`, `backup -tape`), none naming a field.
//!
//! The query parser makes of such a query an intersection of one union per
//! word, each over the word's term in the eight default fields. That
//! answers right but slowly when the words are common: tantivy must visit
//! and score every document of the intersection (block-max WAND prunes only
//! a plain union or intersection of terms), and count the matches the same
//! way. [`Conjunction`] computes the same answer in two other ways:
//!
//! - **Which documents match**: on the catch-all fields (`words` and
//!   `keywords`, see [`crate::schema::WORDS`]), where a word is one or two
//!   postings lists, so the count and facets walk an intersection of terms.
//! - **The best of them**: block-max WAND over the union of every required
//!   word's per-field terms (with the fields' boosts), keeping only the
//!   documents that match. A matching document has every required word, so
//!   the union's sum of matching terms is exactly the conjunction's score;
//!   documents WAND proposes that miss a word are skipped and raise no
//!   threshold. That pays when the documents with every word are a good
//!   share of those with any ([`Conjunction::worth_pruning`]); otherwise
//!   (many words, a rare one) the parser's intersection, driven by its
//!   rarest word, ranks them. Where the caller's filter leaves WAND few
//!   matches to raise its threshold with, it gives up once it has proposed
//!   many more misses than matches, and the parser's query ranks the rest.
//!
//! Anything else (phrases, prefixes, fields, OR, boosts) takes the parser's
//! query as it is. `tests::the_fast_path_answers_as_the_parser_does` checks
//! the two agree on hits, scores, totals and facets.

use tantivy::query::{
    BooleanQuery, BoostQuery, EnableScoring, Explanation, Occur, Query, Scorer, TermQuery, Weight,
};
use tantivy::query_grammar::{Delimiter, Occur as UserOccur, UserInputAst, UserInputLeaf};
use tantivy::schema::{FieldType, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, Searcher, SegmentReader, Term, TERMINATED};

use crate::index::Snapshot;
use crate::schema::{self, DEFAULT_FIELDS};

/// WAND gives up on a segment once it proposed this many documents that
/// miss a word, three times as many as those that matched: the matches are
/// too few among the union's documents to raise its threshold.
const GIVE_UP_AFTER: u32 = 128;

/// The least estimated share of the union's documents that may have every
/// word for WAND to be tried (see [`Conjunction::worth_pruning`]).
const PRUNE_FROM: f64 = 0.1;

/// A flat conjunction of plain words, planned for the fast path.
#[derive(Debug)]
pub struct Conjunction {
    /// Each required word's term in each default field it has one in,
    /// with the field's boost.
    scoring: Vec<(Term, Score)>,
    /// Each required word's terms in the catch-all fields.
    required: Vec<Vec<Term>>,
    /// The documents with every required word and no excluded one, on the
    /// catch-all fields.
    pub matching: Box<dyn Query>,
}

impl Conjunction {
    /// Plans `ast` (the user's query as the parser is given it) when it is
    /// a conjunction of plain words and the index has the catch-all fields;
    /// `None` otherwise.
    pub fn plan(snapshot: &Snapshot, ast: &UserInputAst) -> Option<Self> {
        let schema = snapshot.index.schema();
        let words = schema.get_field(schema::WORDS).ok()?;
        let keywords = schema.get_field(schema::KEYWORDS).ok()?;
        let UserInputAst::Clause(clauses) = ast else {
            return None;
        };
        // Each default field: its boost, its analyzer, and the catch-all
        // field its terms are also in.
        let mut fields = Vec::with_capacity(DEFAULT_FIELDS.len());
        for (name, boost) in DEFAULT_FIELDS {
            let field = schema.get_field(name).ok()?;
            let FieldType::Str(options) = schema.get_field_entry(field).field_type() else {
                return None;
            };
            let tokenizer = options.get_indexing_options()?.tokenizer();
            let all = match tokenizer {
                schema::ENGLISH => words,
                schema::KEYWORD => keywords,
                _ => return None,
            };
            let analyzer = snapshot.index.tokenizers().get(tokenizer)?;
            fields.push((field, *boost, all, analyzer));
        }
        let mut scoring = Vec::new();
        let mut required_terms = Vec::new();
        let mut matching: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (occur, child) in clauses {
            let required = match occur {
                None | Some(UserOccur::Must) => true,
                Some(UserOccur::MustNot) => false,
                Some(UserOccur::Should) => return None,
            };
            let UserInputAst::Leaf(leaf) = child else {
                return None;
            };
            let UserInputLeaf::Literal(word) = leaf.as_ref() else {
                return None;
            };
            if word.field_name.is_some()
                || word.delimiter != Delimiter::None
                || word.prefix
                || word.slop != 0
            {
                return None;
            }
            let mut catch_all: Vec<Term> = Vec::new();
            for (field, boost, all, analyzer) in &mut fields {
                let mut tokens = Vec::new();
                analyzer
                    .token_stream(&word.phrase)
                    .process(&mut |t| tokens.push(t.text.clone()));
                match tokens.as_slice() {
                    [] => {}
                    [token] => {
                        if required {
                            scoring.push((Term::from_field_text(*field, token), *boost));
                        }
                        let term = Term::from_field_text(*all, token);
                        if !catch_all.contains(&term) {
                            catch_all.push(term);
                        }
                    }
                    // Several tokens make a phrase in that field.
                    _ => return None,
                }
            }
            // A stop word: the parser drops it as well.
            if catch_all.is_empty() {
                continue;
            }
            if required {
                required_terms.push(catch_all.clone());
            }
            let terms: Vec<(Occur, Box<dyn Query>)> = catch_all
                .into_iter()
                .map(|t| {
                    let q: Box<dyn Query> = Box::new(TermQuery::new(t, IndexRecordOption::Basic));
                    (Occur::Should, q)
                })
                .collect();
            let any: Box<dyn Query> = if terms.len() == 1 {
                terms.into_iter().next().map(|(_, q)| q)?
            } else {
                Box::new(BooleanQuery::new(terms))
            };
            matching.push((
                if required {
                    Occur::Must
                } else {
                    Occur::MustNot
                },
                any,
            ));
        }
        if scoring.is_empty() {
            return None;
        }
        Some(Self {
            scoring,
            required: required_terms,
            matching: Box::new(BooleanQuery::new(matching)),
        })
    }

    /// True when WAND is likely to pay: the documents with the rarest word
    /// (an upper bound of those with every word) are a good share of those
    /// with any (estimated from the catch-all terms' document frequencies,
    /// as if words occurred independently). Many words, or a rare one, make
    /// the intersection small: the parser's intersection, driven by its
    /// rarest word, is then quicker. Measured on the benchmark's corpus,
    /// WAND won from a share of about 0.1 (`configuration file` 0.75:
    /// 1.1 ms against 1.7 ms) and lost below it.
    pub fn worth_pruning(&self, searcher: &Searcher) -> bool {
        let docs = searcher.num_docs().max(1) as f64;
        let (mut fewest, mut none) = (1.0f64, 1.0);
        for terms in &self.required {
            let found: u64 = terms
                .iter()
                .map(|t| searcher.doc_freq(t).unwrap_or(0))
                .sum();
            let share = (found as f64 / docs).min(1.0);
            fewest = fewest.min(share);
            none *= 1.0 - share;
        }
        let any = 1.0 - none;
        any > 0.0 && fewest / any >= PRUNE_FROM
    }

    /// The query of the best hits among the documents `matching` admits
    /// (this conjunction's, with the caller's filter added or not); `exact`
    /// is the parser's query with the same filter, which takes over where
    /// WAND gives up.
    pub fn best_of(&self, matching: Box<dyn Query>, exact: Box<dyn Query>) -> Box<dyn Query> {
        Box::new(Pruned {
            scoring: BooleanQuery::new(
                self.scoring
                    .iter()
                    .map(|(term, boost)| {
                        let q: Box<dyn Query> = Box::new(BoostQuery::new(
                            Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)),
                            *boost,
                        ));
                        (Occur::Should, q)
                    })
                    .collect(),
            ),
            matching,
            exact,
        })
    }
}

/// The union `scoring` ranks, restricted to what `matching` admits;
/// `exact` matches and scores the same documents the slow way.
#[derive(Debug)]
struct Pruned {
    scoring: BooleanQuery,
    matching: Box<dyn Query>,
    exact: Box<dyn Query>,
}

impl Clone for Pruned {
    fn clone(&self) -> Self {
        Self {
            scoring: self.scoring.clone(),
            matching: self.matching.box_clone(),
            exact: self.exact.box_clone(),
        }
    }
}

impl Query for Pruned {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let matching = self.matching.weight(match scoring.searcher() {
            Some(searcher) => EnableScoring::disabled_from_searcher(searcher),
            None => EnableScoring::disabled_from_schema(scoring.schema()),
        })?;
        if !scoring.is_scoring_enabled() {
            return Ok(matching);
        }
        Ok(Box::new(PrunedWeight {
            scoring: self.scoring.weight(scoring)?,
            exact: self.exact.weight(scoring)?,
            matching,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.exact.query_terms(visitor);
    }
}

struct PrunedWeight {
    scoring: Box<dyn Weight>,
    matching: Box<dyn Weight>,
    exact: Box<dyn Weight>,
}

impl Weight for PrunedWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        self.exact.scorer(reader, boost)
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.exact.explain(reader, doc)
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        self.matching.count(reader)
    }

    fn for_each_pruning(
        &self,
        threshold: Score,
        reader: &SegmentReader,
        callback: &mut dyn FnMut(DocId, Score) -> Score,
    ) -> tantivy::Result<()> {
        let mut matching = self.matching.scorer(reader, 1.0)?;
        if matching.doc() == TERMINATED {
            return Ok(());
        }
        let mut threshold = threshold;
        let (mut accepted, mut rejected) = (0u32, 0u32);
        // Where WAND stopped when it gave up; the rest is scored one by one.
        let mut resume = None;
        self.scoring
            .for_each_pruning(threshold, reader, &mut |doc, score| {
                let mut at = matching.doc();
                if at < doc {
                    at = matching.seek(doc);
                }
                if at == TERMINATED {
                    // Nothing further matches: a threshold no document
                    // reaches ends WAND.
                    return Score::MAX;
                }
                if at == doc {
                    accepted += 1;
                    threshold = callback(doc, score);
                    return threshold;
                }
                rejected += 1;
                if rejected >= GIVE_UP_AFTER && rejected > 3 * accepted {
                    resume = Some(doc + 1);
                    return Score::MAX;
                }
                threshold
            })?;
        let Some(resume) = resume else {
            return Ok(());
        };
        // Few of the union's documents match (the caller's filter keeps
        // few, say): WAND cannot raise its threshold with them. The
        // parser's query scores the rest.
        let mut exact = self.exact.scorer(reader, 1.0)?;
        let mut doc = exact.doc();
        if doc < resume {
            doc = exact.seek(resume);
        }
        while doc != TERMINATED {
            let score = exact.score();
            if score > threshold {
                threshold = callback(doc, score);
            }
            doc = exact.advance();
        }
        Ok(())
    }
}
