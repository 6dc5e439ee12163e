//! The top bar.

use leptos::form::ActionForm;
use leptos::prelude::*;

use sessions::Permission;

use crate::components::permitted::Permitted;
use crate::server_fns::auth::SignOut;
use crate::SignedIn;

/// Product name, navigation (the admin-only pages only for role admin) and who is signed in,
/// with their role. Carries `data-hydrated` so tests can tell when the page is live.
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
                <a href="/ended">"Ended"</a>
                <a href="/overview">"Overview"</a>
                <a href="/clients">"Clients"</a>
                <a href="/deliveries">"Deliveries"</a>
                <a href="/signals">"Signals"</a>
                <a href="/audit">"Audit"</a>
                <Permitted permission=Permission::Administer>
                    <a href="/api-keys">"API keys"</a>
                    <a href="/admins">"Administrators"</a>
                </Permitted>
                <a href="/api/v1/docs" rel="external">"API"</a>
            </nav>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match admin.await.1 {
                        Ok(Some(a)) => view! {
                            <div class="who">
                                <span>"Signed in as " <strong class="username">{a.username}</strong></span>
                                <span class="badge role" title="Your role">{a.role.as_str()}</span>
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
