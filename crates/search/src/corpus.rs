//! Real text for the relevance test and the benchmark, read at run time
//! from what the operating system ships (nothing of it is committed):
//! Debian's license texts (`/usr/share/common-licenses`) and package
//! copyright files (`/usr/share/doc/*/copyright`) become contracts, man
//! pages (`/usr/share/man/man1/*.gz`) become knowledge articles. Queries
//! with known right answers are made from them by construction: a man
//! page's one-line description (its NAME section) finds that page, and a
//! license's name finds its text.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use chronicle_domain::event::{encode, Encoded};

use crate::doc::Kind;

/// The most characters a body may hold (the domain's long text limit).
pub const MAX_BODY_CHARS: usize = 100_000;

/// One document of the corpus.
#[derive(Debug, Clone)]
pub struct CorpusDoc {
    pub kind: Kind,
    /// Unique within the corpus: the license, package or command name.
    pub title: String,
    pub body: String,
    /// For man pages: the NAME section's description.
    pub description: Option<String>,
}

impl CorpusDoc {
    /// The event that brings this document into the log: a contract
    /// drafted by `owner`, or an article published by them.
    pub fn event(&self, owner: uuid::Uuid, at: chrono::DateTime<chrono::Utc>) -> Encoded {
        use chronicle_domain::contract::{
            Contact, ContractDrafted, ContractEvent, Counterparty, Party, PartyKind,
        };
        use chronicle_domain::knowledge::{ArticlePublished, KnowledgeEvent};
        use chronicle_domain::value::{Currency, Email, LongText, Money, ShortText};
        let short = |s: &str| {
            let s: String = s.chars().take(200).collect();
            ShortText::parse("text", s)
                .unwrap_or_else(|_| ShortText::parse("text", "untitled").expect("valid"))
        };
        let body = LongText::parse("body", self.body.clone())
            .unwrap_or_else(|_| LongText::parse("body", "empty").expect("valid"));
        match self.kind {
            Kind::Contract => encode(&ContractEvent::Drafted(ContractDrafted {
                title: short(&self.title),
                parties: vec![
                    Party {
                        name: short("Chronicle Networks Ltd"),
                        kind: PartyKind::Organisation,
                        role: short("licensee"),
                    },
                    Party {
                        name: short(&self.title),
                        kind: PartyKind::Organisation,
                        role: short("licensor"),
                    },
                ],
                counterparty: Counterparty {
                    organisation: short(&self.title),
                    contact: Contact {
                        name: short("Legal Department"),
                        email: Email::parse("email", "legal@example.com").expect("valid"),
                    },
                },
                value: Money {
                    amount_minor: 100_000,
                    currency: Currency::parse("currency", "EUR").expect("valid"),
                },
                start_date: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid"),
                end_date: chrono::NaiveDate::from_ymd_opt(2027, 12, 31).expect("valid"),
                body,
                owner,
                at,
            })),
            Kind::Kb | Kind::Ticket => encode(&KnowledgeEvent::Published(ArticlePublished {
                title: short(&self.title),
                body,
                tags: chronicle_domain::knowledge::Tags::new([short("man1")]),
                product: short("Debian"),
                author_id: owner,
                version: 1,
                at,
            })),
        }
    }
}

/// A query and the titles that answer it.
#[derive(Debug, Clone)]
pub struct KnownQuery {
    pub q: String,
    pub answers: Vec<String>,
}

fn cut(text: &str) -> String {
    let text = text.replace('\0', " ");
    if text.chars().count() <= MAX_BODY_CHARS {
        text
    } else {
        text.chars().take(MAX_BODY_CHARS).collect()
    }
}

/// The license texts, one per distinct file (symlinks such as `GPL` ->
/// `GPL-3` are skipped), titled by file name.
pub fn licenses(dir: &Path) -> Vec<CorpusDoc> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link {
            continue;
        }
        let (Some(name), Ok(body)) = (
            path.file_name().map(|n| n.to_string_lossy().into_owned()),
            std::fs::read_to_string(&path),
        ) else {
            continue;
        };
        if body.trim().is_empty() {
            continue;
        }
        out.push(CorpusDoc {
            kind: Kind::Contract,
            title: name,
            body: cut(&body),
            description: None,
        });
    }
    out
}

/// The license queries: each license's name as people write it.
pub fn license_queries(licenses: &[CorpusDoc]) -> Vec<KnownQuery> {
    const NAMES: &[(&str, &str)] = &[
        ("Apache-2.0", "Apache License Version 2.0"),
        ("Artistic", "Artistic License"),
        ("BSD", "Regents of the University of California"),
        ("CC0-1.0", "Creative Commons CC0 1.0 Universal"),
        ("GFDL-1.2", "GNU Free Documentation License Version 1.2"),
        ("GFDL-1.3", "GNU Free Documentation License Version 1.3"),
        ("GPL-1", "GNU General Public License Version 1"),
        ("GPL-2", "GNU General Public License Version 2"),
        ("GPL-3", "GNU General Public License Version 3"),
        ("LGPL-2", "GNU Library General Public License Version 2"),
        ("LGPL-2.1", "GNU Lesser General Public License Version 2.1"),
        ("LGPL-3", "GNU Lesser General Public License Version 3"),
        ("MPL-1.1", "Mozilla Public License Version 1.1"),
        ("MPL-2.0", "Mozilla Public License Version 2.0"),
    ];
    NAMES
        .iter()
        .filter(|(file, _)| licenses.iter().any(|l| l.title == *file))
        .map(|(file, q)| KnownQuery {
            q: (*q).to_owned(),
            answers: vec![(*file).to_owned()],
        })
        .collect()
}

/// Package copyright files, every `step`-th in name order, at most `limit`,
/// titled `<package> copyright`.
pub fn copyrights(doc_dir: &Path, step: usize, limit: usize) -> Vec<CorpusDoc> {
    let mut packages: Vec<_> = std::fs::read_dir(doc_dir)
        .map(|e| e.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    packages.sort();
    let mut out = Vec::new();
    for path in packages.iter().step_by(step.max(1)) {
        if out.len() >= limit {
            break;
        }
        let Ok(body) = std::fs::read_to_string(path.join("copyright")) else {
            continue;
        };
        if body.trim().is_empty() {
            continue;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push(CorpusDoc {
            kind: Kind::Contract,
            title: format!("{name} copyright"),
            body: cut(&body),
            description: None,
        });
    }
    out
}

/// Man pages of section 1, every `step`-th in file name order, at most
/// `limit`, as plain text titled by the command's name. Pages that only
/// point at another (`.so`) and pages without a NAME line are skipped.
pub fn man_pages(man_dir: &Path, step: usize, limit: usize) -> Vec<CorpusDoc> {
    let mut files: Vec<_> = std::fs::read_dir(man_dir)
        .map(|e| e.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "gz"));
    files.sort();
    let mut out = Vec::new();
    let mut titles = std::collections::HashSet::new();
    for path in files.iter().step_by(step.max(1)) {
        if out.len() >= limit {
            break;
        }
        let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link {
            continue;
        }
        let Ok(file) = std::fs::File::open(path) else {
            continue;
        };
        let mut raw = Vec::new();
        if flate2::read::GzDecoder::new(file)
            .read_to_end(&mut raw)
            .is_err()
        {
            continue;
        }
        let roff = String::from_utf8_lossy(&raw);
        if roff.trim_start().starts_with(".so ") {
            continue;
        }
        let Some(page) = man_to_text(&roff) else {
            continue;
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let title = name
            .trim_end_matches(".gz")
            .trim_end_matches(".1")
            .to_owned();
        if title.is_empty() || title.chars().count() > 200 || !titles.insert(title.clone()) {
            continue;
        }
        out.push(CorpusDoc {
            kind: Kind::Kb,
            title,
            body: cut(&page.text),
            description: Some(page.description),
        });
    }
    out
}

/// The man page queries: a page's description (its first `max_words`
/// words) finds the page, or any page with the same description. Only
/// descriptions of at least three words are used, every `step`-th.
pub fn man_queries(pages: &[CorpusDoc], step: usize, max_words: usize) -> Vec<KnownQuery> {
    let mut by_description: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for page in pages {
        if let Some(d) = &page.description {
            by_description
                .entry(normalise(d))
                .or_default()
                .push(page.title.clone());
        }
    }
    pages
        .iter()
        .filter_map(|p| p.description.as_ref().map(|d| (p, normalise(d))))
        .filter(|(_, d)| d.split_whitespace().count() >= 3)
        .step_by(step.max(1))
        .map(|(_, d)| KnownQuery {
            q: d.split_whitespace()
                .take(max_words)
                .collect::<Vec<_>>()
                .join(" "),
            answers: by_description.get(&d).cloned().unwrap_or_default(),
        })
        .collect()
}

/// Lowercase words of letters and digits only.
fn normalise(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A man page as text.
pub struct ManText {
    pub text: String,
    /// What the NAME line says after the dash.
    pub description: String,
}

/// Roff (man macros) to plain text: requests dropped, the text of font
/// macros kept, escapes resolved to their character or dropped.
pub fn man_to_text(roff: &str) -> Option<ManText> {
    let mut text = String::new();
    let mut name_section = false;
    let mut name_line = String::new();
    for line in roff.lines() {
        let line = line.trim_end();
        let content =
            if let Some(request) = line.strip_prefix('.').or_else(|| line.strip_prefix('\'')) {
                let mut parts = request.trim_start().splitn(2, char::is_whitespace);
                let macro_name = parts.next().unwrap_or("");
                let args = parts.next().unwrap_or("").trim();
                match macro_name {
                    "SH" | "SS" => {
                        let heading = unescape(args).replace('"', "");
                        name_section = heading.trim().eq_ignore_ascii_case("name");
                        text.push('\n');
                        text.push_str(heading.trim());
                        text.push('\n');
                        continue;
                    }
                    "B" | "I" | "BR" | "RB" | "IR" | "RI" | "BI" | "IB" | "SM" | "SB" | "TP"
                    | "IP" | "Nm" | "Nd" | "Op" | "Ar" | "Fl" => args.replace('"', ""),
                    _ => continue,
                }
            } else {
                line.to_owned()
            };
        let plain = unescape(&content);
        if plain.trim().is_empty() {
            continue;
        }
        if name_section {
            name_line.push(' ');
            name_line.push_str(plain.trim());
        }
        text.push_str(plain.trim());
        text.push('\n');
    }
    let description = name_line
        .split_once(" - ")
        .map(|(_, d)| d.trim().to_owned())
        .filter(|d| !d.is_empty())?;
    Some(ManText { text, description })
}

/// Resolves the common roff escapes.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('-') => out.push('-'),
            Some('e') | Some('\\') => out.push('\\'),
            Some('&') | Some('|') | Some('^') | Some('%') | Some(',') | Some('/') => {}
            Some(' ') | Some('~') | Some('0') => out.push(' '),
            Some('"') => break, // a comment to the end of the line
            Some('f') => {
                // \fB, \fI, \fR, \fP, \f(CW, \f[...]
                match chars.next() {
                    Some('(') => {
                        chars.next();
                        chars.next();
                    }
                    Some('[') => {
                        for c in chars.by_ref() {
                            if c == ']' {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            }
            Some('(') => {
                let code: String = chars.by_ref().take(2).collect();
                out.push_str(match code.as_str() {
                    "em" | "en" | "hy" => "-",
                    "aq" | "cq" | "oq" => "'",
                    "dq" | "lq" | "rq" => "\"",
                    "bu" => "*",
                    _ => " ",
                });
            }
            Some('*') => {
                // \*(xx or \*[name] or \*x: a string; dropped.
                match chars.next() {
                    Some('(') => {
                        chars.next();
                        chars.next();
                    }
                    Some('[') => {
                        for c in chars.by_ref() {
                            if c == ']' {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            }
            Some('s') => {
                // \s+1, \s-1, \s0
                if matches!(chars.peek(), Some('+') | Some('-')) {
                    chars.next();
                }
                chars.next();
            }
            Some('[') => {
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_becomes_text_with_its_description() {
        let roff = ".TH GREP 1\n.SH NAME\ngrep, egrep \\- print lines that match patterns\n.SH SYNOPSIS\n.B grep\n[\\fIOPTION\\fR...] \\fIPATTERNS\\fR\n.\\\" a comment\n.PP\nSearch \\(lqfiles\\(rq.\n";
        let page = man_to_text(roff).unwrap();
        assert_eq!(page.description, "print lines that match patterns");
        assert!(page.text.contains("[OPTION...] PATTERNS"), "{}", page.text);
        assert!(page.text.contains("Search \"files\"."), "{}", page.text);
        assert!(!page.text.contains("comment"));
        assert!(man_to_text(".SH DESCRIPTION\nno name line\n").is_none());
    }

    #[test]
    fn descriptions_normalise_to_words() {
        assert_eq!(
            normalise("Print lines, that match (patterns)."),
            "print lines that match patterns"
        );
    }
}
