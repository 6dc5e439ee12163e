//! The audit page: every administrative action, newest first.

use leptos::prelude::*;
use leptos_router::hooks::use_query;

use crate::components::loaded::Loaded;
use crate::format::{exact, relative};
use crate::routes::AuditParams;
use crate::server_fns::audit::{load_audit, AuditView};

/// Who did what, when, why, with what outcome.
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query::<AuditParams>();
    let before = move || query.with(|q| q.as_ref().ok().and_then(|q| q.before));
    let data = Resource::new(before, load_audit);
    view! {
        <h1>"Audit log"</h1>
        <Loaded loading="Loading the audit log…">
            {move || Suspend::new(async move { data.await.map(|view| view! { <AuditTable view/> }) })}
        </Loaded>
    }
}

/// One page of entries, with the link to older ones.
#[component]
fn AuditTable(view: AuditView) -> impl IntoView {
    if view.entries.is_empty() {
        return view! { <p class="notice empty">"Nothing recorded yet."</p> }.into_any();
    }
    let now = view.now;
    let rows = view.entries.into_iter().map(|e| view! {
        <tr>
            <td><time datetime=e.at.to_rfc3339() title=exact(e.at)>{relative(e.at, now)}</time></td>
            <td><code>{e.actor}</code></td>
            <td>{e.realm.unwrap_or_default()}</td>
            <td>{e.action.replace('_', " ")}</td>
            <td class="target">{e.target}</td>
            <td>{e.reason.unwrap_or_else(|| "—".into())}</td>
            <td>{e.outcome}</td>
        </tr>
    }).collect_view();
    view! {
        <div class="table-wrap">
            <table class="sessions audit">
                <thead><tr>
                    <th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"Realm"</th>
                    <th scope="col">"Action"</th><th scope="col">"Target"</th><th scope="col">"Reason"</th>
                    <th scope="col">"Outcome"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <div class="pager">
            <span class="summary"></span>
            {view.older.map(|id| view! { <a class="button" href=AuditParams::href(id)>"Older"</a> })}
        </div>
    }.into_any()
}
