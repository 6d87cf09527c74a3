//! [`export_connector!`]: turns a [`Connector`] into a loadable library;
//! [`connector_module!`]: the same module for a host that links the connector.
//!
//! The export macro exports abi_stable's root-module symbol with a [`ConnectorModule`]
//! whose functions forward to the [`Connector`] instance. Every forwarded call
//! runs under `catch_unwind`: a panic that crossed an `extern "C"` boundary
//! would abort the host, so panics become `PermanentFailure("connector
//! panicked")` (or an `Err` for the describing functions) instead. While a
//! call runs, a panic hook prints only the panic's location, never its
//! message, because messages built from configuration may hold secrets.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Once, OnceLock};
use std::time::Duration;

use abi_stable::library::{CheckTypeLayout, LibHeader, RootModuleResult};
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{RErr, ROk, RResult, RString, RVec};

use crate::abi::{ConnectorModule, ConnectorModuleRef, DeliveryOutcome, ABI_MAJOR, ABI_MINOR};
use crate::connector::{describe_config_error, CallContext, Connector, DeliveryRequest, Outcome};

/// The message of the outcome a panicking connector produces.
pub const PANIC_MESSAGE: &str = "connector panicked";

/// Exports a [`Connector`] as a cavra plugin.
///
/// `export_connector!(MyConnector)` builds the instance with `Default`;
/// `export_connector!(MyConnector, MyConnector::new())` with any expression,
/// evaluated once, on first use, inside `catch_unwind`. Use it once per
/// library, at the crate root of a `cdylib` crate: it exports one fixed
/// symbol, so a crate that other crates link must not use it (see
/// [`connector_module!`]).
///
/// The crate needs no dependency but `cavra-connector-api`.
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        $crate::export_connector!($connector, <$connector as ::core::default::Default>::default());
    };
    ($connector:ty, $constructor:expr) => {
        const _: () = {
            use $crate::__private as __cavra;

            struct __CavraExported;
            impl __cavra::Exported for __CavraExported {
                fn root_module() -> $crate::ConnectorModuleRef {
                    $crate::connector_module!($connector, $constructor)
                }
            }

            // What abi_stable's `#[export_root_module]` generates, spelled with
            // paths through this crate so vendors need no abi_stable dependency.
            // The one unsafe step (building the header) is `root_header`, in
            // this crate, where its soundness is argued once. The expansion
            // itself carries no `#[allow(unsafe_code)]`: rustc does not apply
            // `unsafe_code` to expansions of another crate's macro (so a plugin
            // that denies unsafe code still compiles), and an `allow` here
            // would be an error (E0453) in a plugin that forbids it.
            #[export_name = $crate::__root_module_symbol!()]
            pub static __CAVRA_ROOT_MODULE: __cavra::LibHeader = __cavra::root_header::<__CavraExported>();
        };
    };
}

/// The [`ConnectorModuleRef`] of a [`Connector`], without exporting it: the
/// same functions a plugin library exports (every call under
/// `catch_unwind`, configuration parsed from JSON), for a host that links
/// the connector into its own binary (cavra's built-in connectors).
/// Connectors linked this way can be many per binary, where
/// [`export_connector!`] is one per library.
///
/// Evaluates to the module, built on first use and the same afterwards;
/// the instance is built as with [`export_connector!`].
///
/// ```
/// # use cavra_connector_api::{serde, CallContext, Connector, Notification, Outcome};
/// # #[derive(serde::Deserialize)] #[serde(crate = "cavra_connector_api::serde")] pub struct Config {}
/// # #[derive(Default)] pub struct Pager;
/// # impl Connector for Pager {
/// #     type Config = Config;
/// #     fn name(&self) -> &str { "pager" }
/// #     fn version(&self) -> &str { "1.0.0" }
/// #     fn providers(&self) -> Vec<String> { vec!["pager".into()] }
/// #     fn deliver(&self, _: &Notification, _: &Config, _: &CallContext) -> Outcome { Outcome::from_http_status(202) }
/// # }
/// pub fn module() -> cavra_connector_api::ConnectorModuleRef {
///     cavra_connector_api::connector_module!(Pager)
/// }
/// assert_eq!(module().abi_major(), cavra_connector_api::ABI_MAJOR);
/// ```
#[macro_export]
macro_rules! connector_module {
    ($connector:ty) => {
        $crate::connector_module!($connector, <$connector as ::core::default::Default>::default())
    };
    ($connector:ty, $constructor:expr) => {{
        use $crate::__private as __cavra;

        fn __cavra_construct() -> $connector {
            $constructor
        }
        static __CAVRA_INSTANCE: __cavra::Instance<$connector> = __cavra::Instance::new(__cavra_construct);

        extern "C" fn __cavra_name() -> __cavra::RResult<__cavra::RString, __cavra::RString> {
            __cavra::name(&__CAVRA_INSTANCE)
        }
        extern "C" fn __cavra_version() -> __cavra::RResult<__cavra::RString, __cavra::RString> {
            __cavra::version(&__CAVRA_INSTANCE)
        }
        extern "C" fn __cavra_providers() -> __cavra::RResult<__cavra::RVec<__cavra::RString>, __cavra::RString> {
            __cavra::providers(&__CAVRA_INSTANCE)
        }
        extern "C" fn __cavra_validate_config(config: __cavra::RString) -> __cavra::RResult<(), __cavra::RString> {
            __cavra::validate_config(&__CAVRA_INSTANCE, config)
        }
        extern "C" fn __cavra_target(config: __cavra::RString) -> __cavra::RString {
            __cavra::target(&__CAVRA_INSTANCE, config)
        }
        extern "C" fn __cavra_deliver(request: __cavra::RString) -> $crate::DeliveryOutcome {
            __cavra::deliver(&__CAVRA_INSTANCE, request)
        }
        // Built once: each build leaks its prefix (abi_stable's modules are 'static).
        static __CAVRA_MODULE: __cavra::OnceLock<$crate::ConnectorModuleRef> = __cavra::OnceLock::new();
        *__CAVRA_MODULE.get_or_init(|| {
            __cavra::module(__cavra::Functions {
                name: __cavra_name,
                version: __cavra_version,
                providers: __cavra_providers,
                validate_config: __cavra_validate_config,
                target: __cavra_target,
                deliver: __cavra_deliver,
            })
        })
    }};
}

/// Support code for [`export_connector!`]; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use super::{deliver, module, name, providers, root_header, target, validate_config, version, Exported, Functions, Instance};
    pub use abi_stable::library::LibHeader;
    pub use abi_stable::std_types::{RResult, RString, RVec};
    pub use std::sync::OnceLock;
}

/// The module one [`export_connector!`] exports: the macro implements it for
/// a type of its own, so that [`root_header`] can name the module's loader
/// by type (a function pointer could be any function).
#[doc(hidden)]
pub trait Exported {
    /// Builds the root module (called once, by abi_stable, when the host loads the library).
    fn root_module() -> ConnectorModuleRef;
}

/// The constructor abi_stable calls for `E`'s root module: its loader
/// wrapper catches a panic in building the module.
extern "C" fn root_module_loader<E: Exported>() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(E::root_module)
}

/// The header abi_stable looks for in a plugin library, for `E`'s module,
/// its layout checked against the host's on load.
#[doc(hidden)]
// The only unsafe code of the crate: abi_stable offers no safe way to build
// a header from a constructor.
#[allow(unsafe_code)]
pub const fn root_header<E: Exported>() -> LibHeader {
    // SAFETY: `from_constructor::<M>` requires the constructor's module to be
    // a `PrefixRef` of `M`'s prefix type, cast to `ErasedPrefix`. The
    // constructor is `root_module_loader::<E>`, whose module is what
    // `__call_root_module_loader` makes of `E::root_module()`: the prefix
    // reference of a `ConnectorModuleRef`, cast to `ErasedPrefix`; and `M` is
    // `ConnectorModuleRef`. The trait bound, not the caller, fixes that type.
    unsafe { LibHeader::from_constructor::<ConnectorModuleRef>(root_module_loader::<E>, CheckTypeLayout::Yes) }
}

/// The connector instance, created on first use.
#[doc(hidden)]
pub struct Instance<C> {
    cell: OnceLock<C>,
    construct: fn() -> C,
}

impl<C> Instance<C> {
    #[doc(hidden)]
    pub const fn new(construct: fn() -> C) -> Self {
        Instance { cell: OnceLock::new(), construct }
    }

    fn get(&self) -> &C {
        self.cell.get_or_init(self.construct)
    }
}

/// The exported functions, gathered for [`module`].
#[doc(hidden)]
pub struct Functions {
    pub name: extern "C" fn() -> RResult<RString, RString>,
    pub version: extern "C" fn() -> RResult<RString, RString>,
    pub providers: extern "C" fn() -> RResult<RVec<RString>, RString>,
    pub validate_config: extern "C" fn(RString) -> RResult<(), RString>,
    pub target: extern "C" fn(RString) -> RString,
    pub deliver: extern "C" fn(RString) -> DeliveryOutcome,
}

#[doc(hidden)]
pub fn module(f: Functions) -> ConnectorModuleRef {
    ConnectorModule {
        abi_major: ABI_MAJOR,
        abi_minor: ABI_MINOR,
        name: f.name,
        version: f.version,
        providers: f.providers,
        validate_config: f.validate_config,
        target: f.target,
        deliver: f.deliver,
    }
    .leak_into_prefix()
}

#[doc(hidden)]
pub fn name<C: Connector>(instance: &Instance<C>) -> RResult<RString, RString> {
    guarded(|| instance.get().name().into()).map_or_else(|| RErr(PANIC_MESSAGE.into()), ROk)
}

#[doc(hidden)]
pub fn version<C: Connector>(instance: &Instance<C>) -> RResult<RString, RString> {
    guarded(|| instance.get().version().into()).map_or_else(|| RErr(PANIC_MESSAGE.into()), ROk)
}

#[doc(hidden)]
pub fn providers<C: Connector>(instance: &Instance<C>) -> RResult<RVec<RString>, RString> {
    guarded(|| instance.get().providers().into_iter().map(RString::from).collect()).map_or_else(|| RErr(PANIC_MESSAGE.into()), ROk)
}

#[doc(hidden)]
pub fn validate_config<C: Connector>(instance: &Instance<C>, config: RString) -> RResult<(), RString> {
    let checked = guarded(|| {
        let config = parse_config::<C>(config.as_str())?;
        instance.get().validate_config(&config).map_err(|e| e.message().to_owned())
    });
    match checked {
        Some(Ok(())) => ROk(()),
        Some(Err(message)) => RErr(message.into()),
        None => RErr(PANIC_MESSAGE.into()),
    }
}

#[doc(hidden)]
pub fn target<C: Connector>(instance: &Instance<C>, config: RString) -> RString {
    let target = guarded(|| {
        let connector = instance.get();
        match parse_config::<C>(config.as_str()) {
            Ok(config) => connector.target(&config),
            Err(_) => connector.name().to_owned(),
        }
    });
    target.unwrap_or_default().into()
}

#[doc(hidden)]
pub fn deliver<C: Connector>(instance: &Instance<C>, request: RString) -> DeliveryOutcome {
    let outcome = guarded(|| {
        let request: DeliveryRequest = match serde_json::from_str(request.as_str()) {
            Ok(request) => request,
            Err(e) => return Outcome::permanent(None, format!("malformed delivery request from the host: {}", describe_config_error(&e))),
        };
        let connector = instance.get();
        let config = match parse_config_value::<C>(request.config) {
            Ok(config) => config,
            Err(message) => return Outcome::permanent(None, message),
        };
        if let Err(e) = connector.validate_config(&config) {
            return Outcome::permanent(None, format!("invalid configuration: {e}"));
        }
        let ctx = CallContext { attempt: request.attempt, timeout: Duration::from_millis(request.timeout_ms) };
        connector.deliver(&request.notification, &config, &ctx)
    });
    outcome.unwrap_or_else(|| Outcome::permanent(None, PANIC_MESSAGE)).into()
}

fn parse_config<C: Connector>(json: &str) -> Result<C::Config, String> {
    let value = serde_json::from_str(json).map_err(|e| describe_config_error(&e))?;
    parse_config_value::<C>(value)
}

fn parse_config_value<C: Connector>(value: serde_json::Value) -> Result<C::Config, String> {
    // An absent section arrives as `null`; treat it as an empty object so that
    // connectors whose fields all have defaults need no section at all.
    let value = match value {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        value => value,
    };
    serde_json::from_value(value).map_err(|e| describe_config_error(&e))
}

thread_local! {
    static IN_CONNECTOR_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, turning a panic into `None`.
fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    install_quiet_panic_hook();
    let was = IN_CONNECTOR_CALL.with(|flag| flag.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f)).ok();
    IN_CONNECTOR_CALL.with(|flag| flag.set(was));
    result
}

/// Chains a hook that, during connector calls only, prints the location of a
/// panic but not its payload. Outside connector calls the previous hook runs,
/// so a host that links a connector as an ordinary crate keeps its behaviour.
fn install_quiet_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_CONNECTOR_CALL.with(Cell::get) {
                let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                eprintln!("cavra connector panicked{location} (message withheld: it may contain configuration)");
            } else {
                previous(info);
            }
        }));
    });
}
