//! The ended-sessions page: what happened to sessions that are gone: who ended them and why,
//! and whether each of their applications heard of it.

use leptos::prelude::*;
use leptos_router::hooks::use_query;
use sessions::stats::EndReason;

use crate::components::ended_table::EndedTable;
use crate::components::loaded::Loaded;
use crate::components::realm_picker::RealmPicker;
use crate::format::thousands;
use crate::routes::EndedParams;
use crate::server_fns::ended::{load_ended, EndedView};

/// The ended-sessions page.
#[component]
pub fn EndedPage() -> impl IntoView {
    let query = use_query::<EndedParams>();
    let params = Memo::new(move |_| query.get().unwrap_or_default());
    let data = Resource::new(
        move || params.get(),
        |p| load_ended(p.realm, p.subject_id, p.sid, p.how, p.after),
    );
    view! {
        <h1>"Ended sessions"</h1>
        <Loaded loading="Loading ended sessions…">
            {move || Suspend::new(async move {
                let p = params.get_untracked();
                data.await.map(|view| view! { <EndedBody view params=p/> })
            })}
        </Loaded>
    }
}

#[component]
fn EndedBody(view: EndedView, params: EndedParams) -> impl IntoView {
    let (Some(realm), Some(page)) = (view.realm.clone(), view.page.clone()) else {
        return view! { <p class="notice">"No realm exists yet."</p> }.into_any();
    };
    let now = view.now;
    let how = params.how.clone().unwrap_or_default();
    let how_options = EndReason::ALL
        .into_iter()
        .map(|r| view! { <option value=r.as_str() selected=how == r.as_str()>{r.label()}</option> })
        .collect_view();
    let here = EndedParams {
        realm: Some(realm.clone()),
        ..params.clone()
    };
    let body = if page.results.is_empty() {
        view! {
            <p class="notice empty">
                "No ended session matches. Each session that ends (logout, expiry, revocation, sign-out, eviction) is kept here for the retention period."
            </p>
        }
        .into_any()
    } else {
        view! { <EndedTable entries=page.results now/> }.into_any()
    };
    let older = page.next.clone().map(|next| {
        view! { <a class="button" href=here.href(Some(next))>"Older"</a> }
    });
    let newest = params
        .after
        .is_some()
        .then(|| view! { <a class="button" href=here.href(None)>"Newest"</a> });
    let in_realm = {
        let params = params.clone();
        Callback::new(move |r: String| {
            EndedParams {
                realm: Some(r),
                ..params.clone()
            }
            .href(None)
        })
    };
    let n = page.total_count;
    view! {
        <form method="get" action="/ended" class="filters" role="search">
            <RealmPicker realms=view.realms current=realm.clone() href=in_realm/>
            <label>"Subject" <input type="text" name="subject_id" value=params.subject_id.clone().unwrap_or_default()/></label>
            <label>"Session ID" <input type="text" name="sid" value=params.sid.clone().unwrap_or_default()/></label>
            <label>"How it ended"
                <select name="how"><option value="">"Any"</option>{how_options}</select>
            </label>
            <button type="submit" class="primary">"Search"</button>
        </form>
        <div class="toolbar">
            <span class="spacer"></span>
            <a class="button" href=here.export_href(&realm, "csv") download rel="external">"Export CSV"</a>
            <a class="button" href=here.export_href(&realm, "jsonl") download rel="external">"Export JSON lines"</a>
        </div>
        {body}
        <div class="pager">
            <span class="summary">{format!("{} ended session{}", thousands(n), if n == 1 { "" } else { "s" })}</span>
            {newest}
            {older}
        </div>
    }
    .into_any()
}
