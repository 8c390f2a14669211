//! The one place etcd client errors become [`StoreError`]s, by kind.

use storage_api::{ErrorKind, StoreError};
use tonic::Code;

/// How an etcd failure bears on the channel that saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The member answered: the channel is fine.
    Answered,
    /// The channel could not reach its member: retire it and prefer other members.
    Unreachable,
    /// As `Unreachable`, and the request was never sent (the connection was refused), so
    /// any request may be tried again elsewhere.
    Refused,
}

/// An etcd failure: the error to return and what it says about the channel.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: StoreError,
    pub(crate) fault: Fault,
}

/// What the server said, by message (etcd's codes are coarse; its messages are stable).
fn server_message(status: &tonic::Status) -> &str {
    status.message()
}

/// Maps an etcd client error during `operation`.
pub(crate) fn map(operation: &str, error: etcd_client::Error) -> Failure {
    use etcd_client::Error as E;
    match error {
        E::GRpcStatus(status) => map_status(operation, status),
        E::TransportError(e) => unreachable(operation, e),
        E::IoError(e) => unreachable(operation, e),
        E::InvalidArgs(m) | E::EndpointError(m) => answered(StoreError::config(format!(
            "{operation}: the etcd client rejected its settings: {m}"
        ))),
        E::InvalidUri(e) => answered(
            StoreError::config(format!("{operation}: an endpoint is not a valid address"))
                .with_source(e),
        ),
        other => answered(
            StoreError::new(
                ErrorKind::Backend,
                format!("{operation}: etcd client error"),
            )
            .with_source(other.to_string()),
        ),
    }
}

fn answered(error: StoreError) -> Failure {
    Failure {
        error,
        fault: Fault::Answered,
    }
}

fn unreachable(operation: &str, source: impl std::fmt::Display) -> Failure {
    Failure {
        error: StoreError::new(
            ErrorKind::Connection,
            format!("{operation}: the etcd member could not be reached"),
        )
        .with_source(source.to_string()),
        fault: Fault::Unreachable,
    }
}

/// Whether a gRPC status came from the transport rather than from etcd.
fn is_transport(status: &tonic::Status) -> bool {
    let message = status.message();
    !message.starts_with("etcdserver:")
        && matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Internal
        )
        && (message.contains("transport")
            || message.contains("connect")
            || message.contains("connection")
            || message.contains("broken pipe")
            || message.contains("error trying")
            || message.contains("h2 protocol")
            || message.contains("tcp"))
}

/// Whether a transport failure happened before the request left: no connection could be
/// made.
fn never_sent(message: &str) -> bool {
    message.contains("connect error")
        || message.contains("error trying to connect")
        || message.contains("Connection refused")
}

fn map_status(operation: &str, status: tonic::Status) -> Failure {
    if is_transport(&status) {
        let mut failure = unreachable(operation, status.message());
        if never_sent(status.message()) {
            failure.fault = Fault::Refused;
        }
        return failure;
    }
    let message = server_message(&status).to_owned();
    let kind_message = |kind: ErrorKind, text: String| {
        answered(StoreError::new(kind, format!("{operation}: {text}")).with_source(message.clone()))
    };
    if message.contains("database space exceeded") || message.contains("NOSPACE") {
        return kind_message(
            ErrorKind::Backend,
            "the etcd cluster is out of space (alarm NOSPACE: the database reached \
             --quota-backend-bytes) and refuses writes until an operator compacts the \
             history (`etcdctl compact <revision>`), defragments every member (`etcdctl \
             defrag`), optionally raises the quota, then clears the alarm (`etcdctl alarm \
             disarm`)"
                .into(),
        );
    }
    if message.contains("required revision has been compacted") {
        return kind_message(
            ErrorKind::Conflict,
            "the revision this read needed was compacted away; retry".into(),
        );
    }
    if message.contains("too many operations in txn request") {
        return kind_message(
            ErrorKind::InvalidInput,
            "more operations than the server allows in one transaction (--max-txn-ops; \
             see max_batch_ops)"
                .into(),
        );
    }
    if message.contains("request is too large") {
        return kind_message(
            ErrorKind::InvalidInput,
            "the request is larger than the server accepts (--max-request-bytes)".into(),
        );
    }
    if message.contains("authentication failed") || message.contains("user name is empty") {
        return kind_message(
            ErrorKind::Config,
            "etcd rejected the user and password of the url".into(),
        );
    }
    if message.contains("permission denied") || status.code() == Code::PermissionDenied {
        return kind_message(
            ErrorKind::Config,
            "the etcd user lacks permission on the table's key prefix (grant it a role \
             with readwrite on `<table>/`)"
                .into(),
        );
    }
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => {
            kind_message(
                ErrorKind::Connection,
                "the etcd cluster did not serve the request (no leader, leader change, \
                 lost quorum or a timeout)"
                    .into(),
            )
        }
        Code::Unauthenticated => kind_message(
            ErrorKind::Connection,
            "the etcd authentication token was refused; retry".into(),
        ),
        Code::ResourceExhausted => kind_message(
            ErrorKind::InvalidInput,
            "the response or request is larger than the gRPC message limit".into(),
        ),
        _ => kind_message(
            ErrorKind::Backend,
            format!("etcd failed ({:?})", status.code()),
        ),
    }
}

/// The failure of a request that did not finish within its deadline.
pub(crate) fn deadline(operation: &str, waited: std::time::Duration) -> Failure {
    Failure {
        error: StoreError::new(
            ErrorKind::Connection,
            format!(
                "{operation}: the etcd cluster did not answer within {waited:?} \
                 (db_connection_timeout_secs): no quorum, or the member is unreachable"
            ),
        ),
        fault: Fault::Unreachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(status: tonic::Status) -> (ErrorKind, Fault) {
        let f = map("op", etcd_client::Error::GRpcStatus(status));
        (f.error.kind(), f.fault)
    }

    #[test]
    fn server_errors_map_by_kind() {
        let nospace = kind(tonic::Status::resource_exhausted(
            "etcdserver: mvcc: database space exceeded",
        ));
        assert_eq!(nospace, (ErrorKind::Backend, Fault::Answered));
        assert_eq!(
            kind(tonic::Status::unavailable("etcdserver: no leader")).0,
            ErrorKind::Connection
        );
        assert_eq!(
            kind(tonic::Status::unavailable("etcdserver: request timed out")).0,
            ErrorKind::Connection
        );
        assert_eq!(
            kind(tonic::Status::out_of_range(
                "etcdserver: mvcc: required revision has been compacted"
            ))
            .0,
            ErrorKind::Conflict
        );
        assert_eq!(
            kind(tonic::Status::invalid_argument(
                "etcdserver: too many operations in txn request"
            ))
            .0,
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(tonic::Status::unavailable(
                "error trying to connect: tcp connect error"
            )),
            (ErrorKind::Connection, Fault::Refused)
        );
        assert_eq!(
            kind(tonic::Status::unavailable(
                "transport error: connection reset"
            )),
            (ErrorKind::Connection, Fault::Unreachable)
        );
        assert_eq!(
            kind(tonic::Status::invalid_argument(
                "etcdserver: authentication failed, invalid user ID or password"
            ))
            .0,
            ErrorKind::Config
        );
    }

    #[test]
    fn nospace_tells_the_operator_what_to_do() {
        let f = map(
            "put",
            etcd_client::Error::GRpcStatus(tonic::Status::resource_exhausted(
                "etcdserver: mvcc: database space exceeded",
            )),
        );
        assert!(
            f.error.message().contains("etcdctl alarm disarm"),
            "{}",
            f.error
        );
    }
}
