//! "12 new sessions since this page loaded — Refresh": the realm's count, pushed by the server
//! through server-sent events, compared with the count the page was rendered with.

use leptos::prelude::*;

/// Shows how the realm's session count moved since the page loaded, with a refresh button.
#[component]
pub fn LiveBanner(realm: String, baseline: u64, on_refresh: Callback<()>) -> impl IntoView {
    let live = RwSignal::new(None::<u64>);
    #[cfg(feature = "hydrate")]
    listen(&realm, live);
    #[cfg(not(feature = "hydrate"))]
    let _ = realm;
    move || {
        let now = live.get()?;
        let change = now as i64 - baseline as i64;
        let n = change.unsigned_abs();
        let s = if n == 1 { "" } else { "s" };
        let text = match change {
            0 => return None,
            c if c > 0 => format!("{n} new session{s} since this page loaded"),
            _ => format!("{n} session{s} ended since this page loaded"),
        };
        // A polite live region, not a `status`: that role is kept for the outcome of what the
        // administrator just did, which this may coincide with (their own revocation is pushed
        // here before the page reloads).
        Some(view! {
            <div class="notice live" aria-live="polite">
                {text} " — "
                <button type="button" class="link" on:click=move |_| on_refresh.run(())>"Refresh"</button>
            </div>
        })
    }
}

/// Subscribes to the realm's count events until the component goes away.
#[cfg(feature = "hydrate")]
fn listen(realm: &str, live: RwSignal<Option<u64>>) {
    use futures::StreamExt;
    use gloo_net::eventsource::futures::EventSource;

    let Ok(mut source) = EventSource::new(&format!("/live/realms/{realm}")) else {
        return;
    };
    let Ok(mut counts) = source.subscribe("count") else {
        return;
    };
    leptos::task::spawn_local(async move {
        while let Some(Ok((_, message))) = counts.next().await {
            let Some(n) = message.data().as_string().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if live.try_set(Some(n)).is_some() {
                break;
            }
        }
    });
    let source = send_wrapper::SendWrapper::new(source);
    on_cleanup(move || source.take().close());
}
