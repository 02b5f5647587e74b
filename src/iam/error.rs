//! Every SDK error, classified: what the executor's retry policy and the reports need to know.

use std::fmt;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;

/// What kind of failure an IAM call had. The names read well in a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    /// DeleteConflict, ConcurrentModification, EntityTemporarilyUnmodifiable.
    Conflict,
    Throttled,
    /// 5xx, timeouts, connection errors.
    Transient,
    AccessDenied,
    /// No credentials anywhere in the chain: nothing to retry until someone sets them.
    NoCredentials,
    /// Malformed documents, limits, validation: retrying cannot fix it.
    InvalidInput,
    Other,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Transient => "transient",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::NoCredentials => "no_credentials",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Other => "other",
        }
    }
}

/// A failed IAM call: the operation, its classification, and AWS's code and message.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct IamError {
    pub operation: &'static str,
    pub kind: ErrorKind,
    pub code: Option<String>,
    pub message: String,
}

impl fmt::Display for IamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} failed: {code}: {}", self.operation, self.message),
            None => write!(f, "{} failed: {}", self.operation, self.message),
        }
    }
}

impl IamError {
    pub fn new<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> IamError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = err.code().map(str::to_string);
        let message = err
            .message()
            .map(str::to_string)
            .unwrap_or_else(|| source_chain(&err));
        let kind = match &err {
            // The SDK reports a failed credential chain as a dispatch failure; only its text
            // tells it apart from a network error.
            SdkError::DispatchFailure(_) if is_credentials_failure(&message) => {
                return IamError {
                    operation,
                    kind: ErrorKind::NoCredentials,
                    code,
                    message: format!("{NO_CREDENTIALS} ({message})"),
                };
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => ErrorKind::Transient,
            SdkError::ServiceError(se) => classify(code.as_deref(), se.raw().status().as_u16()),
            _ => ErrorKind::Other,
        };
        IamError {
            operation,
            kind,
            code,
            message,
        }
    }

    /// IAM's eventual consistency: a trust policy naming a principal created moments ago is
    /// refused with this message until the principal has propagated.
    /// Retrying the same request cannot help: IAM refused what was sent (a malformed
    /// document, a limit, a principal still unknown past the propagation window). Only a
    /// changed manifest, or a change elsewhere in IAM, can; so the daemon tries it again at
    /// its resyncs and edits, not on a fast backoff.
    pub fn is_final(&self) -> bool {
        self.kind == ErrorKind::InvalidInput
    }

    pub fn is_invalid_principal(&self) -> bool {
        self.code.as_deref() == Some("MalformedPolicyDocument")
            && self
                .message
                .to_ascii_lowercase()
                .contains("invalid principal")
    }
}

#[cfg(test)]
impl IamError {
    /// An error of operation `Op`, for tests of what the code makes of it.
    pub(crate) fn for_test(kind: ErrorKind, code: &str, message: &str) -> IamError {
        IamError {
            operation: "Op",
            kind,
            code: Some(code.into()),
            message: message.into(),
        }
    }
}

impl IamError {
    /// A credentials failure of a client that assumes `role`: the role could not be assumed
    /// (refused, or the process's own credentials missing), which the SDK's cause says.
    pub fn assuming(mut self, role: &str) -> IamError {
        if self.kind == ErrorKind::NoCredentials {
            let cause = self
                .message
                .strip_prefix(NO_CREDENTIALS)
                .map(|rest| rest.trim_start_matches(" (").trim_end_matches(')'))
                .unwrap_or(&self.message);
            self.message = format!("cannot assume role {role}: {cause}");
        }
        self
    }
}

/// What a user reads when no credentials were found: where the SDK looked, what to set.
pub const NO_CREDENTIALS: &str = "no AWS credentials found. Tried, in order: the environment \
(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, with AWS_SESSION_TOKEN for temporary ones), the \
shared config and credentials files (~/.aws, AWS_PROFILE), web identity (AWS_ROLE_ARN and \
AWS_WEB_IDENTITY_TOKEN_FILE, as EKS IRSA sets them), the ECS container endpoint \
(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, set by ECS) and EC2 instance metadata. Set one of these";

pub(super) fn is_credentials_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("credential") && (m.contains("provider") || m.contains("loading"))
}

/// Classification by AWS error code (and HTTP status for codes we do not know).
pub fn classify(code: Option<&str>, status: u16) -> ErrorKind {
    match code {
        Some("NoSuchEntity" | "NoSuchEntityException") => ErrorKind::NotFound,
        Some("EntityAlreadyExists" | "EntityAlreadyExistsException") => ErrorKind::AlreadyExists,
        Some(
            "DeleteConflict"
            | "ConcurrentModification"
            | "ConcurrentModificationException"
            | "EntityTemporarilyUnmodifiable",
        ) => ErrorKind::Conflict,
        Some(
            "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException",
        ) => ErrorKind::Throttled,
        Some(
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "ExpiredTokenException",
        ) => ErrorKind::AccessDenied,
        Some(
            "MalformedPolicyDocument"
            | "InvalidInput"
            | "ValidationError"
            | "LimitExceeded"
            | "UnmodifiableEntity"
            | "PolicyNotAttachable"
            | "PolicyEvaluation"
            | "DuplicateCertificate",
        ) => ErrorKind::InvalidInput,
        Some("ServiceFailure" | "InternalFailure" | "ServiceUnavailable" | "InternalError") => {
            ErrorKind::Transient
        }
        _ if status >= 500 => ErrorKind::Transient,
        _ if status == 429 => ErrorKind::Throttled,
        _ => ErrorKind::Other,
    }
}

fn source_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(classify(Some("NoSuchEntity"), 404), ErrorKind::NotFound);
        assert_eq!(
            classify(Some("EntityAlreadyExists"), 409),
            ErrorKind::AlreadyExists
        );
        assert_eq!(classify(Some("DeleteConflict"), 409), ErrorKind::Conflict);
        assert_eq!(classify(Some("Throttling"), 400), ErrorKind::Throttled);
        assert_eq!(classify(Some("AccessDenied"), 403), ErrorKind::AccessDenied);
        assert_eq!(
            classify(Some("MalformedPolicyDocument"), 400),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            classify(Some("LimitExceeded"), 409),
            ErrorKind::InvalidInput
        );
        assert_eq!(classify(Some("ServiceFailure"), 500), ErrorKind::Transient);
        assert_eq!(classify(Some("Weird"), 503), ErrorKind::Transient);
        assert_eq!(classify(None, 429), ErrorKind::Throttled);
        assert_eq!(classify(Some("Weird"), 400), ErrorKind::Other);
    }

    fn error(kind: ErrorKind, code: &str, message: &str) -> IamError {
        IamError::for_test(kind, code, message)
    }

    #[test]
    fn a_failed_credential_chain_is_told_apart_from_a_network_error() {
        assert!(is_credentials_failure(
            "dispatch failure: other: the credential provider was not enabled: no providers in chain provided credentials"
        ));
        assert!(is_credentials_failure(
            "dispatch failure: other: an error occurred while loading credentials: failed to load IMDS session token"
        ));
        assert!(!is_credentials_failure(
            "dispatch failure: io error: Connection refused (os error 111)"
        ));
    }

    #[test]
    fn display_carries_operation_code_and_message() {
        let e = error(ErrorKind::AccessDenied, "AccessDenied", "not allowed");
        assert_eq!(e.to_string(), "Op failed: AccessDenied: not allowed");
    }
}
