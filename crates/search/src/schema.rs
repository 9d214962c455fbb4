//! The index's schema: which fields exist, how each is analysed, and which
//! of them a user may name in a query.
//!
//! One index holds every tenant's contracts, knowledge articles and tickets
//! (ADR 0002). Text fields go through the `english` analyzer (lowercase,
//! English stop words removed, Snowball English stemming); keyword fields
//! (`status`, `tags`, ...) through `keyword` (the whole value, lowercased).
//! The access fields (`tenant`, `owner`, `shared_users`, `shared_roles`,
//! `customer`) exist only for the filter the server adds to every query:
//! they are not in [`USER_FIELDS`], so a query that names them is refused.

use tantivy::schema::{
    DateOptions, Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
    FAST, INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer, StopWordFilter,
    TextAnalyzer,
};
use tantivy::Index;

/// Bumped whenever the schema or the analysis changes: an index of another
/// version is rebuilt from the event log when it is opened for writing.
/// Version 2 added the catch-all `words` and `keywords` fields and indexes
/// keyword fields with term frequencies.
pub const SCHEMA_VERSION: u32 = 2;

/// The analyzer of text fields.
pub const ENGLISH: &str = "english";
/// The analyzer of keyword fields.
pub const KEYWORD: &str = "keyword";

/// The fields a query may name (`title:fibre`, `status:active`, ...), with
/// what each holds, for error messages and the API's documentation.
pub const USER_FIELDS: &[(&str, &str)] = &[
    ("type", "contract, kb or ticket"),
    ("title", "the title (all types)"),
    ("body", "contract body, article body, ticket description"),
    ("status", "the status (draft, active, published, open, ...)"),
    ("parties", "a contract's parties"),
    ("counterparty", "a contract's counterparty organisation"),
    (
        "value",
        "a contract's value in minor units (value:[100000 TO *])",
    ),
    ("currency", "a contract's currency (EUR)"),
    (
        "start",
        "a contract's start date (start:[2026-01-01T00:00:00Z TO *])",
    ),
    ("end", "a contract's end date"),
    ("tags", "an article's tags"),
    ("product", "an article's or ticket's product"),
    ("category", "a ticket's category"),
    ("priority", "a ticket's priority (P1 to P4)"),
    ("comments", "a ticket's comments and resolution"),
];

/// The fields searched when a query names none, with their boosts: titles
/// count three times as much as bodies.
pub const DEFAULT_FIELDS: &[(&str, f32)] = &[
    ("title", 3.0),
    ("body", 1.0),
    ("parties", 1.5),
    ("counterparty", 1.5),
    ("tags", 1.5),
    ("product", 1.5),
    ("category", 1.5),
    ("comments", 1.0),
];

/// Handles of every field.
#[derive(Debug, Clone)]
pub struct Fields {
    /// `<type>/<id>`: the unique key updates and deletes go by.
    pub key: Field,
    pub id: Field,
    pub kind: Field,
    pub tenant: Field,
    pub title: Field,
    pub body: Field,
    pub status: Field,
    pub parties: Field,
    pub counterparty: Field,
    pub value: Field,
    pub currency: Field,
    pub start: Field,
    pub end: Field,
    pub tags: Field,
    pub product: Field,
    pub category: Field,
    pub priority: Field,
    pub comments: Field,
    pub owner: Field,
    pub shared_users: Field,
    pub shared_roles: Field,
    pub customer: Field,
    /// The whole document as JSON (stored, not indexed): what the indexer
    /// folds the next event into, and what hits are rendered from.
    pub source: Field,
    /// Every word of the text fields among [`DEFAULT_FIELDS`], analysed as
    /// they are (documents only: no frequencies, no positions).
    pub words: Field,
    /// Every value of the keyword fields among [`DEFAULT_FIELDS`].
    pub keywords: Field,
}

/// The catch-all fields exist for matching a conjunction of words fast: a
/// document has a word in some default field exactly when `words` holds
/// its text form or `keywords` its keyword form, so the intersection of
/// two postings lists replaces the intersection of two unions of eight
/// (see `query::Conjunction`). They are added after `source`, so an index
/// of version 1 keeps its field numbers and is read (without the fast
/// path) until it is rebuilt.
pub const WORDS: &str = "words";
/// See [`WORDS`].
pub const KEYWORDS: &str = "keywords";

/// The schema and its field handles.
pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = |stored: bool| {
        let options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ENGLISH)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        if stored {
            options.set_stored()
        } else {
            options
        }
    };
    // With frequencies (almost always 1): tantivy's block-max WAND runs
    // only over terms whose frequencies it reads, and keyword fields are
    // among the default fields of every plain word.
    let keyword = || {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(KEYWORD)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
    };
    let date = || DateOptions::from(INDEXED) | FAST;
    let fields = Fields {
        key: b.add_text_field("key", STRING),
        id: b.add_text_field("id", STRING),
        kind: b.add_text_field("type", keyword().set_fast(KEYWORD)),
        tenant: b.add_text_field("tenant", STRING),
        title: b.add_text_field("title", text(false)),
        body: b.add_text_field("body", text(false)),
        status: b.add_text_field("status", keyword().set_fast(KEYWORD)),
        parties: b.add_text_field("parties", text(false)),
        counterparty: b.add_text_field("counterparty", text(false)),
        value: b.add_i64_field("value", NumericOptions::default() | INDEXED | FAST),
        currency: b.add_text_field("currency", keyword()),
        start: b.add_date_field("start", date()),
        end: b.add_date_field("end", date()),
        tags: b.add_text_field("tags", keyword()),
        product: b.add_text_field("product", keyword()),
        category: b.add_text_field("category", keyword()),
        priority: b.add_text_field("priority", keyword()),
        comments: b.add_text_field("comments", text(false)),
        owner: b.add_text_field("owner", STRING),
        shared_users: b.add_text_field("shared_users", STRING),
        shared_roles: b.add_text_field("shared_roles", STRING),
        customer: b.add_text_field("customer", STRING),
        source: b.add_bytes_field("source", STORED),
        words: b.add_text_field(
            WORDS,
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(ENGLISH)
                    .set_index_option(IndexRecordOption::Basic),
            ),
        ),
        keywords: b.add_text_field(KEYWORDS, keyword()),
    };
    (b.build(), fields)
}

/// Registers the analyzers the schema names on `index`.
pub fn register_tokenizers(index: &Index) {
    let english = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(
            StopWordFilter::new(Language::English)
                .unwrap_or_else(|| StopWordFilter::remove(Vec::<String>::new())),
        )
        // Snowball English, as tantivy's `Stemmer` (crate::stem).
        .filter(crate::stem::EnglishStemmer)
        .build();
    index.tokenizers().register(ENGLISH, english);
    // Keyword fields are among the default fields: a query word that is a
    // stop word must vanish there too, or `submit a job` would require a
    // tag or product named `a`.
    let keyword = TextAnalyzer::builder(RawTokenizer::default())
        .filter(RemoveLongFilter::limit(200))
        .filter(LowerCaser)
        .filter(
            StopWordFilter::new(Language::English)
                .unwrap_or_else(|| StopWordFilter::remove(Vec::<String>::new())),
        )
        .build();
    index.tokenizers().register(KEYWORD, keyword);
    let fast = TextAnalyzer::builder(RawTokenizer::default())
        .filter(RemoveLongFilter::limit(200))
        .filter(LowerCaser)
        .build();
    index.fast_field_tokenizer().register(KEYWORD, fast);
}

/// True when `name` is a field a query may name.
pub fn user_field(name: &str) -> bool {
    USER_FIELDS.iter().any(|(f, _)| *f == name)
}
