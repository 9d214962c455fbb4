//! The query side: a user's query string, checked and parsed; the access
//! filter built from who asks; hits with highlighted snippets; facets.
//!
//! Every search runs `user query AND filter`, where the filter (which adds
//! nothing to scores) is: the caller's tenant, the requested types and
//! statuses, and the access rule of each type. Scores use statistics of
//! the documents the caller may see ([`VisibleStats`]), so not even BM25's
//! document frequencies tell anything about other tenants' or hidden
//! documents.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::columnar::StrColumn;
use tantivy::query::{
    AllQuery, Bm25StatisticsProvider, BooleanQuery, ConstScoreQuery, EnableScoring, Occur, Query,
    QueryParser, TermQuery, TermSetQuery,
};
use tantivy::query_grammar::{self, UserInputAst, UserInputLeaf};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::snippet::SnippetGenerator;
use tantivy::{
    DocId, DocSet as _, Score, Searcher, SegmentOrdinal, SegmentReader, TantivyDocument, Term,
};
use uuid::Uuid;

use crate::conjunction::Conjunction;
use crate::doc::{Kind, SearchDoc};
use crate::index::{self, IndexError, Snapshot};
use crate::schema::{self, Fields, DEFAULT_FIELDS, USER_FIELDS};

/// The most hits a page may hold.
pub const MAX_LIMIT: usize = 100;
/// Hits per page unless asked.
pub const DEFAULT_LIMIT: usize = 20;
/// How deep paging may go (offset + limit).
pub const MAX_DEPTH: usize = 10_000;
/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 1_000;
/// Snippet length, in characters.
const SNIPPET_CHARS: usize = 200;

/// Which contracts a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractAccess {
    /// Every contract of the tenant (the roles that see all).
    All,
    /// Those the user owns, or shared with the user or one of the roles.
    Granted { user: Uuid, roles: Vec<String> },
}

/// Which tickets a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketAccess {
    All,
    /// A customer: their own.
    Customer(Uuid),
    None,
}

/// Who is asking: what the filter lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub tenant: String,
    pub contracts: ContractAccess,
    pub tickets: TicketAccess,
}

impl Scope {
    /// A stable key of what this scope sees (statistics cache).
    fn key(&self) -> String {
        let contracts = match &self.contracts {
            ContractAccess::All => "all".to_owned(),
            ContractAccess::Granted { user, roles } => format!("{user}:{}", roles.join(",")),
        };
        let tickets = match &self.tickets {
            TicketAccess::All => "all".to_owned(),
            TicketAccess::Customer(u) => u.to_string(),
            TicketAccess::None => "none".to_owned(),
        };
        format!("{}|{contracts}|{tickets}", self.tenant)
    }
}

/// A search request, validated.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub q: String,
    /// Types to search (all when empty).
    pub kinds: Vec<Kind>,
    /// Statuses to keep (any when empty).
    pub statuses: Vec<String>,
    pub limit: usize,
    pub offset: usize,
}

/// One hit.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hit {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: Uuid,
    pub title: String,
    pub status: String,
    /// HTML: the text escaped, matched terms in `<b>...</b>`.
    pub snippet: String,
    pub score: f32,
}

/// A page of results.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Results {
    pub hits: Vec<Hit>,
    /// Documents matching in all.
    pub total: u64,
    /// Counts of the matching documents by type and by status.
    pub facets: Facets,
    /// The global position the index reflects.
    pub position: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Facets {
    #[serde(rename = "type")]
    pub kinds: BTreeMap<String, u64>,
    pub status: BTreeMap<String, u64>,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query is malformed; `at` is the character offset (0-based) of
    /// the problem when known.
    #[error("{message}")]
    InvalidQuery { message: String, at: Option<usize> },
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> Self {
        Self::Index(IndexError::Tantivy(e))
    }
}

fn invalid(message: impl Into<String>, at: Option<usize>) -> SearchError {
    SearchError::InvalidQuery {
        message: message.into(),
        at,
    }
}

/// The character offset of byte offset `byte` in `q`.
fn char_at(q: &str, byte: usize) -> usize {
    q.char_indices().take_while(|(i, _)| *i < byte).count()
}

/// Where `field:` first appears in `q` (character offset).
fn field_at(q: &str, field: &str) -> Option<usize> {
    let needle = format!("{field}:");
    let mut from = 0;
    while let Some(found) = q[from..].find(&needle) {
        let at = from + found;
        let starts_word = q[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
        if starts_word {
            return Some(char_at(q, at));
        }
        from = at + needle.len();
    }
    None
}

/// `message` with the query and a caret under the offending character.
fn pointed(q: &str, at: usize, message: &str) -> String {
    if at >= q.chars().count() {
        return format!(
            "{message} at the end of the query (character {}): `{q}`",
            at + 1
        );
    }
    format!(
        "{message} at character {} of the query: `{q}`, here: `{}`",
        at + 1,
        q.chars().skip(at).take(20).collect::<String>()
    )
}

/// Field names a user AST names, in order.
fn named_fields(ast: &UserInputAst, out: &mut Vec<String>) {
    match ast {
        UserInputAst::Clause(clauses) => {
            for (_, child) in clauses {
                named_fields(child, out);
            }
        }
        UserInputAst::Boost(inner, _) => named_fields(inner, out),
        UserInputAst::Leaf(leaf) => match leaf.as_ref() {
            UserInputLeaf::Literal(l) => out.extend(l.field_name.clone()),
            UserInputLeaf::All => {}
            UserInputLeaf::Range { field, .. }
            | UserInputLeaf::Set { field, .. }
            | UserInputLeaf::Regex { field, .. } => out.extend(field.clone()),
            UserInputLeaf::Exists { field } => out.push(field.clone()),
        },
    }
}

/// `a AND NOT b` parses as `+a +(-b)`, whose second clause alone matches
/// nothing; lift such all-excluding required clauses into their parent
/// (`+a -b`), which is what people mean.
fn lift_negations(ast: UserInputAst) -> UserInputAst {
    use tantivy::query_grammar::Occur as O;
    match ast {
        UserInputAst::Clause(clauses) => {
            let mut out = Vec::with_capacity(clauses.len());
            for (occur, child) in clauses {
                let child = lift_negations(child);
                match (occur, child) {
                    (Some(O::Must), UserInputAst::Clause(inner))
                        if !inner.is_empty()
                            && inner.iter().all(|(o, _)| *o == Some(O::MustNot)) =>
                    {
                        out.extend(inner);
                    }
                    (occur, child) => out.push((occur, child)),
                }
            }
            UserInputAst::Clause(out)
        }
        UserInputAst::Boost(inner, boost) => {
            UserInputAst::Boost(Box::new(lift_negations(*inner)), boost)
        }
        leaf => leaf,
    }
}

/// A single word with `*` (`maint*`) becomes a match of the indexed words
/// that start with it (or with its stem: indexed words are stemmed), in the
/// field it names or in every default field with its boost. Quoted
/// prefixes (`"dark fib"*`) stay tantivy's phrase prefixes.
fn expand_prefixes(ast: UserInputAst, stem: &dyn Fn(&str) -> Option<String>) -> UserInputAst {
    match ast {
        UserInputAst::Clause(clauses) => UserInputAst::Clause(
            clauses
                .into_iter()
                .map(|(occur, child)| (occur, expand_prefixes(child, stem)))
                .collect(),
        ),
        UserInputAst::Boost(inner, boost) => {
            UserInputAst::Boost(Box::new(expand_prefixes(*inner, stem)), boost)
        }
        UserInputAst::Leaf(leaf) => match *leaf {
            UserInputLeaf::Literal(l) if prefix_word(&l).is_some() => {
                let word = prefix_word(&l).unwrap_or_default();
                let mut starts = vec![regex_escape(&word)];
                if let Some(stemmed) = stem(&word).filter(|s| *s != word && !s.is_empty()) {
                    starts.push(regex_escape(&stemmed));
                }
                let pattern = format!("({}).*", starts.join("|"));
                let regex = |field: &str| {
                    UserInputAst::Leaf(Box::new(UserInputLeaf::Regex {
                        field: Some(field.to_owned()),
                        pattern: pattern.clone(),
                    }))
                };
                match l.field_name {
                    Some(field) => regex(&field),
                    None => UserInputAst::Clause(
                        DEFAULT_FIELDS
                            .iter()
                            .map(|(field, boost)| {
                                (
                                    Some(tantivy::query_grammar::Occur::Should),
                                    UserInputAst::Boost(
                                        Box::new(regex(field)),
                                        f64::from(*boost).into(),
                                    ),
                                )
                            })
                            .collect(),
                    ),
                }
            }
            other => UserInputAst::Leaf(Box::new(other)),
        },
    }
}

/// The word of `word*` (unquoted: the grammar keeps the star in the
/// phrase) or of `"word"*`, lowercased; `None` for anything else.
fn prefix_word(l: &tantivy::query_grammar::UserInputLiteral) -> Option<String> {
    use tantivy::query_grammar::Delimiter;
    let word = if l.prefix {
        l.phrase.as_str()
    } else if l.delimiter == Delimiter::None {
        l.phrase.strip_suffix('*')?
    } else {
        return None;
    };
    (!word.is_empty() && word.chars().all(char::is_alphanumeric)).then(|| word.to_lowercase())
}

fn regex_escape(word: &str) -> String {
    word.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

/// The fields of `field:*` (has a value) clauses.
fn exists_fields(ast: &UserInputAst, out: &mut Vec<String>) {
    match ast {
        UserInputAst::Clause(clauses) => {
            for (_, child) in clauses {
                exists_fields(child, out);
            }
        }
        UserInputAst::Boost(inner, _) => exists_fields(inner, out),
        UserInputAst::Leaf(leaf) => {
            if let UserInputLeaf::Exists { field } = leaf.as_ref() {
                out.push(field.clone());
            }
        }
    }
}

/// The fields `field:*` works on (those with a fast column).
const EXISTS_FIELDS: &[&str] = &["type", "status", "value", "start", "end"];

fn has_regex(ast: &UserInputAst) -> bool {
    match ast {
        UserInputAst::Clause(clauses) => clauses.iter().any(|(_, c)| has_regex(c)),
        UserInputAst::Boost(inner, _) => has_regex(inner),
        UserInputAst::Leaf(leaf) => matches!(leaf.as_ref(), UserInputLeaf::Regex { .. }),
    }
}

/// Parses and checks the user's query: syntax (with where it breaks),
/// only fields a user may name, and what tantivy accepts for each field.
pub fn parse(snapshot: &Snapshot, q: &str) -> Result<Box<dyn Query>, SearchError> {
    planned(snapshot, q).map(|(query, _)| query)
}

/// [`parse`], and the fast path's plan when the query is a conjunction of
/// plain words (see [`Conjunction`]).
fn planned(
    snapshot: &Snapshot,
    q: &str,
) -> Result<(Box<dyn Query>, Option<Conjunction>), SearchError> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(invalid(
            format!("the query is longer than {MAX_QUERY_CHARS} characters"),
            Some(MAX_QUERY_CHARS),
        ));
    }
    if q.trim().is_empty() {
        return Ok((Box::new(AllQuery), None));
    }
    let (ast, errors) = query_grammar::parse_query_lenient(q);
    if let Some(first) = errors.first() {
        let at = char_at(q, first.pos);
        return Err(invalid(pointed(q, at, &first.message), Some(at)));
    }
    // Plain words (no operator among them) always parse; anything else is
    // held to the strict grammar too, which refuses some input the lenient
    // one accepts.
    let plain = q
        .split_whitespace()
        .all(|w| w.chars().all(char::is_alphanumeric) && !matches!(w, "AND" | "OR" | "NOT"));
    if !plain && query_grammar::parse_query(q).is_err() {
        return Err(invalid(
            format!("the query `{q}` does not parse; quote special characters (\"...\")"),
            None,
        ));
    }
    let mut fields = Vec::new();
    named_fields(&ast, &mut fields);
    for field in &fields {
        if !schema::user_field(field) {
            let known: Vec<&str> = USER_FIELDS.iter().map(|(f, _)| *f).collect();
            let at = field_at(q, field);
            let message = format!(
                "unknown field `{field}`; a query may name: {}",
                known.join(", ")
            );
            return Err(invalid(
                match at {
                    Some(at) => pointed(q, at, &message),
                    None => message,
                },
                at,
            ));
        }
    }
    let mut exists = Vec::new();
    exists_fields(&ast, &mut exists);
    if let Some(field) = exists.iter().find(|f| !EXISTS_FIELDS.contains(&f.as_str())) {
        let at = field_at(q, field).unwrap_or(0);
        return Err(invalid(
            pointed(
                q,
                at,
                &format!(
                    "`{field}:*` is not supported; `field:*` (has a value) works on {}",
                    EXISTS_FIELDS.join(", ")
                ),
            ),
            Some(at),
        ));
    }
    if has_regex(&ast) {
        let at = q.find('/').map(|b| char_at(q, b)).unwrap_or(0);
        return Err(invalid(
            pointed(
                q,
                at,
                "regular expressions (/.../) are not supported; use prefix* instead",
            ),
            Some(at),
        ));
    }
    let mut parser = parser(snapshot);
    // Only for the prefixes expanded here: the user's own regexes were
    // refused above.
    parser.allow_regexes();
    let stem = |word: &str| {
        let mut analyzer = snapshot.index.tokenizers().get(schema::ENGLISH)?;
        let mut stream = analyzer.token_stream(word);
        let mut first = None;
        stream.process(&mut |t| {
            if first.is_none() {
                first = Some(t.text.clone());
            }
        });
        first
    };
    let ast = expand_prefixes(lift_negations(ast), &stem);
    let plan = Conjunction::plan(snapshot, &ast);
    let query = parser.build_query_from_user_input_ast(ast).map_err(|e| {
        use tantivy::query::QueryParserError as E;
        let (message, field) = match &e {
            E::ExpectedInt(_) => ("expected an integer".to_owned(), Some("value")),
            E::DateFormatError(_) => (
                "expected an RFC 3339 time, e.g. 2026-01-01T00:00:00Z".to_owned(),
                fields
                    .iter()
                    .find(|f| *f == "start" || *f == "end")
                    .map(String::as_str),
            ),
            E::AllButQueryForbidden => (
                "a query cannot only exclude (-term): add a term to match".to_owned(),
                None,
            ),
            E::RangeMustNotHavePhrase => ("a range's bounds must be single terms".to_owned(), None),
            E::PhrasePrefixRequiresAtLeastTwoTerms { .. } => (
                "a quoted prefix (\"...\"*) needs at least two words".to_owned(),
                None,
            ),
            other => (other.to_string(), None),
        };
        let at = field.and_then(|f| field_at(q, f));
        match at {
            Some(at) => invalid(pointed(q, at, &message), Some(at)),
            None => invalid(format!("{message} (query: `{q}`)"), None),
        }
    })?;
    Ok((query, plan))
}

fn parser(snapshot: &Snapshot) -> QueryParser {
    let schema = snapshot.index.schema();
    let defaults: Vec<Field> = DEFAULT_FIELDS
        .iter()
        .filter_map(|(name, _)| schema.get_field(name).ok())
        .collect();
    let mut parser = QueryParser::new(
        schema.clone(),
        defaults,
        snapshot.index.tokenizers().clone(),
    );
    for (name, boost) in DEFAULT_FIELDS {
        if let Ok(field) = schema.get_field(name) {
            parser.set_field_boost(field, *boost);
        }
    }
    parser.set_conjunction_by_default();
    parser
}

fn term(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

fn all_of(parts: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(
        parts.into_iter().map(|q| (Occur::Must, q)).collect(),
    ))
}

fn any_of(parts: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(
        parts.into_iter().map(|q| (Occur::Should, q)).collect(),
    ))
}

/// Sets of values up to this size are matched as a union of their terms:
/// a `TermSetQuery` builds a finite-state automaton of its set for each
/// search, which costs more than a few term lookups.
const TERM_SET_FROM: usize = 16;

/// The documents whose `field` has one of `values` (not empty).
fn one_of<'v>(field: Field, values: impl Iterator<Item = &'v str>) -> Box<dyn Query> {
    let mut terms: Vec<Term> = values.map(|v| Term::from_field_text(field, v)).collect();
    terms.sort();
    terms.dedup();
    if terms.len() >= TERM_SET_FROM {
        return Box::new(TermSetQuery::new(terms));
    }
    let mut queries: Vec<Box<dyn Query>> = terms
        .into_iter()
        .map(|t| Box::new(TermQuery::new(t, IndexRecordOption::Basic)) as Box<dyn Query>)
        .collect();
    if queries.len() == 1 {
        return queries.pop().expect("one");
    }
    any_of(queries)
}

/// The documents `scope` may see: its tenant, and per type the access
/// rule. Never empty of the tenant clause.
pub fn access_filter(f: &Fields, scope: &Scope) -> Box<dyn Query> {
    if scope.contracts == ContractAccess::All && scope.tickets == TicketAccess::All {
        // Every type in full: the tenant alone (a union over the types
        // would cover every document and only cost time).
        return term(f.tenant, &scope.tenant);
    }
    let mut kinds: Vec<Box<dyn Query>> = Vec::new();
    kinds.push(match &scope.contracts {
        ContractAccess::All => term(f.kind, Kind::Contract.as_str()),
        ContractAccess::Granted { user, roles } => {
            let user = user.to_string();
            let mut granted = vec![term(f.owner, &user), term(f.shared_users, &user)];
            if !roles.is_empty() {
                granted.push(one_of(f.shared_roles, roles.iter().map(String::as_str)));
            }
            all_of(vec![term(f.kind, Kind::Contract.as_str()), any_of(granted)])
        }
    });
    // Retired articles leave the index: every user reads what is there.
    kinds.push(term(f.kind, Kind::Kb.as_str()));
    match &scope.tickets {
        TicketAccess::All => kinds.push(term(f.kind, Kind::Ticket.as_str())),
        TicketAccess::Customer(customer) => kinds.push(all_of(vec![
            term(f.kind, Kind::Ticket.as_str()),
            term(f.customer, &customer.to_string()),
        ])),
        TicketAccess::None => {}
    }
    all_of(vec![term(f.tenant, &scope.tenant), any_of(kinds)])
}

/// The request's own filters (types, statuses).
fn request_filter(f: &Fields, request: &Request) -> Vec<Box<dyn Query>> {
    let mut out: Vec<Box<dyn Query>> = Vec::new();
    if !request.kinds.is_empty() {
        out.push(one_of(f.kind, request.kinds.iter().map(|k| k.as_str())));
    }
    if !request.statuses.is_empty() {
        let statuses: Vec<String> = request.statuses.iter().map(|s| s.to_lowercase()).collect();
        out.push(one_of(f.status, statuses.iter().map(String::as_str)));
    }
    out
}

/// True when `scope` sees all of every type and every document slot of
/// the index (deleted ones included) belongs to its tenant: its filter
/// then keeps everything.
fn covers_index(searcher: &Searcher, scope: &Scope, f: &Fields) -> Result<bool, SearchError> {
    if scope.contracts != ContractAccess::All || scope.tickets != TicketAccess::All {
        return Ok(false);
    }
    let tenant = Term::from_field_text(f.tenant, &scope.tenant);
    for reader in searcher.segment_readers() {
        let slots = reader
            .inverted_index(f.tenant)?
            .doc_freq(&tenant)
            .map_err(|e| SearchError::Index(IndexError::Io(e)))?;
        if slots != reader.max_doc() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Runs a search. Blocks (it reads the index): call from `spawn_blocking`.
///
/// The count and facets over every match, and half of the snippets, run
/// on a second thread beside the best hits and the other half: on two
/// cores that halves a search's latency (its work stays the same).
pub fn search(
    snapshot: &Snapshot,
    stats: &StatsCache,
    scope: &Scope,
    request: &Request,
) -> Result<Results, SearchError> {
    search_planned(snapshot, stats, scope, request, true)
}

/// [`search`] without the fast path of conjunctions: the parser's query
/// as it is. The fast path must answer exactly this; tests hold the two
/// against each other.
#[doc(hidden)]
pub fn search_without_fast_path(
    snapshot: &Snapshot,
    stats: &StatsCache,
    scope: &Scope,
    request: &Request,
) -> Result<Results, SearchError> {
    search_planned(snapshot, stats, scope, request, false)
}

/// [`search`], with the fast path of conjunctions or without (`fast`).
fn search_planned(
    snapshot: &Snapshot,
    stats: &StatsCache,
    scope: &Scope,
    request: &Request,
    fast: bool,
) -> Result<Results, SearchError> {
    let (user_query, plan) = planned(snapshot, &request.q)?;
    let plan = plan.filter(|_| fast);
    let f = &snapshot.fields;
    let searcher = &snapshot.searcher;
    let access = access_filter(f, scope);
    let mut filter = vec![access.box_clone()];
    filter.extend(request_filter(f, request));
    let covers = covers_index(searcher, scope, f)?;
    // A filter that lets every document of the index through is dropped:
    // the user's query alone lets tantivy skip what cannot make the page.
    let filter = (filter.len() > 1 || !covers).then(|| all_of(filter));
    // `query` ranks the best hits; `matches` is what is counted.
    let (query, matches): (Box<dyn Query>, Box<dyn Query>) = match (&plan, filter) {
        (Some(plan), filter) => {
            let matching = match filter {
                Some(filter) => all_of(vec![plan.matching.box_clone(), filter]),
                None => plan.matching.box_clone(),
            };
            (plan.ranking(searcher, matching.box_clone()), matching)
        }
        (None, None) => (user_query.box_clone(), user_query.box_clone()),
        (None, Some(filter)) => {
            let exact: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
                (Occur::Must, user_query.box_clone()),
                (Occur::Must, Box::new(ConstScoreQuery::new(filter, 0.0))),
            ]));
            (exact.box_clone(), exact)
        }
    };
    let visible = VisibleStats::new(searcher, access, stats.entry(searcher, scope), covers);
    let limit = request.limit.clamp(1, MAX_LIMIT);
    let snippets = Snippets::new(searcher, user_query.as_ref(), f)?;
    let hit = |(score, address): (Score, tantivy::DocAddress)| -> Result<Hit, SearchError> {
        let stored: TantivyDocument = searcher.doc(address)?;
        let doc = index::source(&stored, f)?;
        Ok(Hit {
            kind: doc.kind.as_str(),
            id: doc.id,
            snippet: snippets.of(&doc),
            title: doc.title,
            status: doc.status,
            // JSON has no NaN; a degenerate statistic must not make one.
            score: if score.is_finite() { score } else { 0.0 },
        })
    };
    std::thread::scope(|threads| {
        // Two passes: the count and facets over every match, without
        // scoring, there; here the best hits alone, which lets tantivy skip
        // blocks that cannot make the page (block-max WAND).
        let counting = threads.spawn(|| {
            searcher.search(
                matches.as_ref(),
                &(
                    Count,
                    FacetCollector {
                        kind: "type",
                        status: "status",
                    },
                ),
            )
        });
        let top = searcher.search_with_statistics_provider(
            query.as_ref(),
            &TopDocs::with_limit(limit)
                .and_offset(request.offset)
                .order_by_score(),
            &visible,
        )?;
        let mut first = top;
        let second = first.split_off(first.len().div_ceil(2));
        let hit = &hit;
        let later = threads.spawn(move || second.into_iter().map(hit).collect::<Vec<_>>());
        let mut hits = first.into_iter().map(hit).collect::<Result<Vec<_>, _>>()?;
        for h in later.join().expect("a snippet thread panicked") {
            hits.push(h?);
        }
        let (total, facets) = counting.join().expect("the counting thread panicked")?;
        Ok(Results {
            hits,
            total: total as u64,
            facets,
            position: snapshot.position,
        })
    })
}

/// Highlighted fragments of the fields a hit's text lives in.
struct Snippets {
    body: SnippetGenerator,
    comments: SnippetGenerator,
    /// The indexed forms (stems) of the query's words in those fields.
    stems: Vec<String>,
}

/// Texts longer than this are cut to a window around the first place a
/// query word may be before highlighting: analysing (stemming) a whole
/// 100,000-character body for each hit would cost more than the search.
const WINDOW_BYTES: usize = 600;

impl Snippets {
    fn new(searcher: &Searcher, query: &dyn Query, f: &Fields) -> Result<Self, SearchError> {
        let make = |field| -> Result<SnippetGenerator, SearchError> {
            let mut g = SnippetGenerator::create(searcher, query, field)?;
            g.set_max_num_chars(SNIPPET_CHARS);
            Ok(g)
        };
        let mut stems = Vec::new();
        query.query_terms(&mut |term, _| {
            if term.field() == f.body || term.field() == f.comments {
                if let Some(text) = term.value().as_str() {
                    let text = text.to_ascii_lowercase();
                    if !text.is_empty() && !stems.contains(&text) {
                        stems.push(text);
                    }
                }
            }
        });
        Ok(Self {
            body: make(f.body)?,
            comments: make(f.comments)?,
            stems,
        })
    }

    /// The part of `text` worth highlighting: all of a short text; around
    /// the first occurrence of a stem in a long one; `None` when no stem
    /// occurs at all.
    fn window<'t>(&self, text: &'t str) -> Option<&'t str> {
        if text.len() <= WINDOW_BYTES {
            return Some(text);
        }
        // ASCII lowercasing keeps byte offsets.
        let lower = text.to_ascii_lowercase();
        let at = self
            .stems
            .iter()
            .filter_map(|s| lower.find(s.as_str()))
            .min()?;
        let mut start = at.saturating_sub(WINDOW_BYTES / 4);
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (start + WINDOW_BYTES).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        Some(&text[start..end])
    }

    fn of(&self, doc: &SearchDoc) -> String {
        if let Some(window) = self.window(&doc.body) {
            let body = self.body.snippet(window);
            if !body.highlighted().is_empty() {
                return body.to_html();
            }
        }
        for comment in &doc.comments {
            let Some(window) = self.window(comment) else {
                continue;
            };
            let s = self.comments.snippet(window);
            if !s.highlighted().is_empty() {
                return s.to_html();
            }
        }
        // Nothing matched in the text (a title or field match): its start.
        let start: String = doc.body.chars().take(SNIPPET_CHARS).collect();
        escape(&start)
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Counts matching documents by the `type` and `status` fast fields.
struct FacetCollector {
    kind: &'static str,
    status: &'static str,
}

struct FacetSegment {
    kind: Option<StrColumn>,
    status: Option<StrColumn>,
    kind_counts: Vec<u64>,
    status_counts: Vec<u64>,
}

impl Collector for FacetCollector {
    type Fruit = Facets;
    type Child = FacetSegment;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<FacetSegment> {
        let kind = segment.fast_fields().str(self.kind)?;
        let status = segment.fast_fields().str(self.status)?;
        let size = |c: &Option<StrColumn>| c.as_ref().map_or(0, |c| c.num_terms());
        Ok(FacetSegment {
            kind_counts: vec![0; size(&kind)],
            status_counts: vec![0; size(&status)],
            kind,
            status,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Facets>) -> tantivy::Result<Facets> {
        let mut out = Facets::default();
        for fruit in fruits {
            for (k, n) in fruit.kinds {
                *out.kinds.entry(k).or_default() += n;
            }
            for (k, n) in fruit.status {
                *out.status.entry(k).or_default() += n;
            }
        }
        Ok(out)
    }
}

impl SegmentCollector for FacetSegment {
    type Fruit = Facets;

    // Every document has exactly one type and one status: the first value
    // of each column is the value.
    fn collect(&mut self, doc: DocId, _: Score) {
        for (column, counts) in [
            (&self.kind, &mut self.kind_counts),
            (&self.status, &mut self.status_counts),
        ] {
            if let Some(ord) = column.as_ref().and_then(|c| c.ords().first(doc)) {
                if let Some(n) = counts.get_mut(ord as usize) {
                    *n += 1;
                }
            }
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        let mut ords = vec![None; docs.len()];
        for (column, counts) in [
            (&self.kind, &mut self.kind_counts),
            (&self.status, &mut self.status_counts),
        ] {
            let Some(column) = column else {
                continue;
            };
            column.ords().first_vals(docs, &mut ords);
            for ord in ords.iter().flatten() {
                if let Some(n) = counts.get_mut(*ord as usize) {
                    *n += 1;
                }
            }
        }
    }

    fn harvest(self) -> Facets {
        let named = |column: &Option<StrColumn>, counts: Vec<u64>| {
            let mut out = BTreeMap::new();
            let Some(column) = column else {
                return out;
            };
            let mut name = String::new();
            for (ord, n) in counts.into_iter().enumerate() {
                if n > 0 && column.ord_to_str(ord as u64, &mut name).unwrap_or(false) {
                    out.insert(name.clone(), n);
                }
            }
            out
        };
        Facets {
            kinds: named(&self.kind, self.kind_counts),
            status: named(&self.status, self.status_counts),
        }
    }
}

/// Per searcher and scope: how many documents the scope sees and how many
/// tokens each field holds in them.
#[derive(Debug, Default)]
pub struct StatsCache {
    entries: Mutex<HashMap<(u64, String), Arc<ScopeStats>>>,
}

#[derive(Default)]
pub struct ScopeStats {
    totals: Mutex<Option<Arc<Totals>>>,
}

impl std::fmt::Debug for ScopeStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScopeStats")
    }
}

/// What a scope sees of one searcher.
struct Totals {
    docs: u64,
    tokens: HashMap<Field, u64>,
    /// Per segment, the visible (and alive) documents.
    visible: HashMap<tantivy::index::SegmentId, tantivy::BitSet>,
}

/// Cached entries at most; older generations go first.
const STATS_ENTRIES: usize = 256;

impl StatsCache {
    fn entry(&self, searcher: &Searcher, scope: &Scope) -> Arc<ScopeStats> {
        // Segment ids are unique across indexes (a rebuilt index too);
        // with their delete opstamps they name what the searcher shows.
        let generation = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            searcher.generation().segments().hash(&mut h);
            h.finish()
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= STATS_ENTRIES {
            entries.retain(|(g, _), _| *g == generation);
            if entries.len() >= STATS_ENTRIES {
                entries.clear();
            }
        }
        entries
            .entry((generation, scope.key()))
            .or_default()
            .clone()
    }
}

/// BM25 statistics of the documents a scope may see.
pub struct VisibleStats<'a> {
    searcher: &'a Searcher,
    filter: Box<dyn Query>,
    cached: Arc<ScopeStats>,
    everything: bool,
    /// The document frequencies this search looked up: a query's weights
    /// ask for a term once per clause that has it.
    doc_freqs: Mutex<HashMap<Term, u64>>,
}

impl<'a> VisibleStats<'a> {
    /// `everything`: the caller is known to see every document (see
    /// `covers_index`), and the pass over the filter is not needed.
    fn new(
        searcher: &'a Searcher,
        filter: Box<dyn Query>,
        cached: Arc<ScopeStats>,
        everything: bool,
    ) -> Self {
        Self {
            searcher,
            filter,
            cached,
            everything,
            doc_freqs: Mutex::default(),
        }
    }

    /// The visible documents, their token counts per text field, and per
    /// segment the set of them: one pass over the filter's documents.
    fn totals(&self) -> tantivy::Result<Arc<Totals>> {
        let mut slot = self.cached.totals.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = slot.as_ref() {
            return Ok(t.clone());
        }
        let schema = self.searcher.schema();
        let text_fields: Vec<Field> = DEFAULT_FIELDS
            .iter()
            .filter_map(|(name, _)| schema.get_field(name).ok())
            .collect();
        let weight = self
            .filter
            .weight(EnableScoring::disabled_from_searcher(self.searcher))?;
        let mut docs = 0u64;
        let mut tokens: HashMap<Field, u64> = text_fields.iter().map(|f| (*f, 0)).collect();
        let mut visible = HashMap::new();
        for reader in self.searcher.segment_readers() {
            let norms: Vec<(Field, tantivy::fieldnorm::FieldNormReader)> = text_fields
                .iter()
                .filter_map(|f| reader.get_fieldnorms_reader(*f).ok().map(|r| (*f, r)))
                .collect();
            let alive = reader.alive_bitset();
            let mut set = tantivy::BitSet::with_max_value(reader.max_doc());
            weight.for_each_no_score(reader, &mut |block: &[DocId]| {
                for &doc in block {
                    if alive.is_some_and(|a| !a.is_alive(doc)) {
                        continue;
                    }
                    set.insert(doc);
                    docs += 1;
                    for (field, norm) in &norms {
                        if let Some(n) = tokens.get_mut(field) {
                            *n += u64::from(norm.fieldnorm(doc));
                        }
                    }
                }
            })?;
            visible.insert(reader.segment_id(), set);
        }
        let totals = Arc::new(Totals {
            docs,
            tokens,
            visible,
        });
        *slot = Some(totals.clone());
        Ok(totals)
    }
}

impl VisibleStats<'_> {
    /// True when the caller sees every document of the index: then the
    /// index's own statistics are theirs, and cheaper.
    fn sees_everything(&self) -> tantivy::Result<bool> {
        Ok(self.everything || self.totals()?.docs == self.searcher.num_docs())
    }
}

impl Bm25StatisticsProvider for VisibleStats<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        if self.sees_everything()? {
            return self.searcher.total_num_tokens(field);
        }
        Ok(self.totals()?.tokens.get(&field).copied().unwrap_or(0))
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        if self.everything {
            return Ok(self.searcher.num_docs());
        }
        Ok(self.totals()?.docs)
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let known = self.doc_freqs_memo().get(term).copied();
        if let Some(found) = known {
            return Ok(found);
        }
        let found = self.count_doc_freq(term)?;
        self.doc_freqs_memo().insert(term.clone(), found);
        Ok(found)
    }
}

impl VisibleStats<'_> {
    fn doc_freqs_memo(&self) -> std::sync::MutexGuard<'_, HashMap<Term, u64>> {
        self.doc_freqs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count_doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        if self.sees_everything()? {
            return self.searcher.doc_freq(term);
        }
        // The term's postings, counted where the scope sees the document.
        let totals = self.totals()?;
        let mut found = 0u64;
        for reader in self.searcher.segment_readers() {
            let Some(visible) = totals.visible.get(&reader.segment_id()) else {
                continue;
            };
            let Some(mut postings) = reader
                .inverted_index(term.field())?
                .read_postings(term, IndexRecordOption::Basic)?
            else {
                continue;
            };
            let mut doc = postings.doc();
            while doc != tantivy::TERMINATED {
                if visible.contains(doc) {
                    found += 1;
                }
                doc = postings.advance();
            }
        }
        Ok(found.min(self.total_num_docs()?))
    }
}
