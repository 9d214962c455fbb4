-- Read models of the knowledge-base projection (kb): articles as they read
-- now, and every revision's text. Every table carries tenant_id; the API
-- always filters by it. Articles hold no personal data.

CREATE TABLE read.kb_articles (
    article_id     uuid        NOT NULL,
    tenant_id      text        NOT NULL,
    title          text        NOT NULL,
    body           text        NOT NULL,
    tags           text[]      NOT NULL DEFAULT '{}',
    product        text        NOT NULL,
    status         text        NOT NULL,
    revision       integer     NOT NULL,
    author_id      uuid        NOT NULL,
    published_at   timestamptz NOT NULL,
    revised_at     timestamptz,
    revised_by     uuid,
    retired_at     timestamptz,
    retired_by     uuid,
    retire_reason  text,
    updated_at     timestamptz NOT NULL,
    version        bigint      NOT NULL,
    position       bigint      NOT NULL,
    CONSTRAINT kb_articles_pkey PRIMARY KEY (article_id)
);
CREATE INDEX kb_articles_by_updated ON read.kb_articles (tenant_id, updated_at DESC, article_id);
CREATE INDEX kb_articles_by_published ON read.kb_articles (tenant_id, published_at DESC, article_id);
CREATE INDEX kb_articles_by_title ON read.kb_articles (tenant_id, title, article_id);
CREATE INDEX kb_articles_by_status ON read.kb_articles (tenant_id, status, updated_at DESC);
CREATE INDEX kb_articles_by_product ON read.kb_articles (tenant_id, product, updated_at DESC);
CREATE INDEX kb_articles_by_author ON read.kb_articles (tenant_id, author_id, updated_at DESC);
CREATE INDEX kb_articles_tags ON read.kb_articles USING gin (tags);

COMMENT ON TABLE read.kb_articles IS 'One row per knowledge-base article, with its current text (projection: kb).';
COMMENT ON COLUMN read.kb_articles.article_id IS 'The article (its stream id).';
COMMENT ON COLUMN read.kb_articles.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.kb_articles.title IS 'Current title.';
COMMENT ON COLUMN read.kb_articles.body IS 'Current body text.';
COMMENT ON COLUMN read.kb_articles.tags IS 'Current tags, as written (distinct ignoring case); match with tags && ARRAY[...].';
COMMENT ON COLUMN read.kb_articles.product IS 'Product the article is about (fixed at publication).';
COMMENT ON COLUMN read.kb_articles.status IS 'published or retired.';
COMMENT ON COLUMN read.kb_articles.revision IS 'The article''s revision number: 1 at publication, then 2, 3, ... (rows in kb_article_revisions).';
COMMENT ON COLUMN read.kb_articles.author_id IS 'User who published the article.';
COMMENT ON COLUMN read.kb_articles.published_at IS 'When the article was published.';
COMMENT ON COLUMN read.kb_articles.revised_at IS 'When the article was last revised; NULL if never.';
COMMENT ON COLUMN read.kb_articles.revised_by IS 'Who revised the article last.';
COMMENT ON COLUMN read.kb_articles.retired_at IS 'When the article was retired; NULL while published.';
COMMENT ON COLUMN read.kb_articles.retired_by IS 'Who retired the article.';
COMMENT ON COLUMN read.kb_articles.retire_reason IS 'Why the article was retired, if a reason was given.';
COMMENT ON COLUMN read.kb_articles.updated_at IS 'Time of the last event.';
COMMENT ON COLUMN read.kb_articles.version IS 'Stream version after the last event (the ETag of the article); unlike revision, retiring counts too.';
COMMENT ON COLUMN read.kb_articles.position IS 'Global position of the last event.';

CREATE TABLE read.kb_article_revisions (
    article_id  uuid        NOT NULL,
    revision    integer     NOT NULL,
    tenant_id   text        NOT NULL,
    title       text        NOT NULL,
    body        text        NOT NULL,
    tags        text[]      NOT NULL DEFAULT '{}',
    author_id   uuid        NOT NULL,
    at          timestamptz NOT NULL,
    position    bigint      NOT NULL,
    CONSTRAINT kb_article_revisions_pkey PRIMARY KEY (article_id, revision)
);
CREATE INDEX kb_article_revisions_by_author ON read.kb_article_revisions (tenant_id, author_id, at DESC);

COMMENT ON TABLE read.kb_article_revisions IS 'Every revision of every article, the publication being revision 1 (projection: kb).';
COMMENT ON COLUMN read.kb_article_revisions.article_id IS 'The article.';
COMMENT ON COLUMN read.kb_article_revisions.revision IS 'Revision number, from 1.';
COMMENT ON COLUMN read.kb_article_revisions.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN read.kb_article_revisions.title IS 'Title of this revision.';
COMMENT ON COLUMN read.kb_article_revisions.body IS 'Body text of this revision.';
COMMENT ON COLUMN read.kb_article_revisions.tags IS 'Tags of this revision.';
COMMENT ON COLUMN read.kb_article_revisions.author_id IS 'Who wrote this revision (the author for revision 1).';
COMMENT ON COLUMN read.kb_article_revisions.at IS 'When this revision was made.';
COMMENT ON COLUMN read.kb_article_revisions.position IS 'Global position of the event that recorded it.';
