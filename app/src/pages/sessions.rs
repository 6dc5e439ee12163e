//! The sessions page: realm picker, filters, the paged table. Filters and position live in the
//! URL, so reload, back and shared links work.

use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;
use serde::{Deserialize, Serialize};
use sessions::{SessionQuery, SortKey};

use std::collections::BTreeSet;

use crate::components::live_banner::LiveBanner;
use crate::components::pager::Pager;
use crate::components::revoke_dialog::{describe, RevokeDialog, RevokeTarget};
use crate::components::session_table::SessionTable;
use crate::format::thousands;
use crate::pages::login::clean;
use crate::server_fns::sessions::{load_sessions, SessionsView};
use crate::server_fns::NOT_SIGNED_IN;

/// The sessions page's URL parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListParams {
    pub realm: Option<String>,
    pub subject_id: Option<String>,
    pub sid: Option<String>,
    pub display_name: Option<String>,
    pub client_id: Option<String>,
    pub count: Option<u32>,
    pub sort: Option<String>,
    pub results_token: Option<String>,
    pub prior: Option<bool>,
}

impl ListParams {
    /// Reads the parameters from the URL's query, trimmed as a person typed them; empty values
    /// count as absent. (The service itself never trims: ids are exact.)
    pub fn from_query(q: &ParamsMap) -> Self {
        let text = |k: &str| {
            q.get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        ListParams {
            realm: text("realm"),
            subject_id: text("subject_id"),
            sid: text("sid"),
            display_name: text("display_name"),
            client_id: text("client_id"),
            count: text("count").and_then(|c| c.parse().ok()),
            sort: text("sort"),
            results_token: text("results_token"),
            prior: text("prior").map(|p| p == "true"),
        }
    }

    /// The link to this listing.
    pub fn href(&self) -> String {
        format!(
            "/?{}",
            serde_urlencoded::to_string(self).unwrap_or_default()
        )
    }

    /// The store query these parameters ask for.
    pub fn to_query(&self) -> SessionQuery {
        SessionQuery {
            subject_id: self.subject_id.clone(),
            sid: self.sid.clone(),
            display_name: self.display_name.clone(),
            client_id: self.client_id.clone(),
            count: self.count,
            sort: self
                .sort
                .as_deref()
                .and_then(SortKey::parse)
                .unwrap_or_default(),
            results_token: self.results_token.clone(),
            prior: self.prior.unwrap_or(false),
        }
    }

    fn has_filter(&self) -> bool {
        self.subject_id.is_some()
            || self.sid.is_some()
            || self.display_name.is_some()
            || self.client_id.is_some()
    }
}

/// The sessions page.
#[component]
pub fn SessionsPage() -> impl IntoView {
    let query = use_query_map();
    let params = Memo::new(move |_| query.with(ListParams::from_query));
    let data = Resource::new(
        move || params.get(),
        |p| async move { load_sessions(p.realm.clone(), p.to_query()).await },
    );
    let notice = RwSignal::new(None::<String>);
    let on_done = Callback::new(move |outcome: sessions::RemoveOutcome| {
        notice.set(Some(describe(&outcome)));
        data.refetch();
    });
    let on_refresh = Callback::new(move |_| data.refetch());

    view! {
        <h1>"Sessions"</h1>
        {move || notice.get().map(|n| view! { <p class="notice ok" role="status">{n}</p> })}
        <Transition fallback=|| view! { <p class="notice">"Loading sessions…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(view) => view! { <SessionsBody view params=params.get_untracked() on_done on_refresh/> }.into_any(),
                    Err(e) if clean(&e.to_string()) == NOT_SIGNED_IN => view! {
                        <p class="notice">{NOT_SIGNED_IN} " " <a href="/login">"Sign in"</a> " to see sessions."</p>
                    }.into_any(),
                    Err(e) => view! {
                        <p class="notice error" role="alert">{format!("Could not load sessions: {}", clean(&e.to_string()))}</p>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Everything below the title once the data is there.
#[component]
fn SessionsBody(
    view: SessionsView,
    params: ListParams,
    on_done: Callback<sessions::RemoveOutcome>,
    on_refresh: Callback<()>,
) -> impl IntoView {
    let Some(realm) = view.realm.clone() else {
        return view! {
            <p class="notice">"No realm exists yet. Create one with " <code>"PUT /api/v1/realms/{name}"</code> "."</p>
        }
        .into_any();
    };
    let realm_options = view
        .realms
        .iter()
        .map(|r| {
            let label = format!("{} ({})", r.name, thousands(r.session_count));
            view! { <option value=r.name.clone() selected=r.name == realm>{label}</option> }
        })
        .collect_view();
    let sort_options = SortKey::ALL
        .into_iter()
        .map(|k| {
            let label = match k {
                SortKey::Created => "Newest first",
                SortKey::LastAccess => "Recently used first",
                SortKey::Expires => "Expiring first",
            };
            let selected = params.sort.as_deref().unwrap_or("created") == k.as_str();
            view! { <option value=k.as_str() selected=selected>{label}</option> }
        })
        .collect_view();
    let count = params.count.unwrap_or(sessions::DEFAULT_PAGE_SIZE);
    let count_options = [10u32, 25, 50, 100]
        .into_iter()
        .map(|n| view! { <option value=n.to_string() selected=n == count>{n.to_string()}</option> })
        .collect_view();
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let page = view.page.clone();
    let selected = RwSignal::new(BTreeSet::<String>::new());
    let dialog = RwSignal::new(None::<RevokeTarget>);
    let own_sid = view.own_sid.clone();
    let baseline = view
        .realms
        .iter()
        .find(|r| r.name == realm)
        .map_or(0, |r| r.session_count);
    let body = match page {
        Some(page) if page.results.is_empty() => {
            let what = if params.has_filter() {
                "matching these filters"
            } else {
                "in this realm"
            };
            view! { <p class="notice empty">{format!("No active session found {what}.")}</p> }
                .into_any()
        }
        Some(page) => view! {
            <LiveBanner realm=realm.clone() baseline on_refresh/>
            <div class="toolbar">
                <button type="button" class="danger" disabled=move || selected.with(BTreeSet::is_empty)
                    on:click=move |_| dialog.set(Some(RevokeTarget::Selected))>
                    {move || format!("Revoke selected ({})", selected.with(BTreeSet::len))}
                </button>
                {params.subject_id.clone().map(|subject| {
                    let label = format!("Revoke all sessions of {subject}");
                    view! {
                        <button type="button" on:click=move |_| dialog.set(Some(RevokeTarget::Subject(subject.clone())))>
                            {label}
                        </button>
                    }
                })}
                <span class="spacer"></span>
                {(!sessions::validate::is_reserved_realm(&realm)).then(|| view! {
                    <button type="button" class="outline-danger" on:click=move |_| dialog.set(Some(RevokeTarget::Realm))>
                        "Sign out all sessions in this realm"
                    </button>
                })}
            </div>
            <SessionTable sessions=page.results.clone() realm=realm.clone() own_sid=own_sid selected/>
            <Pager page=page params=params.clone()/>
            <RevokeDialog realm=realm.clone() selected target=dialog on_done/>
        }
        .into_any(),
        None => ().into_any(),
    };
    view! {
        <Form method="GET" action="/" attr:class="filters" attr:role="search">
            <label>"Realm" <select name="realm">{realm_options}</select></label>
            <label>"Subject" <input type="text" name="subject_id" value=value(&params.subject_id)/></label>
            <label>"Session ID" <input type="text" name="sid" value=value(&params.sid)/></label>
            <label>"Display name" <input type="text" name="display_name" value=value(&params.display_name)/></label>
            <label>"Client" <input type="text" name="client_id" value=value(&params.client_id)/></label>
            <label>"Sort" <select name="sort">{sort_options}</select></label>
            <label>"Per page" <select name="count">{count_options}</select></label>
            <button type="submit" class="primary">"Search"</button>
        </Form>
        {body}
    }
    .into_any()
}
