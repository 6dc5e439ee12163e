//! The device a session signed in from: browser, its major version, operating system and kind of
//! device, read from the user agent when the session is created.
//!
//! The model (and its compact [`Device::code`]) compiles for WASM; reading a user agent
//! ([`Device::of_user_agent`], through `woothee`) is server-only. A device is a function of the
//! user agent, so stores keep no second copy of it: the embedded store derives it from the
//! interned user agent, PostgreSQL keeps the 4-byte code in a column its filters test.

use serde::{Deserialize, Serialize};

/// Declares a closed set of values with stable numeric codes (stored: never renumber), their
/// names in the API and their labels in the dashboard.
macro_rules! coded {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal, $text:literal, $label:literal;)* }) => {
        $(#[$doc])*
        #[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant = $code,)*
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            /// Every value's name in the API and its label, in code order.
            pub const CHOICES: &'static [(&'static str, &'static str)] = &[$(($text, $label),)*];

            /// The value's name in the API (its JSON and filter text).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// How the dashboard names it.
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label,)* }
            }

            /// The value of a name in the API.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)* _ => None }
            }

            fn from_code(code: u32) -> Self {
                match code { $($code => $name::$variant,)* _ => $name::Other }
            }
        }
    };
}

coded! {
    /// A browser family.
    Browser {
        Other = 0, "other", "Other browser";
        Chrome = 1, "chrome", "Chrome";
        Edge = 2, "edge", "Edge";
        Firefox = 3, "firefox", "Firefox";
        Safari = 4, "safari", "Safari";
        Opera = 5, "opera", "Opera";
        SamsungInternet = 6, "samsung_internet", "Samsung Internet";
        InternetExplorer = 7, "internet_explorer", "Internet Explorer";
    }
}

coded! {
    /// An operating system family.
    Os {
        Other = 0, "other", "other OS";
        Windows = 1, "windows", "Windows";
        Macos = 2, "macos", "macOS";
        Ios = 3, "ios", "iOS";
        Ipados = 4, "ipados", "iPadOS";
        Android = 5, "android", "Android";
        Linux = 6, "linux", "Linux";
        Chromeos = 7, "chromeos", "ChromeOS";
    }
}

coded! {
    /// What kind of device.
    DeviceKind {
        Other = 0, "other", "Other";
        Desktop = 1, "desktop", "Desktop";
        Phone = 2, "phone", "Phone";
        Tablet = 3, "tablet", "Tablet";
        Bot = 4, "bot", "Bot";
    }
}

/// The bits of [`Device::code`] that hold the browser and the OS.
pub const BROWSER_AND_OS: u32 = 0x0fff_0000;

/// The device a session signed in from, as its user agent names it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Device {
    pub browser: Browser,
    /// The browser's major version; 0 when the user agent names none.
    pub browser_version: u16,
    pub os: Os,
    #[serde(rename = "type")]
    pub kind: DeviceKind,
}

impl Device {
    /// The device in 32 bits: kind (4), browser (6), OS (6), major version (16).
    pub fn code(self) -> u32 {
        (self.kind as u32) << 28
            | (self.browser as u32) << 22
            | (self.os as u32) << 16
            | u32::from(self.browser_version)
    }

    /// The part of [`Device::code`] a count is kept by: kind, browser and OS (no version).
    pub fn counted_code(self) -> u32 {
        self.code() & 0xffff_0000
    }

    /// The part of [`Device::code`] that says which browser on which OS (a new device is a new
    /// one of these).
    pub fn browser_and_os(self) -> u32 {
        self.code() & BROWSER_AND_OS
    }

    /// The device of a [`Device::code`].
    pub fn from_code(code: u32) -> Self {
        Device {
            kind: DeviceKind::from_code(code >> 28),
            browser: Browser::from_code((code >> 22) & 0x3f),
            os: Os::from_code((code >> 16) & 0x3f),
            browser_version: (code & 0xffff) as u16,
        }
    }

    /// "Firefox 133 on Windows", "Safari 18 on iOS", "Bot".
    pub fn label(self) -> String {
        if self.kind == DeviceKind::Bot {
            return "Bot".into();
        }
        let mut out = self.browser.label().to_owned();
        if self.browser_version > 0 {
            out.push_str(&format!(" {}", self.browser_version));
        }
        if self.os != Os::Other {
            out.push_str(" on ");
            out.push_str(self.os.label());
        }
        out
    }
}

/// Which devices a filter admits: each part given must match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    pub browser: Option<Browser>,
    pub os: Option<Os>,
    pub kind: Option<DeviceKind>,
}

impl DeviceFilter {
    /// Whether the filter names no part (admits every session, with a user agent or not).
    pub fn is_empty(&self) -> bool {
        *self == DeviceFilter::default()
    }

    /// Whether a session with this device (`None`: no user agent) passes. A session without a
    /// user agent passes only the empty filter.
    pub fn admits(&self, device: Option<Device>) -> bool {
        if self.is_empty() {
            return true;
        }
        device.is_some_and(|d| {
            self.browser.is_none_or(|b| b == d.browser)
                && self.os.is_none_or(|o| o == d.os)
                && self.kind.is_none_or(|k| k == d.kind)
        })
    }

    /// Every [`Device::counted_code`] this filter admits: the counts whose sum is its count.
    pub fn counted_codes(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for &kind in DeviceKind::ALL {
            for &browser in Browser::ALL {
                for &os in Os::ALL {
                    let d = Device {
                        browser,
                        browser_version: 0,
                        os,
                        kind,
                    };
                    if self.admits(Some(d)) {
                        out.push(d.counted_code());
                    }
                }
            }
        }
        out
    }

    /// The bits of [`Device::code`] this filter tests, and the values they must have.
    pub fn mask(&self) -> (u32, u32) {
        let mut mask = 0;
        let mut value = 0;
        if let Some(k) = self.kind {
            mask |= 0xf << 28;
            value |= (k as u32) << 28;
        }
        if let Some(b) = self.browser {
            mask |= 0x3f << 22;
            value |= (b as u32) << 22;
        }
        if let Some(o) = self.os {
            mask |= 0x3f << 16;
            value |= (o as u32) << 16;
        }
        (mask, value)
    }
}

#[cfg(feature = "store")]
mod parse {
    use std::collections::HashMap;
    use std::sync::{LazyLock, RwLock};

    use super::{Browser, Device, DeviceKind, Os};

    /// Distinct user agents remembered; past this the memory starts over (a deployment sees a
    /// few thousand distinct agents; reading one costs tens of microseconds).
    const REMEMBERED: usize = 16_384;

    static PARSER: LazyLock<woothee::parser::Parser> = LazyLock::new(woothee::parser::Parser::new);
    static SEEN: LazyLock<RwLock<HashMap<Box<str>, Device>>> = LazyLock::new(Default::default);

    impl Device {
        /// The device a user agent names (remembered: each distinct agent is read once).
        pub fn of_user_agent(user_agent: &str) -> Device {
            let seen = SEEN.read().unwrap_or_else(|e| e.into_inner());
            if let Some(d) = seen.get(user_agent) {
                return *d;
            }
            drop(seen);
            let device = read(user_agent);
            let mut seen = SEEN.write().unwrap_or_else(|e| e.into_inner());
            if seen.len() >= REMEMBERED {
                seen.clear();
            }
            seen.insert(user_agent.into(), device);
            device
        }

        /// The device of a session's user agent, if it has one.
        pub fn of(user_agent: Option<&str>) -> Option<Device> {
            user_agent.map(Device::of_user_agent)
        }
    }

    fn read(user_agent: &str) -> Device {
        let Some(r) = PARSER.parse(user_agent) else {
            return Device {
                browser: Browser::Other,
                browser_version: 0,
                os: Os::Other,
                kind: DeviceKind::Other,
            };
        };
        let browser = match r.name {
            "Chrome" => Browser::Chrome,
            "Edge" => Browser::Edge,
            "Firefox" => Browser::Firefox,
            "Safari" => Browser::Safari,
            "Opera" => Browser::Opera,
            "SamsungBrowser" => Browser::SamsungInternet,
            "Internet Explorer" => Browser::InternetExplorer,
            _ => Browser::Other,
        };
        let os = match r.os {
            o if o.starts_with("Windows") => Os::Windows,
            "Mac OSX" => Os::Macos,
            "iPhone" | "iPod" => Os::Ios,
            "iPad" => Os::Ipados,
            "Android" => Os::Android,
            "Linux" => Os::Linux,
            "ChromeOS" => Os::Chromeos,
            _ => Os::Other,
        };
        let kind = match r.category {
            "pc" => DeviceKind::Desktop,
            "crawler" => DeviceKind::Bot,
            "smartphone" | "mobilephone" if os == Os::Ipados => DeviceKind::Tablet,
            // Android tablets' browsers leave "Mobile" out of the agent; phones' put it in.
            "smartphone" if os == Os::Android && !user_agent.contains("Mobile") => {
                DeviceKind::Tablet
            }
            "smartphone" | "mobilephone" => DeviceKind::Phone,
            _ => DeviceKind::Other,
        };
        let browser_version = match browser {
            Browser::Other => 0,
            _ => r
                .version
                .split('.')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        };
        Device {
            browser,
            browser_version,
            os,
            kind,
        }
    }
}

#[cfg(all(test, feature = "store"))]
mod tests {
    use super::*;

    fn label(ua: &str) -> (String, DeviceKind) {
        let d = Device::of_user_agent(ua);
        (d.label(), d.kind)
    }

    #[test]
    fn common_agents_read_as_people_name_them() {
        let cases = [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
             "Firefox 133 on Windows", DeviceKind::Desktop),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
             "Edge 131 on Windows", DeviceKind::Desktop),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
             "Safari 18 on macOS", DeviceKind::Desktop),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
             "Safari 18 on iOS", DeviceKind::Phone),
            ("Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
             "Safari 17 on iPadOS", DeviceKind::Tablet),
            ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
             "Chrome 131 on Android", DeviceKind::Phone),
            ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
             "Chrome 131 on Android", DeviceKind::Tablet),
            ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
             "Samsung Internet 26 on Android", DeviceKind::Phone),
            ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
             "Chrome 131 on ChromeOS", DeviceKind::Desktop),
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
             "Bot", DeviceKind::Bot),
            ("curl/8.5.0", "Other browser", DeviceKind::Other),
            ("", "Other browser", DeviceKind::Other),
        ];
        for (ua, want, kind) in cases {
            assert_eq!(label(ua), (want.to_owned(), kind), "{ua}");
        }
    }

    #[test]
    fn codes_round_trip_and_filters_test_their_bits() {
        for &kind in DeviceKind::ALL {
            for &browser in Browser::ALL {
                for &os in Os::ALL {
                    for browser_version in [0, 1, 133, u16::MAX] {
                        let d = Device {
                            browser,
                            browser_version,
                            os,
                            kind,
                        };
                        assert_eq!(Device::from_code(d.code()), d);
                        let f = DeviceFilter {
                            browser: Some(browser),
                            os: None,
                            kind: Some(kind),
                        };
                        let (mask, value) = f.mask();
                        assert!(f.admits(Some(d)));
                        assert_eq!(d.code() & mask, value);
                    }
                }
            }
        }
        let phone = DeviceFilter {
            kind: Some(DeviceKind::Phone),
            ..Default::default()
        };
        assert!(!phone.admits(None));
        assert!(DeviceFilter::default().admits(None));
        assert_eq!(
            phone.counted_codes().len(),
            Browser::ALL.len() * Os::ALL.len()
        );
        let firefox_windows = DeviceFilter {
            browser: Some(Browser::Firefox),
            os: Some(Os::Windows),
            kind: None,
        };
        assert_eq!(firefox_windows.counted_codes().len(), DeviceKind::ALL.len());
        assert!(Browser::CHOICES
            .iter()
            .all(|(t, _)| Browser::parse(t).is_some()));
        assert_eq!(Os::parse("beos"), None);
    }
}
