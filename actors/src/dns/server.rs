//! The DNS server's glue to hickory: the sockets it serves on, and the request handler that
//! answers from the shared [`Zones`] and says so in the log of the run whose records answered.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_server::proto::rr::{DNSClass, Name, Record};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use slog::{debug, Logger};

use super::zones::{Answer, Zones};
use super::DnsError;
use crate::core::plan::RunId;

/// How often a free port for UDP and TCP at once is looked for (port 0: the TCP port of the UDP
/// socket's port may be taken).
const FREE_PORT_TRIES: usize = 8;

/// What the request handler reads: the records served, and the log of each run that has some.
#[derive(Default)]
pub(super) struct Served {
    pub zones: Zones,
    pub logs: HashMap<RunId, Logger>,
}

/// Binds UDP and TCP on `addr`, non-blocking. Port 0: one free port for both.
pub(super) fn bind(
    addr: SocketAddr,
) -> Result<(std::net::UdpSocket, std::net::TcpListener), DnsError> {
    let port = addr.port();
    let mut tries = 0;
    let (udp, tcp) = loop {
        tries += 1;
        let udp = std::net::UdpSocket::bind(addr).map_err(|e| DnsError::bind("UDP", port, &e))?;
        let at = match udp.local_addr() {
            Ok(a) => a,
            Err(e) => return Err(DnsError::bind("UDP", port, &e)),
        };
        match std::net::TcpListener::bind(at) {
            Ok(tcp) => break (udp, tcp),
            Err(e)
                if port == 0 && e.kind() == io::ErrorKind::AddrInUse && tries < FREE_PORT_TRIES =>
            {
                continue
            }
            Err(e) => return Err(DnsError::bind("TCP", at.port(), &e)),
        }
    };
    let setup_err = |proto, e: io::Error| DnsError::Bind {
        proto,
        port,
        reason: e.to_string(),
        errno: e.raw_os_error(),
    };
    udp.set_nonblocking(true).map_err(|e| setup_err("UDP", e))?;
    tcp.set_nonblocking(true).map_err(|e| setup_err("TCP", e))?;
    Ok((udp, tcp))
}

/// Answers from the shared [`Served`]. The lock is held only to copy an answer out.
pub(super) struct ZoneHandler {
    pub served: Arc<RwLock<Served>>,
    /// The general log (REFUSED questions are told there).
    pub log: Logger,
}

/// The response to one request.
struct Decision {
    code: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    /// The authority section: the SOA of a negative answer.
    authority: Vec<Record>,
}

impl Decision {
    fn bare(code: ResponseCode) -> Self {
        Decision {
            code,
            authoritative: false,
            answers: Vec::new(),
            authority: Vec::new(),
        }
    }
}

impl ZoneHandler {
    fn decide(&self, request: &Request) -> Decision {
        if request.metadata.message_type != MessageType::Query {
            return Decision::bare(ResponseCode::FormErr);
        }
        if request.metadata.op_code != OpCode::Query {
            return Decision::bare(ResponseCode::NotImp);
        }
        let [query] = request.queries.queries() else {
            return Decision::bare(ResponseCode::FormErr);
        };
        if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY) {
            return Decision::bare(ResponseCode::Refused);
        }
        let name = Name::from(query.name());
        let qtype = query.query_type();
        let served = self.served.read().unwrap_or_else(PoisonError::into_inner);
        let a = match served.zones.answer(&name, qtype) {
            Answer::Refused => {
                debug!(
                    self.log,
                    "dns: {name} {qtype}: REFUSED, under no served domain"
                );
                return Decision::bare(ResponseCode::Refused);
            }
            Answer::Authoritative(a) => a,
        };
        let code = if a.nxdomain {
            ResponseCode::NXDomain
        } else {
            ResponseCode::NoError
        };
        // As the original did ("found zone for ..."): the question, in the log of each run
        // whose records answered it.
        let outcome = match (a.nxdomain, a.answers.len()) {
            (true, _) => "NXDOMAIN".to_string(),
            (false, 0) => "NODATA".to_string(),
            (false, n) => format!("{n} records"),
        };
        for run in &a.runs {
            if let Some(log) = served.logs.get(run) {
                debug!(log, "dns: {name} {qtype}: {outcome}");
            }
        }
        Decision {
            code,
            authoritative: true,
            answers: a.answers,
            authority: a.authority.into_iter().collect(),
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for ZoneHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let d = self.decide(request);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = d.code;
        metadata.authoritative = d.authoritative;
        metadata.recursion_available = false;
        // A client that speaks EDNS gets EDNS back (RFC 6891), with its buffer size.
        let edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512));
            e.set_version(0);
            e
        });
        let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
            metadata,
            d.answers.iter(),
            std::iter::empty(),
            d.authority.iter(),
            std::iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}
