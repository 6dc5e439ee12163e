//! Exporting the sessions a query matches (any filters, any order) as CSV or JSON lines, page by
//! page, so that no more than one page is ever in memory. Starting an export is audited.

use chrono::{SecondsFormat, Utc};
use sessions::validate::describe_filter;
use sessions::{AuditEntry, Result, Session, SessionError, SessionQuery, MAX_PAGE_SIZE};

use crate::{to_the_end, Actor, SessionService};

/// The columns of a CSV export, in order.
pub const CSV_COLUMNS: [&str; 13] = [
    "sid",
    "subject_id",
    "display_name",
    "created_at",
    "last_access_at",
    "idle_expires_at",
    "expires_at",
    "client_ids",
    "ip",
    "user_agent",
    "browser",
    "os",
    "device_type",
];

/// How exported sessions are written: `csv` or `jsonl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ExportFormat {
    /// RFC 4180 CSV with a header row ([`CSV_COLUMNS`]); client ids separated by spaces.
    #[serde(rename = "csv")]
    Csv,
    /// One JSON object per line, each a whole session (properties included).
    #[serde(rename = "jsonl")]
    JsonLines,
}

impl ExportFormat {
    /// Parses `csv` or `jsonl`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" => Ok(ExportFormat::JsonLines),
            _ => Err(SessionError::invalid(format!(
                "format must be csv or jsonl, not '{s}'"
            ))),
        }
    }

    /// The name `parse` reads.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::JsonLines => "jsonl",
        }
    }

    /// The media type of the export.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::JsonLines => "application/jsonl",
        }
    }

    /// A file name for a download of `realm`'s export.
    pub fn file_name(self, realm: &str) -> String {
        format!("sessions-{realm}.{}", self.as_str())
    }

    /// What comes before the first row: the CSV header.
    pub fn header(self) -> Vec<u8> {
        match self {
            ExportFormat::Csv => csv_rows(std::iter::once(CSV_COLUMNS.map(str::to_owned))),
            ExportFormat::JsonLines => Vec::new(),
        }
    }

    /// Rows in this format.
    pub fn encode(self, sessions: &[Session]) -> Vec<u8> {
        match self {
            ExportFormat::Csv => csv_rows(sessions.iter().map(csv_record)),
            ExportFormat::JsonLines => {
                let mut out = Vec::new();
                for s in sessions {
                    serde_json::to_writer(&mut out, s).expect("a session always serializes");
                    out.push(b'\n');
                }
                out
            }
        }
    }
}

fn time(t: &chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn csv_record(s: &Session) -> [String; 13] {
    let device = |part: fn(sessions::Device) -> String| s.device.map(part).unwrap_or_default();
    [
        s.sid.clone(),
        s.subject_id.clone(),
        s.display_name.clone().unwrap_or_default(),
        time(&s.created_at),
        time(&s.last_access_at),
        time(&s.idle_expires_at),
        time(&s.expires_at),
        s.client_ids.join(" "),
        s.ip.clone().unwrap_or_default(),
        s.user_agent.clone().unwrap_or_default(),
        device(|d| match d.browser_version {
            0 => d.browser.label().to_owned(),
            v => format!("{} {v}", d.browser.label()),
        }),
        device(|d| d.os.label().to_owned()),
        device(|d| d.kind.as_str().to_owned()),
    ]
}

/// A cell a spreadsheet would read as a formula (it begins with `=`, `+`, `-`, `@`, a tab or a
/// carriage return) gets a leading `'`, as OWASP's CSV-injection advice says: opening an export
/// must not run what a session's owner typed into their display name or user agent.
fn neutralise_formula(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

fn csv_rows(rows: impl Iterator<Item = [String; 13]>) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.write_record(row.map(neutralise_formula))
            .expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}

/// An export under way: the pages of a query's matches, in its order, one at a time.
pub struct SessionExport {
    service: SessionService,
    realm: String,
    query: SessionQuery,
    /// The page fetched when the export started, not handed out yet.
    first: Option<Vec<Session>>,
    done: bool,
}

impl SessionService {
    /// Starts exporting what `query` matches (its filters and order; its page size and position
    /// are ignored). Fails, before anything is written, on an unknown realm or a bad filter;
    /// records who exported what in the audit log.
    pub async fn export(
        &self,
        realm: &str,
        mut query: SessionQuery,
        format: ExportFormat,
        actor: &Actor,
    ) -> Result<SessionExport> {
        actor.require(crate::roles::Permission::Read)?;
        query.count = Some(MAX_PAGE_SIZE);
        query.results_token = None;
        query.prior = false;
        let first = {
            let (store, realm, query) = (self.store.clone(), realm.to_owned(), query.clone());
            store.query_uncounted(&realm, &query).await?
        };
        let entry = AuditEntry {
            at: Utc::now(),
            actor: actor.audit_name(),
            realm: Some(realm.to_owned()),
            action: "export_sessions".into(),
            target: format!(
                "{} sort={}",
                describe_filter(&query.filters),
                query.sort.as_str()
            ),
            reason: None,
            outcome: format!("started ({})", format.as_str()),
        };
        let store = self.store.clone();
        to_the_end(async move { store.record_audit(&entry).await }).await?;
        query.results_token = first.results_token;
        Ok(SessionExport {
            service: self.clone(),
            realm: realm.to_owned(),
            done: !first.has_next,
            query,
            first: Some(first.results),
        })
    }
}

impl SessionExport {
    /// The next page of sessions (at most [`MAX_PAGE_SIZE`]); `None` once every match was given.
    /// Sessions created or ended while the export runs may or may not be in it; none is given
    /// twice.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Session>>> {
        if let Some(first) = self.first.take() {
            return Ok(Some(first));
        }
        if self.done {
            return Ok(None);
        }
        let (store, realm, query) = (
            self.service.store.clone(),
            self.realm.clone(),
            self.query.clone(),
        );
        let page = store.query_uncounted(&realm, &query).await?;
        self.done = !page.has_next || page.results.is_empty();
        self.query.results_token = page.results_token;
        Ok(Some(page.results))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(name: &str) -> Session {
        let t = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 3, 1, 14, 2, 0).unwrap();
        Session {
            sid: "0198f3a0-0000-7000-8000-000000000001".into(),
            realm: "r".into(),
            subject_id: "alice".into(),
            display_name: Some(name.into()),
            created_at: t,
            last_access_at: t,
            idle_expires_at: t,
            expires_at: t,
            client_ids: vec!["portal".into(), "mail".into()],
            properties: Default::default(),
            ip: Some("203.0.113.7".into()),
            user_agent: None,
            device: None,
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let f = ExportFormat::Csv;
        let mut out = f.header();
        out.extend(f.encode(&[session("Smith, \"Al\"\nJr")]));
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "sid,subject_id,display_name,created_at,last_access_at,idle_expires_at,expires_at,client_ids,ip,user_agent,browser,os,device_type\n\
             0198f3a0-0000-7000-8000-000000000001,alice,\"Smith, \"\"Al\"\"\nJr\",2026-03-01T14:02:00.000Z,\
             2026-03-01T14:02:00.000Z,2026-03-01T14:02:00.000Z,2026-03-01T14:02:00.000Z,portal mail,203.0.113.7,,,,\n"
        );
        let mut back = csv::Reader::from_reader(text.as_bytes());
        let row = back.records().next().unwrap().unwrap();
        assert_eq!(&row[2], "Smith, \"Al\"\nJr");
    }

    #[test]
    fn csv_cells_a_spreadsheet_would_run_begin_with_a_quote_and_json_lines_stay_exact() {
        let formula = "=HYPERLINK(\"http://evil.example\",\"x\")";
        for (name, cell) in [
            (formula, format!("'{formula}")),
            ("+1+1", "'+1+1".into()),
            ("-2", "'-2".into()),
            ("@SUM(A1)", "'@SUM(A1)".into()),
            ("\tx", "'\tx".into()),
            ("\rx", "'\rx".into()),
            ("Ann = Bob", "Ann = Bob".into()),
        ] {
            let mut s = session(name);
            s.user_agent = Some(name.into());
            let text = String::from_utf8(ExportFormat::Csv.encode(&[s.clone()])).unwrap();
            let mut back = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(text.as_bytes());
            let row = back.records().next().unwrap().unwrap();
            assert_eq!(
                (&row[2], &row[9]),
                (cell.as_str(), cell.as_str()),
                "{name:?}"
            );
            let line = ExportFormat::JsonLines.encode(&[s.clone()]);
            let back: Session = serde_json::from_slice(&line).unwrap();
            assert_eq!(back, s, "JSON lines keep {name:?} as it is");
        }
    }

    #[test]
    fn json_lines_are_whole_sessions_one_per_line() {
        let f = ExportFormat::JsonLines;
        let rows = [session("A"), session("B\nC")];
        let text = String::from_utf8(f.encode(&rows)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let back: Session = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(back, rows[1]);
        assert!(f.header().is_empty());
    }

    #[test]
    fn formats_parse_by_name_only() {
        assert_eq!(ExportFormat::parse("csv").unwrap(), ExportFormat::Csv);
        assert_eq!(
            ExportFormat::parse("jsonl").unwrap(),
            ExportFormat::JsonLines
        );
        assert!(matches!(
            ExportFormat::parse("xlsx"),
            Err(SessionError::InvalidRequest(_))
        ));
    }
}
