//! The sessions page: realm picker, filters, the paged table. Filters and position live in the
//! URL, so reload, back and shared links work.

use std::collections::BTreeSet;

use leptos::ev::SubmitEvent;
use leptos::html;
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query};
use sessions::{FilterField, FilterKind, SessionFilters, SortKey};

use crate::components::end_dialog::{end_action, EndAction, EndDialog, EndNotice, EndTarget};
use crate::components::live_banner::LiveBanner;
use crate::components::loaded::Loaded;
use crate::components::pager::Pager;
use crate::components::realm_picker::RealmPicker;
use crate::components::session_table::SessionTable;
use crate::error::AppError;
use crate::routes::ListParams;
use crate::server_fns::sessions::{load_sessions, SessionsView};

/// The sessions page.
#[component]
pub fn SessionsPage() -> impl IntoView {
    let query = use_query::<ListParams>();
    let params = Memo::new(move |_| query.get().unwrap_or_default().normalized());
    let ending = end_action();
    // Asked again after every revocation.
    let data = Resource::new(
        move || (params.get(), ending.version().get()),
        |(p, _)| async move {
            let query = p.to_query().map_err(|message| AppError::Refused {
                status: 400,
                code: "invalid_query".into(),
                message,
            })?;
            load_sessions(p.realm.clone(), query).await
        },
    );
    let on_refresh = Callback::new(move |_| data.refetch());
    view! {
        <h1>"Sessions"</h1>
        <EndNotice ending/>
        <Loaded loading="Loading sessions…">
            {move || Suspend::new(async move {
                data.await.map(|view| view! {
                    <SessionsBody view params=params.get_untracked() ending on_refresh/>
                })
            })}
        </Loaded>
    }
}

/// Everything below the title once the data is there.
#[component]
fn SessionsBody(
    view: SessionsView,
    params: ListParams,
    ending: EndAction,
    on_refresh: Callback<()>,
) -> impl IntoView {
    let Some(realm) = view.realm.clone() else {
        return view! {
            <p class="notice">"No realm exists yet. Create one with " <code>"PUT /api/v1/realms/{name}"</code> "."</p>
        }
        .into_any();
    };
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
    let subject = params.session_filters().ok().and_then(|f| f.subject_id);
    let selected = RwSignal::new(BTreeSet::<String>::new());
    let dialog = RwSignal::new(None::<EndTarget>);
    let may_operate = view.may_operate;
    let baseline = view
        .realms
        .iter()
        .find(|r| r.name == realm)
        .map_or(0, |r| r.session_count);
    let body = match view.page {
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
                {may_operate.then(|| view! {
                    <button type="button" class="danger" disabled=move || selected.with(BTreeSet::is_empty)
                        on:click=move |_| dialog.set(Some(EndTarget::Selected))>
                        {move || format!("End selected ({})", selected.with(BTreeSet::len))}
                    </button>
                })}
                {subject.filter(|_| may_operate).map(|subject| {
                    let label = format!("End all sessions of {subject}");
                    view! {
                        <button type="button" on:click=move |_| dialog.set(Some(EndTarget::Subject(subject.clone())))>
                            {label}
                        </button>
                    }
                })}
                {params.range_ending().filter(|_| may_operate).map(|removal| {
                    let label = format!("End all {} matching", page.total_count);
                    view! {
                        <button type="button" class="danger" on:click=move |_| dialog.set(Some(EndTarget::Filter(Box::new(removal.clone()))))>
                            {label}
                        </button>
                    }
                })}
                <span class="spacer"></span>
                <a class="button" href=params.export_href(&realm, "csv") download rel="external">"Export CSV"</a>
                <a class="button" href=params.export_href(&realm, "jsonl") download rel="external">"Export JSON lines"</a>
                {(may_operate && !sessions::validate::is_reserved_realm(&realm)).then(|| view! {
                    <button type="button" class="outline-danger" on:click=move |_| dialog.set(Some(EndTarget::Realm))>
                        "End every session in this realm"
                    </button>
                })}
            </div>
            <SessionTable sessions=page.results.clone() realm=realm.clone() own_sid=view.own_sid.clone() selected now=view.now
                selectable=may_operate/>
            <Pager page=page params=params.clone()/>
            <EndDialog realm=realm.clone() selected target=dialog ending/>
        }
        .into_any(),
        None => ().into_any(),
    };
    // "Search" asks for the typed filters from the first page, in a URL without empty fields.
    let filter_inputs: Vec<(FilterField, FilterInput)> = SessionFilters::FIELDS
        .iter()
        .map(|f| (*f, FilterInput::for_kind(f.kind)))
        .collect();
    let (sort, per_page) = (
        NodeRef::<html::Select>::new(),
        NodeRef::<html::Select>::new(),
    );
    let navigate = use_navigate();
    let search_realm = realm.clone();
    let search_inputs = filter_inputs.clone();
    let on_search = move |ev: SubmitEvent| {
        ev.prevent_default();
        let choice = |r: NodeRef<html::Select>| r.get_untracked().map(|el| el.value());
        let asked = ListParams {
            realm: Some(search_realm.clone()),
            filters: search_inputs
                .iter()
                .filter_map(|(f, r)| Some((f.name, r.value()?)))
                .collect(),
            count: choice(per_page).and_then(|c| c.parse().ok()),
            sort: choice(sort),
            results_token: None,
            prior: None,
        };
        navigate(&asked.href(), Default::default());
    };
    let in_realm = {
        let params = params.clone();
        Callback::new(move |r: String| params.in_realm(&r).href())
    };
    view! {
        <form method="get" action="/" class="filters" role="search" on:submit=on_search>
            <RealmPicker realms=view.realms current=realm href=in_realm counts=true/>
            {filter_inputs.into_iter().map(|(f, input)| {
                let value = params.filters.get(f.name).cloned().unwrap_or_default();
                match (f.kind, input) {
                    (FilterKind::Time, FilterInput::Input(input)) => view! {
                        <label>{f.label} <input type="datetime-local" step="1" name=f.name value=value node_ref=input/></label>
                    }.into_any(),
                    (FilterKind::Choice(choices), FilterInput::Select(select)) => {
                        let options = choices.iter().map(|(name, label)| {
                            let selected = *name == value;
                            view! { <option value=*name selected=selected>{*label}</option> }
                        }).collect_view();
                        view! {
                            <label>{f.label} <select name=f.name node_ref=select>
                                <option value="" selected=value.is_empty()>"Any"</option>
                                {options}
                            </select></label>
                        }.into_any()
                    }
                    (_, FilterInput::Input(input)) => view! {
                        <label>{f.label} <input type="text" name=f.name placeholder=f.placeholder value=value node_ref=input/></label>
                    }.into_any(),
                    (_, FilterInput::Select(_)) => ().into_any(),
                }
            }).collect_view()}
            <label>"Sort" <select name="sort" node_ref=sort>{sort_options}</select></label>
            <label>"Per page" <select name="count" node_ref=per_page>{count_options}</select></label>
            <button type="submit" class="primary">"Search"</button>
        </form>
        {body}
    }
    .into_any()
}

/// A filter's form control: a text or time input, or a select of a choice's values.
#[derive(Clone, Copy)]
enum FilterInput {
    Input(NodeRef<html::Input>),
    Select(NodeRef<html::Select>),
}

impl FilterInput {
    fn for_kind(kind: FilterKind) -> Self {
        match kind {
            FilterKind::Choice(_) => FilterInput::Select(NodeRef::new()),
            _ => FilterInput::Input(NodeRef::new()),
        }
    }

    /// What the control holds now (nothing before it is mounted).
    fn value(&self) -> Option<String> {
        match self {
            FilterInput::Input(r) => r.get_untracked().map(|el| el.value()),
            FilterInput::Select(r) => r.get_untracked().map(|el| el.value()),
        }
    }
}
