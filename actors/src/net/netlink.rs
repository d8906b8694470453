//! A small async wrapper over rtnetlink: the few link, address and route operations the
//! NetActor needs (SPEC §5), each failing with a one-line error that names the operation.
//!
//! Every call acts on the network namespace of the thread that called [`Netlink::connect`]
//! (the netlink socket is made there).

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkBridge, LinkDummy, LinkIfb, LinkUnspec, RouteMessageBuilder};

use crate::sys::owner::RunOwner;

/// The MTU our links are made with: below IPv6's minimum (1280), so that the kernel gives them
/// no IPv6 at all (no link-local address, no IPv6 sysctls to register again at each rename).
pub const NO_IPV6_MTU: u32 = 1279;

/// The most addresses [`Netlink::flush_addresses`] takes off one link.
const MAX_FLUSHED: usize = 65_536;

/// What the links we make start with: `sipp-<run_id>`.
pub const LINK_PREFIX: &str = "sipp-";

/// The owner mark put in the alias (IFLA_IFALIAS) of every link we make.
/// The link group of this process's links: a value of its own (`0x5ae0_0000` + the pid's low
/// 20 bits), so that deleting the group deletes nothing of another run.
pub fn own_group() -> u32 {
    0x5ae0_0000 | (std::process::id() & 0x000f_ffff)
}

/// The alias of our links: the run that made them, `sipplauncher pid=N start=T pidns=I`.
pub fn owner_alias(owner: &RunOwner) -> String {
    format!("sipplauncher {owner}")
}

/// The run named by an alias made by [`owner_alias`]; `None` for any other alias.
pub fn alias_owner(alias: &str) -> Option<RunOwner> {
    RunOwner::parse(alias.strip_prefix("sipplauncher ")?)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused a change: not root (no CAP_NET_ADMIN).
    #[error("netlink: Operation not permitted (run as root, or use --dry-run)")]
    NotPermitted,
    /// The netlink socket could not be made.
    #[error("netlink: {0}")]
    Connect(String),
    /// One operation failed; `errno` is the kernel's answer when it gave one.
    #[error("{op}: {reason}")]
    Op {
        op: String,
        reason: String,
        errno: Option<i32>,
    },
}

impl NetlinkError {
    fn op(op: impl Into<String>, e: rtnetlink::Error) -> Self {
        let (reason, errno) = match &e {
            rtnetlink::Error::NetlinkError(msg) => {
                let io = msg.to_io();
                (io.to_string(), io.raw_os_error())
            }
            other => (other.to_string(), None),
        };
        NetlinkError::Op {
            op: op.into(),
            reason,
            errno,
        }
    }

    /// The kernel's errno, when the kernel answered with one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::NotPermitted => Some(libc::EPERM),
            NetlinkError::Connect(_) => None,
            NetlinkError::Op { errno, .. } => *errno,
        }
    }
}

/// A link as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub up: bool,
    pub alias: Option<String>,
}

impl Link {
    fn from_message(msg: &LinkMessage) -> Self {
        let mut name = String::new();
        let mut alias = None;
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => name = n.clone(),
                LinkAttribute::IfAlias(a) if !a.is_empty() => alias = Some(a.clone()),
                _ => {}
            }
        }
        Link {
            name,
            index: msg.header.index,
            up: msg.header.flags.contains(LinkFlags::Up),
            alias,
        }
    }
}

/// The kind of link made for a test, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LinkKind {
    /// No ARP, sends nothing anywhere: what SPEC §5 asks for.
    Dummy,
    /// Where the kernel has no dummy driver but has `ifb` built in or loaded: like a dummy
    /// (NOARP; what is sent to it without a tc redirect is dropped), and the kernel
    /// unregisters 50 of them in ~35 ms where 50 bridges take ~1.1 s. Not tried when the
    /// `ifb` module is not in the kernel yet: loading it would make `ifb0` and `ifb1` in the
    /// host's namespace, which this tool must leave as it found it.
    Ifb,
    /// The last resort: a bridge with no ports (no carrier, forwards nothing).
    Bridge,
}

impl LinkKind {
    const ALL: [LinkKind; 3] = [LinkKind::Dummy, LinkKind::Ifb, LinkKind::Bridge];

    fn name(self) -> &'static str {
        match self {
            LinkKind::Dummy => "dummy",
            LinkKind::Ifb => "ifb",
            LinkKind::Bridge => "bridge",
        }
    }

    /// Whether making a link of this kind changes nothing but the link: `ifb` only when its
    /// driver is in the kernel already (see [`LinkKind::Ifb`]).
    fn usable(self) -> bool {
        self != LinkKind::Ifb || ifb_in_kernel()
    }
}

/// Whether the kernel has the `ifb` driver without loading a module: no loadable modules at
/// all (no `/proc/modules`), or `ifb` loaded, or built in (`modules.builtin`). Small reads of
/// /proc and /lib, once per run at most.
fn ifb_in_kernel() -> bool {
    let loaded = match std::fs::read_to_string("/proc/modules") {
        Ok(modules) => modules.lines().any(|l| l.starts_with("ifb ")),
        Err(e) => return e.kind() == io::ErrorKind::NotFound,
    };
    loaded
        || std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .and_then(|release| {
                std::fs::read_to_string(format!("/lib/modules/{}/modules.builtin", release.trim()))
            })
            .is_ok_and(|builtin| builtin.lines().any(|l| l.ends_with("/ifb.ko")))
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A link [`Netlink::create_link`] made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedLink {
    pub index: u32,
    pub kind: LinkKind,
    /// This call found out that `dummy` is missing and fell back to `kind` (true once per
    /// [`Netlink`] and kind): say so once.
    pub fell_back: bool,
}

/// An IPv4 address of this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostAddress {
    /// Index of the link it is on.
    pub index: u32,
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

/// A netlink connection (cheap to clone; the clones share it).
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
    /// The first [`LinkKind`] (its index in [`LinkKind::ALL`]) worth trying: the kinds
    /// before it were refused (EOPNOTSUPP) or are not usable here.
    first_kind: Arc<AtomicU8>,
}

impl Netlink {
    /// Opens the netlink socket (its connection runs as a task of the current tokio runtime)
    /// and checks that changes are permitted, so that a missing privilege is one clear line
    /// at start rather than a failure of the first test.
    pub async fn connect() -> Result<Netlink, NetlinkError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(connect_error)?;
        tokio::spawn(connection);
        let nl = Netlink {
            handle,
            first_kind: Arc::new(AtomicU8::new(0)),
        };
        nl.check_permitted().await?;
        Ok(nl)
    }

    /// The rtnetlink handle, for what this wrapper does not cover (tests make veth pairs).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// A set-link request for `lo` that changes nothing: the kernel checks CAP_NET_ADMIN for
    /// every request but a dump before it looks at the request, so this is refused exactly
    /// when our real changes would be.
    async fn check_permitted(&self) -> Result<(), NetlinkError> {
        match self
            .handle
            .link()
            .set(LinkUnspec::new_with_name("lo").build())
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => match NetlinkError::op("check netlink permission", e) {
                e if e.errno() == Some(libc::EPERM) => Err(NetlinkError::NotPermitted),
                // No `lo` (an odd namespace) still proves the request got past the check.
                e if e.errno() == Some(libc::ENODEV) => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Every link of the namespace.
    pub async fn links(&self) -> Result<Vec<Link>, NetlinkError> {
        self.handle
            .link()
            .get()
            .execute()
            .map_ok(|m| Link::from_message(&m))
            .try_collect()
            .await
            .map_err(|e| NetlinkError::op("list links", e))
    }

    /// The link called `name`, or `None` when there is none.
    pub async fn link(&self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let res: Result<Vec<Link>, _> = self
            .handle
            .link()
            .get()
            .match_name(name)
            .execute()
            .map_ok(|m| Link::from_message(&m))
            .try_collect()
            .await;
        match res {
            Ok(mut links) => Ok(links.pop()),
            Err(e) => match NetlinkError::op(format!("get link {name}"), e) {
                e if e.errno() == Some(libc::ENODEV) => Ok(None),
                e => Err(e),
            },
        }
    }

    /// Makes the link `name`: a `dummy`, else (EOPNOTSUPP: the kernel has no such driver) an
    /// `ifb` where usable, else a `bridge`; later calls start at the kind that worked. It is
    /// left down; `alias`, when given, is set as its IFLA_IFALIAS (the kernel takes the alias
    /// only on a set, not on a new link, hence the second request).
    pub async fn create_link(
        &self,
        name: &str,
        alias: Option<&str>,
    ) -> Result<CreatedLink, NetlinkError> {
        let op = || format!("add link {name}");
        let first = usize::from(self.first_kind.load(Ordering::Relaxed));
        let mut index = first;
        let kind = loop {
            let kind = LinkKind::ALL[index];
            let last = index + 1 == LinkKind::ALL.len();
            // The first kind has worked before (or is `dummy`): no need to ask again.
            if last || index == first || kind.usable() {
                let message = match kind {
                    LinkKind::Dummy => LinkDummy::new(name).mtu(NO_IPV6_MTU).build(),
                    LinkKind::Ifb => LinkIfb::new(name).mtu(NO_IPV6_MTU).build(),
                    // LinkBridge::new sets the link up; it is meant to be left down here.
                    LinkKind::Bridge => LinkBridge::new(name).mtu(NO_IPV6_MTU).down().build(),
                };
                match self.handle.link().add(message).execute().await {
                    Ok(()) => break kind,
                    Err(e) => match NetlinkError::op(op(), e) {
                        e if e.errno() == Some(libc::EOPNOTSUPP) && !last => {}
                        e => return Err(e),
                    },
                }
            }
            index += 1;
        };
        // Later calls start here; the call that moved it there says so.
        let before = self.first_kind.fetch_max(index as u8, Ordering::Relaxed);
        let fell_back = usize::from(before) < index;
        let made = async {
            let link = self.link(name).await?.ok_or_else(|| NetlinkError::Op {
                op: op(),
                reason: "the new link is not listed".into(),
                errno: None,
            })?;
            if let Some(alias) = alias {
                // The alias names the owner; the group lets Shutdown delete all our links in
                // one request (the kernel then unregisters them in one batch).
                self.handle
                    .link()
                    .set(
                        LinkUnspec::new_with_index(link.index)
                            .alias(alias)
                            .append_extra_attribute(LinkAttribute::Group(own_group()))
                            .build(),
                    )
                    .execute()
                    .await
                    .map_err(|e| NetlinkError::op(format!("set alias of link {name}"), e))?;
            }
            Ok(link.index)
        }
        .await;
        match made {
            Ok(index) => Ok(CreatedLink {
                index,
                kind,
                fell_back,
            }),
            Err(e) => {
                let _ = self.delete_link(name).await;
                Err(e)
            }
        }
    }

    /// Sets the link up (`name` only names it in errors).
    pub async fn set_up(&self, index: u32, name: &str) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| NetlinkError::op(format!("set link {name} up"), e))
    }

    /// Adds `addr/prefix` to the link (`name` only names it in errors).
    /// Renames a link; where the kernel refuses to rename a link that is up (EBUSY), it is
    /// taken down, renamed and brought up again.
    pub async fn rename_link(&self, index: u32, from: &str, to: &str) -> Result<(), NetlinkError> {
        let op = || format!("rename link {from} to {to}");
        let first = self
            .handle
            .link()
            .set(LinkUnspec::new_with_index(index).name(to).build())
            .execute()
            .await;
        match first.map_err(|e| NetlinkError::op(op(), e)) {
            Ok(()) => Ok(()),
            Err(e) if e.errno() == Some(libc::EBUSY) => {
                self.handle
                    .link()
                    .set(LinkUnspec::new_with_index(index).down().build())
                    .execute()
                    .await
                    .map_err(|e| NetlinkError::op(op(), e))?;
                self.handle
                    .link()
                    .set(LinkUnspec::new_with_index(index).name(to).build())
                    .execute()
                    .await
                    .map_err(|e| NetlinkError::op(op(), e))?;
                self.set_up(index, to).await
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes every link of [`own_group`] in one request: the kernel unregisters them in one
    /// batch: 50 ifb links in ~35 ms against ~20 ms each one by one (bridges: ~1.1 s for 50
    /// in one batch, ~40 ms each alone).
    pub async fn delete_own_group(&self) -> Result<(), NetlinkError> {
        let mut req = self.handle.link().del(0);
        req.message_mut()
            .attributes
            .push(LinkAttribute::Group(own_group()));
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = NetlinkError::op("delete the links of this run", e);
                // ENODEV: no link left in the group.
                if e.errno() == Some(libc::ENODEV) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Removes every IPv4 address of a link. Without a dump: each request names no address,
    /// and the kernel takes the link's first one, until it says there is none left.
    pub async fn flush_addresses(&self, index: u32, name: &str) -> Result<(), NetlinkError> {
        let op = || format!("remove the addresses of {name}");
        // A bound all the same: a link of ours holds a test's few addresses.
        for _ in 0..MAX_FLUSHED {
            let mut msg = AddressMessage::default();
            msg.header.family = AddressFamily::Inet;
            msg.header.index = index;
            match self.handle.address().del(msg).execute().await {
                Ok(()) => {}
                Err(e) => {
                    return match NetlinkError::op(op(), e) {
                        e if e.errno() == Some(libc::EADDRNOTAVAIL) => Ok(()),
                        e => Err(e),
                    }
                }
            }
        }
        Err(NetlinkError::Op {
            op: op(),
            reason: format!("more than {MAX_FLUSHED} addresses"),
            errno: None,
        })
    }

    pub async fn add_address(
        &self,
        index: u32,
        name: &str,
        addr: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        self.handle
            .address()
            .add(index, IpAddr::V4(addr), prefix)
            .execute()
            .await
            .map_err(|e| NetlinkError::op(format!("add address {addr}/{prefix} to {name}"), e))
    }

    /// Takes `addr/prefix` off link `index` (`name` is for the message); one request.
    pub async fn delete_address(
        &self,
        index: u32,
        name: &str,
        addr: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes
            .push(AddressAttribute::Local(IpAddr::V4(addr)));
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V4(addr)));
        self.handle
            .address()
            .del(msg)
            .execute()
            .await
            .map_err(|e| NetlinkError::op(format!("remove address {addr}/{prefix} from {name}"), e))
    }

    /// Deletes the link `name` (its addresses go with it). `Ok(false)` when there was no
    /// such link.
    pub async fn delete_link(&self, name: &str) -> Result<bool, NetlinkError> {
        let res = self
            .handle
            .link()
            .del_with_message(LinkUnspec::new_with_name(name).build())
            .execute()
            .await;
        match res {
            Ok(()) => Ok(true),
            Err(e) => match NetlinkError::op(format!("delete link {name}"), e) {
                e if e.errno() == Some(libc::ENODEV) => Ok(false),
                e => Err(e),
            },
        }
    }

    /// Every IPv4 address of the host, on every link (for a point-to-point link both ends).
    pub async fn ipv4_addresses(&self) -> Result<Vec<HostAddress>, NetlinkError> {
        // IPv4 only: an unspecified family dumps every family's addresses.
        let mut req = self.handle.address().get();
        req.message_mut().header.family = AddressFamily::Inet;
        let msgs: Vec<_> = req
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetlinkError::op("list addresses", e))?;
        let mut out = Vec::new();
        for m in msgs {
            if m.header.family != AddressFamily::Inet {
                continue;
            }
            for attr in &m.attributes {
                if let AddressAttribute::Address(IpAddr::V4(a))
                | AddressAttribute::Local(IpAddr::V4(a)) = attr
                {
                    let host = HostAddress {
                        index: m.header.index,
                        addr: *a,
                        prefix: m.header.prefix_len,
                    };
                    if !out.contains(&host) {
                        out.push(host);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The gateways of the main routing table's IPv4 routes (multipath next hops included).
    pub async fn gateways(&self) -> Result<Vec<Ipv4Addr>, NetlinkError> {
        let routes: Vec<RouteMessage> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetlinkError::op("list routes", e))?;
        let mut out = Vec::new();
        for r in routes {
            let table = r
                .attributes
                .iter()
                .find_map(|a| match a {
                    RouteAttribute::Table(t) => Some(*t),
                    _ => None,
                })
                .unwrap_or(u32::from(r.header.table));
            if r.header.address_family != AddressFamily::Inet
                || table != u32::from(RouteHeader::RT_TABLE_MAIN)
            {
                continue;
            }
            let mut add = |attrs: &[RouteAttribute]| {
                for a in attrs {
                    if let RouteAttribute::Gateway(RouteAddress::Inet(gw)) = a {
                        if !out.contains(gw) {
                            out.push(*gw);
                        }
                    }
                }
            };
            add(&r.attributes);
            for a in &r.attributes {
                if let RouteAttribute::MultiPath(hops) = a {
                    for hop in hops {
                        add(&hop.attributes);
                    }
                }
            }
        }
        Ok(out)
    }
}

fn connect_error(e: io::Error) -> NetlinkError {
    if e.raw_os_error() == Some(libc::EPERM) || e.raw_os_error() == Some(libc::EACCES) {
        NetlinkError::NotPermitted
    } else {
        NetlinkError::Connect(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_alias_round_trip() {
        let owner = RunOwner {
            pid: 4242,
            start: 77,
            pidns: 4026531836,
        };
        assert_eq!(
            owner_alias(&owner),
            "sipplauncher pid=4242 start=77 pidns=4026531836"
        );
        assert_eq!(alias_owner(&owner_alias(&owner)), Some(owner));
        assert_eq!(alias_owner("sipplauncher pid=4242"), None);
        assert_eq!(alias_owner("sipplauncher pid=x"), None);
        assert_eq!(alias_owner("something else"), None);
    }

    #[test]
    fn error_names_the_operation() {
        let e = NetlinkError::Op {
            op: "add link sipp-abcdef".into(),
            reason: io::Error::from_raw_os_error(libc::EOPNOTSUPP).to_string(),
            errno: Some(libc::EOPNOTSUPP),
        };
        assert_eq!(
            e.to_string(),
            "add link sipp-abcdef: Operation not supported (os error 95)"
        );
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn link_address_route_operations() {
        testns::in_netns("netlink ops", || {
            testns::runtime().block_on(async {
                let nl = Netlink::connect().await.unwrap();
                let made = nl
                    .create_link("sipp-tstabc", Some("sipplauncher pid=7 start=1 pidns=2"))
                    .await
                    .unwrap();
                // dummy where the kernel has it, else ifb where it is in the kernel already,
                // else a bridge; a fallback is said once.
                assert_eq!(made.fell_back, made.kind != LinkKind::Dummy);
                if made.kind != LinkKind::Dummy {
                    assert_eq!(
                        made.kind == LinkKind::Ifb,
                        ifb_in_kernel(),
                        "{:?}",
                        made.kind
                    );
                }
                nl.set_up(made.index, "sipp-tstabc").await.unwrap();
                nl.add_address(made.index, "sipp-tstabc", Ipv4Addr::new(10, 9, 0, 5), 32)
                    .await
                    .unwrap();
                let link = nl.link("sipp-tstabc").await.unwrap().unwrap();
                assert!(link.up);
                assert_eq!(
                    link.alias.as_deref(),
                    Some("sipplauncher pid=7 start=1 pidns=2")
                );
                let addrs = nl.ipv4_addresses().await.unwrap();
                assert!(addrs.contains(&HostAddress {
                    index: made.index,
                    addr: Ipv4Addr::new(10, 9, 0, 5),
                    prefix: 32
                }));
                // A second link of the same kind (after a fallback: at once that kind).
                let again = nl.create_link("sipp-tstabd", None).await.unwrap();
                assert_eq!(again.kind, made.kind);
                assert!(!again.fell_back);
                assert!(nl
                    .link("sipp-tstabd")
                    .await
                    .unwrap()
                    .unwrap()
                    .alias
                    .is_none());

                // No IPv6 on our links (the MTU is below its minimum): no link-local address,
                // no IPv6 sysctls (the kernel registers them again at each rename).
                assert!(std::path::Path::new("/proc/sys/net/ipv4/conf/sipp-tstabc").exists());
                assert!(!std::path::Path::new("/proc/sys/net/ipv6/conf/sipp-tstabc").exists());
                // A live rename keeps it up (a spare is renamed while up).
                nl.rename_link(made.index, "sipp-tstabc", "sipp-_tstab")
                    .await
                    .unwrap();
                assert!(nl.link("sipp-_tstab").await.unwrap().unwrap().up);
                nl.rename_link(made.index, "sipp-_tstab", "sipp-tstabc")
                    .await
                    .unwrap();

                // A gateway in the main table.
                nl.add_address(made.index, "sipp-tstabc", Ipv4Addr::new(10, 8, 0, 1), 24)
                    .await
                    .unwrap();
                nl.handle()
                    .route()
                    .add(
                        RouteMessageBuilder::<Ipv4Addr>::new()
                            .destination_prefix(Ipv4Addr::new(10, 77, 0, 0), 16)
                            .gateway(Ipv4Addr::new(10, 8, 0, 254))
                            .build(),
                    )
                    .execute()
                    .await
                    .unwrap();
                assert_eq!(
                    nl.gateways().await.unwrap(),
                    vec![Ipv4Addr::new(10, 8, 0, 254)]
                );

                // Flushed without a dump: every IPv4 address of that link, none of another's.
                nl.add_address(again.index, "sipp-tstabd", Ipv4Addr::new(10, 9, 0, 6), 32)
                    .await
                    .unwrap();
                nl.flush_addresses(made.index, "sipp-tstabc").await.unwrap();
                let left = nl.ipv4_addresses().await.unwrap();
                assert!(left.iter().all(|a| a.index != made.index), "{left:?}");
                assert!(left.iter().any(|a| a.addr == Ipv4Addr::new(10, 9, 0, 6)));
                // Nothing to flush is no error; no such link is one that names the operation.
                nl.flush_addresses(made.index, "sipp-tstabc").await.unwrap();
                let err = nl.flush_addresses(9999, "sipp-nolink").await.unwrap_err();
                assert!(
                    err.to_string()
                        .starts_with("remove the addresses of sipp-nolink: "),
                    "{err}"
                );

                assert!(nl.delete_link("sipp-tstabc").await.unwrap());
                assert!(!nl.delete_link("sipp-tstabc").await.unwrap());
                assert!(nl.delete_link("sipp-tstabd").await.unwrap());
                assert!(nl.link("sipp-tstabc").await.unwrap().is_none());
                let err = nl
                    .set_up(9999, "sipp-nolink")
                    .await
                    .unwrap_err()
                    .to_string();
                assert!(err.starts_with("set link sipp-nolink up: "), "{err}");
            })
        });
    }
}

/// Test helpers: private network namespaces (SPEC: nothing but loopback from the host's).
#[cfg(test)]
pub(crate) mod testns {
    use std::net::Ipv4Addr;
    use std::sync::mpsc;
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use nix::sched::{unshare, CloneFlags};
    use rtnetlink::{LinkUnspec, LinkVeth};

    use super::Netlink;

    /// Drops a capability from the calling thread's effective set (capset acts on one thread).
    pub fn drop_capability(cap: u32) {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        const VERSION_3: u32 = 0x2008_0522;
        let mut h = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut d = [Data::default(); 2];
        // SAFETY: header and two data structs as capget(2)/capset(2) want for version 3.
        let rc = unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) };
        assert_eq!(rc, 0, "capget");
        d[0].effective &= !(1 << cap);
        // SAFETY: as above.
        let rc = unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) };
        assert_eq!(rc, 0, "capset");
    }

    pub fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    pub fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Moves the calling thread into a new, empty network namespace (it goes away with the
    /// thread) and sets `lo` up there.
    fn enter_new_netns() {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        runtime().block_on(async {
            let nl = Netlink::connect().await.unwrap();
            let lo = nl.link("lo").await.unwrap().unwrap();
            nl.set_up(lo.index, "lo").await.unwrap();
        });
    }

    /// Runs `f` on a thread of its own in a new network namespace. Panics when not root: the
    /// tests that call it are ignored in builds without `--features lab`, so that one that
    /// cannot run is never counted as passed. A panic in `f` is the test's panic.
    pub fn in_netns<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
        assert!(is_root(), "{what}: needs root for a network namespace");
        let h = std::thread::spawn(move || {
            enter_new_netns();
            f()
        });
        match h.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    /// A second namespace on a thread of its own, holding the far end of a veth pair.
    pub struct PeerNs {
        stop: Option<mpsc::Sender<()>>,
        thread: Option<JoinHandle<()>>,
        /// The peer namespace's file descriptor (held open by `thread`).
        fd: std::os::fd::RawFd,
    }

    impl PeerNs {
        /// Runs `f` on a thread of its own in the peer namespace (as another machine on the
        /// wire would).
        pub fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
            let fd = self.fd;
            std::thread::spawn(move || {
                // SAFETY: the peer thread holds the descriptor open until `self` is dropped,
                // which cannot happen while this borrow of `self` lasts.
                let ns = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                nix::sched::setns(ns, CloneFlags::CLONE_NEWNET).expect("setns into the peer");
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        }
    }

    impl Drop for PeerNs {
        fn drop(&mut self) {
            drop(self.stop.take());
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// Makes the veth pair `va`/`vb` in this namespace, both up, with `va_addrs` on `va`.
    /// With `vb_away`, `vb` is moved into a new namespace of its own and gets `vb_addrs`
    /// there (a neighbour on the wire); else it stays here with `vb_addrs`.
    pub async fn veth(
        va_addrs: &[(Ipv4Addr, u8)],
        vb_addrs: &[(Ipv4Addr, u8)],
        vb_away: bool,
    ) -> Option<PeerNs> {
        let nl = Netlink::connect().await.unwrap();
        nl.handle()
            .link()
            .add(LinkVeth::new("va", "vb").build())
            .execute()
            .await
            .unwrap();
        let va = nl.link("va").await.unwrap().unwrap();
        for &(a, p) in va_addrs {
            nl.add_address(va.index, "va", a, p).await.unwrap();
        }
        nl.set_up(va.index, "va").await.unwrap();
        if !vb_away {
            let vb = nl.link("vb").await.unwrap().unwrap();
            for &(a, p) in vb_addrs {
                nl.add_address(vb.index, "vb", a, p).await.unwrap();
            }
            nl.set_up(vb.index, "vb").await.unwrap();
            return None;
        }
        let (fd_tx, fd_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let addrs = vb_addrs.to_vec();
        // Spawned from this thread: it starts in this namespace, then makes its own.
        let thread = std::thread::spawn(move || {
            enter_new_netns();
            let ns = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
            fd_tx.send(std::os::fd::AsRawFd::as_raw_fd(&ns)).unwrap();
            if go_rx.recv().is_err() {
                return;
            }
            runtime().block_on(async {
                let nl = Netlink::connect().await.unwrap();
                let vb = nl.link("vb").await.unwrap().unwrap();
                for (a, p) in addrs {
                    nl.add_address(vb.index, "vb", a, p).await.unwrap();
                }
                nl.set_up(vb.index, "vb").await.unwrap();
            });
            done_tx.send(()).unwrap();
            let _ = stop_rx.recv();
            drop(ns);
        });
        let fd = fd_rx.recv().unwrap();
        nl.handle()
            .link()
            .set(LinkUnspec::new_with_name("vb").setns_by_fd(fd).build())
            .execute()
            .await
            .unwrap();
        go_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        Some(PeerNs {
            stop: Some(stop_tx),
            thread: Some(thread),
            fd,
        })
    }

    /// Waits (2 s at most) until the named interfaces have a carrier.
    pub async fn wait_running(names: &[&str]) {
        let start = Instant::now();
        loop {
            let ifs = pnet::datalink::interfaces();
            let ok = names.iter().all(|n| {
                ifs.iter()
                    .any(|i| i.name == *n && i.is_running() && i.is_up())
            });
            if ok {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{names:?} not running"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
