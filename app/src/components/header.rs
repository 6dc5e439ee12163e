//! The top bar.

use leptos::prelude::*;

/// Product name and navigation. Carries `data-hydrated` so tests can tell when the page is live.
#[component]
pub fn Header() -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <header class="topbar" data-hydrated=move || hydrated.get().to_string()>
            <a class="brand" href="/">"Sessions"</a>
            <nav aria-label="Main">
                <a href="/">"Sessions"</a>
                <a href="/api/v1/docs">"API"</a>
            </nav>
        </header>
    }
}
