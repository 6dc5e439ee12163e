//! The top bar.

use leptos::form::ActionForm;
use leptos::prelude::*;

use crate::server_fns::auth::SignOut;
use crate::SignedIn;

/// Product name, navigation and who is signed in. Carries `data-hydrated` so tests can tell when
/// the page is live.
#[component]
pub fn Header() -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let SignedIn(admin) = expect_context();
    let sign_out = ServerAction::<SignOut>::new();
    view! {
        <header class="topbar" data-hydrated=move || hydrated.get().to_string()>
            <a class="brand" href="/">"Sessions"</a>
            <nav aria-label="Main">
                <a href="/">"Sessions"</a>
                <a href="/overview">"Overview"</a>
                <a href="/clients">"Clients"</a>
                <a href="/deliveries">"Deliveries"</a>
                <a href="/audit">"Audit"</a>
                <a href="/api-keys">"API keys"</a>
                <a href="/api/v1/docs" rel="external">"API"</a>
            </nav>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match admin.await.1 {
                        Ok(Some(a)) => view! {
                            <div class="who">
                                <span>"Signed in as " <strong>{a.username}</strong></span>
                                <ActionForm action=sign_out>
                                    <button type="submit">"Sign out"</button>
                                </ActionForm>
                            </div>
                        }.into_any(),
                        _ => ().into_any(),
                    }
                })}
            </Transition>
        </header>
    }
}
