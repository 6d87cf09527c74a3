//! The binary interface between the host and a connector library.
//!
//! Everything here crosses a dynamic-library boundary, so it uses `abi_stable`
//! types only (`RString`, `RVec`, `ROption`, `RResult`) and owned data: the
//! host never borrows memory owned by the plugin, nor the other way round.
//! Rich data (notifications, configuration) crosses as JSON text, which keeps
//! the binary layout small and lets both sides add JSON fields without an ABI
//! change.
//!
//! # Compatibility rules
//!
//! * [`ConnectorModule`] is an abi_stable *prefix type*: a host built against
//!   ABI `1.N` loads a plugin built against `1.M` for any `M`. Fields added in a
//!   later minor version go **after** the `#[sabi(last_prefix_field)]` field;
//!   their accessors on [`ConnectorModuleRef`] return `Option`, `None` when an
//!   older plugin lacks them.
//! * A different ABI major is refused at load time by abi_stable's version check
//!   (the root module's [`VERSION_STRINGS`](abi_stable::library::RootModule::VERSION_STRINGS)
//!   are [`ABI_VERSION`]); the host also checks the [`ConnectorModule::abi_major`]
//!   field as a second line of defence.
//! * Changing, reordering or removing an existing field, or adding a variant to
//!   [`DeliveryOutcome`], is a new ABI major.

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    sabi_types::VersionStrings,
    std_types::{ROption, RResult, RString, RVec},
    StableAbi,
};

/// The connector ABI major version this crate speaks. A host refuses plugins
/// with another major.
#[cfg(not(feature = "__conformance-next-abi"))]
pub const ABI_MAJOR: u32 = 1;
/// The connector ABI major version this crate speaks (test-only next major).
#[cfg(feature = "__conformance-next-abi")]
pub const ABI_MAJOR: u32 = 2;

/// The connector ABI minor version: grows when fields are appended to
/// [`ConnectorModule`]. Any minor of the same major is accepted.
pub const ABI_MINOR: u32 = 0;

/// `ABI_MAJOR.ABI_MINOR.0` as text; the version abi_stable compares at load time.
#[cfg(not(feature = "__conformance-next-abi"))]
pub const ABI_VERSION: &str = "1.0.0";
/// `ABI_MAJOR.ABI_MINOR.0` as text (test-only next major).
#[cfg(feature = "__conformance-next-abi")]
pub const ABI_VERSION: &str = "2.0.0";

/// The result of one delivery attempt, as it crosses the ABI.
///
/// `status_code` is the provider's protocol status when there was one (an
/// HTTP status, an SMTP reply code), `RNone` otherwise (connection refused,
/// timeout, local file). `message` must be public-safe: no URL path or query,
/// no header value, no token, no configuration value. The host scrubs it again
/// before recording it, but a plugin must not rely on that.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The provider accepted the notification.
    Delivered {
        /// Provider status, e.g. `200`.
        status_code: ROption<u16>,
    },
    /// The attempt failed in a way that may succeed later (HTTP 429 or 5xx,
    /// connection error, timeout); the host retries with backoff.
    RetryableFailure {
        /// Provider status, if any.
        status_code: ROption<u16>,
        /// Public-safe description.
        message: RString,
    },
    /// The attempt failed and retrying will not help (HTTP 4xx, invalid
    /// configuration, a panic in the connector); the host does not retry.
    PermanentFailure {
        /// Provider status, if any.
        status_code: ROption<u16>,
        /// Public-safe description.
        message: RString,
    },
}

/// The root module every connector library exports (see
/// [`export_connector!`](crate::export_connector), which builds it).
///
/// All functions are `extern "C"` and must never unwind: the export macro
/// wraps each call in `catch_unwind`. Functions that describe the plugin are
/// fallible so that a panic there is reported instead of aborting the host.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ConnectorModuleRef, prefix_fields = ConnectorModulePrefix)))]
pub struct ConnectorModule {
    /// [`ABI_MAJOR`] of the `cavra-connector-api` the plugin was built with.
    pub abi_major: u32,
    /// [`ABI_MINOR`] of the `cavra-connector-api` the plugin was built with.
    pub abi_minor: u32,
    /// The plugin's name, e.g. `"slack"`.
    pub name: extern "C" fn() -> RResult<RString, RString>,
    /// The plugin's own version, e.g. `"0.1.0"`.
    pub version: extern "C" fn() -> RResult<RString, RString>,
    /// The providers it serves (the `provider` of route decisions), e.g. `["slack"]`.
    pub providers: extern "C" fn() -> RResult<RVec<RString>, RString>,
    /// Checks a configuration section (JSON object text). The error is public-safe.
    pub validate_config: extern "C" fn(config_json: RString) -> RResult<(), RString>,
    /// A public-safe description of where deliveries go for this configuration
    /// (for URLs: scheme and host only).
    pub target: extern "C" fn(config_json: RString) -> RString,
    /// Delivers one notification: `request_json` is a [`DeliveryRequest`](crate::DeliveryRequest)
    /// (notification + this plugin's configuration section + attempt context).
    #[sabi(last_prefix_field)]
    pub deliver: extern "C" fn(request_json: RString) -> DeliveryOutcome,
}

impl RootModule for ConnectorModuleRef {
    declare_root_module_statics! {ConnectorModuleRef}
    const BASE_NAME: &'static str = "cavra_connector";
    const NAME: &'static str = "cavra connector";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(ABI_VERSION);
}

/// The symbol name abi_stable 0.11 looks up in a library
/// (`abi_stable::library::ROOT_MODULE_LOADER_NAME`). The export macro needs it
/// as a literal so that a vendor crate does not have to depend on abi_stable
/// itself; the assertion below fails the build if abi_stable ever changes it.
#[doc(hidden)]
#[macro_export]
macro_rules! __root_module_symbol {
    () => {
        "_1as_0lib_1header_0root_bmodule_bloader"
    };
}

const _: () = assert!(
    const_str_eq(abi_stable::library::ROOT_MODULE_LOADER_NAME, __root_module_symbol!()),
    "abi_stable changed its root module symbol name; update __root_module_symbol!"
);

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
