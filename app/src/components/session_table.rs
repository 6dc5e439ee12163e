//! The table of sessions, with a checkbox per row for ending where the role may end sessions.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use sessions::Session;

use crate::components::copy_id::CopyId;
use crate::components::device::DeviceLabel;
use crate::components::network::{moved, SessionNetwork};
use crate::format::{exact, relative};
use crate::routes::user_href;

/// A time shown relative to `now` (the server's time of the data), exact on hover.
#[component]
fn When(t: DateTime<Utc>, now: DateTime<Utc>) -> impl IntoView {
    view! { <time datetime=t.to_rfc3339() title=exact(t)>{relative(t, now)}</time> }
}

/// One row per session. With `selectable` (the role may end sessions), each row has a checkbox:
/// `selected` holds the checked sids; the row of `own_sid` (the administrator's own session)
/// cannot be selected. Times are relative to `now`, the server's time of the data, so the
/// server's render and the browser's hydration agree.
#[component]
pub fn SessionTable(
    sessions: Vec<Session>,
    realm: String,
    own_sid: String,
    selected: RwSignal<BTreeSet<String>>,
    now: DateTime<Utc>,
    selectable: bool,
) -> impl IntoView {
    let selectable_sids: Vec<String> = sessions
        .iter()
        .map(|s| s.sid.clone())
        .filter(|s| *s != own_sid)
        .collect();
    let all_checked = {
        let sids = selectable_sids.clone();
        Memo::new(move |_| {
            !sids.is_empty() && selected.with(|sel| sids.iter().all(|s| sel.contains(s)))
        })
    };
    let toggle_all = move |_| {
        let check = !all_checked.get_untracked();
        selected.update(|sel| {
            for sid in &selectable_sids {
                if check {
                    sel.insert(sid.clone());
                } else {
                    sel.remove(sid);
                }
            }
        });
    };
    // Without GeoIP databases no session is placed, and the column stays out.
    let located = sessions
        .iter()
        .any(|s| s.network.is_some() || s.last_network.is_some());
    let rows = sessions
        .into_iter()
        .map(|s| {
            let own = s.sid == own_sid;
            let sid = s.sid.clone();
            let sid_for_check = sid.clone();
            let checked = move || selected.with(|sel| sel.contains(&sid_for_check));
            let toggle = move |_| {
                selected.update(|sel| {
                    if !sel.remove(&sid) {
                        sel.insert(sid.clone());
                    }
                })
            };
            let label = format!("Select session of {}", s.display_name.clone().unwrap_or_else(|| s.subject_id.clone()));
            let detail = format!("/sessions/{realm}/{}", s.sid);
            let expires = s.effective_expiry();
            let expired = expires <= now;
            view! {
                <tr class:own=own>
                    {selectable.then(|| view! {
                        <td class="check">
                            <input type="checkbox" aria-label=label prop:checked=checked on:change=toggle disabled=own/>
                        </td>
                    })}
                    <td class="name">
                        {s.display_name.clone().unwrap_or_else(|| "—".into())}
                        {own.then(|| view! { <span class="badge">"this session"</span> })}
                    </td>
                    <td><a href=user_href(&realm, &s.subject_id) title="Every session, grant and delivery of this subject"><code>{s.subject_id.clone()}</code></a></td>
                    <td class="sid"><CopyId id=s.sid.clone() href=detail what="session ID"/></td>
                    <td class="clients">
                        {s.client_ids.iter().map(|c| view! { <span class="chip">{c.clone()}</span> }).collect_view()}
                    </td>
                    <td><When t=s.created_at now/></td>
                    <td><When t=s.last_access_at now/></td>
                    <td>
                        <When t=expires now/>
                        {expired.then(|| view! { <span class="badge">"expired"</span> })}
                    </td>
                    <td class="ip">
                        {s.ip.clone().unwrap_or_default()}
                        {moved(&s).then(|| view! {
                            <span class="moved-to" title="The address of the latest refresh">"→ "{s.last_ip.clone().unwrap_or_default()}</span>
                        })}
                    </td>
                    {located.then(|| view! { <td class="network"><SessionNetwork session=s.clone()/></td> })}
                    <td class="device"><DeviceLabel device=s.device user_agent=s.user_agent.clone()/></td>
                </tr>
            }
            // A row's type erased: the page's view type stays within the compiler's depth limit.
            .into_any()
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="sessions">
                <thead>
                    <tr>
                        {selectable.then(|| view! {
                            <th scope="col" class="check">
                                <input type="checkbox" aria-label="Select every session on this page"
                                    prop:checked=move || all_checked.get() on:change=toggle_all/>
                            </th>
                        })}
                        <th scope="col">"Display name"</th>
                        <th scope="col">"Subject"</th>
                        <th scope="col">"Session ID"</th>
                        <th scope="col">"Clients"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col">"Last access"</th>
                        <th scope="col">"Expires"</th>
                        <th scope="col">"IP"</th>
                        {located.then(|| view! { <th scope="col">"Network"</th> })}
                        <th scope="col">"Device"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}
