//! The index on disk: where it lives, the writer that folds events into
//! it, and the readers that search it.
//!
//! Layout under `<data dir>/search/`:
//!
//! - `CURRENT`: the name of the index directory in use, replaced atomically
//!   (write, fsync, rename) when a rebuild swaps a new index in;
//! - `index-<uuid>/`: a tantivy index. Its commit payload is
//!   `{"position": N, "schema": V}`: the global position of the last event
//!   it reflects, committed together with the documents (exactly once).
//!
//! One process writes (it holds the projection's lease, and tantivy's own
//! lock file on the directory); any number of processes read, each mapping
//! its searcher back to the commit it shows, so every answer says exactly
//! which position it reflects.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chronicle_projections::read::entity_id;
use chronicle_projections::ApplyError;
use chronicle_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Value as _};
use tantivy::{
    DateTime, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term,
};

use crate::doc::{self, Change, Kind, SearchDoc};
use crate::schema::{self, Fields, SCHEMA_VERSION};

/// What can go wrong with the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("search index files: {0}")]
    Io(#[from] std::io::Error),
    #[error("search index: a stored document does not decode: {0}")]
    Source(#[from] serde_json::Error),
    /// An event the index cannot apply; the events before it were applied.
    #[error(transparent)]
    Poison(#[from] ApplyError),
    #[error("the search index is not built yet")]
    NotBuilt,
}

/// The commit payload.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Payload {
    pub position: u64,
    pub schema: u32,
    /// The id of the event at `position`: tells whether this index was
    /// built from the log it is now asked to follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<uuid::Uuid>,
}

impl Payload {
    fn parse(raw: Option<&str>) -> Option<Payload> {
        raw.and_then(|p| serde_json::from_str(p).ok())
    }
}

/// The directory holding the search index and its `CURRENT` pointer.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

const CURRENT: &str = "CURRENT";

impl Layout {
    /// `<data_dir>/search`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join("search"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The name of the index directory in use, if any.
    pub fn current(&self) -> std::io::Result<Option<String>> {
        match std::fs::read_to_string(self.root.join(CURRENT)) {
            Ok(name) => Ok(Some(name.trim().to_owned()).filter(|n| !n.is_empty())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Points `CURRENT` at `name`, atomically and durably.
    pub fn set_current(&self, name: &str) -> std::io::Result<()> {
        let tmp = self.root.join("CURRENT.tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(name.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, self.root.join(CURRENT))?;
        std::fs::File::open(&self.root)?.sync_all()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Index directories other than `keep`, for removal.
    pub fn others(&self, keep: &[&str]) -> std::io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("index-") && !keep.contains(&name.as_str()) {
                out.push(entry.path());
            }
        }
        Ok(out)
    }

    /// Total size of the files of index `name`, in bytes.
    pub fn size(&self, name: &str) -> u64 {
        std::fs::read_dir(self.path(name))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// Opens an existing index directory for reading or writing.
fn open_index(path: &Path) -> Result<(Index, Fields), IndexError> {
    let index = Index::open_in_dir(path)?;
    let (_, fields) = schema::schema();
    schema::register_tokenizers(&index);
    Ok((index, fields))
}

/// Tuning of the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Indexing threads.
    pub threads: usize,
    /// Memory for buffered documents, in bytes, shared by the threads.
    pub heap_bytes: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            threads: 1,
            heap_bytes: 64 << 20,
        }
    }
}

/// The writing side of one index directory. Every method blocks (disk IO,
/// tantivy's indexing threads): call them from `spawn_blocking`.
pub struct Indexer {
    layout: Layout,
    name: String,
    index: Index,
    writer: IndexWriter,
    /// Shows the last commit; where the next event's document is read from.
    lookup: IndexReader,
    fields: Fields,
    /// The position of the last commit.
    committed: u64,
    /// The position of the last event applied (committed or not).
    applied: u64,
    /// The ids of the events at `committed` and `applied`.
    committed_event: Option<uuid::Uuid>,
    applied_event: Option<uuid::Uuid>,
    /// Documents changed since the last commit (`None`: deleted), which the
    /// lookup reader does not show yet.
    pending: HashMap<String, Option<SearchDoc>>,
    /// Documents written since the last commit.
    pending_docs: usize,
    /// The merge [`Indexer::compact`] started, until it ends (in a mutex
    /// for `Sync` alone: only `&mut self` reaches it).
    merging: std::sync::Mutex<Option<Merge>>,
}

type Merge = tantivy::FutureResult<Option<tantivy::index::SegmentMeta>>;

/// What [`Indexer::compact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compaction {
    /// Started merging every segment into one.
    Started,
    /// Nothing to do: one segment, or the others hold little beside the
    /// largest.
    NotWorth,
    /// A merge (this one's or the merge policy's) holds some segments: ask
    /// again later.
    Busy,
}

/// An idle index is merged into one segment once the documents outside its
/// largest segment are a `1 / COMPACT_FROM` share of it (see
/// [`Indexer::compact`]).
const COMPACT_FROM: u64 = 4;

impl Indexer {
    /// Opens the index `CURRENT` names, or creates an empty one (at position
    /// 0) and makes it current. An index of another schema version is
    /// replaced by a new empty one, which then catches up from the log.
    pub fn open_current(layout: &Layout, options: WriterOptions) -> Result<Self, IndexError> {
        std::fs::create_dir_all(layout.root())?;
        if let Some(name) = layout.current()? {
            if layout.path(&name).join("meta.json").exists() {
                let (index, fields) = open_index(&layout.path(&name))?;
                let payload = Payload::parse(index.load_metas()?.payload.as_deref());
                if payload.is_some_and(|p| p.schema == SCHEMA_VERSION) {
                    return Self::with_index(layout, name, index, fields, options);
                }
                tracing::warn!(
                    index = %name,
                    "the search index has another schema version; building a new one from the log"
                );
            }
        }
        let fresh = Self::create(layout, options)?;
        layout.set_current(&fresh.name)?;
        Ok(fresh)
    }

    /// Creates a new, empty index directory beside the current one (for a
    /// rebuild); committed at position 0, not current.
    pub fn create(layout: &Layout, options: WriterOptions) -> Result<Self, IndexError> {
        std::fs::create_dir_all(layout.root())?;
        let name = format!("index-{}", uuid::Uuid::now_v7());
        let path = layout.path(&name);
        std::fs::create_dir_all(&path)?;
        let (schema, fields) = schema::schema();
        let index = Index::create_in_dir(&path, schema)?;
        schema::register_tokenizers(&index);
        let mut indexer = Self::with_index(layout, name, index, fields, options)?;
        indexer.commit()?;
        Ok(indexer)
    }

    fn with_index(
        layout: &Layout,
        name: String,
        index: Index,
        fields: Fields,
        options: WriterOptions,
    ) -> Result<Self, IndexError> {
        let payload = Payload::parse(index.load_metas()?.payload.as_deref());
        let position = payload.map(|p| p.position).unwrap_or(0);
        let event = payload.and_then(|p| p.event);
        let writer = index.writer_with_num_threads(options.threads.max(1), options.heap_bytes)?;
        let lookup = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Self {
            layout: layout.clone(),
            name,
            index,
            writer,
            lookup,
            fields,
            committed: position,
            applied: position,
            committed_event: event,
            applied_event: event,
            pending: HashMap::new(),
            pending_docs: 0,
            merging: std::sync::Mutex::new(None),
        })
    }

    /// The index directory's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The position of the last commit.
    pub fn position(&self) -> u64 {
        self.committed
    }

    /// The id of the event at [`Indexer::position`] (`None` at 0).
    pub fn position_event(&self) -> Option<uuid::Uuid> {
        self.committed_event
    }

    /// The position of the last event applied, committed or not.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// True when events were applied since the last commit.
    pub fn dirty(&self) -> bool {
        self.applied != self.committed
    }

    /// Documents written since the last commit.
    pub fn pending_docs(&self) -> usize {
        self.pending_docs
    }

    /// Points `CURRENT` at this index.
    pub fn make_current(&self) -> std::io::Result<()> {
        self.layout.set_current(&self.name)
    }

    /// Documents in the last commit.
    pub fn num_docs(&self) -> u64 {
        self.lookup.searcher().num_docs()
    }

    /// Bytes on disk.
    pub fn size_bytes(&self) -> u64 {
        self.layout.size(&self.name)
    }

    /// Folds `events` (the next ones of the log, in order) into the index,
    /// uncommitted. Returns how many documents were written or deleted. On
    /// an event it cannot apply, the events before it stay applied and the
    /// error names it.
    pub fn apply(&mut self, events: &[RecordedEvent]) -> Result<usize, IndexError> {
        let searcher = self.lookup.searcher();
        let mut changed: Vec<String> = Vec::new();
        let mut failure = None;
        for event in events {
            if let Err(e) = self.fold(&searcher, event, &mut changed) {
                failure = Some(e);
                break;
            }
            self.applied = event.position;
            self.applied_event = Some(event.event_id);
        }
        for key in &changed {
            self.writer
                .delete_term(Term::from_field_text(self.fields.key, key));
            if let Some(Some(doc)) = self.pending.get(key) {
                self.writer.add_document(to_document(&self.fields, doc)?)?;
            }
        }
        self.pending_docs += changed.len();
        match failure {
            Some(e) => Err(e),
            None => Ok(changed.len()),
        }
    }

    fn fold(
        &mut self,
        searcher: &Searcher,
        event: &RecordedEvent,
        changed: &mut Vec<String>,
    ) -> Result<(), IndexError> {
        let Some(kind) = Kind::of_stream(&event.stream_type) else {
            return Ok(());
        };
        let key = doc::key(kind, entity_id(event)?);
        if !self.pending.contains_key(&key) {
            let stored = if doc::creates(event) {
                None
            } else {
                lookup(searcher, &self.fields, &key)?
            };
            self.pending.insert(key.clone(), stored);
        }
        let slot = self.pending.get_mut(&key).ok_or(IndexError::NotBuilt)?;
        let change = doc::apply(slot.as_ref(), event)?;
        match change {
            Change::Put(doc) => *slot = Some(*doc),
            Change::Delete => *slot = None,
            Change::Keep => return Ok(()),
        }
        if !changed.contains(&key) {
            changed.push(key);
        }
        Ok(())
    }

    /// Commits everything applied, with the position as payload, and makes
    /// the lookup reader show it.
    pub fn commit(&mut self) -> Result<u64, IndexError> {
        let payload = serde_json::to_string(&Payload {
            position: self.applied,
            schema: SCHEMA_VERSION,
            event: self.applied_event,
        })?;
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.lookup.reload()?;
        self.committed = self.applied;
        self.committed_event = self.applied_event;
        self.pending.clear();
        self.pending_docs = 0;
        Ok(self.committed)
    }

    /// Merges every segment into one when the documents outside the
    /// largest are at least a quarter of it (a catch-up leaves several
    /// segments of the writer's memory budget each; commits while live
    /// leave many small ones). A search pays per segment (term lookups,
    /// scorers): one segment answers about a fifth faster than four. The
    /// merge runs on tantivy's merge thread and keeps the last commit's
    /// payload (the position); readers see it at their next refresh, the
    /// same documents in fewer segments. Rewriting the index when it grew
    /// by a quarter bounds the work to a few times its size.
    pub fn compact(&mut self) -> Result<Compaction, IndexError> {
        let running = self.merging.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(merging) = running.as_mut() {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match std::pin::Pin::new(merging).poll(&mut cx) {
                std::task::Poll::Pending => return Ok(Compaction::Busy),
                std::task::Poll::Ready(ended) => {
                    *running = None;
                    if let Err(e) = ended {
                        tracing::warn!(index = %self.name, error = %e, "merging the search index's segments failed");
                    }
                }
            }
        }
        let segments = self.index.searchable_segment_metas()?;
        let largest = segments.iter().map(|s| s.num_docs()).max().unwrap_or(0);
        let total: u64 = segments.iter().map(|s| u64::from(s.num_docs())).sum();
        if segments.len() < 2 || (total - u64::from(largest)) * COMPACT_FROM < u64::from(largest) {
            return Ok(Compaction::NotWorth);
        }
        let ids: Vec<_> = segments.iter().map(|s| s.id()).collect();
        let mut merging = self.writer.merge(&ids);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::Pin::new(&mut merging).poll(&mut cx) {
            std::task::Poll::Pending => {
                *self.merging.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(merging);
            }
            std::task::Poll::Ready(Ok(_)) => {}
            // A segment in another merge refuses this one at once.
            std::task::Poll::Ready(Err(e)) => {
                tracing::debug!(index = %self.name, error = %e, "segments busy; compacting later");
                return Ok(Compaction::Busy);
            }
        }
        tracing::info!(
            index = %self.name,
            segments = ids.len(),
            documents = total,
            "merging the search index into one segment"
        );
        Ok(Compaction::Started)
    }

    /// Drops what was applied since the last commit.
    pub fn rollback(&mut self) -> Result<(), IndexError> {
        self.writer.rollback()?;
        self.applied = self.committed;
        self.applied_event = self.committed_event;
        self.pending.clear();
        self.pending_docs = 0;
        Ok(())
    }

    /// The stored document of `key` in the last commit (tests, tools).
    pub fn get(&self, key: &str) -> Result<Option<SearchDoc>, IndexError> {
        lookup(&self.lookup.searcher(), &self.fields, key)
    }

    /// Stops the writer's threads and releases the directory lock.
    pub fn close(self) -> Result<(), IndexError> {
        self.writer.wait_merging_threads()?;
        let _ = self.index;
        Ok(())
    }
}

/// The stored document of `key`, if the searcher shows one.
fn lookup(
    searcher: &Searcher,
    fields: &Fields,
    key: &str,
) -> Result<Option<SearchDoc>, IndexError> {
    let query = TermQuery::new(
        Term::from_field_text(fields.key, key),
        IndexRecordOption::Basic,
    );
    let top = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
    let Some((_, address)) = top.first() else {
        return Ok(None);
    };
    let stored: TantivyDocument = searcher.doc(*address)?;
    source(&stored, fields).map(Some)
}

/// The document a stored tantivy document holds.
pub fn source(stored: &TantivyDocument, fields: &Fields) -> Result<SearchDoc, IndexError> {
    let bytes = stored
        .get_first(fields.source)
        .and_then(|v| v.as_bytes())
        .unwrap_or_default();
    Ok(serde_json::from_slice(bytes)?)
}

/// A day as a tantivy date. Tantivy counts nanoseconds in an `i64`, which
/// spans 1677-09-21 to 2262-04-11; days outside are indexed as the nearest
/// end of that span (the stored source keeps the real day).
fn date(day: chrono::NaiveDate) -> DateTime {
    const MAX_SECS: i64 = i64::MAX / 1_000_000_000;
    const MIN_SECS: i64 = i64::MIN / 1_000_000_000;
    let secs = day.and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
    DateTime::from_timestamp_secs(secs.clamp(MIN_SECS, MAX_SECS))
}

/// The tantivy document of a search document.
pub fn to_document(f: &Fields, doc: &SearchDoc) -> Result<TantivyDocument, IndexError> {
    let mut d = TantivyDocument::default();
    d.add_text(f.key, doc.key());
    d.add_text(f.id, doc.id.to_string());
    d.add_text(f.kind, doc.kind.as_str());
    d.add_text(f.tenant, &doc.tenant);
    d.add_text(f.title, &doc.title);
    d.add_text(f.body, &doc.body);
    // The catch-all fields: the text fields' words and the keyword fields'
    // values of the default fields (see `schema::WORDS`).
    d.add_text(f.words, &doc.title);
    d.add_text(f.words, &doc.body);
    for text in doc
        .parties
        .iter()
        .chain(&doc.counterparty)
        .chain(&doc.comments)
    {
        d.add_text(f.words, text);
    }
    for value in doc.tags.iter().chain(&doc.product).chain(&doc.category) {
        d.add_text(f.keywords, value);
    }
    d.add_text(f.status, &doc.status);
    for party in &doc.parties {
        d.add_text(f.parties, party);
    }
    if let Some(v) = &doc.counterparty {
        d.add_text(f.counterparty, v);
    }
    if let Some(v) = doc.value_minor {
        d.add_i64(f.value, v);
    }
    if let Some(v) = &doc.currency {
        d.add_text(f.currency, v);
    }
    if let Some(v) = doc.start {
        d.add_date(f.start, date(v));
    }
    if let Some(v) = doc.end {
        d.add_date(f.end, date(v));
    }
    for tag in &doc.tags {
        d.add_text(f.tags, tag);
    }
    for (field, value) in [
        (f.product, &doc.product),
        (f.category, &doc.category),
        (f.priority, &doc.priority),
    ] {
        if let Some(v) = value {
            d.add_text(field, v);
        }
    }
    for comment in &doc.comments {
        d.add_text(f.comments, comment);
    }
    if let Some(v) = doc.owner {
        d.add_text(f.owner, v.to_string());
    }
    for user in &doc.shared_users {
        d.add_text(f.shared_users, user.to_string());
    }
    for role in &doc.shared_roles {
        d.add_text(f.shared_roles, role);
    }
    if let Some(v) = doc.customer {
        d.add_text(f.customer, v.to_string());
    }
    d.add_bytes(f.source, &serde_json::to_vec(doc)?);
    Ok(d)
}

/// A searcher and the position it reflects.
#[derive(Clone)]
pub struct Snapshot {
    pub searcher: Searcher,
    pub position: u64,
    pub index: Index,
    pub fields: Fields,
}

struct Opened {
    name: String,
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

/// The reading side: the index `CURRENT` names, reloaded on demand
/// ([`Reader::refresh`]), with the position each searcher reflects.
pub struct Reader {
    layout: Layout,
    opened: std::sync::Mutex<Option<Opened>>,
    snapshot: std::sync::RwLock<Option<Snapshot>>,
    position: tokio::sync::watch::Sender<u64>,
}

impl Reader {
    /// A reader of the index under `data_dir` (nothing is opened yet).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            layout: Layout::new(data_dir),
            opened: std::sync::Mutex::new(None),
            snapshot: std::sync::RwLock::new(None),
            position: tokio::sync::watch::channel(0).0,
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The latest snapshot, if the index exists.
    pub fn snapshot(&self) -> Option<Snapshot> {
        self.snapshot.read().ok().and_then(|s| s.clone())
    }

    /// The position of the latest snapshot (0 before the first).
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Follows the position of the latest snapshot.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.position.subscribe()
    }

    /// Opens the current index (again, after a swap) and reloads it to its
    /// latest commit. Blocks: call from `spawn_blocking`. Returns the
    /// position the new snapshot reflects; `NotBuilt` before the writer
    /// created the index.
    pub fn refresh(&self) -> Result<u64, IndexError> {
        let Some(name) = self.layout.current()? else {
            return Err(IndexError::NotBuilt);
        };
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        if opened.as_ref().is_none_or(|o| o.name != name) {
            let (index, fields) = open_index(&self.layout.path(&name))?;
            let reader = index
                .reader_builder()
                .reload_policy(ReloadPolicy::Manual)
                .try_into()?;
            *opened = Some(Opened {
                name,
                index,
                reader,
                fields,
            });
        }
        let o = opened.as_ref().ok_or(IndexError::NotBuilt)?;
        // Reload, and map the searcher back to the commit it shows: the
        // same segments with the same deletes. A commit landing between the
        // two reads makes them differ; read again.
        for _ in 0..8 {
            let metas = o.index.load_metas()?;
            o.reader.reload()?;
            let searcher = o.reader.searcher();
            let committed: BTreeMap<_, _> = metas
                .segments
                .iter()
                .map(|s| (s.id(), s.delete_opstamp()))
                .collect();
            if &committed != searcher.generation().segments() {
                continue;
            }
            let position = Payload::parse(metas.payload.as_deref())
                .map(|p| p.position)
                .unwrap_or(0);
            let snapshot = Snapshot {
                searcher,
                position,
                index: o.index.clone(),
                fields: o.fields.clone(),
            };
            if let Ok(mut s) = self.snapshot.write() {
                *s = Some(snapshot);
            }
            self.position.send_if_modified(|p| {
                let moved = *p != position;
                *p = position;
                moved
            });
            return Ok(position);
        }
        Ok(self.position())
    }

    /// Waits until a snapshot reflects `min`, at most `timeout`; the
    /// position reached otherwise.
    pub async fn wait_for(&self, min: u64, timeout: std::time::Duration) -> Result<(), u64> {
        let mut rx = self.position.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|p| *p >= min))
            .await
            .is_ok_and(|r| r.is_ok());
        if reached {
            Ok(())
        } else {
            Err(self.position())
        }
    }
}
