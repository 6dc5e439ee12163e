//! The table of sessions.

use chrono::Utc;
use leptos::prelude::*;
use sessions::Session;

use crate::format::{exact, relative};

/// A time shown relative to now, exact on hover.
#[component]
fn When(t: chrono::DateTime<Utc>) -> impl IntoView {
    let now = Utc::now();
    view! { <time datetime=t.to_rfc3339() title=exact(t)>{relative(t, now)}</time> }
}

/// One row per session.
#[component]
pub fn SessionTable(sessions: Vec<Session>) -> impl IntoView {
    let rows = sessions
        .into_iter()
        .map(|s| {
            let short_sid = s.sid.chars().take(8).collect::<String>();
            view! {
                <tr>
                    <td class="name">{s.display_name.clone().unwrap_or_else(|| "—".into())}</td>
                    <td><code>{s.subject_id.clone()}</code></td>
                    <td><code title=s.sid.clone()>{short_sid}"…"</code></td>
                    <td class="clients">
                        {s.client_ids.iter().map(|c| view! { <span class="chip">{c.clone()}</span> }).collect_view()}
                    </td>
                    <td><When t=s.created_at/></td>
                    <td><When t=s.last_access_at/></td>
                    <td><When t=s.effective_expiry()/></td>
                    <td>{s.ip.clone().unwrap_or_default()}</td>
                    <td class="ua" title=s.user_agent.clone().unwrap_or_default()>{s.user_agent.clone().unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="sessions">
                <thead>
                    <tr>
                        <th scope="col">"Display name"</th>
                        <th scope="col">"Subject"</th>
                        <th scope="col">"Session ID"</th>
                        <th scope="col">"Clients"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col">"Last access"</th>
                        <th scope="col">"Expires"</th>
                        <th scope="col">"IP"</th>
                        <th scope="col">"User agent"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}
