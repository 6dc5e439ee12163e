//! A session's device as one readable line: an icon for its kind and "Firefox 133 on Windows",
//! with the raw user agent on hover.

use leptos::prelude::*;
use sessions::{Device, DeviceKind};

/// The outline icon of a kind of device (24×24, drawn in the text colour).
fn icon(kind: DeviceKind) -> impl IntoView {
    let path = match kind {
        DeviceKind::Desktop => "M3 4h18v12H3z M8 20h8 M12 16v4",
        DeviceKind::Phone => "M7 2h10v20H7z M11 18h2",
        DeviceKind::Tablet => "M4 3h16v18H4z M11 17h2",
        DeviceKind::Bot => "M5 8h14v11H5z M12 4v4 M9 13h.01 M15 13h.01 M2 12v4 M22 12v4",
        DeviceKind::Other => "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z M9.5 9.5a2.5 2.5 0 1 1 3.5 2.3c-.6.3-1 .9-1 1.7 M12 17h.01",
    };
    view! {
        <svg class="device-icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true"
            fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
            <path d=path/>
        </svg>
    }
}

/// The device of a session: its kind's icon and label (its kind named for screen readers), the
/// user agent as the title; "—" without a user agent.
#[component]
pub fn DeviceLabel(device: Option<Device>, user_agent: Option<String>) -> impl IntoView {
    match device {
        Some(d) => view! {
            <span class="device-label" title=user_agent.unwrap_or_default()>
                {icon(d.kind)}
                <span class="visually-hidden">{format!("{}: ", d.kind.label())}</span>
                {d.label()}
            </span>
        }
        .into_any(),
        None => view! { <span class="muted">"—"</span> }.into_any(),
    }
}
