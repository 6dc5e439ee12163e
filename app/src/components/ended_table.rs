//! A table of ended sessions: who, from where, when and how each ended, by whom and why, and
//! what each of its applications was told.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use sessions::stats::EndReason;
use sessions::{EndedSession, Notice};

use crate::components::copy_id::CopyId;
use crate::components::device::DeviceLabel;
use crate::components::network::NetworkLabel;
use crate::format::{exact, relative};
use crate::routes::user_href;

/// The class and text of a client's notice.
fn notice_badge(n: Notice) -> (&'static str, &'static str) {
    match n {
        Notice::Delivered => ("status status-delivered", "delivered"),
        Notice::Pending => ("status status-pending", "pending"),
        Notice::Failed => ("status status-failed", "failed"),
        Notice::NotSent => ("status status-none", "not notified"),
    }
}

/// One ended session's row.
fn row(e: EndedSession, now: DateTime<Utc>) -> impl IntoView {
    let when = |t: DateTime<Utc>| {
        view! { <time datetime=t.to_rfc3339() title=exact(t)>{relative(t, now)}</time> }
    };
    let clients = e
        .clients
        .iter()
        .map(|c| {
            let (class, text) = notice_badge(c.notice);
            view! {
                <span class="notice-chip" data-client=c.client_id.clone()>
                    <span class="chip">{c.client_id.clone()}</span>
                    <span class=class>{text}</span>
                </span>
            }
        })
        .collect_view();
    let who = match (&e.actor, e.how) {
        (Some(actor), _) => format!("by {actor}"),
        (None, EndReason::Logout) => "by the user".into(),
        (None, _) => "by the server".into(),
    };
    view! {
        <tr data-sid=e.sid.clone()>
            <td class="name">{e.display_name.clone().unwrap_or_else(|| "—".into())}</td>
            <td><a href=user_href(&e.realm, &e.subject_id)><code>{e.subject_id.clone()}</code></a></td>
            <td class="sid"><CopyId id=e.sid.clone() what="session ID"/></td>
            <td class="device"><DeviceLabel device=e.device user_agent=None/></td>
            <td class="ip">
                {e.ip.clone().unwrap_or_default()}
                {e.network.clone().map(|n| view! { <div><NetworkLabel network=Some(n)/></div> })}
                {(e.last_ip.is_some() && e.last_ip != e.ip).then(|| view! {
                    <span class="moved-to" title="The address of the latest refresh">
                        "→ "{e.last_ip.clone().unwrap_or_default()}
                    </span>
                    {e.last_network.clone().map(|n| view! { <div class="moved-network"><NetworkLabel network=Some(n)/></div> })}
                })}
            </td>
            <td>{when(e.created_at)}</td>
            <td>{when(e.ended_at)}</td>
            <td class="ending">
                <span class=format!("how how-{}", e.how.as_str())>{e.how.label()}</span>
                <span class="who">{who}</span>
                {e.reason.clone().map(|r| view! { <span class="why" title=r.clone()>{r.clone()}</span> })}
            </td>
            <td class="clients">{clients}</td>
        </tr>
    }
    .into_any()
}

/// Ended sessions, newest end first as given.
#[component]
pub fn EndedTable(entries: Vec<EndedSession>, now: DateTime<Utc>) -> impl IntoView {
    let rows = entries.into_iter().map(|e| row(e, now)).collect_view();
    view! {
        <div class="table-wrap">
            <table class="sessions ended">
                <thead><tr>
                    <th scope="col">"Display name"</th><th scope="col">"Subject"</th>
                    <th scope="col">"Session ID"</th><th scope="col">"Device"</th>
                    <th scope="col">"IP"</th><th scope="col">"Created"</th>
                    <th scope="col">"Ended"</th><th scope="col">"How, by whom, why"</th>
                    <th scope="col">"Applications told"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}
