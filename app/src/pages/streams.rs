//! The signals page: every Shared Signals stream, whose receiver it serves, how and what it
//! transmits, and its status; role admin enables, pauses or disables a stream with a reason.

use leptos::form::ActionForm;
use leptos::prelude::*;
use sessions::StreamStatus;

use crate::components::loaded::Loaded;
use crate::format::{exact, relative};
use crate::routes::DeliveriesParams;
use crate::server_fns::streams::{
    load_signal_streams, SetSignalStreamStatus, StreamRow, StreamsView,
};

/// The button that sets a status, as the administrator reads it.
fn verb(status: StreamStatus) -> &'static str {
    match status {
        StreamStatus::Enabled => "Enable",
        StreamStatus::Paused => "Pause",
        StreamStatus::Disabled => "Disable",
    }
}

/// An event type's last path segment (`session-revoked`), which tells the event types apart.
fn event_name(uri: &str) -> &str {
    uri.rsplit('/').next().unwrap_or(uri)
}

/// The signals page.
#[component]
pub fn StreamsPage() -> impl IntoView {
    let set = ServerAction::<SetSignalStreamStatus>::new();
    let data = Resource::new(move || set.version().get(), |_| load_signal_streams());
    let notice = move || {
        set.value().get().map(|outcome| match outcome {
            Ok(message) => view! { <p class="notice ok" role="status">{message}</p> }.into_any(),
            Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    };
    view! {
        <h1>"Shared Signals streams"</h1>
        <p class="hint">
            "Receivers (API keys of scope " <code>"ssf:receiver"</code> ") each manage one stream of "
            "CAEP session-revoked events. A stream's events are deliveries to client "
            <code>"ssf:<stream ID>"</code> " in the ended session's realm: find them on the "
            <a href="/deliveries">"Deliveries"</a> " page. A status an administrator sets other than "
            "enabled cannot be changed back by the receiver, who reads it, with the reason, in a "
            "stream-updated event."
        </p>
        {notice}
        <Loaded loading="Loading streams…">
            {move || Suspend::new(async move { data.await.map(|view| view! { <StreamTable view set/> }) })}
        </Loaded>
    }
}

/// One row per stream, each with its status form for role admin.
#[component]
fn StreamTable(view: StreamsView, set: ServerAction<SetSignalStreamStatus>) -> impl IntoView {
    if view.streams.is_empty() {
        return view! {
            <div class="notice empty">
                <p>"No receiver has created a stream yet."</p>
                <p>
                    "Create an API key with scope " <code>"ssf:receiver"</code> " on the "
                    <a href="/api-keys">"API keys"</a> " page. The receiver creates its stream with "
                    <code>"POST /api/v1/ssf/streams"</code> " and that key (a body of " <code>"{}"</code>
                    " makes a poll stream of every realm the key reaches); the transmitter's metadata is at "
                    <a href="/.well-known/ssf-configuration" rel="external"><code>"/.well-known/ssf-configuration"</code></a> "."
                </p>
            </div>
        }
        .into_any();
    }
    let (now, may_change) = (view.now, view.may_change);
    let rows = view
        .streams
        .into_iter()
        .map(|s| view! { <StreamLine s now may_change set/> })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="sessions streams">
                <thead><tr>
                    <th scope="col">"Receiver and stream"</th>
                    <th scope="col">"Delivery"</th><th scope="col">"Realms"</th>
                    <th scope="col">"Events"</th><th scope="col">"Status"</th>
                    <th scope="col">"Updated"</th>
                    {may_change.then(|| view! { <th scope="col">"Change status"</th> })}
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

/// A stream's row.
#[component]
fn StreamLine(
    s: StreamRow,
    now: chrono::DateTime<chrono::Utc>,
    may_change: bool,
    set: ServerAction<SetSignalStreamStatus>,
) -> impl IntoView {
    let client_id = s.client_id();
    let realms = match &s.realms {
        None => view! { <span class="every-realm">"every realm"</span> }.into_any(),
        Some(realms) => realms
            .iter()
            .map(|r| {
                let title = format!("Deliveries in realm {r}");
                view! {
                    <a class="chip" href=DeliveriesParams::href(r, None, None) title=title>{r.clone()}</a>
                }
            })
            .collect_view()
            .into_any(),
    };
    let events = if s.events_delivered.is_empty() {
        view! { <span class="muted">"none"</span> }.into_any()
    } else {
        s.events_delivered
            .iter()
            .map(|e| view! { <span class="chip" title=e.clone()>{event_name(e).to_owned()}</span> })
            .collect_view()
            .into_any()
    };
    let set_by = match (s.status_by_admin, s.status) {
        (true, _) => Some("set by an administrator"),
        (false, StreamStatus::Enabled) => None,
        (false, _) => Some("set by the receiver"),
    };
    let (current, stream_id) = (s.status, s.stream_id.clone());
    let actions = may_change.then(|| {
        // The statuses the stream may be given: those it has not.
        let buttons = StreamStatus::ALL
            .into_iter()
            .filter(|status| *status != current)
            .map(|status| {
                let label = format!("{} the stream of {}", verb(status), s.key_name);
                let class = if status == StreamStatus::Enabled { "" } else { "outline-danger" };
                view! {
                    <button type="submit" name="status" value=status.as_str() class=class aria-label=label
                        disabled=move || set.pending().get()>{verb(status)}</button>
                }
            })
            .collect_view();
        let reason_label = format!("Reason for the stream of {}", s.key_name);
        view! {
            <td>
                <ActionForm action=set attr:class="stream-change">
                    <input type="hidden" name="stream_id" value=stream_id/>
                    // Emptied each time the table is drawn again (after every change): a reason
                    // goes with the one change it was typed for.
                    <input type="text" name="reason" maxlength="255" placeholder="Reason (optional)"
                        aria-label=reason_label autocomplete="off" prop:value=""/>
                    <span class="buttons">{buttons}</span>
                </ActionForm>
            </td>
        }
    });
    view! {
        <tr data-stream=s.stream_id.clone()>
            <td class="receiver">
                <code>{s.key_name.clone()}</code>
                {s.description.clone().map(|d| view! { <div class="muted description">{d}</div> })}
                <code class="client-id" title="The client ID of the stream's deliveries">{client_id}</code>
            </td>
            <td class="delivery">
                <strong>{s.method.as_str()}</strong>
                {s.endpoint_url.clone().map(|u| view! { <div class="muted endpoint">{u}</div> })}
            </td>
            <td class="realms">{realms}</td>
            <td class="events">{events}</td>
            <td class="stream-status">
                <span class=format!("status status-{}", s.status.as_str())>{s.status.as_str()}</span>
                {set_by.map(|by| view! { <span class="set-by">{by}</span> })}
                {s.status_reason.clone().map(|r| view! { <div class="reason">{r}</div> })}
            </td>
            <td><time datetime=s.updated_at.to_rfc3339() title=exact(s.updated_at)>{relative(s.updated_at, now)}</time></td>
            {actions}
        </tr>
    }
}
