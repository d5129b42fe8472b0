//! Which interfaces the status server is reachable on, said once at
//! start-up: `listen = :8080` binds every interface, and `/status` tells
//! whoever can reach it what the host checks and how its services fare.

use std::net::{IpAddr, SocketAddr};

/// Where a listening address can be reached from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// Bound to the unspecified address (`0.0.0.0` or `::`): every
    /// interface of its family, those added later too.
    pub every_interface: bool,
    /// The interfaces with an address it answers on, with that address:
    /// `lo 127.0.0.1`, `eth0 192.0.2.7`.
    pub interfaces: Vec<String>,
}

impl Exposure {
    /// The exposure of `addr` on this host (from getifaddrs(3)).
    pub fn of(addr: SocketAddr) -> Exposure {
        let ip = addr.ip();
        let every_interface = ip.is_unspecified();
        let mut interfaces: Vec<String> = nix::ifaddrs::getifaddrs()
            .map(|all| {
                all.filter_map(|ifa| {
                    let address = ifa.address?;
                    let found: IpAddr = if let Some(v4) = address.as_sockaddr_in() {
                        IpAddr::V4(v4.ip())
                    } else {
                        IpAddr::V6(address.as_sockaddr_in6()?.ip())
                    };
                    let same_family = found.is_ipv4() == ip.is_ipv4()
                        // A `::` socket also takes IPv4 unless IPV6_V6ONLY.
                        || (ip.is_ipv6() && every_interface);
                    let answers = if every_interface {
                        same_family
                    } else {
                        found == ip
                    };
                    answers.then(|| format!("{} {found}", ifa.interface_name))
                })
                .collect()
            })
            .unwrap_or_default();
        interfaces.sort();
        interfaces.dedup();
        Exposure {
            every_interface,
            interfaces,
        }
    }

    /// The start-up line: `status server listening on http://ADDR (lo
    /// 127.0.0.1)`, or for every interface a warning text that says so and
    /// how to keep it local.
    pub fn message(&self, addr: SocketAddr) -> String {
        let on = if self.interfaces.is_empty() {
            "no interface has that address yet".to_owned()
        } else {
            self.interfaces.join(", ")
        };
        if self.every_interface {
            format!(
                "status server listening on http://{addr} on EVERY interface ({on}, and any added later): \
                 anyone who can reach this host can read /status and /metrics; \
                 set listen = 127.0.0.1:{} to keep it local",
                addr.port()
            )
        } else {
            format!("status server listening on http://{addr} ({on})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_on_lo_only_and_unspecified_is_everything() {
        let local = Exposure::of("127.0.0.1:8080".parse().unwrap());
        assert!(!local.every_interface);
        assert_eq!(local.interfaces, ["lo 127.0.0.1"]);
        assert_eq!(
            local.message("127.0.0.1:8080".parse().unwrap()),
            "status server listening on http://127.0.0.1:8080 (lo 127.0.0.1)"
        );
        let all = Exposure::of("0.0.0.0:8080".parse().unwrap());
        assert!(all.every_interface);
        assert!(
            all.interfaces.contains(&"lo 127.0.0.1".to_owned()),
            "{all:?}"
        );
        let text = all.message("0.0.0.0:8080".parse().unwrap());
        assert!(
            text.contains("EVERY interface") && text.contains("listen = 127.0.0.1:8080"),
            "{text}"
        );
    }
}
