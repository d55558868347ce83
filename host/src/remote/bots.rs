//! The Remote Workers API (`google.devtools.remoteworkers.v1test2`), the
//! protocol BuildGrid's bots speak: the messages `cairn worker` needs,
//! written out with prost (the generated REAPI crate does not include
//! them), and a client for the `Bots` service's two calls.

use bazel_remote_apis::google::{protobuf, rpc};
use tonic::codegen::http::uri::PathAndQuery;

/// A bot's session with the server: who it is, what it can do, its leases.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BotSession {
    /// Assigned by the server: `{instance}/{uuid}`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The bot's own id (unique per bot process).
    #[prost(string, tag = "2")]
    pub bot_id: String,
    /// Its health.
    #[prost(enumeration = "BotStatus", tag = "3")]
    pub status: i32,
    /// What it offers.
    #[prost(message, optional, tag = "4")]
    pub worker: Option<Worker>,
    /// Its work.
    #[prost(message, repeated, tag = "5")]
    pub leases: Vec<Lease>,
    /// When the server forgets a silent bot.
    #[prost(message, optional, tag = "6")]
    pub expire_time: Option<protobuf::Timestamp>,
    /// Bumped by the server whenever the leases change; sent back as received.
    #[prost(string, tag = "7")]
    pub version: String,
}

/// One unit of work: an `Action` to execute, and its result once done.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Lease {
    /// Deprecated.
    #[prost(string, tag = "1")]
    pub assignment: String,
    /// Where it stands.
    #[prost(enumeration = "LeaseState", tag = "2")]
    pub state: i32,
    /// How it went, when completed.
    #[prost(message, optional, tag = "3")]
    pub status: Option<rpc::Status>,
    /// What the work needs of a worker.
    #[prost(message, optional, tag = "4")]
    pub requirements: Option<Worker>,
    /// When the lease lapses.
    #[prost(message, optional, tag = "5")]
    pub expire_time: Option<protobuf::Timestamp>,
    /// Deprecated.
    #[prost(message, optional, tag = "6")]
    pub inline_assignment: Option<protobuf::Any>,
    /// The lease's id (the server's job name).
    #[prost(string, tag = "7")]
    pub id: String,
    /// The work: an `Any` holding the REAPI `Action`.
    #[prost(message, optional, tag = "8")]
    pub payload: Option<protobuf::Any>,
    /// The outcome: an `Any` holding the REAPI `ActionResult`.
    #[prost(message, optional, tag = "9")]
    pub result: Option<protobuf::Any>,
}

/// A bot's devices and properties.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Worker {
    /// Its devices; BuildGrid matches platform properties against the first.
    #[prost(message, repeated, tag = "1")]
    pub devices: Vec<Device>,
    /// Worker properties.
    #[prost(message, repeated, tag = "2")]
    pub properties: Vec<Property>,
    /// Configuration (`capacity`: how many leases at once).
    #[prost(message, repeated, tag = "3")]
    pub configs: Vec<Property>,
}

/// A device of a worker.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Device {
    /// Its name.
    #[prost(string, tag = "1")]
    pub handle: String,
    /// Its properties: the platform it offers.
    #[prost(message, repeated, tag = "2")]
    pub properties: Vec<Property>,
}

/// A key and a value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Property {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `CreateBotSession`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateBotSessionRequest {
    /// The instance.
    #[prost(string, tag = "1")]
    pub parent: String,
    /// The new session.
    #[prost(message, optional, tag = "2")]
    pub bot_session: Option<BotSession>,
}

/// `UpdateBotSession`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateBotSessionRequest {
    /// The session's name (as the server gave it).
    #[prost(string, tag = "1")]
    pub name: String,
    /// The session as the bot sees it.
    #[prost(message, optional, tag = "2")]
    pub bot_session: Option<BotSession>,
    /// Unused.
    #[prost(message, optional, tag = "3")]
    pub update_mask: Option<FieldMask>,
}

/// `google.protobuf.FieldMask`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FieldMask {
    /// Field paths.
    #[prost(string, repeated, tag = "1")]
    pub paths: Vec<String>,
}

/// A bot's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum BotStatus {
    /// Unset.
    Unspecified = 0,
    /// Ready for work.
    Ok = 1,
    /// Not.
    Unhealthy = 2,
    /// Restarting its host.
    HostRebooting = 3,
    /// Going away.
    BotTerminating = 4,
}

/// Where a lease stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LeaseState {
    /// Unset.
    Unspecified = 0,
    /// Offered, not yet taken.
    Pending = 1,
    /// Being worked on.
    Active = 2,
    /// Done (with a status and a result).
    Completed = 4,
    /// Withdrawn.
    Cancelled = 5,
}

/// The `Bots` service's calls.
#[derive(Debug, Clone)]
pub struct BotsClient {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
}

impl BotsClient {
    /// A client over a channel.
    pub fn new(channel: tonic::transport::Channel) -> Self {
        BotsClient {
            grpc: tonic::client::Grpc::new(channel),
        }
    }

    async fn unary<Req: prost::Message + 'static>(
        &mut self,
        request: tonic::Request<Req>,
        path: &'static str,
    ) -> Result<tonic::Response<BotSession>, tonic::Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("the channel is not ready: {e}")))?;
        self.grpc
            .unary(
                request,
                PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::default(),
            )
            .await
    }

    /// Opens a session.
    pub async fn create_bot_session(
        &mut self,
        request: tonic::Request<CreateBotSessionRequest>,
    ) -> Result<tonic::Response<BotSession>, tonic::Status> {
        self.unary(
            request,
            "/google.devtools.remoteworkers.v1test2.Bots/CreateBotSession",
        )
        .await
    }

    /// Reports the session's state and gets new work (the server holds the
    /// call open while the bot has room and nothing changed).
    pub async fn update_bot_session(
        &mut self,
        request: tonic::Request<UpdateBotSessionRequest>,
    ) -> Result<tonic::Response<BotSession>, tonic::Status> {
        self.unary(
            request,
            "/google.devtools.remoteworkers.v1test2.Bots/UpdateBotSession",
        )
        .await
    }
}
