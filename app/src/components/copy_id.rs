//! An id shown cut short, whole on hover, with a button that copies it whole.

use leptos::prelude::*;

use crate::format::short_id;

/// `id` as [`short_id`] shows it, linked to `href` when given, with the whole id as the title,
/// and a button that copies the whole id to the clipboard. `what` names the id for the button's
/// accessible label ("session ID").
#[component]
pub fn CopyId(
    id: String,
    #[prop(optional, into)] href: Option<String>,
    #[prop(default = "ID")] what: &'static str,
) -> impl IntoView {
    let short = short_id(&id);
    let label = format!("Copy {what} {short}");
    let shown = match href {
        Some(href) => {
            view! { <a class="id" href=href title=id.clone()><code>{short}</code></a> }.into_any()
        }
        None => view! { <code class="id" title=id.clone()>{short}</code> }.into_any(),
    };
    // Type-erased: the tables around it are deep enough already for the compiler's limits.
    view! {
        <span class="copy-id">
            {shown}
            <CopyButton text=id label/>
        </span>
    }
    .into_any()
}

/// What the copy button last did (set in the browser only).
#[derive(Clone, Copy, PartialEq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum Copied {
    Not,
    Yes,
    Failed,
}

/// A small button that copies `text` to the clipboard, and says so for a moment.
#[component]
fn CopyButton(text: String, label: String) -> impl IntoView {
    let copied = RwSignal::new(Copied::Not);
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let text = text.clone();
            leptos::task::spawn_local(async move {
                let outcome = if clipboard::write(&text).await {
                    Copied::Yes
                } else {
                    Copied::Failed
                };
                if copied.try_set(outcome).is_some() {
                    return;
                }
                set_timeout(
                    move || {
                        let _ = copied.try_set(Copied::Not);
                    },
                    std::time::Duration::from_millis(1500),
                );
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
    };
    let title = move || match copied.get() {
        Copied::Not => "Copy the whole ID",
        Copied::Yes => "Copied",
        Copied::Failed => "The browser did not allow copying",
    };
    view! {
        <button type="button" class="copy" aria-label=label title=title on:click=copy>
            {move || match copied.get() {
                Copied::Not => view! {
                    <svg class="icon" viewBox="0 0 16 16" aria-hidden="true">
                        <rect x="5.5" y="5.5" width="8" height="8" rx="1.5"/>
                        <path d="M10.5 5.5v-2a1 1 0 0 0-1-1h-6a1 1 0 0 0-1 1v6a1 1 0 0 0 1 1h2"/>
                    </svg>
                }
                .into_any(),
                Copied::Yes => view! {
                    <svg class="icon" viewBox="0 0 16 16" aria-hidden="true">
                        <path d="M3 8.5l3 3 7-7"/>
                    </svg>
                }
                .into_any(),
                Copied::Failed => view! {
                    <svg class="icon" viewBox="0 0 16 16" aria-hidden="true">
                        <path d="M4 4l8 8M12 4l-8 8"/>
                    </svg>
                }
                .into_any(),
            }}
        </button>
        <span class="visually-hidden" aria-live="polite">{move || match copied.get() {
            Copied::Not => "",
            Copied::Yes => "Copied",
            Copied::Failed => "Could not copy",
        }}</span>
    }
    .into_any()
}

/// The browser's clipboard.
#[cfg(feature = "hydrate")]
mod clipboard {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        /// `navigator.clipboard.writeText`; throws where there is no clipboard (a page not
        /// served securely), which `catch` turns into an error.
        #[wasm_bindgen(catch, js_namespace = ["navigator", "clipboard"], js_name = writeText)]
        fn write_text(text: &str) -> Result<js_sys::Promise, JsValue>;
    }

    /// Whether `text` was copied.
    pub async fn write(text: &str) -> bool {
        match write_text(text) {
            Ok(done) => done.await.is_ok(),
            Err(_) => false,
        }
    }
}
