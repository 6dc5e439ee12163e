//! The workloads, and the requests that make each one on each side: our API, and the
//! incumbent's endpoint (same bodies and query parameters, Duende's semantics behind them).

use crate::dataset::{removal_subject, Dataset, CLIENTS, NAME_SEARCHES, REALM, REMOVAL_SUBJECTS};
use crate::wrk::Send;

/// Request lines drawn per workload where a sample is wanted (subjects, create bodies).
const DRAWS: usize = 2_000;
/// Rows per page (Duende's default, and what our dashboard shows).
pub const PAGE: usize = 25;

/// What is measured, in the order it runs: reads first, then creates, then removals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Validate,
    ValidateRefresh,
    FirstPage,
    Page(usize),
    SubjectFilter,
    NamePrefix,
    ClientFilter,
    TotalCount,
    Create,
    /// Ours ends sessions with every flag; Duende deletes the session rows alone.
    Remove,
    /// Both end sessions with every flag: grants, notifications and sessions.
    RemoveWithGrants,
}

/// How hard a workload is driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The identity provider's traffic: all connections, compared with the ceiling.
    DataPlane,
    /// An administrator's queries: a few connections.
    Admin,
    /// Each line once, on one connection (work that cannot repeat, such as a removal).
    OneShot,
}

/// Every workload, in run order.
pub const ALL: [Workload; 12] = [
    Workload::Validate,
    Workload::ValidateRefresh,
    Workload::FirstPage,
    Workload::Page(100),
    Workload::Page(10_000),
    Workload::SubjectFilter,
    Workload::NamePrefix,
    Workload::ClientFilter,
    Workload::TotalCount,
    Workload::Create,
    Workload::Remove,
    Workload::RemoveWithGrants,
];

/// The request lines of one workload on one side.
#[derive(Clone, Debug)]
pub struct Request {
    pub send: Send,
    /// The target of `Send::Body` requests (`Send::Path` lines are paths).
    pub target: String,
    pub lines: Vec<String>,
}

/// What differs between the sides when requests are made.
pub trait Side {
    /// Sampled sessions' tokens (ours: the secret token; Duende: the cookie's key).
    fn tokens(&self) -> &[String];
    /// The results token that asks for page `page` (1-based) of the unfiltered listing.
    fn results_token_for(&self, page: usize) -> Result<Option<String>, String>;
}

impl Workload {
    /// The chart's and table's name.
    pub fn key(self) -> &'static str {
        match self {
            Workload::Validate => "validate",
            Workload::ValidateRefresh => "validate, refresh",
            Workload::FirstPage => "first page",
            Workload::Page(100) => "page 100",
            Workload::Page(_) => "page 10,000",
            Workload::SubjectFilter => "subject filter",
            Workload::NamePrefix => "display-name prefix",
            Workload::ClientFilter => "client filter",
            Workload::TotalCount => "total count",
            Workload::Create => "create",
            Workload::Remove => "remove 1,000 of a subject",
            Workload::RemoveWithGrants => "remove 1,000, tokens and notifications",
        }
    }

    /// The table's label at `size`: deep pages say which page exists.
    pub fn label(self, size: usize) -> String {
        match self {
            Workload::Page(depth) if reachable(depth, size) < depth => format!(
                "page {} (last; {} wanted)",
                crate::report::thousands(reachable(depth, size)),
                crate::report::thousands(depth)
            ),
            Workload::Remove => format!("remove 1,000 of a subject (×{REMOVAL_SUBJECTS})"),
            Workload::RemoveWithGrants => format!(
                "remove 1,000 of a subject, with tokens and notifications (×{REMOVAL_SUBJECTS})"
            ),
            _ => self.key().to_owned(),
        }
    }

    pub fn shape(self) -> Shape {
        match self {
            Workload::Validate | Workload::ValidateRefresh | Workload::Create => Shape::DataPlane,
            Workload::Remove | Workload::RemoveWithGrants => Shape::OneShot,
            _ => Shape::Admin,
        }
    }

    /// Our API's requests.
    pub fn ours(self, data: &Dataset, side: &dyn Side) -> Result<Request, String> {
        let base = format!("/api/v1/realms/{REALM}");
        let list = |query: &str| format!("{base}/sessions?count={PAGE}{query}");
        Ok(match self {
            Workload::Validate | Workload::ValidateRefresh => {
                validate(format!("{base}/sessions/validate"), side, self)
            }
            Workload::FirstPage => paths(vec![list("")]),
            Workload::Page(depth) => {
                let token = side.results_token_for(reachable(depth, data.size))?;
                paths(vec![list(&token_query(token))])
            }
            Workload::SubjectFilter => paths(
                subjects(data)
                    .map(|s| list(&format!("&subject_id={s}")))
                    .collect(),
            ),
            Workload::NamePrefix => paths(
                NAME_SEARCHES
                    .iter()
                    .map(|n| list(&format!("&display_name={n}")))
                    .collect(),
            ),
            Workload::ClientFilter => paths(
                CLIENTS
                    .iter()
                    .map(|c| list(&format!("&client_id={c}")))
                    .collect(),
            ),
            Workload::TotalCount => paths(vec![base.clone()]),
            Workload::Create => bodies(format!("{base}/sessions"), create_bodies(data)),
            Workload::Remove | Workload::RemoveWithGrants => {
                bodies(format!("{base}/sessions/end"), self.remove_bodies())
            }
        })
    }

    /// The incumbent endpoint's requests; `None` where Duende has no such query.
    pub fn incumbent(self, data: &Dataset, side: &dyn Side) -> Result<Option<Request>, String> {
        let list = |query: &str| format!("/sessions?count={PAGE}{query}");
        Ok(Some(match self {
            Workload::Validate | Workload::ValidateRefresh => {
                validate("/validate".into(), side, self)
            }
            Workload::FirstPage => paths(vec![list("")]),
            Workload::Page(depth) => {
                let token = side.results_token_for(reachable(depth, data.size))?;
                paths(vec![list(&token_query(token))])
            }
            Workload::SubjectFilter => paths(
                subjects(data)
                    .map(|s| list(&format!("&subject_id={s}")))
                    .collect(),
            ),
            Workload::NamePrefix => paths(
                NAME_SEARCHES
                    .iter()
                    .map(|n| list(&format!("&display_name={n}")))
                    .collect(),
            ),
            Workload::ClientFilter => return Ok(None),
            Workload::TotalCount => paths(vec!["/count".into()]),
            Workload::Create => bodies("/sessions".into(), create_bodies(data)),
            Workload::Remove => bodies("/remove".into(), self.remove_bodies()),
            Workload::RemoveWithGrants => bodies("/remove-sessions".into(), self.remove_bodies()),
        }))
    }

    /// One removal per removal subject of this workload (each its own subjects).
    fn remove_bodies(self) -> Vec<String> {
        let first = match self {
            Workload::RemoveWithGrants => REMOVAL_SUBJECTS,
            _ => 0,
        };
        (first..first + REMOVAL_SUBJECTS)
            .map(|k| {
                serde_json::json!({"subject_id": removal_subject(k), "reason": "bench"}).to_string()
            })
            .collect()
    }
}

/// The deepest page up to `depth` that `size` sessions fill.
fn reachable(depth: usize, size: usize) -> usize {
    depth.min(size.div_ceil(PAGE))
}

fn token_query(token: Option<String>) -> String {
    token.map_or(String::new(), |t| {
        format!("&results_token={}", url_encode(&t))
    })
}

fn paths(lines: Vec<String>) -> Request {
    Request {
        send: Send::Path,
        target: String::new(),
        lines,
    }
}

fn bodies(target: String, lines: Vec<String>) -> Request {
    Request {
        send: Send::Body,
        target,
        lines,
    }
}

fn validate(target: String, side: &dyn Side, w: Workload) -> Request {
    let refresh = w == Workload::ValidateRefresh;
    let lines = side
        .tokens()
        .iter()
        .map(|t| serde_json::json!({"token": t, "refresh": refresh}).to_string())
        .collect();
    bodies(target, lines)
}

/// Subjects to filter by, drawn as sessions are (busy subjects more often).
fn subjects(data: &Dataset) -> impl Iterator<Item = String> + '_ {
    (0..DRAWS).map(|i| url_encode(&data.draw(i).subject_id))
}

/// New sessions of the data set's subjects, as an identity provider would start them.
fn create_bodies(data: &Dataset) -> Vec<String> {
    (0..DRAWS)
        .map(|i| {
            let s = data.draw(DRAWS + i);
            serde_json::json!({
                "subject_id": s.subject_id,
                "display_name": s.display_name,
                "client_ids": s.client_ids,
                "ip": s.ip,
                "user_agent": s.user_agent,
            })
            .to_string()
        })
        .collect()
}

/// Percent-encoding for a query value.
pub fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Vec<String>);

    impl Side for Fake {
        fn tokens(&self) -> &[String] {
            &self.0
        }
        fn results_token_for(&self, page: usize) -> Result<Option<String>, String> {
            Ok((page > 1).then(|| format!("t{page}")))
        }
    }

    #[test]
    fn deep_pages_stop_at_the_last_one() {
        let data = Dataset::new(10_000, chrono::Utc::now());
        let side = Fake(vec!["tok".into()]);
        let req = Workload::Page(10_000).ours(&data, &side).unwrap();
        assert_eq!(
            req.lines,
            vec!["/api/v1/realms/bench/sessions?count=25&results_token=t400"]
        );
        assert_eq!(
            Workload::Page(10_000).label(10_000),
            "page 400 (last; 10,000 wanted)"
        );
        assert_eq!(Workload::Page(100).label(10_000), "page 100");
        assert!(Workload::ClientFilter
            .incumbent(&data, &side)
            .unwrap()
            .is_none());
    }

    #[test]
    fn each_removal_ends_subjects_of_its_own() {
        let data = Dataset::new(10_000, chrono::Utc::now());
        let side = Fake(vec![]);
        let subjects = |w: Workload| -> Vec<String> {
            let ours = w.ours(&data, &side).unwrap();
            let theirs = w.incumbent(&data, &side).unwrap().unwrap();
            assert_eq!(ours.lines, theirs.lines);
            ours.lines
        };
        let (bare, full) = (
            subjects(Workload::Remove),
            subjects(Workload::RemoveWithGrants),
        );
        assert_eq!(bare.len(), REMOVAL_SUBJECTS);
        assert!(bare.iter().all(|b| !full.contains(b)));
        assert!(full[0].contains(&removal_subject(REMOVAL_SUBJECTS)));
    }

    #[test]
    fn validation_bodies_carry_the_tokens() {
        let data = Dataset::new(10_000, chrono::Utc::now());
        let side = Fake(vec!["abc".into()]);
        let req = Workload::ValidateRefresh
            .incumbent(&data, &side)
            .unwrap()
            .unwrap();
        assert_eq!(req.send, Send::Body);
        assert_eq!(req.lines, vec![r#"{"refresh":true,"token":"abc"}"#]);
        assert_eq!(url_encode("a b,c"), "a%20b%2Cc");
    }
}
