//! Which service a request goes to: the one decision that both the requests and
//! `status.network` read, so that the network a host is shown is where the next request
//! goes.
//!
//! The proxy is *down* from the moment a request to it is refused or not answered in time.
//! While it is down, requests go to Global KSN when `use_ksn_if_proxy_unavailable` allows.
//! The task finds the proxy answering again by trying it: the first request once
//! `PROXY_PROBE_MS` of host time have passed since it was found down, and the first after a
//! policy push or a start, goes to the proxy again. When falling back is not allowed there
//! is nowhere else to ask, so every request tries the proxy (and is answered `unavailable`
//! while it is down).

use std::sync::atomic::{AtomicU64, Ordering};

use plugin_api::Service;

/// How long the proxy is left alone after it was found down, in host milliseconds.
pub const PROXY_PROBE_MS: u64 = 60_000;

/// How requests reach KSN, by the settings in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Routing {
    pub private_ksn: bool,
    pub use_proxy: bool,
    pub fallback: bool,
}

/// Where one request goes: `first`, then `fallback` if `first` refuses the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub first: Service,
    pub fallback: Option<Service>,
}

impl Routing {
    /// The route of the next request, given when the proxy was found down.
    pub fn route(self, proxy: &ProxyHealth, now_ms: u64) -> Route {
        let only = |first| Route {
            first,
            fallback: None,
        };
        if self.private_ksn {
            return only(Service::PRIVATE);
        }
        if !self.use_proxy {
            return only(Service::GLOBAL);
        }
        if !self.fallback {
            return only(Service::PROXY);
        }
        if proxy.may_try(now_ms) {
            return Route {
                first: Service::PROXY,
                fallback: Some(Service::GLOBAL),
            };
        }
        only(Service::GLOBAL)
    }

    /// Every service a request may reach in this mode and with these settings: the egress
    /// rule. Nothing reaches Global KSN or the proxy in Private KSN mode.
    pub fn may_reach(self, service: Service) -> bool {
        match service {
            Service::PRIVATE => self.private_ksn,
            Service::PROXY => !self.private_ksn && self.use_proxy,
            Service::GLOBAL => !self.private_ksn && (!self.use_proxy || self.fallback),
            _ => false,
        }
    }
}

/// When the proxy was last found down (`u64::MAX`: it was not, or it answered since).
#[derive(Debug)]
pub struct ProxyHealth(AtomicU64);

impl Default for ProxyHealth {
    fn default() -> Self {
        Self(AtomicU64::new(u64::MAX))
    }
}

impl ProxyHealth {
    fn may_try(&self, now_ms: u64) -> bool {
        let down_since = self.0.load(Ordering::Relaxed);
        down_since == u64::MAX || now_ms >= down_since.saturating_add(PROXY_PROBE_MS)
    }

    pub fn down(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::Relaxed);
    }

    /// The proxy answered, or a policy push or a start asks that it be tried again.
    pub fn up(&self) {
        self.0.store(u64::MAX, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GLOBAL_VIA_PROXY: Routing = Routing {
        private_ksn: false,
        use_proxy: true,
        fallback: true,
    };

    #[test]
    fn private_ksn_routes_only_to_private_ksn() {
        let routing = Routing {
            private_ksn: true,
            ..GLOBAL_VIA_PROXY
        };
        let proxy = ProxyHealth::default();
        assert_eq!(routing.route(&proxy, 0).first, Service::PRIVATE);
        assert_eq!(routing.route(&proxy, 0).fallback, None);
        assert!(routing.may_reach(Service::PRIVATE));
        assert!(!routing.may_reach(Service::PROXY) && !routing.may_reach(Service::GLOBAL));
    }

    #[test]
    fn a_down_proxy_is_left_alone_for_a_minute_then_tried_again() {
        let proxy = ProxyHealth::default();
        assert_eq!(
            GLOBAL_VIA_PROXY.route(&proxy, 0),
            Route {
                first: Service::PROXY,
                fallback: Some(Service::GLOBAL)
            }
        );
        proxy.down(1_000);
        assert_eq!(GLOBAL_VIA_PROXY.route(&proxy, 1_000).first, Service::GLOBAL);
        assert_eq!(
            GLOBAL_VIA_PROXY.route(&proxy, 60_999).first,
            Service::GLOBAL
        );
        assert_eq!(GLOBAL_VIA_PROXY.route(&proxy, 61_000).first, Service::PROXY);
        let no_fallback = Routing {
            fallback: false,
            ..GLOBAL_VIA_PROXY
        };
        assert_eq!(
            no_fallback.route(&proxy, 2_000),
            Route {
                first: Service::PROXY,
                fallback: None
            },
            "nowhere else to ask: the proxy is tried every time"
        );
        assert!(!no_fallback.may_reach(Service::GLOBAL));
        proxy.up();
        assert_eq!(GLOBAL_VIA_PROXY.route(&proxy, 2_000).first, Service::PROXY);
    }

    #[test]
    fn without_the_proxy_requests_go_straight_to_global_ksn() {
        let direct = Routing {
            use_proxy: false,
            ..GLOBAL_VIA_PROXY
        };
        let proxy = ProxyHealth::default();
        proxy.down(0);
        assert_eq!(direct.route(&proxy, 0).first, Service::GLOBAL);
        assert!(!direct.may_reach(Service::PROXY));
    }
}
