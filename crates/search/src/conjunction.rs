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
//!   share of those with any ([`Conjunction::worth_pruning`]). Otherwise
//!   (many words, a rare one: few matches) each match of the catch-all
//!   intersection is scored by seeking the per-field terms' postings to it
//!   (`Driven`). Where the caller's filter leaves WAND few matches to raise
//!   its threshold with, it gives up once it has proposed many more misses
//!   than matches, and the rest is scored that way.
//!
//! Anything else (phrases, prefixes, fields, OR, boosts) takes the parser's
//! query as it is. `tests::the_fast_path_answers_as_the_parser_does` checks
//! the two agree on hits, scores, totals and facets.

use std::sync::Arc;

use tantivy::query::{
    BooleanQuery, BooleanWeight, BoostQuery, EnableScoring, Explanation, Occur, Query, Scorer,
    SumCombiner, TermQuery, Weight,
};
use tantivy::query_grammar::{Delimiter, Occur as UserOccur, UserInputAst, UserInputLeaf};
use tantivy::schema::{FieldType, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DocId, DocSet, Score, Searcher, SeekDangerResult, SegmentReader, Term, TERMINATED};

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
        // Each default field: its boost, its analyzer (an index into
        // `analyzers`: the default fields share two), and the catch-all
        // field its terms are also in.
        let mut analyzers: Vec<(&str, TextAnalyzer)> = Vec::with_capacity(2);
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
            let analyzer = match analyzers.iter().position(|(n, _)| *n == tokenizer) {
                Some(at) => at,
                None => {
                    analyzers.push((tokenizer, snapshot.index.tokenizers().get(tokenizer)?));
                    analyzers.len() - 1
                }
            };
            fields.push((field, *boost, all, analyzer));
        }
        let mut tokens: Vec<Vec<String>> = vec![Vec::new(); analyzers.len()];
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
            // The word's tokens by each analyzer, once per word.
            for ((_, analyzer), out) in analyzers.iter_mut().zip(&mut tokens) {
                out.clear();
                analyzer
                    .token_stream(&word.phrase)
                    .process(&mut |t| out.push(t.text.clone()));
            }
            let mut catch_all: Vec<Term> = Vec::new();
            for (field, boost, all, analyzer) in &fields {
                match tokens[*analyzer].as_slice() {
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
    /// the intersection small: scoring each match is then quicker. Measured on the benchmark's corpus,
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
    /// (this conjunction's, with the caller's filter added or not), each
    /// scored as the parser's query scores it: by block-max WAND when
    /// [`Self::worth_pruning`], else one match after another.
    pub fn ranking(&self, searcher: &Searcher, matching: Box<dyn Query>) -> Box<dyn Query> {
        Box::new(Ranked {
            terms: self.scoring.clone(),
            matching,
            wand: self.worth_pruning(searcher),
        })
    }
}

/// The documents `matching` admits, scored by the sum of the `terms` they
/// have (each with its field's boost): for a document with every required
/// word, exactly the parser's score of the conjunction.
#[derive(Debug)]
struct Ranked {
    terms: Vec<(Term, Score)>,
    matching: Box<dyn Query>,
    /// Rank by block-max WAND over the union of `terms`, matches filtered
    /// out of what it proposes; else score each match.
    wand: bool,
}

impl Clone for Ranked {
    fn clone(&self) -> Self {
        Self {
            terms: self.terms.clone(),
            matching: self.matching.box_clone(),
            wand: self.wand,
        }
    }
}

impl Ranked {
    /// `term`'s query, with its field's boost.
    fn term(term: &Term, boost: Score) -> Box<dyn Query> {
        Box::new(BoostQuery::new(
            Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)),
            boost,
        ))
    }
}

impl Query for Ranked {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let matching = self.matching.weight(match scoring.searcher() {
            Some(searcher) => EnableScoring::disabled_from_searcher(searcher),
            None => EnableScoring::disabled_from_schema(scoring.schema()),
        })?;
        if !scoring.is_scoring_enabled() {
            return Ok(matching);
        }
        let terms = self
            .terms
            .iter()
            .map(|(term, boost)| Ok(Shared(Self::term(term, *boost).weight(scoring)?.into())))
            .collect::<tantivy::Result<Vec<_>>>()?;
        // WAND's union over the same weights: as `BooleanQuery::weight`
        // makes it of the terms' queries, without weighing each again.
        let wand = self.wand.then(|| {
            let union: Box<dyn Weight> = Box::new(BooleanWeight::with_minimum_number_should_match(
                terms
                    .iter()
                    .map(|w| (Occur::Should, Box::new(w.clone()) as Box<dyn Weight>))
                    .collect(),
                1,
                true,
                Box::new(SumCombiner::default),
            ));
            union
        });
        Ok(Box::new(RankedWeight {
            matching,
            terms,
            wand,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for (term, _) in &self.terms {
            visitor(term, false);
        }
    }
}

struct RankedWeight {
    matching: Box<dyn Weight>,
    terms: Vec<Shared>,
    wand: Option<Box<dyn Weight>>,
}

/// A weight two scorers' builders share (the terms', and WAND's union of
/// them): its scorers are the shared weight's own.
#[derive(Clone)]
struct Shared(Arc<dyn Weight>);

impl Weight for Shared {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        self.0.scorer(reader, boost)
    }

    fn scorer_danger(
        &self,
        reader: &SegmentReader,
        target: DocId,
        boost: Score,
    ) -> tantivy::Result<(SeekDangerResult, Box<dyn Scorer>)> {
        self.0.scorer_danger(reader, target, boost)
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.0.explain(reader, doc)
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        self.0.count(reader)
    }
}

impl RankedWeight {
    fn driven(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Driven> {
        let mut terms = Vec::with_capacity(self.terms.len());
        for weight in &self.terms {
            let scorer = weight.scorer(reader, boost)?;
            // A term the segment lacks scores nothing here.
            if scorer.doc() != TERMINATED {
                terms.push(scorer);
            }
        }
        Ok(Driven {
            matching: self.matching.scorer(reader, 1.0)?,
            terms,
        })
    }
}

impl Weight for RankedWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(self.driven(reader, boost)?))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut matching = self.matching.scorer(reader, 1.0)?;
        if matching.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )));
        }
        let mut details = Vec::new();
        for weight in &self.terms {
            if weight.scorer(reader, 1.0)?.seek(doc) == doc {
                details.push(weight.explain(reader, doc)?);
            }
        }
        let score = details.iter().map(Explanation::value).sum();
        let mut out = Explanation::new("sum of the words' terms in the default fields", score);
        for detail in details {
            out.add_detail(detail);
        }
        Ok(out)
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
        let mut threshold = threshold;
        let mut resume = 0;
        if let Some(wand) = &self.wand {
            let mut matching = self.matching.scorer(reader, 1.0)?;
            if matching.doc() == TERMINATED {
                return Ok(());
            }
            let (mut accepted, mut rejected) = (0u32, 0u32);
            let mut gave_up = None;
            wand.for_each_pruning(threshold, reader, &mut |doc, score| {
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
                    gave_up = Some(doc + 1);
                    return Score::MAX;
                }
                threshold
            })?;
            // Few of the union's documents match (the caller's filter keeps
            // few, say): WAND cannot raise its threshold with them, and the
            // rest is scored one match after another.
            match gave_up {
                Some(doc) => resume = doc,
                None => return Ok(()),
            }
        }
        let mut driven = self.driven(reader, 1.0)?;
        let mut doc = driven.doc();
        if doc < resume {
            doc = driven.seek(resume);
        }
        while doc != TERMINATED {
            let score = driven.score();
            if score > threshold {
                threshold = callback(doc, score);
            }
            doc = driven.advance();
        }
        Ok(())
    }
}

/// The documents of `matching`, each scored by seeking the `terms`'
/// postings to it: a few seeks per match, where the parser's union of a
/// word's fields refills a window of thousands of documents per seek.
struct Driven {
    matching: Box<dyn Scorer>,
    terms: Vec<Box<dyn Scorer>>,
}

impl DocSet for Driven {
    fn advance(&mut self) -> DocId {
        self.matching.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.matching.seek(target)
    }

    fn doc(&self) -> DocId {
        self.matching.doc()
    }

    fn size_hint(&self) -> u32 {
        self.matching.size_hint()
    }
}

impl Scorer for Driven {
    fn score(&mut self) -> Score {
        let doc = self.matching.doc();
        let mut score = 0.0;
        for term in &mut self.terms {
            let mut at = term.doc();
            if at < doc {
                at = term.seek(doc);
            }
            if at == doc {
                score += term.score();
            }
        }
        score
    }
}
