//! Exporting the sessions a query matches (any filters, any order) as CSV or JSON lines, page by
//! page, so that no more than one page is ever in memory. Starting an export is audited.

use chrono::{SecondsFormat, Utc};
use sessions::validate::describe_filter;
use sessions::{
    AuditEntry, EndedQuery, EndedSession, Result, Session, SessionError, SessionQuery,
    MAX_PAGE_SIZE,
};

use crate::{to_the_end, Actor, SessionService};

/// The columns of a CSV export, in order.
pub const CSV_COLUMNS: [&str; 19] = [
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
    "country",
    "city",
    "asn",
    "asn_org",
    "last_ip",
    "last_country",
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

    /// A file name for a download of `realm`'s export of `what` (`sessions`, `ended-sessions`).
    pub fn file_name(self, what: &str, realm: &str) -> String {
        format!("{what}-{realm}.{}", self.as_str())
    }

    /// What comes before the first row of `R`: the CSV header.
    pub fn header<R: ExportRow>(self) -> Vec<u8> {
        match self {
            ExportFormat::Csv => csv_rows(std::iter::once(
                R::COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
            )),
            ExportFormat::JsonLines => Vec::new(),
        }
    }

    /// Rows in this format.
    pub fn encode<R: ExportRow>(self, rows: &[R]) -> Vec<u8> {
        match self {
            ExportFormat::Csv => csv_rows(rows.iter().map(ExportRow::cells)),
            ExportFormat::JsonLines => {
                let mut out = Vec::new();
                for r in rows {
                    serde_json::to_writer(&mut out, r).expect("a row always serializes");
                    out.push(b'\n');
                }
                out
            }
        }
    }
}

/// What an export writes per row: its CSV cells (in [`ExportRow::COLUMNS`] order) or, as JSON
/// lines, the whole row.
pub trait ExportRow: serde::Serialize + Send + 'static {
    /// The CSV header.
    const COLUMNS: &'static [&'static str];
    /// The CSV cells, one per column.
    fn cells(&self) -> Vec<String>;
}

/// The pages of an export under way, one at a time; `None` once every row was given.
#[async_trait::async_trait]
pub trait ExportPages: Send + 'static {
    type Row: ExportRow;
    async fn next_page(&mut self) -> Result<Option<Vec<Self::Row>>>;
}

fn time(t: &chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A device's CSV cells: browser (with its version), OS, device type; empty without one.
fn device_cells(d: Option<sessions::Device>) -> [String; 3] {
    match d {
        Some(d) => [
            match d.browser_version {
                0 => d.browser.label().to_owned(),
                v => format!("{} {v}", d.browser.label()),
            },
            d.os.label().to_owned(),
            d.kind.as_str().to_owned(),
        ],
        None => Default::default(),
    }
}

impl ExportRow for Session {
    const COLUMNS: &'static [&'static str] = &CSV_COLUMNS;

    fn cells(&self) -> Vec<String> {
        let s = self;
        let mut cells = vec![
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
        ];
        cells.extend(device_cells(s.device));
        let n = s.network.clone().unwrap_or_default();
        cells.extend([
            n.country.unwrap_or_default(),
            n.city.unwrap_or_default(),
            n.asn.map(|a| a.to_string()).unwrap_or_default(),
            n.asn_org.unwrap_or_default(),
            s.last_ip.clone().unwrap_or_default(),
            country(&s.last_network),
        ]);
        cells
    }
}

/// A network's country, empty when unknown.
fn country(n: &Option<sessions::Network>) -> String {
    n.as_ref()
        .and_then(|n| n.country.clone())
        .unwrap_or_default()
}

/// The columns of a CSV export of ended sessions, in order.
pub const ENDED_CSV_COLUMNS: [&str; 18] = [
    "sid",
    "subject_id",
    "display_name",
    "ip",
    "browser",
    "os",
    "device_type",
    "created_at",
    "last_access_at",
    "ended_at",
    "how",
    "actor",
    "reason",
    "client_ids",
    "notices",
    "last_ip",
    "country",
    "last_country",
];

impl ExportRow for EndedSession {
    const COLUMNS: &'static [&'static str] = &ENDED_CSV_COLUMNS;

    fn cells(&self) -> Vec<String> {
        let e = self;
        let [browser, os, device_type] = device_cells(e.device);
        let clients: Vec<&str> = e.clients.iter().map(|c| c.client_id.as_str()).collect();
        let notices: Vec<String> = e
            .clients
            .iter()
            .map(|c| {
                serde_json::to_value(c.notice)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect();
        vec![
            e.sid.clone(),
            e.subject_id.clone(),
            e.display_name.clone().unwrap_or_default(),
            e.ip.clone().unwrap_or_default(),
            browser,
            os,
            device_type,
            time(&e.created_at),
            time(&e.last_access_at),
            time(&e.ended_at),
            e.how.as_str().to_owned(),
            e.actor.clone().unwrap_or_default(),
            e.reason.clone().unwrap_or_default(),
            clients.join(" "),
            notices.join(" "),
            e.last_ip.clone().unwrap_or_default(),
            country(&e.network),
            country(&e.last_network),
        ]
    }
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

fn csv_rows(rows: impl Iterator<Item = Vec<String>>) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.write_record(row.into_iter().map(neutralise_formula))
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

#[async_trait::async_trait]
impl ExportPages for SessionExport {
    type Row = Session;

    /// The next page of sessions (at most [`MAX_PAGE_SIZE`]); `None` once every match was given.
    /// Sessions created or ended while the export runs may or may not be in it; none is given
    /// twice.
    async fn next_page(&mut self) -> Result<Option<Vec<Session>>> {
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

/// An export of ended sessions under way, newest end first, a page at a time.
pub struct EndedExport {
    service: SessionService,
    realm: String,
    query: EndedQuery,
    done: bool,
}

impl SessionService {
    /// Starts exporting the ended sessions `query` matches (its filters; its page size and start
    /// are ignored). Fails, before anything is written, on an unknown realm or a bad filter;
    /// records who exported what in the audit log.
    pub async fn export_ended(
        &self,
        realm: &str,
        mut query: EndedQuery,
        format: ExportFormat,
        actor: &Actor,
    ) -> Result<EndedExport> {
        actor.require(crate::roles::Permission::Read)?;
        query.count = Some(sessions::ended::MAX_ENDED_PAGE);
        query.after = None;
        // Checks the realm and the filters before anything is audited or written.
        self.store
            .ended_sessions(
                realm,
                &EndedQuery {
                    count: Some(1),
                    ..query.clone()
                },
            )
            .await?;
        let filter: Vec<String> = [
            ("subject_id", &query.subject_id),
            ("sid", &query.sid),
            ("how", &query.how),
        ]
        .into_iter()
        .filter_map(|(name, v)| {
            v.as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{name}={v}"))
        })
        .collect();
        let entry = AuditEntry {
            at: Utc::now(),
            actor: actor.audit_name(),
            realm: Some(realm.to_owned()),
            action: "export_ended_sessions".into(),
            target: if filter.is_empty() {
                "all ended sessions".into()
            } else {
                filter.join(" ")
            },
            reason: None,
            outcome: format!("started ({})", format.as_str()),
        };
        let store = self.store.clone();
        to_the_end(async move { store.record_audit(&entry).await }).await?;
        Ok(EndedExport {
            service: self.clone(),
            realm: realm.to_owned(),
            query,
            done: false,
        })
    }
}

#[async_trait::async_trait]
impl ExportPages for EndedExport {
    type Row = EndedSession;

    /// The next page (at most 1,000); `None` once every match was given. Sessions that end while
    /// the export runs are not in it (the pages go from the newest end at the start backwards).
    async fn next_page(&mut self) -> Result<Option<Vec<EndedSession>>> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .service
            .store
            .ended_sessions(&self.realm, &self.query)
            .await?;
        self.done = page.next.is_none() || page.results.is_empty();
        self.query.after = page.next;
        Ok((!page.results.is_empty()).then_some(page.results))
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
            last_ip: None,
            network: None,
            last_network: None,
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let f = ExportFormat::Csv;
        let mut out = f.header::<Session>();
        out.extend(f.encode(&[session("Smith, \"Al\"\nJr")]));
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "sid,subject_id,display_name,created_at,last_access_at,idle_expires_at,expires_at,client_ids,ip,user_agent,browser,os,device_type,country,city,asn,asn_org,last_ip,last_country\n\
             0198f3a0-0000-7000-8000-000000000001,alice,\"Smith, \"\"Al\"\"\nJr\",2026-03-01T14:02:00.000Z,\
             2026-03-01T14:02:00.000Z,2026-03-01T14:02:00.000Z,2026-03-01T14:02:00.000Z,portal mail,203.0.113.7,,,,,,,,,,\n"
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
        assert!(f.header::<Session>().is_empty());
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
