//! The deliveries page: every back-channel logout notification of a realm, whether the client got
//! it, what went wrong if not, and "retry now".

use leptos::prelude::*;
use leptos_router::hooks::use_query;
use sessions::{Delivery, DeliveryStatus};

use crate::components::copy_id::CopyId;
use crate::components::loaded::Loaded;
use crate::components::realm_picker::RealmPicker;
use crate::error::AppError;
use crate::format::{exact, relative, thousands};
use crate::routes::DeliveriesParams;
use crate::server_fns::deliveries::{load_deliveries, retry_delivery, DeliveriesView};

/// The URL of a deliveries listing.
fn href(realm: &str, status: Option<DeliveryStatus>, before: Option<u64>) -> String {
    DeliveriesParams::href(realm, status, before)
}

/// The deliveries page.
#[component]
pub fn DeliveriesPage() -> impl IntoView {
    let query = use_query::<DeliveriesParams>();
    let params = Memo::new(move |_| query.get().unwrap_or_default());
    let retry = Action::new(|(realm, id): &(String, u64)| retry_delivery(realm.clone(), *id));
    // Asked again after every retry.
    let data = Resource::new(
        move || (params.get(), retry.version().get()),
        |(p, _)| load_deliveries(p.realm, p.status, p.before),
    );
    let notice = move || {
        retry.value().get().map(|result| match result {
            Ok(d) => view! {
                <p class="notice ok" role="status">
                    {format!("Delivery {} to {} is queued for an attempt now.", d.id, d.client_id)}
                </p>
            }
            .into_any(),
            Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    };
    view! {
        <h1>"Back-channel logout deliveries"</h1>
        {notice}
        <Loaded loading="Loading deliveries…">
            {move || Suspend::new(async move {
                data.await.map(|view| view! {
                    <DeliveriesBody view retry on_refresh=Callback::new(move |_| data.refetch())/>
                })
            })}
        </Loaded>
    }
}

#[component]
fn DeliveriesBody(
    view: DeliveriesView,
    retry: Action<(String, u64), Result<Delivery, AppError>>,
    on_refresh: Callback<()>,
) -> impl IntoView {
    let (Some(realm), Some(page)) = (view.realm.clone(), view.page.clone()) else {
        return view! { <p class="notice">"No realm exists yet."</p> }.into_any();
    };
    let status = view.status;
    let may_retry = view.may_retry;
    let status_options = DeliveryStatus::ALL
        .into_iter()
        .map(|s| view! { <option value=s.as_str() selected=view.status == Some(s)>{s.as_str()}</option> })
        .collect_view();
    let c = page.counts;
    let tabs = [
        (None, "All", c.pending + c.delivered + c.failed),
        (Some(DeliveryStatus::Pending), "Pending", c.pending),
        (Some(DeliveryStatus::Delivered), "Delivered", c.delivered),
        (Some(DeliveryStatus::Failed), "Failed", c.failed),
    ]
    .into_iter()
    .map(|(status, label, n)| {
        let current = (view.status == status).then_some("page");
        view! {
            <a class="tab" href=href(&realm, status, None) aria-current=current>
                {label} " " <span class="count">{thousands(n)}</span>
            </a>
        }
    })
    .collect_view();
    let now = view.now;
    let body = if page.deliveries.is_empty() {
        view! {
            <p class="notice empty">
                "No delivery here. Sessions ended with \"Send back-channel logout\" notify every client they joined that has a back-channel logout URI."
            </p>
        }
        .into_any()
    } else {
        let rows = page
            .deliveries
            .into_iter()
            .map(|d| {
                let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map(|t| view! { <time datetime=t.to_rfc3339() title=exact(t)>{relative(t, now)}</time> })
                };
                let progress = match d.status {
                    DeliveryStatus::Delivered => view! { <span>"delivered "</span> {when(d.delivered_at)} }.into_any(),
                    DeliveryStatus::Pending => view! { <span>"next "</span> {when(d.next_attempt_at)} }.into_any(),
                    DeliveryStatus::Failed => view! { <span>"gave up "</span> {when(d.last_attempt_at)} }.into_any(),
                };
                let retryable = may_retry && d.status != DeliveryStatus::Delivered;
                let (realm, id) = (realm.clone(), d.id);
                let label = format!("Retry delivery {id} now");
                view! {
                    <tr data-delivery=d.id.to_string()>
                        <td><time datetime=d.created_at.to_rfc3339() title=exact(d.created_at)>{relative(d.created_at, now)}</time></td>
                        <td><code>{d.client_id.clone()}</code></td>
                        <td>{d.subject_id.clone()}</td>
                        <td class="sid"><CopyId id=d.sid.clone() what="session ID"/></td>
                        <td>{d.reason.replace('_', " ")}</td>
                        <td><span class=format!("status status-{}", d.status.as_str())>{d.status.as_str()}</span></td>
                        <td class="num">{d.attempts}</td>
                        <td>{progress}</td>
                        <td class="error-text" title=d.last_error.clone().unwrap_or_default()>{d.last_error.clone().unwrap_or_else(|| "—".into())}</td>
                        <td>
                            {retryable.then(|| view! {
                                <button type="button" aria-label=label disabled=move || retry.pending().get()
                                    on:click=move |_| { retry.dispatch((realm.clone(), id)); }>"Retry now"</button>
                            })}
                        </td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap">
                <table class="sessions deliveries">
                    <thead><tr>
                        <th scope="col">"Queued"</th><th scope="col">"Client"</th><th scope="col">"Subject"</th>
                        <th scope="col">"Session"</th><th scope="col">"Why"</th><th scope="col">"Status"</th>
                        <th scope="col">"Attempts"</th><th scope="col">"Progress"</th><th scope="col">"Last error"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let older = page
        .next_before
        .map(|b| view! { <a class="button" href=href(&realm, view.status, Some(b))>"Older"</a> });
    view! {
        <form method="get" action="/deliveries" class="filters">
            <RealmPicker realms=view.realms current=realm.clone() href=Callback::new(move |r: String| href(&r, status, None))/>
            <label>"Status"
                <select name="status"><option value="">"any"</option>{status_options}</select>
            </label>
            <button type="submit" class="primary">"Show"</button>
        </form>
        <div class="toolbar">
            <nav class="tabs" aria-label="Delivery status">{tabs}</nav>
            <span class="spacer"></span>
            <button type="button" on:click=move |_| on_refresh.run(())>"Refresh"</button>
        </div>
        {body}
        <div class="pager"><span class="summary"></span>{older}</div>
    }
    .into_any()
}
